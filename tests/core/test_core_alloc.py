"""Allocation cost must not grow with the pool size (count steps, not time)."""

from __future__ import annotations

from ipaddress import IPv4Interface

from corekit import A, FakeClient, RxMeta, config, subnet

from tandem.core.lease import BindingState, Lease
from tandem.core.server import DhcpServer

T0 = 1_000_000
META = RxMeta("eth0", (IPv4Interface("198.18.0.1/16"),), A("0.0.0.0"), 68, unicast=False)
BIG = subnet("198.18.0.0/16", ranges=(("198.18.1.0", "198.18.235.95"),), block=())  # 60000
SMALL = subnet("198.18.0.0/16", ranges=(("198.18.1.0", "198.18.1.99"),), block=())  # 100


def _client(n: int) -> bytes:
    return bytes([0x02, 0, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF, 1])


def _steps_for_new_clients(srv: DhcpServer, count: int) -> int:
    before = srv.db.ops
    for n in range(count):
        c = FakeClient(srv, _client(n), meta=META)
        ack = c.dora(T0)
        assert ack.reply is not None and ack.reply.packet.options[53] == b"\x05"
    return srv.db.ops - before


def test_pool_size_does_not_change_allocation_steps() -> None:
    small = DhcpServer(config(SMALL))
    big = DhcpServer(config(BIG))
    assert big.stats()["pool.size"] == 60000 and small.stats()["pool.size"] == 100
    s = _steps_for_new_clients(small, 50)
    b = _steps_for_new_clients(big, 50)
    assert s == b == 50  # one cursor step per new client, whatever the pool size


def test_allocation_after_churn_stays_constant() -> None:
    srv = DhcpServer(config(BIG))
    clients = [FakeClient(srv, _client(n), meta=META) for n in range(200)]
    for c in clients:
        c.dora(T0)
    for c in clients[:100]:
        c.send(7, T0 + 1, ciaddr=str(c.address))
    before = srv.db.ops
    newcomer = FakeClient(srv, _client(99999), meta=META)
    newcomer.dora(T0 + 2)
    assert srv.db.ops - before <= 2
    assert newcomer.address is not None


def test_large_lease_file_loads_quickly_and_is_respected() -> None:
    leases = [
        Lease(
            A(int(A("198.18.1.0")) + i),
            BindingState.ACTIVE if i % 2 else BindingState.FREE,
            starts=T0,
            ends=T0 + 3600,
            hardware=(1, _client(i)),
        )
        for i in range(60000)
    ]
    srv = DhcpServer(config(BIG), leases=leases)
    # a returning client gets its own lease back
    c = FakeClient(srv, _client(7), meta=META)
    off = c.send(1, T0 + 5)
    assert off.reply is not None and off.reply.packet.yiaddr == A(int(A("198.18.1.0")) + 7)
    # a new client gets one of the free ones, never an active one
    n = FakeClient(srv, _client(70000), meta=META)
    off2 = n.send(1, T0 + 5)
    assert off2.reply is not None
    assert (int(off2.reply.packet.yiaddr) - int(A("198.18.1.0"))) % 2 == 0
