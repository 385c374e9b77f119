"""Dynamic reservations (core.reservations) and their replication (core.hostsync)."""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address

import pytest
from tests.core.corekit import FakeClient, config, mac

from tandem.config.model import Host, Location
from tandem.core.hostsync import HostSync
from tandem.core.lease import BindingState
from tandem.core.reservations import (
    Reservation,
    ReservationError,
    Reservations,
    option_from_kea,
    option_to_kea,
)
from tandem.core.server import DhcpServer

A = IPv4Address
T0 = 1_700_000_000
HW = (1, mac(1))


def server(hosts: tuple[Host, ...] = ()) -> DhcpServer:
    return DhcpServer(config(hosts=hosts))


def bound(srv: DhcpServer, origin: str = "192.0.2.1") -> Reservations:
    table = Reservations(origin)
    table.bind(srv.ctx.hosts, srv.db, srv.topo, srv.config.hosts)
    return table


def rec(name: str = "printer", hw: bytes = mac(1), ip: str = "192.0.2.150") -> Reservation:
    return Reservation(name, hardware=(1, hw), address=A(ip))


def test_reserved_address_in_the_pool_goes_to_its_client_only() -> None:
    srv = server()
    table = bound(srv)
    stamped, prev = table.add(rec(ip="192.0.2.100"), T0)  # the pool's first address
    assert prev is None and stamped.stamp == (T0, 1, "192.0.2.1")
    other = FakeClient(srv, mac(2)).dora(T0)
    assert other.reply is not None and other.reply.packet.yiaddr == A("192.0.2.101")
    mine = FakeClient(srv, mac(1)).dora(T0)
    assert mine.reply is not None and mine.reply.packet.yiaddr == A("192.0.2.100")
    assert mine.writes == []  # a fixed address, as dhcpd: not stored
    # Another client asking for it by name is refused it.
    nak = FakeClient(srv, mac(3)).send(3, T0, requested="192.0.2.100")
    assert nak.reply is not None and nak.reply.packet.options[53] == b"\x06"


def test_deleted_reservation_returns_the_address_to_the_pool() -> None:
    srv = server()
    table = bound(srv)
    table.add(rec(ip="192.0.2.100"), T0)
    FakeClient(srv, mac(2)).dora(T0)  # takes .101; .100 was skipped as reserved
    tomb, prev = table.delete("printer", T0 + 1)
    assert tomb.deleted and prev is not None and prev.address == A("192.0.2.100")
    assert 0xC0000264 not in srv.db.excluded
    pool = srv.topo.shares[0].pools[0]
    assert int(A("192.0.2.100")) in srv.db.queued(pool.dhcp, BindingState.FREE)
    again = FakeClient(srv, mac(1)).send(1, T0 + 2, requested="192.0.2.100")
    assert again.reply is not None and again.reply.packet.yiaddr == A("192.0.2.100")


def test_an_old_holder_does_not_get_a_reserved_address_back() -> None:
    srv = server()
    old = FakeClient(srv, mac(9))
    old.dora(T0)
    assert old.address == A("192.0.2.100")
    srv.delete_lease(int(A("192.0.2.100")), T0 + 1)  # FREE again, still "its" lease
    table = bound(srv)
    table.add(rec(ip="192.0.2.100"), T0 + 2)
    off = old.send(1, T0 + 3)
    assert off.reply is not None and off.reply.packet.yiaddr != A("192.0.2.100")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"address": A("10.0.0.5")}, "outside every subnet"),
        ({"address": A("192.0.2.255")}, "network or broadcast"),
        ({"address": A("192.0.2.9")}, "already reserved for host cfg in f.conf:3"),
        (
            {"hardware": (1, mac(7))},
            "hw-address 52:54:00:00:00:07 is already reserved for host cfg",
        ),
        ({"name": "cfg"}, "the name cfg is used by host cfg"),
    ],
)
def test_conflicts_with_the_configuration_are_refused(
    change: dict[str, object], reason: str
) -> None:
    cfg = Host(
        "cfg", hardware=(1, mac(7)), fixed_addresses=(A("192.0.2.9"),), loc=Location("f.conf", 3, 1)
    )
    srv = server((cfg,))
    table = bound(srv)
    base = rec()
    candidate = Reservation(
        str(change.get("name", base.name)),
        hardware=change.get("hardware", base.hardware),  # type: ignore[arg-type]
        address=change.get("address", base.address),  # type: ignore[arg-type]
    )
    with pytest.raises(ReservationError, match=reason):
        table.add(candidate, T0)
    assert table.live() == []


