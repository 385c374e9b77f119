"""libFuzzer harness: the command layer's request parser and read-only commands (Kea envelope).

The oracle is fuzzlib.check_command; see fuzz/README.md for how to run it.
"""

from __future__ import annotations

import harness

TestOneInput = harness.test_one_input("command")

if __name__ == "__main__":
    harness.main("command")
