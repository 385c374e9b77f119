"""libFuzzer harness: the dhcpd.conf parser (includes refused) and the core built from its output.

The oracle is fuzzlib.check_config; see fuzz/README.md for how to run it.
"""

from __future__ import annotations

import harness

TestOneInput = harness.test_one_input("config")

if __name__ == "__main__":
    harness.main("config")
