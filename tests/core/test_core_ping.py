"""ping-check in the core (tandem.core.ping): dhcpd 4.4.3's do_ping_check, lease_pinged and
lease_ping_timeout, driven by hand (``manual_pings``: nobody resolves the pings but the test)."""

from __future__ import annotations

from ipaddress import IPv4Interface
from pathlib import Path

from corekit import (
    AUTHORITATIVE,
    SEED_BLOCK,
    SERVER_IP,
    A,
    FakeClient,
    config,
    mac,
    subnet,
)

from tandem.config import parse_text
from tandem.config.model import Block, Host, Param, Pool, Range
from tandem.core.lease import BindingState
from tandem.core.ping import ping_configured
from tandem.core.server import DhcpServer, Outcome, RxMeta
from tandem.core.types import PingRequest

T0 = 1_000_000
ONE = (("192.0.2.150", "192.0.2.150"),)  # one address: no allocation order to depend on
TWO = (("192.0.2.150", "192.0.2.151"),)
OTHER_IP = IPv4Interface("198.51.100.1/24")


def server(
    *statements: Param, ranges: tuple[tuple[str, str], ...] = TWO, **kw: object
) -> DhcpServer:
    block: Block = (*AUTHORITATIVE, *statements)
    return DhcpServer(config(subnet(ranges=ranges), statements=block, **kw))  # type: ignore[arg-type]


def client(srv: DhcpServer, n: int, **kw: object) -> FakeClient:
    return FakeClient(srv, mac(n), manual_pings=True, **kw)  # type: ignore[arg-type]


def pinged(out: Outcome) -> str:
    """The address an outcome asks to ping (it must ask, and send nothing yet)."""
    assert out.ping is not None, out
    assert out.reply is None and out.writes == [], out
    return str(out.ping.address)


def offered(out: Outcome) -> str:
    assert out.ping is None and out.reply is not None, out
    assert out.reply.packet.options[53] == b"\x02"
    return str(out.reply.packet.yiaddr)


def test_discover_waits_for_the_ping_then_the_held_offer_leaves() -> None:
    srv = server()
    assert srv.ping_enabled  # dhcpd's default: on
    c = client(srv, 1)
    out = c.send(1, T0)
    addr = pinged(out)
    assert out.ping == PingRequest(A(addr), 1000)  # ping-timeout's default: one second
    assert out.log == ["DHCPDISCOVER from 52:54:00:00:00:01 via eth0"]
    assert "tx.DHCPOFFER" not in srv.counters
    # nobody answers: the OFFER prepared for the DISCOVER leaves, with dhcpd's line
    late = srv.ping_timed_out(A(addr), now=T0 + 1)
    assert offered(late) == addr and late.writes == []
    assert late.reply is not None and late.reply.packet.xid == c.xid
    assert late.log == [f"DHCPOFFER on {addr} to 52:54:00:00:00:01 via eth0"]
    assert srv.counters["tx.DHCPOFFER"] == 1
    ack = c.send(3, T0 + 1, requested=addr, server_id="192.0.2.1")
    assert ack.reply is not None and ack.reply.packet.options[53] == b"\x05"
    # a second report for the same ping (a late reply, a stray timer) changes nothing
    again = srv.ping_timed_out(A(addr), now=T0 + 2)
    assert again.reply is None and again.writes == [] and again.log == []
    stray = srv.ping_answered(A(addr), now=T0 + 2)
    assert stray.writes == [] and stray.drop == "ping: unexpected echo reply"
    assert srv.db.by_addr[int(A(addr))].binding_state is BindingState.ACTIVE


