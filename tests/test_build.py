"""The build that `make test` checks is the build that ships: the mypyc-compiled hot path.

scripts/build_native.py (run by `make deps`) compiles it; a failed or stale build makes Tandem
fall back to pure Python (tandem/__init__.py), which is correct but slower, and this test
says so instead of letting the whole suite pass on the wrong build. ``TANDEM_PURE=1`` asks
for the pure build on purpose (the suite then tests that one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tandem
import tandem.core.server
import tandem.wire.dhcp

COMPILED = (tandem.core.server, tandem.wire.dhcp)


def test_the_suite_runs_the_build_it_asked_for() -> None:
    if os.environ.get("TANDEM_PURE", "") not in ("", "0"):
        assert tandem.BUILD.startswith("pure")
        assert all(m.__file__ is not None and m.__file__.endswith(".py") for m in COMPILED)
        return
    assert tandem.BUILD == "native", f"{tandem.BUILD}: run `make deps` (scripts/build_native.py)"
    assert all(m.__file__ is not None and m.__file__.endswith(".so") for m in COMPILED)


def test_pure_python_is_one_environment_variable_away() -> None:
    code = "import tandem, tandem.core.server as s; print(tandem.BUILD, s.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "TANDEM_PURE": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("pure (TANDEM_PURE is set) ") and out.strip().endswith("server.py")


def test_a_compiled_module_older_than_its_source_is_not_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard of tandem/__init__.py: a stamp whose digest no longer matches a source (an
    edit or a checkout since the build) makes the build pure, naming the file."""
    stamp = {"python": sys.version.split()[0], "modules": {"tandem/core/codes.py": "0" * 64}}
    fake = tmp_path / "_native.json"
    fake.write_text(json.dumps(stamp), encoding="utf-8")
    monkeypatch.setattr(tandem, "_STAMP", fake)
    assert tandem.stamp_problem() == "native build older than tandem/core/codes.py: run make deps"
    monkeypatch.delenv("TANDEM_PURE", raising=False)
    assert tandem._native_build().startswith("pure (native build older than")
    stamp["python"] = "2.7.18"
    fake.write_text(json.dumps(stamp), encoding="utf-8")
    assert tandem.stamp_problem() == "native build is for another Python: run make deps"
