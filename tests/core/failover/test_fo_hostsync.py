"""Replicated reservations over the real extension channel: two engines back to back, each
with a HostSync feature (tandem.core.hostsync over tandem.core.failover.ext)."""

from __future__ import annotations

from ipaddress import IPv4Address

from fokit import T0, Node
from test_fo_ext import node, nonces
from tests.core.corekit import FakeClient, mac

from tandem.core.failover.ext import ExtSetup
from tandem.core.hostsync import HostSync
from tandem.core.lease import BindingState, Lease
from tandem.core.reservations import Reservation, Reservations
from tandem.lab.failover_pair import Pair

A = IPv4Address


def member(role: str) -> tuple[Node, HostSync]:
    sync = HostSync(Reservations("192.0.2.1" if role == "primary" else "192.0.2.2"))
    n = node(role, ExtSetup((sync,), None, nonces(1 if role == "primary" else 2)))
    srv = n.server
    sync.table.bind(srv.ctx.hosts, srv.db, srv.topo, srv.config.hosts)
    return n, sync


def settle(pair: Pair, *syncs: HostSync) -> None:
    """What io does: persist each side's writes, then release its acks; pump the link."""
    for _ in range(4):
        for s in syncs:
            s.take_writes()
            s.durable()
        pair.pump()


def served(n: Node, hw: bytes) -> IPv4Address | None:
    off = FakeClient(n.server, hw).send(1, T0)
    return None if off.reply is None else off.reply.packet.yiaddr


def test_add_on_one_peer_served_by_both_delete_while_down_meets_on_reconnect() -> None:
    (p, ps), (s, ss) = member("primary"), member("secondary")
    pair = Pair(p.engine, s.engine, T0)
    pair.connect()
    pair.advance(2)
    assert set(ps.peers) == set(ss.peers) == {"failover-example"}
    addr = p.server.topo.shares[0].pools[0].model.ranges[0].high
    stamped, _ = ps.table.add(Reservation("printer", (1, mac(1)), None, addr), T0)
    op = ps.publish(stamped)
    settle(pair, ps, ss)
    assert op.answers == {"failover-example": (True, "")}
    assert served(p, mac(1)) == served(s, mac(1)) == addr
    pair.disconnect()
    ss.table.delete("printer", T0 + 5)
    assert served(s, mac(1)) != addr and served(p, mac(1)) == addr
    pair.connect()
    pair.advance(2)
    settle(pair, ps, ss)
    assert ps.table.live() == [] and served(p, mac(1)) != addr


def test_a_conflict_is_refused_by_the_peer_over_the_channel() -> None:
    (p, ps), (s, ss) = member("primary"), member("secondary")
    pair = Pair(p.engine, s.engine, T0)
    pair.connect()
    pair.advance(2)
    held = p.server.topo.shares[0].pools[0].model.ranges[0].high
    n = 5  # the secondary's client holds it (its BNDUPD still on the way)
    s.server.db.load(Lease(held, BindingState.ACTIVE, ends=T0 + 600, hardware=(1, mac(n))))
    stamped, _ = ps.table.add(Reservation("printer", (1, mac(1)), None, held), T0)
    op = ps.publish(stamped)
    settle(pair, ps, ss)
    ok, why = op.answers["failover-example"]
    assert not ok and f"address {held} is leased to {mac(n).hex(':')}" in why
