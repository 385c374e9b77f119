"""``pure_python``: run one test against the pure-Python build (see its docstring)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec

import tandem

P = ParamSpec("P")
_ROOT = Path(__file__).resolve().parent.parent
_ROOT = Path(__file__).resolve().parent.parent


def pure_python(test: Callable[P, None]) -> Callable[P, None]:
    """Run ``test`` against the pure-Python build (``TANDEM_PURE=1``, in a child pytest).

    For tests that break a server on purpose by replacing one of its methods (the simulator's
    checker must catch the damage): the classes that scripts/build_native.py compiles refuse
    new attributes. The child runs the very same test file and test, so nothing is skipped:
    its failure fails this test, with its output. Under the pure build it runs in-process.
    """

    @functools.wraps(test)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        if tandem.BUILD != "native":
            test(*args, **kwargs)
            return
        node = os.environ["PYTEST_CURRENT_TEST"].rsplit(" (", 1)[0]
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node],
            cwd=_ROOT,
            env={**os.environ, "TANDEM_PURE": "1"},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, f"{node} under TANDEM_PURE=1:\n{proc.stdout[-4000:]}"

    return wrapper
