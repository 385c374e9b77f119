"""libFuzzer harness: the BOOTP/DHCP decoder (+ IPv4/UDP), encode round trips and the server core.

The oracle is fuzzlib.check_dhcp; see fuzz/README.md for how to run it.
"""

from __future__ import annotations

import harness

TestOneInput = harness.test_one_input("dhcp")

if __name__ == "__main__":
    harness.main("dhcp")
