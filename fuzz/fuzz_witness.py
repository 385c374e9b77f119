"""libFuzzer harness: the witness datagram decoder (wire/witness.py), with and without a key.

The oracle is fuzzlib.check_witness; see fuzz/README.md for how to run it.
"""

from __future__ import annotations

import harness

TestOneInput = harness.test_one_input("witness")

if __name__ == "__main__":
    harness.main("witness")
