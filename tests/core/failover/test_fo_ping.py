"""ping-check in a failover pool: an address that answers is abandoned through the change path a
DECLINE takes, so the peer gets a BNDUPD with ABANDONED (dhcpd's abandon_lease supersedes and
propagates the lease the same way)."""

from __future__ import annotations

from fokit import T0, A, B, fresh_pair, mac, packet


def test_answered_ping_is_replicated_as_abandoned() -> None:
    p, s, pair = fresh_pair()
    pair.connect()
    assert (p.state(), s.state()) == ("normal", "normal")
    # The seed configs leave ping-check on: the primary's OFFER waits for a ping.
    out = p.server.handle(packet(1, mac(1)), p.meta, T0)
    assert out.ping is not None and out.reply is None
    addr = out.ping.address
    answered = p.server.ping_answered(addr, now=T0 + 1)
    assert answered.log == [f"Abandoning IP address {addr}: pinged before offer"]
    p.commit_dhcp(answered)
    pair.pump()
    mine = p.lease(str(addr))
    theirs = s.lease(str(addr))
    assert mine is not None and mine.binding_state is B.ABANDONED
    assert theirs is not None and theirs.binding_state is B.ABANDONED, theirs
    assert theirs.hardware is None
    assert s.journal[int(addr)].binding_state is B.ABANDONED  # the peer wrote it too
    # the client's next DISCOVER is pinged for another address, which it then gets
    again = p.server.handle(packet(1, mac(1), xid=2), p.meta, T0 + 2)
    assert again.ping is not None and again.ping.address != addr
    late = p.server.ping_timed_out(again.ping.address, now=T0 + 3)
    assert late.reply is not None and late.reply.packet.yiaddr == again.ping.address
    assert A(str(addr)) != late.reply.packet.yiaddr
