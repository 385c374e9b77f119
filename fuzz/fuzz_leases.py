"""libFuzzer harness: the dhcpd.leases reader, and the writer's output read back.

The oracle is fuzzlib.check_leases; see fuzz/README.md for how to run it.
"""

from __future__ import annotations

import harness

TestOneInput = harness.test_one_input("leases")

if __name__ == "__main__":
    harness.main("leases")
