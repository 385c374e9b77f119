"""libFuzzer harness: the failover message decoder and the TCP framer fed in random chunkings.

The oracle is fuzzlib.check_failover; see fuzz/README.md for how to run it.
"""

from __future__ import annotations

import harness

TestOneInput = harness.test_one_input("failover")

if __name__ == "__main__":
    harness.main("failover")
