"""Two Tandems with the seed blog post's configs, verbatim, as real processes in namespaces.

The story the blog promises: the pair comes up, clients get leases from the primary, the
secondary knows every binding; the primary dies (kill -9) and the secondary carries on in
COMMUNICATIONS-INTERRUPTED, renewing known clients and serving new ones from its BACKUP
leases; the primary comes back and both lease files agree again.
"""

from __future__ import annotations

import pytest
from failover_kit import (
    NAME,
    PRIMARY_IP,
    SECONDARY_IP,
    SEED_PRIMARY,
    SEED_SECONDARY,
    Node,
    assert_unique_clients,
    derive,
    pair_lab,
    wait_agree,
    wait_for,
)

from tandem.lab.clients import Dhclient
from tandem.lab.netns import Lab
from tandem.lab.scenarios import ip_in_range

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("lab_prerequisites"),
]


def _pair(lab: Lab, primary_conf: str, secondary_conf: str) -> tuple[Node, Node]:
    h1, h2 = pair_lab(lab)
    primary = Node("tandem", h1, primary_conf)
    secondary = Node("tandem", h2, secondary_conf)
    secondary.start()
    primary.start()
    primary.wait_state("normal", 30)
    secondary.wait_state("normal", 30)
    return primary, secondary


def _outage_story(
    lab: Lab, primary: Node, secondary: Node, *, mclt: int, rebind: bool = False
) -> None:
    cli1 = Dhclient(lab.add_host("cli1"))
    cli1.start()
    ev1 = cli1.wait_lease(30)
    assert ip_in_range(ev1.address)
    assert ev1.server_id == PRIMARY_IP  # split 256: the primary answers everything
    assert ev1.lease_time is not None and ev1.lease_time <= mclt  # peer not yet acked: MCLT
    mac1 = cli1.mac()
    # The secondary's lease file holds the binding (BNDUPD, committed, acked).
    wait_for(lambda: secondary.active().get(str(ev1.address)) == mac1, 15, "BNDUPD on srv2")
    backup_before = secondary.in_state("backup")
    assert len(backup_before) >= 40, "pool balancing gave the secondary its BACKUP share"

    primary.kill()
    secondary.wait_state("communications-interrupted", 10)
    assert f"peer {NAME}: disconnected" in secondary.log()

    if rebind:
        # A real renewal: the unicast RENEW to the dead primary times out, the broadcast
        # REBIND reaches the secondary, which extends the binding it learnt by BNDUPD
        # (dhclient's script calls that "RENEW" when the address stays the same).
        n = cli1.event_count()
        ev = cli1.wait_event({"RENEW", "REBIND"}, mclt + 15, after=n)
        assert ev.address == ev1.address and ev.server_id == SECONDARY_IP
        assert "DHCPREQUEST for" in cli1.log() and f"from {SECONDARY_IP}" in cli1.log()

    # The known client comes back (INIT-REBOOT): the secondary keeps it on its address.
    cli1.stop()
    after = cli1.event_count()
    cli1.start()
    again = cli1.wait_lease(40, after=after)
    assert again.address == ev1.address
    assert again.server_id == SECONDARY_IP

    # A new client is served from the secondary's BACKUP leases, with an MCLT-bound lease.
    cli2 = Dhclient(lab.add_host("cli2"))
    cli2.start()
    ev2 = cli2.wait_lease(40)
    assert ev2.server_id == SECONDARY_IP
    assert ev2.address in backup_before, (ev2.address, sorted(backup_before))
    assert ev2.lease_time is not None and ev2.lease_time <= mclt

    # The primary returns on its old lease file: NORMAL again, and it learns cli2's binding.
    primary.start()
    primary.wait_state("normal", 40)
    secondary.wait_state("normal", 40)
    wait_agree(primary, secondary, 20)
    active = primary.active()
    assert active.get(str(ev1.address)) == mac1
    assert active.get(str(ev2.address)) == cli2.mac()
    assert_unique_clients(primary, secondary)
    status = secondary.status()
    assert status["partner_state"] == "normal" and status["link"] == "up"


def test_seed_pair_verbatim(lab: Lab) -> None:
    primary, secondary = _pair(lab, SEED_PRIMARY, SEED_SECONDARY)
    # dhcpd's words for the end of the start-up dance.
    assert f"failover peer {NAME}: Both servers normal" in primary.log()
    _outage_story(lab, primary, secondary, mclt=3600)


def test_seed_pair_fast_timers(lab: Lab) -> None:
    """Short MCLT and max-response-delay: a silent partition is noticed within seconds."""
    p_conf = derive(SEED_PRIMARY, mclt=30, mrd=5)
    s_conf = derive(SEED_SECONDARY, mrd=5)
    primary, secondary = _pair(lab, p_conf, s_conf)
    assert secondary.status()["mclt"] == 30  # learnt from the primary's CONNECT
    # Pull the primary's cable without a FIN: only the receive timer can tell.
    assert primary.server is not None
    lab.set_link(primary.host, "eth0", up=False)
    secondary.wait_state("communications-interrupted", 5 + 10)
    primary.wait_state("communications-interrupted", 5 + 10)
    assert f"timeout waiting for failover peer {NAME}" in secondary.log()
    lab.set_link(primary.host, "eth0", up=True)
    primary.wait_state("normal", 30)
    secondary.wait_state("normal", 30)
    _outage_story(lab, primary, secondary, mclt=30, rebind=True)
