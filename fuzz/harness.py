"""Shared main() of the atheris harnesses: instrument Tandem, guard time, run libFuzzer.

Each fuzz/fuzz_<target>.py is a libFuzzer-style program (``TestOneInput``) around one oracle
of fuzzlib; run one by hand with libFuzzer flags, e.g.::

    .venv/bin/python fuzz/fuzz_dhcp.py -timeout=0 -max_total_time=60 fuzz/corpus/dhcp

or all of them with ``make fuzz`` (fuzz/run_all.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import atheris

with atheris.instrument_imports(include=["tandem"]):
    import fuzzlib

#: Per-input wall-clock limit (seconds): far above any real input's cost.
INPUT_SECONDS = int(os.environ.get("FUZZ_INPUT_SECONDS", "10"))


def test_one_input(target: str) -> Callable[[bytes], None]:
    return fuzzlib.guarded(fuzzlib.CHECKS[target], INPUT_SECONDS)


def main(target: str) -> None:
    atheris.Setup(sys.argv, test_one_input(target))
    atheris.Fuzz()
