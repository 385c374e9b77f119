"""Tandem: a dhcpd.conf-compatible DHCPv4 server that runs as a redundant pair.

``BUILD`` says how the DHCP hot path runs: ``"native"`` when scripts/build_native.py compiled
it with mypyc and the compiled sources are unchanged since, else ``"pure"``. A stale build
(sources edited or checked out after compiling) or ``TANDEM_PURE=1`` loads every module from
its ``.py`` file, so a compiled module never runs code other than what its source says.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__version__ = "0.1.0.dev0"

_HERE = Path(__file__).resolve().parent
_STAMP = _HERE / "_native.json"


class _SourceOnly:
    """A meta path finder that loads ``tandem.*`` modules from their ``.py`` files only."""

    _finders: dict[str, importlib.machinery.FileFinder] = {}

    @classmethod
    def find_spec(
        cls, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not name.startswith("tandem.") or path is None:
            return None
        for entry in path:
            finder = cls._finders.get(entry)
            if finder is None:
                loader = (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
                finder = cls._finders[entry] = importlib.machinery.FileFinder(entry, loader)
            spec = finder.find_spec(name, target)
            if spec is not None:
                return spec
        return None


def stamp_problem() -> str | None:
    """Why the compiled modules may not run (None: they match their sources).

    Shared with scripts/build_native.py, which writes the stamp and rebuilds when this says so.
    """
    try:
        stamp = json.loads(_STAMP.read_text(encoding="utf-8"))
        modules: dict[str, str] = stamp["modules"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no native build"
    if stamp.get("python") != sys.version.split()[0]:
        return "native build is for another Python: run make deps"
    src = _HERE.parent
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    for mod, digest in modules.items():
        try:
            current = hashlib.sha256((src / mod).read_bytes()).hexdigest()
        except OSError:
            return f"{mod} is gone: run make deps"
        if current != digest:
            return f"native build older than {mod}: run make deps"
        if not (src / mod.replace(".py", suffix)).exists():
            return f"native build incomplete ({mod}): run make deps"
    return None


def _native_build() -> str:
    """The build to run: "native" if the compiled modules match their sources, else why not."""
    if os.environ.get("TANDEM_PURE", "") not in ("", "0"):
        return "pure (TANDEM_PURE is set)"
    problem = stamp_problem()
    if problem == "no native build":
        return "pure"
    return "native" if problem is None else f"pure ({problem})"


BUILD = _native_build()
if BUILD != "native" and _SourceOnly not in sys.meta_path:
    sys.meta_path.insert(0, _SourceOnly)
