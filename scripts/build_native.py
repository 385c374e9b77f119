"""Compile the DHCP hot path with mypyc, in place (``make deps`` runs it; ``make pure`` undoes it).

Tandem is written in Python and runs as plain Python. The modules that every DHCP packet goes
through (the packet codec, the server core, the lease file format) are also type-checked with
``mypy --strict``, which lets mypyc compile the same source files into C extensions: on
bench/core_bench.py the whole batch path costs about 28 µs per DORA instead of 47 µs.

What this script does:

1. copies ``src/tandem`` to a temporary directory and runs ``mypyc`` on NATIVE_MODULES there;
2. copies the extension modules it built (and mypyc's shared runtime library) next to the
   sources in ``src/``, where the import system prefers them to the ``.py`` files;
3. writes ``src/tandem/_native.json``: the SHA-256 of every compiled source file.

``tandem/__init__.py`` reads that stamp at import: if any compiled source changed since (an
edit, a ``git checkout``), or if ``TANDEM_PURE=1`` is set, every ``tandem.*`` module is loaded
from its ``.py`` file instead, so a stale extension can never run. ``tandem -t`` and the
startup banner say which build runs.

The failover modules stay pure Python: compiled, the state machine's IntEnum members came back
as plain ints in places (tests/core/failover caught it), and they are not on the per-DHCP-
packet path. Without a C compiler or Python's headers the build fails, this script says so and
exits 0: Tandem then runs pure. ``--strict`` makes such a failure an error (CI uses it).

    .venv/bin/python scripts/build_native.py [--strict] [--force] [--clean]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from tandem import stamp_problem

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
STAMP = SRC / "tandem" / "_native.json"

#: The per-packet path of a standalone server, and what it imports that must be native too
#: for mypyc to compile calls between them directly.
NATIVE_MODULES = (
    "tandem/wire/dhcp.py",
    "tandem/core/codes.py",
    "tandem/core/types.py",
    "tandem/core/lease.py",
    "tandem/core/client.py",
    "tandem/core/flood.py",
    "tandem/core/pools.py",
    "tandem/core/scope.py",
    "tandem/core/topology.py",
    "tandem/core/reply.py",
    "tandem/core/replies.py",
    "tandem/core/reuse.py",
    "tandem/core/allocator.py",
    "tandem/core/context.py",
    "tandem/core/flows.py",
    "tandem/core/server.py",
    "tandem/store/_scan.py",
    "tandem/store/leasefile.py",
    "tandem/io/commit.py",
    "tandem/io/dhcp_socket.py",
)


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ext_suffix() -> str:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return str(suffix) if suffix else ".so"


def built_files() -> list[Path]:
    """Every extension module under src/: only this script puts any there, and one left from
    a build with a longer NATIVE_MODULES would still be imported (and load a stale runtime)."""
    return sorted([*SRC.glob("*__mypyc*.so"), *(SRC / "tandem").rglob("*.so")])


def clean() -> None:
    for path in built_files():
        path.unlink()
    STAMP.unlink(missing_ok=True)


def up_to_date() -> bool:
    """The stamp covers exactly NATIVE_MODULES and tandem's own check finds nothing stale."""
    try:
        stamped = json.loads(STAMP.read_text(encoding="utf-8")).get("modules", {})
    except (OSError, ValueError, AttributeError):
        return False
    return sorted(stamped) == sorted(NATIVE_MODULES) and stamp_problem() is None


def build() -> None:
    mypyc = Path(sys.executable).with_name("mypyc")
    if not mypyc.exists():
        raise RuntimeError(f"{mypyc} not found (pip install mypy)")
    with tempfile.TemporaryDirectory(prefix="tandem-mypyc-") as tmp:
        work = Path(tmp)
        shutil.copytree(SRC / "tandem", work / "tandem", ignore=_skip_built)
        proc = subprocess.run(
            [str(mypyc), *NATIVE_MODULES],
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise RuntimeError(f"mypyc failed (exit {proc.returncode}):\n{tail}")
        clean()
        suffix = ext_suffix()
        for mod in NATIVE_MODULES:
            so = mod.replace(".py", suffix)
            shutil.copy2(work / so, SRC / so)
        for lib in work.glob(f"*__mypyc{suffix}"):
            shutil.copy2(lib, SRC / lib.name)
    stamp = {
        "python": sys.version.split()[0],
        "modules": {m: source_digest(SRC / m) for m in NATIVE_MODULES},
    }
    STAMP.write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _skip_built(_dir: str, names: list[str]) -> list[str]:
    return [n for n in names if n.endswith(".so") or n in {"__pycache__", "_native.json"}]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--strict", action="store_true", help="a failed build is an error")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    ap.add_argument("--clean", action="store_true", help="remove the extensions: pure Python")
    args = ap.parse_args(argv)
    if args.clean:
        clean()
        print("native build removed: Tandem runs as pure Python")
        return 0
    if not args.force and up_to_date():
        print("native build up to date")
        return 0
    print(f"compiling {len(NATIVE_MODULES)} modules with mypyc (about 30 s) ...", flush=True)
    try:
        build()
    except (RuntimeError, OSError) as exc:
        clean()
        print(f"native build failed, Tandem runs as pure Python: {exc}", file=sys.stderr)
        return 1 if args.strict else 0
    print(f"native build done: {len(NATIVE_MODULES)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
