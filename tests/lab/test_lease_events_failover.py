"""Lease events in a failover pair: each event runs on the server that committed the lease.

Both servers of the seed's pair (split 256: the primary answers every client) get the same
``on commit/release/expiry`` blocks, which run a script with the server's own name. dhcpd runs
``on commit`` in ack_lease only (a peer's BNDUPD runs nothing), ``on release`` where the
DHCPRELEASE arrives, and ``on expiry`` on the server that holds the lease's blocks (the one that
acked it), once the EXPIRED lease is FREE. The pair of two dhcpd is the reference; each mixed
pair must record the same lines: everything from the primary, nothing from the secondary.
"""

from __future__ import annotations

import signal
import time

import pytest
from failover_kit import SEED_PRIMARY, SEED_SECONDARY, Node, derive, pair_lab, wait_agree
from test_lease_events import IP, LEASE, MAC, _lines, _recorder, _wait_line, dhcpd_mac

from tandem.lab.clients import Dhclient
from tandem.lab.netns import Lab

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(240),
    pytest.mark.usefixtures("lab_prerequisites"),
]

EVENTS = f"""\
default-lease-time {LEASE};
max-lease-time {LEASE};
min-lease-time {LEASE};
on commit {{ execute("__SCRIPT__", "__NAME__", "commit", {IP}, {MAC}); }}
on release {{ execute("__SCRIPT__", "__NAME__", "release", {IP}, {MAC}); }}
on expiry {{ execute("__SCRIPT__", "__NAME__", "expiry", {IP}, {MAC}); }}
"""


@pytest.mark.parametrize(
    ("primary_kind", "secondary_kind"),
    [("dhcpd", "dhcpd"), ("tandem", "dhcpd"), ("dhcpd", "tandem")],
    ids=["dhcpd-pair", "tandem-primary+dhcpd-secondary", "dhcpd-primary+tandem-secondary"],
)
def test_events_run_on_the_server_that_committed(
    lab: Lab, primary_kind: str, secondary_kind: str
) -> None:
    h1, h2 = pair_lab(lab)
    script, record = _recorder(h1.workdir)

    def conf(seed: str, name: str) -> str:
        text = EVENTS.replace("__SCRIPT__", str(script)).replace("__NAME__", name)
        return derive(seed, extra_global=text)

    primary = Node(primary_kind, h1, conf(SEED_PRIMARY, "primary"))
    secondary = Node(secondary_kind, h2, conf(SEED_SECONDARY, "secondary"))
    secondary.start()
    primary.start()
    primary.wait_state("normal", 60)
    secondary.wait_state("normal", 60)

    client = Dhclient(lab.add_host("client"))
    mac = dhcpd_mac(client.mac())
    client.start()
    ip = client.wait_lease(40).address
    n = _wait_line(record, f"primary commit {ip} {mac}", 15)
    wait_agree(primary, secondary, 20)  # the secondary has the binding (BNDUPD): no event

    client.release()
    n = _wait_line(record, f"primary release {ip} {mac}", 15, after=n + 1)

    after = client.event_count()
    client.start()
    again = client.wait_lease(40, after=after).address
    recommitted = _wait_line(record, f"primary commit {again} {mac}", 15, after=n + 1)
    assert client.proc is not None
    client.proc.stop(signal.SIGKILL)
    _wait_line(record, f"primary expiry {again} {mac}", 3 * LEASE + 15, after=recommitted + 1)
    time.sleep(3)  # anything the secondary would run comes by now
    lines = _lines(record)
    assert not [x for x in lines if x.startswith("secondary")], lines
    assert lines.count(f"primary expiry {again} {mac}") == 1, lines
    assert not any(" release " in x for x in lines[recommitted:]), lines
