"""contrib/tandem.service: ``systemd-analyze verify`` accepts it (as shipped, with ExecStart
pointed at this checkout's ``tandem``, since verify insists the program exists), and it is the
unit the README and issue 10 describe. tests/lab/test_systemd_unit.py runs Tandem with its
capability set; tests/lab/test_sdnotify.py speaks its notify protocol."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "contrib" / "tandem.service"
SHIPPED_TANDEM = "/opt/tandem/bin/tandem"


def _settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def _verify(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.fail("systemd-analyze is missing (apt-get install systemd)", pytrace=False)
    here = ROOT / ".venv" / "bin" / "tandem"
    assert here.exists(), here
    unit = tmp_path / "tandem.service"
    unit.write_text(text.replace(SHIPPED_TANDEM, str(here.resolve())), encoding="utf-8")
    return subprocess.run(
        [tool, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    text = UNIT.read_text(encoding="utf-8")
    assert text.count(SHIPPED_TANDEM) == 2  # ExecStartPre (-t) and ExecStart
    done = _verify(text, tmp_path)
    # verify exits 0 even for settings it ignores; it must say nothing at all.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_verify_does_catch_a_broken_unit(tmp_path: Path) -> None:
    text = UNIT.read_text(encoding="utf-8").replace("Type=notify", "Type=notifyy")
    done = _verify(text, tmp_path)
    assert "Failed to parse service type" in done.stdout + done.stderr


def test_the_unit_is_the_one_described() -> None:
    s = _settings(UNIT.read_text(encoding="utf-8"))
    assert s["Type"] == ["notify"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["WatchdogSec"] == ["30s"]
    (start,) = s["ExecStart"]
    flags = start.split()
    assert flags[0] == SHIPPED_TANDEM and "-f" in flags  # no fork: the main pid notifies
    assert flags[flags.index("-user") + 1] == "tandem"
    assert flags[flags.index("-group") + 1] == "tandem"
    assert flags[flags.index("-lf") + 1].startswith(s["ReadWritePaths"][0] + "/")
    assert flags[flags.index("-pf") + 1].startswith("/run/" + s["RuntimeDirectory"][0] + "/")
    assert s["AmbientCapabilities"] == [""]
    assert s["NoNewPrivileges"] == ["yes"]
