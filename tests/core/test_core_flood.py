"""A flood of new MACs cannot take a pool's last addresses faster than the reserve allows."""

from __future__ import annotations

from corekit import FakeClient, config, mac

from tandem.core.flood import NewLeaseGate, NewLeaseLimit
from tandem.core.server import DhcpServer

T0 = 1_000_000
# The seed's pool: 192.0.2.100-200, 101 addresses. A 10 % reserve is its last 10 addresses.
LIMIT = NewLeaseLimit(reserve_percent=10, rate=2, burst=3)


def _flood(srv: DhcpServer, first: int, count: int, now: int) -> tuple[int, int]:
    """``count`` new clients DISCOVER+REQUEST at ``now``: (bound, refused by the gate)."""
    bound = refused = 0
    for n in range(first, first + count):
        offer = FakeClient(srv, mac(n)).send(1, now)
        if offer.reply is None:
            refused += offer.drop == "new-lease limit"
            continue
        ack = FakeClient(srv, mac(n)).send(
            3, now, requested=str(offer.reply.packet.yiaddr), server_id="192.0.2.1"
        )
        assert ack.reply is not None and ack.reply.packet.options[53] == b"\x05"
        bound += 1
    return bound, refused


def test_outside_the_reserve_new_clients_are_not_slowed() -> None:
    srv = DhcpServer(config(), new_lease_limit=LIMIT)
    assert _flood(srv, 1, 91, T0) == (91, 0)  # down to exactly 10 free: the reserve starts


def test_in_the_reserve_a_flood_gets_burst_then_rate() -> None:
    srv = DhcpServer(config(), new_lease_limit=LIMIT)
    _flood(srv, 1, 91, T0)
    bound, refused = _flood(srv, 1000, 50, T0)  # same second: only the burst
    assert (bound, refused) == (3, 47)
    out = FakeClient(srv, mac(2000)).send(1, T0)
    assert out.log[-1].endswith("new-lease limit reached on network 192.0.2.0 (reserve)")
    assert _flood(srv, 3000, 50, T0 + 1)[0] == 2  # a second later: rate 2/s
    # Clients that already hold a lease are never gated: they renew as usual.
    renew = FakeClient(srv, mac(1)).send(1, T0 + 1)
    assert renew.reply is not None


def test_without_a_limit_the_flood_empties_the_pool() -> None:
    srv = DhcpServer(config())
    assert _flood(srv, 1, 150, T0) == (101, 0)


def test_gate_arithmetic() -> None:
    gate = NewLeaseGate(NewLeaseLimit(reserve_percent=5, rate=0.5, burst=1))
    assert gate.allow(1, 100, 6, 0)  # 6 % free: not in the reserve
    assert gate.allow(1, 100, 5, 0) and not gate.allow(1, 100, 5, 0)  # burst 1
    assert not gate.allow(1, 100, 5, 1) and gate.allow(1, 100, 5, 2)  # one per 2 s
    assert NewLeaseGate(NewLeaseLimit(reserve_percent=0)).allow(1, 100, 0, 0)  # 0 = off