def test_conflicts_with_dynamic_hosts_and_leases_are_refused() -> None:
    srv = server()
    table = bound(srv)
    table.add(rec(), T0)
    with pytest.raises(
        ReservationError, match=r"address 192\.0\.2\.150 is already reserved for host printer"
    ):
        table.add(rec("other", mac(2)), T0)
    with pytest.raises(ReservationError, match="hw-address 52:54:00:00:00:01 is already reserved"):
        table.add(rec("other", mac(1), "192.0.2.151"), T0)
    FakeClient(srv, mac(5)).dora(T0)  # 192.0.2.100, ACTIVE
    with pytest.raises(
        ReservationError, match=r"address 192\.0\.2\.100 is leased to 52:54:00:00:00:05"
    ):
        table.add(rec("third", mac(3), "192.0.2.100"), T0)
    # The holder itself may reserve its own leased address.
    stamped, _ = table.add(rec("holder", mac(5), "192.0.2.100"), T0)
    assert stamped.address == A("192.0.2.100")


def test_options_and_hostname_are_served() -> None:
    srv = server()
    table = bound(srv)
    code, data = option_from_kea("domain-name-servers", None, "10.1.1.202, 10.1.1.203", True)
    assert (code, data) == (6, A("10.1.1.202").packed + A("10.1.1.203").packed)
    assert option_to_kea(code, data)["data"] == "10.1.1.202,10.1.1.203"
    table.add(
        Reservation("snowflake", (1, mac(1)), None, A("192.0.2.150"), "snowflake", ((code, data),)),
        T0,
    )
    off = FakeClient(srv, mac(1)).send(1, T0, prl=bytes([6, 12]))
    assert off.reply is not None
    assert off.reply.packet.options[6] == data
    assert off.reply.packet.options[12] == b"snowflake"
    with pytest.raises(ReservationError, match="unknown option name"):
        option_from_kea("no-such-option", None, "1", True)


def test_merge_last_writer_wins_and_tombstones_order_deletions() -> None:
    srv = server()
    table = bound(srv, "a")
    newer = Reservation("p", (1, mac(1)), None, A("192.0.2.150"), stamp=(T0 + 5, 1, "b"))
    assert table.merge(newer) is None
    older = Reservation("p", (1, mac(1)), None, A("192.0.2.151"), stamp=(T0, 9, "b"))
    assert table.merge(older) is not None and table.entries["p"].address == A("192.0.2.150")
    assert table.merge(Reservation("p", deleted=True, stamp=(T0 + 6, 1, "b"))) is None
    assert table.live() == [] and table.find(address=A("192.0.2.150")) is None
    assert 0xC0000296 not in srv.db.excluded


def test_json_round_trip() -> None:
    r = Reservation(
        "p",
        (1, mac(1)),
        b"\x01ab",
        A("192.0.2.150"),
        "p",
        ((6, b"\x0a\x00\x00\x01"),),
        False,
        (T0, 2, "x"),
    )
    assert Reservation.from_json(r.to_json()) == r
    with pytest.raises(ReservationError):
        Reservation.from_json({"name": "bad name!", "stamp": [1, 1, "x"]})


# --- replication over a fake channel --------------------------------------------------------


class Pair:
    """Two servers' HostSync features joined by a fake ``send`` (delivered on ``pump``)."""

    def __init__(self) -> None:
        self.srv = [server(), server()]
        self.tables = [bound(self.srv[0], "p"), bound(self.srv[1], "s")]
        self.sync = [HostSync(self.tables[0]), HostSync(self.tables[1])]
        self.queue: list[tuple[int, str, dict[str, object]]] = []

    def sender(self, to: int):  # type: ignore[no-untyped-def]
        def send(kind: str, body: Mapping[str, object]) -> None:
            self.queue.append((to, kind, dict(body)))

        return send

    def up(self) -> None:
        self.sync[0].ext_up("fo", self.sender(1), T0)
        self.sync[1].ext_up("fo", self.sender(0), T0)
        self.pump()

    def pump(self) -> None:
        while self.queue:
            to, kind, body = self.queue.pop(0)
            self.sync[to].ext_message("fo", kind, body, T0)
            for s in self.sync:
                s.take_writes()
                s.durable()


