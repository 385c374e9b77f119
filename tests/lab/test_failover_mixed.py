"""Mixed pairs: Tandem and ISC dhcpd 4.4 as the two halves of the seed's relationship.

After the checks below, the primary is killed and restarted, so the reconnection path between the
two implementations (communications-interrupted -> normal) runs in both role assignments.

Both configs are the seed's, verbatim. Success as dhcpd itself reports it: it logs "Both
servers normal", rejects none of our binding updates (and sees none of its own rejected), never
loses the link; and both lease files hold the same bindings.
"""

from __future__ import annotations

import re

import pytest
from failover_kit import (
    NAME,
    PRIMARY_IP,
    SEED_PRIMARY,
    SEED_SECONDARY,
    Node,
    assert_unique_clients,
    dhcpd_rejections,
    pair_lab,
    wait_agree,
    wait_for,
)

from tandem.lab.clients import Dhclient
from tandem.lab.netns import Lab

#: What dhcpd logs about a failover message or option it did not expect (failover.c).
ISC_UNEXPECTED = re.compile(
    r"invalid message type|unknown (failover )?(message|option)|message overflow|"
    r"option .* not allowed|bad option|vendor-specific",
    re.IGNORECASE,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("lab_prerequisites"),
]


@pytest.mark.parametrize(
    ("primary_kind", "secondary_kind"),
    [("tandem", "dhcpd"), ("dhcpd", "tandem")],
    ids=["tandem-primary+dhcpd-secondary", "dhcpd-primary+tandem-secondary"],
)
def test_mixed_pair_reaches_normal_and_agrees(
    lab: Lab, primary_kind: str, secondary_kind: str
) -> None:
    h1, h2 = pair_lab(lab)
    primary = Node(primary_kind, h1, SEED_PRIMARY)
    secondary = Node(secondary_kind, h2, SEED_SECONDARY)
    secondary.start()
    primary.start()
    primary.wait_state("normal", 60)
    secondary.wait_state("normal", 60)
    isc = primary if primary_kind == "dhcpd" else secondary
    ours = secondary if primary_kind == "dhcpd" else primary
    wait_for(lambda: f"failover peer {NAME}: Both servers normal" in isc.log(), 30, "dhcpd")

    # Two clients, both answered by the primary (split 256), replicated to the secondary.
    clients = [Dhclient(lab.add_host(f"cli{i}")) for i in (1, 2)]
    for c in clients:
        c.start()
    bound = {c.mac(): c.wait_lease(40) for c in clients}
    assert all(ev.server_id == PRIMARY_IP for ev in bound.values())
    wait_agree(primary, secondary, 20)
    active = secondary.active()
    for mac, ev in bound.items():
        assert active.get(str(ev.address)) == mac
    assert_unique_clients(primary, secondary)

    # One client leaves: the release reaches the other side too.
    leaver = clients[1]
    addr = str(bound[leaver.mac()].address)
    leaver.release()
    wait_for(lambda: addr not in secondary.active() and addr not in primary.active(), 15, "free")
    wait_agree(primary, secondary, 10)

    isc_log = isc.log()
    assert dhcpd_rejections(isc_log) == []
    assert not re.search(r"disconnected|timeout waiting for failover peer", isc_log), isc_log
    assert "Failover CONNECT" not in isc_log  # "Failover CONNECT to ... rejected"
    link = ours.status()["tcp"]
    assert isinstance(link, dict)
    assert link["connected"] is True
    counters = link["counters"]
    assert isinstance(counters, dict)
    assert counters["lost"] == 0 and counters["journal_errors"] == 0
    assert ours.status()["partner_state"] == "normal"
    # No extension message went to dhcpd (issue 11 item 4): ours knows the peer is not Tandem,
    # sent nothing beyond ISC's protocol, and dhcpd logged nothing about what it got.
    ext = ours.status()["extension"]
    assert isinstance(ext, dict)
    assert ext["state"] == "not-tandem" and ext["sent"] == 0, ext
    assert str(ext["peer_vendor"]).startswith("isc-"), ext
    assert not ISC_UNEXPECTED.search(isc_log), ISC_UNEXPECTED.findall(isc_log)

    # The primary dies (kill -9) and comes back on its lease file: the pair is NORMAL again
    # through communications-interrupted, whichever implementation restarts.
    primary.kill()
    secondary.wait_state("communications-interrupted", 15)
    primary.start()
    primary.wait_state("normal", 60)
    secondary.wait_state("normal", 60)
    wait_agree(primary, secondary, 20)
    assert_unique_clients(primary, secondary)
    assert dhcpd_rejections(isc.all_logs()) == []
    assert ours.status()["partner_state"] == "normal"
    assert not ISC_UNEXPECTED.search(isc.all_logs())
    assert ours.status()["extension"]["sent"] == 0  # type: ignore[index]
