"""perfdhcp driver: the text parser (pure) and one real short run (lab)."""

from __future__ import annotations

import pytest

from tandem.lab.netns import Lab, LabError
from tandem.lab.perf import parse_perfdhcp, parse_strace_counts, run_perfdhcp
from tandem.lab.servers import run_dhcpd

# Real perfdhcp 2.2.0 output (200/s for 3 s against ISC dhcpd in the lab), trimmed of nothing.
PERFDHCP_OUT = """\
Running: perfdhcp -4 -l eth0 -r 200 -R 60000 -p 3 -g single -s 1 -x e
Scenario: basic.
reached test-period.
***Rate statistics***
Rate: 199.657 4-way exchanges/second, expected rate: 200

***Malformed Packets***
Malformed packets: 0
***Statistics for: DISCOVER-OFFER***
sent packets: 599
received packets: 597
drops: 2
drops ratio: 0.33 %
orphans: 0
rejected leases: 0
non unique addresses: 0

min delay: 0.310 ms
avg delay: 1.169 ms
max delay: 5.185 ms
std deviation: 0.475 ms
collected packets: 0

***Statistics for: REQUEST-ACK***
sent packets: 597
received packets: 590
drops: 7
drops ratio: 1.172 %
orphans: 1
rejected leases: 0
non unique addresses: 0

min delay: 0.353 ms
avg delay: 1.187 ms
max delay: 6.835 ms
std deviation: 0.581 ms
collected packets: 0
"""

STRACE_OUT = """\
strace: Process 4242 attached with 2 threads
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
100.00    0.012000          40       300           fsync
  0.00    0.000000           0         3         1 fdatasync
------ ----------- ----------- --------- --------- ----------------
100.00    0.012000          39       303         1 total
"""


def test_parse_perfdhcp_counts_and_loss() -> None:
    res = parse_perfdhcp(PERFDHCP_OUT, 200, 3, 3)
    assert res.achieved_rate == pytest.approx(199.657)
    assert res.discovers == 599
    assert res.acks == 590
    assert res.stats["REQUEST-ACK"].orphans == 1
    assert res.stats["DISCOVER-OFFER"].avg_delay_ms == pytest.approx(1.169)
    assert res.lost_pct == pytest.approx(100 * 9 / 599)
    assert res.acks_per_s == pytest.approx(590 / 3)


def test_parse_perfdhcp_without_statistics_is_an_error() -> None:
    with pytest.raises(LabError, match="no statistics"):
        parse_perfdhcp("ERROR: There is no address for interface: eth0\n", 100, 1, 1)


def test_parse_strace_counts() -> None:
    assert parse_strace_counts(STRACE_OUT, ("fsync", "fdatasync")) == {
        "fsync": 300,
        "fdatasync": 3,
    }
    assert parse_strace_counts("", ("fsync",)) == {"fsync": 0}


@pytest.mark.lab
@pytest.mark.timeout(60)
def test_perfdhcp_exit_3_is_a_result_not_an_error(lab: Lab) -> None:
    """60 clients against a 20-address pool: 40 exchanges cannot complete, perfdhcp exits 3."""
    srv = lab.add_host("srv", "198.18.0.1/16")
    perf = lab.add_host("perf", "198.18.0.10/16")
    run_dhcpd(
        srv,
        "authoritative;\nping-check false;\n"
        "subnet 198.18.0.0 netmask 255.255.0.0 { range 198.18.1.0 198.18.1.19; }\n",
    )
    res = run_perfdhcp(perf, 30, 2, clients=60)
    assert res.exit_code == 3
    assert 0 < res.acks <= 20
    assert res.discovers >= 40
    assert res.lost_pct > 1.0