def test_an_op_is_applied_and_acked_by_the_peer() -> None:
    pair = Pair()
    pair.up()
    stamped, _ = pair.tables[0].add(rec(), T0)
    p = pair.sync[0].publish(stamped)
    assert p.waiting == {"fo"}
    answered: list[object] = []
    pair.sync[0].on_answer = answered.append
    pair.pump()
    assert p.answers == {"fo": (True, "")} and answered == [p]
    served = FakeClient(pair.srv[1], mac(1)).dora(T0)
    assert served.reply is not None and served.reply.packet.yiaddr == A("192.0.2.150")


def test_a_conflicting_op_is_refused_with_the_peers_reason() -> None:
    pair = Pair()
    pair.up()
    FakeClient(pair.srv[1], mac(5)).dora(T0)  # the secondary leased 192.0.2.100
    stamped, prev = pair.tables[0].add(rec(ip="192.0.2.100"), T0)
    p = pair.sync[0].publish(stamped)
    pair.pump()
    ok, reason = p.answers["fo"]
    assert not ok and "leased to 52:54:00:00:00:05" in reason
    assert pair.sync[1].refused == 1
    assert any(loud and "refused host printer" in text for loud, text in pair.sync[1].take_log())
    back = pair.tables[0].restore("printer", prev)
    assert back.deleted and back.stamp == (0, 0, "") and pair.tables[0].live() == []


def test_reconnect_exchanges_both_tables_with_tombstones() -> None:
    pair = Pair()
    pair.tables[0].add(rec("a", mac(1), "192.0.2.150"), T0)  # made while the link was down
    pair.tables[1].add(rec("b", mac(2), "192.0.2.151"), T0)
    pair.tables[1].add(rec("c", mac(3), "192.0.2.152"), T0)
    pair.up()
    assert [r.name for r in pair.tables[0].live()] == ["a", "b", "c"]
    assert [r.name for r in pair.tables[1].live()] == ["a", "b", "c"]
    for s in pair.sync:
        s.ext_down("fo", T0)
    pair.tables[1].delete("a", T0 + 10)
    pair.up()
    assert [r.name for r in pair.tables[0].live()] == ["b", "c"]


def test_a_conflicting_sync_record_is_refused_loud_on_the_receiver() -> None:
    pair = Pair()
    pair.tables[0].add(rec("a", mac(1), "192.0.2.150"), T0)
    pair.tables[1].add(rec("b", mac(2), "192.0.2.150"), T0 + 1)  # same address, other host
    pair.up()
    assert [r.name for r in pair.tables[0].live()] == ["a"]
    assert [r.name for r in pair.tables[1].live()] == ["b"]
    assert pair.sync[0].refused == 1 and pair.sync[1].refused == 1
    logs = pair.sync[0].take_log()
    assert any(
        loud and "refused host b: address 192.0.2.150 is already reserved" in t for loud, t in logs
    )


def test_link_down_answers_a_pending_op() -> None:
    pair = Pair()
    pair.up()
    stamped, _ = pair.tables[0].add(rec(), T0)
    p = pair.sync[0].publish(stamped)
    pair.queue.clear()  # lost with the link
    pair.sync[0].ext_down("fo", T0)
    assert p.answers["fo"][0] and "reconnect" in p.answers["fo"][1]


def test_a_change_is_stamped_after_the_entry_it_replaces() -> None:
    """The peer's add came from a clock ahead of ours, or in the same second from a
    'larger' origin: our delete must still win."""
    srv = server()
    table = bound(srv, "a")
    theirs = Reservation("p", (1, mac(1)), None, A("192.0.2.150"), stamp=(T0 + 30, 7, "z"))
    assert table.merge(theirs) is None
    tomb, _ = table.delete("p", T0)
    assert tomb.stamp > theirs.stamp and tomb.stamp == (T0 + 30, 8, "a")