def test_retransmitted_discover_during_the_ping_is_ignored_others_are_served() -> None:
    srv = server()
    c = client(srv, 1)
    addr = pinged(c.send(1, T0))
    again = c.send(1, T0)  # the client retransmits while the ping waits
    assert again.ping is None and again.reply is None and again.log == []
    assert again.drop == "ping pending"
    # a REQUEST for that address meanwhile is ignored as well (dhcpd: the lease has a state)
    req = c.send(3, T0, requested=addr)
    assert req.reply is None and req.writes == [] and req.log == [] and req.drop == "ping pending"
    # another client is served meanwhile, with the other address, and pinged too
    other = pinged(client(srv, 2).send(1, T0))
    assert other != addr
    assert sorted(srv.ctx.pings.pending) == sorted(int(A(a)) for a in (addr, other))  # type: ignore[union-attr]
    # only one offer per ping leaves, each to its own client
    first = srv.ping_timed_out(A(addr), now=T0 + 1)
    second = srv.ping_timed_out(A(other), now=T0 + 1)
    assert first.reply is not None and first.reply.packet.chaddr[:6] == mac(1)
    assert second.reply is not None and second.reply.packet.chaddr[:6] == mac(2)


def test_answered_ping_abandons_the_address_and_the_client_gets_another() -> None:
    srv = server()
    c = client(srv, 1, client_id=b"\x01cid-1")
    addr = pinged(c.send(1, T0))
    out = srv.ping_answered(A(addr), now=T0 + 1)
    assert out.reply is None  # dhcpd: no answer to that DISCOVER
    assert out.log == [f"Abandoning IP address {addr}: pinged before offer"]
    (lease,) = out.writes
    assert str(lease.address) == addr
    assert lease.binding_state is BindingState.ABANDONED
    assert lease.hardware is None and lease.uid is None
    assert lease.ends == T0 + 1 + 86400  # abandon-lease-time's default
    assert int(A(addr)) not in srv.db.offers  # its hold is gone with it
    # the timer that fires afterwards finds nothing
    assert srv.ping_timed_out(A(addr), now=T0 + 1).reply is None
    # the client's next DISCOVER gets (a ping for) the other address, never the abandoned one
    nxt = pinged(c.send(1, T0 + 2))
    assert nxt != addr
    assert offered(srv.ping_timed_out(A(nxt), now=T0 + 3)) == nxt


def test_abandon_lease_time_is_the_global_one_for_pings_and_declines() -> None:
    srv = server(Param("abandon-lease-time", 600))
    c = client(srv, 1)
    addr = pinged(c.send(1, T0))
    (lease,) = srv.ping_answered(A(addr), now=T0).writes
    assert lease.ends == T0 + 600
    d = client(srv, 2)
    other = pinged(d.send(1, T0))
    assert offered(srv.ping_timed_out(A(other), now=T0)) == other
    d.send(3, T0, requested=other, server_id="192.0.2.1")
    declined = d.send(4, T0 + 5, requested=other)
    (lease,) = declined.writes
    assert lease.binding_state is BindingState.ABANDONED and lease.ends == T0 + 5 + 600
    assert f"Abandoning IP address {other}: declined." in declined.log
    # dhcpd reads abandon-lease-time in the global scope only
    sub_only = DhcpServer(
        config(subnet(ranges=TWO, block=(*SEED_BLOCK, Param("abandon-lease-time", 600))))
    )
    assert sub_only.ctx.abandon_lease_time == 86400


def test_abandoned_lease_is_reclaimed_last_and_always_pinged() -> None:
    srv = server(ranges=ONE)
    a = client(srv, 1)
    addr = pinged(a.send(1, T0))
    srv.ping_answered(A(addr), now=T0)
    # nothing free is left: the abandoned address is reclaimed for the next client, and
    # pinged again although it was offered moments ago (abandoned leases always are)
    b = client(srv, 2)
    assert pinged(b.send(1, T0 + 1)) == addr
    assert offered(srv.ping_timed_out(A(addr), now=T0 + 2)) == addr
    ack = b.send(3, T0 + 2, requested=addr, server_id="192.0.2.1")
    assert ack.reply is not None and ack.reply.packet.options[53] == b"\x05"
    assert f"Reclaiming abandoned lease {addr}." in ack.log
    assert srv.db.by_addr[int(A(addr))].binding_state is BindingState.ACTIVE


