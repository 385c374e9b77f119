"""Load balancing with ``split 128``: each server answers exactly the clients whose hash bucket
it owns, and the other one steps in only once ``secs`` exceeds ``load balance max seconds`` (3).

The expected owner of every MAC comes from the RFC 3074 hash (tandem.core.failover.loadbalance,
checked against ISC's table in tests/core/failover/); the probe sends one DISCOVER per
synthetic MAC with the broadcast flag, so it hears every server that answers.
"""

from __future__ import annotations

import pytest
from failover_kit import (
    PRIMARY_IP,
    PROBE_ADDR,
    SECONDARY_IP,
    SEED_PRIMARY,
    SEED_SECONDARY,
    Node,
    derive,
    expected_owner,
    offered_by,
    pair_lab,
    run_probe,
    wait_for,
)

from tandem.lab.netns import Lab

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("lab_prerequisites"),
]

SPLIT = 128


@pytest.mark.parametrize(
    ("primary_kind", "secondary_kind"),
    [("tandem", "tandem"), ("tandem", "dhcpd"), ("dhcpd", "tandem")],
    ids=["tandem-pair", "tandem-primary+dhcpd-secondary", "dhcpd-primary+tandem-secondary"],
)
def test_split_128(lab: Lab, primary_kind: str, secondary_kind: str) -> None:
    h1, h2 = pair_lab(lab)
    primary = Node(primary_kind, h1, derive(SEED_PRIMARY, split=SPLIT))
    secondary = Node(secondary_kind, h2, SEED_SECONDARY)
    secondary.start()
    primary.start()
    primary.wait_state("normal", 60)
    secondary.wait_state("normal", 60)
    # Pool balancing has handed the secondary its share (BNDUPD BACKUP, written by it).
    wait_for(lambda: len(secondary.in_state("backup")) >= 40, 30, "BACKUP leases on srv2")

    probe = lab.add_host("probe", PROBE_ADDR)
    plain = run_probe(probe, count=50, base="02:30:00:00:00:00", secs=0, wait=4)
    owners = {mac: expected_owner(mac, SPLIT) for mac in plain}
    assert set(owners.values()) == {PRIMARY_IP, SECONDARY_IP}  # both sides own some of them
    wrong = {mac: (owners[mac], offered_by(e)) for mac, e in plain.items()}
    wrong = {mac: v for mac, v in wrong.items() if {v[0]} != v[1]}
    assert not wrong, f"answered by the wrong server(s) (mac: expected, got): {wrong}"

    # secs == max seconds is not "exceeds": still only the owner.
    edge = run_probe(probe, count=10, base="02:31:00:00:00:00", secs=3, wait=4)
    for mac, e in edge.items():
        assert offered_by(e) == {expected_owner(mac, SPLIT)}, (mac, e)

    # secs > max seconds: the other server answers too (a client its owner ignores).
    slow = run_probe(probe, count=10, base="02:32:00:00:00:00", secs=4, wait=4)
    for mac, e in slow.items():
        assert offered_by(e) == {PRIMARY_IP, SECONDARY_IP}, (mac, e)
