"""An abandoned lease goes to a new client only once the peer has acked it abandoned.

Simulator seed 612 (tests/sim/test_sim.py) found the hazard: during a partition the primary
abandoned an address its last client DECLINEd and reclaimed it for another client, while the
secondary, which still knew it ACTIVE for the first client, re-activated it there. ISC 4.4 lets
a primary reclaim abandoned leases at any time; Tandem waits for the peer's BNDACK.
"""

from __future__ import annotations

from fokit import T0, B, dora, fresh_pair, mac, packet, seed_conf


def test_abandoned_lease_waits_for_the_peers_ack_before_reclaim() -> None:
    pool = ("192.0.2.100", "192.0.2.101")  # two addresses: the primary keeps one FREE
    p, s, pair = fresh_pair(
        primary=seed_conf("primary", pool=pool), secondary=seed_conf("secondary", pool=pool)
    )
    pair.connect()
    assert (p.state(), s.state()) == ("normal", "normal")
    _, ack = dora(p, mac(1), T0)
    assert ack is not None and ack.reply is not None
    addr = str(ack.reply.packet.yiaddr)
    p.commit_dhcp(ack)
    pair.pump()
    theirs = s.lease(addr)
    assert theirs is not None and theirs.binding_state is B.ACTIVE

    pair.disconnect()  # the partition: the DECLINE's BNDUPD cannot reach the secondary
    now = T0 + 10
    decline = p.handle(packet(4, mac(1), xid=3, requested=addr, server_id="192.0.2.1"), now)
    p.commit_dhcp(decline)
    mine = p.lease(addr)
    assert mine is not None and mine.binding_state is B.ABANDONED
    # Nothing FREE is left on the primary: the abandoned address is the only candidate, and
    # the secondary may still hand it to client 1. No offer until the peer has acked.
    for n in range(2, 5):
        off = p.handle(packet(1, mac(n), xid=10 + n), now + n)
        assert off.reply is None or str(off.reply.packet.yiaddr) != addr, off.log

    pair.now = now + 20
    pair.connect()  # the ABANDONED update goes out and is acked
    theirs = s.lease(addr)
    assert theirs is not None and theirs.binding_state is B.ABANDONED
    later = p.handle(packet(1, mac(9), xid=99), now + 30)
    assert later.reply is not None and str(later.reply.packet.yiaddr) == addr, later.log