def test_answered_again_on_reclaim_abandons_again() -> None:
    srv = server(ranges=ONE)
    c = client(srv, 1)
    addr = pinged(c.send(1, T0))
    srv.ping_answered(A(addr), now=T0)
    assert pinged(c.send(1, T0 + 1)) == addr
    out = srv.ping_answered(A(addr), now=T0 + 2)
    assert out.log == [f"Abandoning IP address {addr}: pinged before offer"]
    (lease,) = out.writes
    assert lease.binding_state is BindingState.ABANDONED and lease.ends == T0 + 2 + 86400


def test_no_ping_when_ping_check_is_off_and_no_socket_is_needed() -> None:
    srv = server(Param("ping-check", False))
    assert not srv.ping_enabled and srv.ctx.pings is None
    out = client(srv, 1).send(1, T0)
    offered(out)
    assert out.log[-1].startswith("DHCPOFFER on ")


def test_ping_check_is_scoped_like_other_parameters() -> None:
    quiet = (*SEED_BLOCK, Param("ping-check", False))
    cfg = config(
        subnet(ranges=TWO, block=quiet),
        subnet("198.51.100.0/24", ranges=(("198.51.100.10", "198.51.100.11"),)),
    )
    srv = DhcpServer(cfg, interfaces={"eth0": (SERVER_IP,), "eth1": (OTHER_IP,)})
    assert srv.ping_enabled
    offered(client(srv, 1).send(1, T0))  # eth0's subnet turns it off
    meta = RxMeta("eth1", (OTHER_IP,), A("0.0.0.0"), 68, unicast=False)
    assert pinged(FakeClient(srv, mac(2), meta=meta, manual_pings=True).send(1, T0))
    # a pool may change the timeout; ping-timeout-ms overrides ping-timeout
    pool = Pool(
        (Range(A("192.0.2.150"), A("192.0.2.151")),),
        chain=((*SEED_BLOCK, Param("ping-timeout", 3)), (Param("ping-timeout-ms", 250),)),
    )
    srv = DhcpServer(config(subnet(pools=(pool,))))
    out = client(srv, 1).send(1, T0)
    assert out.ping is not None and out.ping.timeout_ms == 250
    srv = server(Param("ping-timeout", 3))
    out = client(srv, 1).send(1, T0)
    assert out.ping is not None and out.ping.timeout_ms == 3000


def test_ping_configured_off_only_when_nothing_can_turn_it_on() -> None:
    assert ping_configured(parse_text("subnet 10.0.0.0 netmask 255.0.0.0 { }\n"))
    off = "ping-check false;\nsubnet 10.0.0.0 netmask 255.0.0.0 { range 10.0.0.5 10.0.0.9; }\n"
    assert not ping_configured(parse_text(off))
    on_in_class = off + 'class "c" { match if option host-name = "x"; ping-check true; }\n'
    assert ping_configured(parse_text(on_in_class))
    on_in_if = off.replace("range", 'if option host-name = "x" { ping-check true; } range')
    assert ping_configured(parse_text(on_in_if))
    later_on = off + "ping-check true;\n"
    assert ping_configured(parse_text(later_on))


def test_no_ping_for_a_static_address_nor_for_bootp() -> None:
    host = Host("printer", hardware=(1, mac(7)), fixed_addresses=(A("192.0.2.10"),))
    srv = server(hosts=(host,))
    out = client(srv, 7).send(1, T0)
    assert offered(out) == "192.0.2.10"
    boot = DhcpServer(config(subnet(ranges=(("192.0.2.30", "192.0.2.31"),), dynamic_bootp=True)))
    reply = client(boot, 8).send(None, T0)  # type: ignore[arg-type]
    assert reply.ping is None and reply.reply is not None and reply.writes


