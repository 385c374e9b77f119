"""A failover pair's allocation order after pool balancing, against the vectors' dhcpd pair."""

from __future__ import annotations

from fokit import A, B, dora, fresh_pair, mac, msg_type


def test_a_failover_pair_hands_out_as_the_vectors_dhcpd_pair_did() -> None:
    """vectors/isc-dhcpd-pair (dhcp-udp-summary.txt, failover-tcp-fields.txt): the primary gives
    192.0.2.100-149 to BACKUP and offers 192.0.2.150 first, as here. dhcpd's secondary, alone,
    offered 192.0.2.149 first (its BACKUP leases all end at 0, the last queued first); Tandem's
    offers the first it received, 192.0.2.100, on purpose (core.pools.LeaseDB.requeue_moved:
    the newest is the one most likely still unacknowledged by a primary that may die)."""
    p, s, pair = fresh_pair()
    pair.connect()
    backup = sorted(
        a for a, lease in s.server.db.by_addr.items() if lease.binding_state is B.BACKUP
    )
    assert (str(A(backup[0])), str(A(backup[-1])), len(backup)) == (
        "192.0.2.100",
        "192.0.2.149",
        50,
    )
    _, ack = dora(p, mac(1), pair.now)
    assert ack is not None and msg_type(ack) == 5
    assert str(ack.reply.packet.yiaddr) == "192.0.2.150"  # type: ignore[union-attr]
    pair.pump()
    pair.disconnect()  # the secondary serves alone (communications-interrupted)
    pair.advance(10)
    _, ack2 = dora(s, mac(2), pair.now)
    assert ack2 is not None and msg_type(ack2) == 5
    assert str(ack2.reply.packet.yiaddr) == "192.0.2.100"  # type: ignore[union-attr]
