"""libFuzzer harness: the control-socket request parser (JSON, nesting pre-scan).

The oracle is fuzzlib.check_control; see fuzz/README.md for how to run it.
"""

from __future__ import annotations

import harness

TestOneInput = harness.test_one_input("control")

if __name__ == "__main__":
    harness.main("control")