def test_no_ping_for_the_clients_active_lease() -> None:
    srv = server()
    c = client(srv, 1)
    addr = pinged(c.send(1, T0))
    srv.ping_timed_out(A(addr), now=T0 + 1)
    c.send(3, T0 + 1, requested=addr, server_id="192.0.2.1")
    # a bound client that DISCOVERs again is offered its own lease at once
    assert offered(c.send(1, T0 + 500)) == addr


def test_ping_cltt_secs_same_client_soon_after_its_last_transaction() -> None:
    srv = server()
    c = client(srv, 1)
    addr = pinged(c.send(1, T0))
    # the OFFER left but the client missed it: its DISCOVER 2 s later is answered at once
    srv.ping_timed_out(A(addr), now=T0 + 1)
    assert offered(c.send(1, T0 + 3)) == addr
    c.send(3, T0 + 3, requested=addr, server_id="192.0.2.1")
    c.send(7, T0 + 10, ciaddr=addr)  # released
    # back within ping-cltt-secs (60) of the last transaction: no ping
    assert offered(c.send(1, T0 + 40)) == addr
    # a minute after it: pinged again
    srv2 = server()
    c2 = client(srv2, 1)
    addr2 = pinged(c2.send(1, T0))
    srv2.ping_timed_out(A(addr2), now=T0)
    c2.send(3, T0, requested=addr2, server_id="192.0.2.1")
    c2.send(7, T0 + 5, ciaddr=addr2)
    assert pinged(c2.send(1, T0 + 61)) == addr2
    # ping-cltt-secs is configurable
    srv3 = server(Param("ping-cltt-secs", 5))
    c3 = client(srv3, 1)
    addr3 = pinged(c3.send(1, T0))
    srv3.ping_timed_out(A(addr3), now=T0)
    assert pinged(c3.send(1, T0 + 6)) == addr3


def test_another_clients_old_lease_is_pinged() -> None:
    srv = server(Param("default-lease-time", 600), Param("max-lease-time", 600), ranges=ONE)
    a = client(srv, 1)
    addr = pinged(a.send(1, T0))
    srv.ping_timed_out(A(addr), now=T0)
    a.send(3, T0, requested=addr, server_id="192.0.2.1")
    srv.tick(T0 + 601)  # expired: free again, last held by client 1
    assert srv.db.by_addr[int(A(addr))].binding_state is BindingState.FREE
    assert pinged(client(srv, 2).send(1, T0 + 602)) == addr


def test_held_offer_lapses_when_the_ping_outlives_the_hold() -> None:
    srv = server(Param("ping-timeout", 200))
    c = client(srv, 1)
    addr = pinged(c.send(1, T0))
    late = srv.ping_timed_out(A(addr), now=T0 + 200)  # the two-minute hold is gone
    assert late.reply is None and late.log == []


def test_corpus_config_scopes() -> None:
    """tests/configs/ping-check.conf (which dhcpd -t accepts too): each scope's setting wins."""
    path = Path(__file__).resolve().parents[1] / "configs" / "ping-check.conf"
    srv = DhcpServer(parse_text(path.read_text(), str(path)))
    assert srv.ctx.abandon_lease_time == 3600

    def discover(n: int, want: str, **kw: object) -> Outcome:
        return client(srv, n).send(1, T0, requested=want, **kw)

    # the range in the subnet: ping-timeout-ms (global) beats the shared network's ping-timeout
    out = discover(1, "192.0.2.210")
    assert out.ping == PingRequest(A("192.0.2.210"), 300)
    # the pool turns it off; so does the class, wherever its member asks
    assert offered(discover(2, "192.0.2.120")) == "192.0.2.120"
    printer = {60: b"printer-x"}
    assert offered(discover(3, "192.0.2.211", extra=printer)) == "192.0.2.211"
    # the host's own ping-timeout-ms
    out = FakeClient(srv, bytes.fromhex("525400000099"), manual_pings=True).send(
        1, T0, requested="192.0.2.212"
    )
    assert out.ping == PingRequest(A("192.0.2.212"), 100)
