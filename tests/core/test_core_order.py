"""Which free address comes next: dhcpd 4.4.3's free-queue order (core.pools).

dhcpd hands out the head of a pool's free queue (server/dhcp.c allocate_lease), which it keeps
sorted by end time (server/mdb.c lease_enqueue / lease_insert): never-used addresses (ending at
0) first, lowest first on a fresh server; then used leases, the one that ended the longest ago
first, and among equal end times the one queued last. After a restart, the start-up walk of
its lease hash (expire_all_pools) puts a run of never-used addresses that a leased address
interrupts before the earlier runs. tests/lab/test_departures.py holds the same orders to a
real dhcpd; tests/core/failover/test_fo_order.py a failover pair's to the vectors' dhcpd pair.
"""

from __future__ import annotations

from corekit import A, FakeClient, config, mac, subnet

from tandem.core.lease import BindingState, Lease
from tandem.core.server import DhcpServer

T0 = 1_000_000


def _offers(srv: DhcpServer, first: int, count: int, now: int = T0) -> list[str]:
    """DISCOVERs from ``count`` new clients: the offered addresses, in order."""
    out = []
    for n in range(first, first + count):
        off = FakeClient(srv, mac(n)).send(1, now)
        assert off.reply is not None, off.log
        out.append(str(off.reply.packet.yiaddr))
    return out


def test_a_fresh_server_hands_out_lowest_first() -> None:
    srv = DhcpServer(config())
    assert _offers(srv, 1, 3) == ["192.0.2.100", "192.0.2.101", "192.0.2.102"]


def test_a_pools_ranges_in_address_order_whatever_their_order_in_the_config() -> None:
    sub = subnet(ranges=(("192.0.2.150", "192.0.2.151"), ("192.0.2.100", "192.0.2.101")))
    srv = DhcpServer(config(sub))
    assert _offers(srv, 1, 4) == ["192.0.2.100", "192.0.2.101", "192.0.2.150", "192.0.2.151"]


def _active(addr: str, n: int) -> Lease:
    return Lease(A(addr), BindingState.ACTIVE, starts=T0 - 10, ends=T0 + 3600, hardware=(1, mac(n)))


def test_after_a_restart_a_run_cut_by_a_lease_comes_before_the_earlier_runs() -> None:
    """Leases on .100 and .102 cut the range into runs [.101] and [.103-.200]: dhcpd's walk
    queues .101, then puts .103 at the head (it does not follow a never-used address), so
    .103-.200 come first and .101 last."""
    leases = [_active("192.0.2.100", 900), _active("192.0.2.102", 902)]
    srv = DhcpServer(config(), leases=leases)
    got = _offers(srv, 1, 99)
    assert got[:2] == ["192.0.2.103", "192.0.2.104"]
    assert got[-2:] == ["192.0.2.200", "192.0.2.101"]


def test_a_lease_file_with_only_the_first_addresses_keeps_lowest_first() -> None:
    leases = [_active("192.0.2.100", 900), _active("192.0.2.101", 901)]
    srv = DhcpServer(config(), leases=leases)
    assert _offers(srv, 1, 2) == ["192.0.2.102", "192.0.2.103"]


def _tiny(
    srv_ranges: tuple[tuple[str, str], ...] = (("192.0.2.100", "192.0.2.102"),),
) -> DhcpServer:
    return DhcpServer(config(subnet(ranges=srv_ranges)))


def test_released_leases_come_back_oldest_end_first_and_equal_ends_last_released_first() -> None:
    srv = _tiny()
    clients = [FakeClient(srv, mac(n)) for n in range(3)]
    for c in clients:
        c.dora(T0)
    a0, a1, a2 = (str(c.address) for c in clients)
    assert (a0, a1, a2) == ("192.0.2.100", "192.0.2.101", "192.0.2.102")
    clients[2].send(7, T0 + 5, ciaddr=a2)  # ends T0 + 5
    clients[0].send(7, T0 + 9, ciaddr=a0)  # ends T0 + 9
    clients[1].send(7, T0 + 9, ciaddr=a1)  # ends T0 + 9, released after .100
    assert _offers(srv, 10, 3, T0 + 20) == [a2, a1, a0]


def test_leases_expiring_together_come_back_in_the_order_they_were_acked() -> None:
    """dhcpd's active queue puts the newest of equal end times first; pool_timer expires from
    its head into the free queue, each before its equals: so the first ACKed comes first."""
    srv = _tiny()
    clients = [FakeClient(srv, mac(n)) for n in range(3)]
    for c in clients:
        c.dora(T0)  # same second, same lease time: equal ends
    srv.tick(T0 + 43200 + 1)
    assert _offers(srv, 10, 3, T0 + 43200 + 2) == ["192.0.2.100", "192.0.2.101", "192.0.2.102"]


def test_an_offer_not_taken_comes_back_at_the_end_of_its_hold() -> None:
    """dhcpdiscover moves an offered lease's ends two minutes ahead: once the hold lapses the
    address is behind the never-used ones and behind leases that ended earlier."""
    srv = _tiny((("192.0.2.100", "192.0.2.103"),))
    lone = FakeClient(srv, mac(1))
    assert str(lone.send(1, T0).reply.packet.yiaddr) == "192.0.2.100"  # type: ignore[union-attr]
    other = FakeClient(srv, mac(2))
    other.dora(T0 + 1)
    assert str(other.address) == "192.0.2.101"
    other.send(7, T0 + 2, ciaddr=str(other.address))  # ends T0 + 2, before the hold's end
    srv.tick(T0 + 200)  # the hold (until T0 + 120) lapsed
    got = _offers(srv, 10, 4, T0 + 200)
    assert got == ["192.0.2.102", "192.0.2.103", "192.0.2.101", "192.0.2.100"]
