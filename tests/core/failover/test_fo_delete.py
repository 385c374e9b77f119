"""``DhcpServer.delete_lease`` (the API's lease4-del) in a failover pair: the change is the
core's, it is announced to the partner by BNDUPD, and the partner frees the address too."""

from __future__ import annotations

from fokit import T0, A, B, dora, fresh_pair, mac


def test_delete_on_the_primary_frees_the_lease_on_both_peers() -> None:
    p, s, pair = fresh_pair()
    pair.connect()
    now = T0 + 5
    pair.now = now
    _off, ack = dora(p, mac(1), now)
    assert ack is not None and ack.reply is not None
    addr = str(ack.reply.packet.yiaddr)
    pair.pump()
    lease_s = s.lease(addr)
    assert lease_s is not None and lease_s.binding_state is B.ACTIVE

    out = p.server.delete_lease(int(A(addr)), now + 1)
    assert out.drop is None
    assert [str(x.address) for x in out.writes] == [addr]
    assert out.log == [f"lease {addr} state changed from active to released"]
    p.commit_dhcp(out)
    assert int(A(addr)) in p.engine.leases.staged  # a BNDUPD waits for the commit barrier
    pair.pump()
    # The partner acked the RELEASED update; the primary then frees the address and tells it.
    pair.advance(1)
    lease_p = p.lease(addr)
    lease_s = s.lease(addr)
    assert lease_p is not None and lease_s is not None
    assert lease_p.binding_state in (B.FREE, B.BACKUP), lease_p
    assert lease_s.binding_state in (B.FREE, B.BACKUP), lease_s
    assert p.journal[int(A(addr))].binding_state is not B.ACTIVE


def test_delete_of_an_address_without_a_binding_changes_nothing() -> None:
    p, _s, pair = fresh_pair()
    pair.connect()
    out = p.server.delete_lease(int(A("192.0.2.150")), T0 + 1)
    assert out.drop == "no such lease" and not out.writes and not out.log
    assert not p.engine.leases.staged
