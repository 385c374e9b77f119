"""Message flows of the DHCP core, built from config model objects."""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv4Network

from corekit import (
    AUTHORITATIVE,
    META,
    SEED_BLOCK,
    SERVER_IP,
    A,
    FakeClient,
    config,
    mac,
    opt,
    packet,
    subnet,
)

from tandem.config.model import Host, Param, Pool, Range, Subnet
from tandem.core.lease import BindingState, Lease
from tandem.core.server import DhcpServer, RxMeta

T0 = 1_000_000


def server(**kw: object) -> DhcpServer:
    return DhcpServer(config(**kw))  # type: ignore[arg-type]


def test_dora_offer_then_ack_writes_lease_and_logs_like_dhcpd() -> None:
    srv = server()
    c = FakeClient(srv, mac(1))
    off = c.send(1, T0)
    assert off.reply is not None and off.writes == []  # offers are not committed (dhcpd)
    assert off.log == [
        "DHCPDISCOVER from 52:54:00:00:00:01 via eth0",
        "DHCPOFFER on 192.0.2.100 to 52:54:00:00:00:01 via eth0",
    ]
    p = off.reply.packet
    assert p.op == 2 and p.yiaddr == A("192.0.2.100") and p.xid == c.xid
    assert p.options[53] == b"\x02" and p.options[54] == SERVER_IP.ip.packed
    # not broadcast, not relayed: unicast to yiaddr without ARP
    assert (off.reply.dest_ip, off.reply.dest_port) == (A("192.0.2.100"), 68)
    assert off.reply.dest_mac == mac(1)
    ack = c.send(3, T0 + 1, requested="192.0.2.100", server_id="192.0.2.1")
    assert ack.reply is not None and ack.reply.packet.options[53] == b"\x05"
    assert ack.log == [
        "DHCPREQUEST for 192.0.2.100 (192.0.2.1) from 52:54:00:00:00:01 via eth0",
        "DHCPACK on 192.0.2.100 to 52:54:00:00:00:01 via eth0",
    ]
    (lease,) = ack.writes
    assert lease.binding_state is BindingState.ACTIVE
    assert lease.next_binding_state is BindingState.FREE
    assert lease.hardware == (1, mac(1))
    assert (lease.starts, lease.ends, lease.cltt) == (T0 + 1, T0 + 1 + 43200, T0 + 1)


def test_offer_is_held_for_two_minutes_then_released() -> None:
    srv = server(subnets=(subnet(ranges=(("192.0.2.100", "192.0.2.100"),)),))
    a, b = FakeClient(srv, mac(1)), FakeClient(srv, mac(2))
    assert a.send(1, T0).reply is not None
    # the only address is held for a: b gets nothing
    nb = b.send(1, T0 + 60)
    assert nb.reply is None and nb.drop == "no free leases"
    assert nb.log[-1].endswith("network 192.0.2.0: no free leases")
    # a asks again: same offer
    again = a.send(1, T0 + 61)
    assert again.reply is not None and again.reply.packet.yiaddr == A("192.0.2.100")
    # hold lapses after 120 s from the last offer
    late = b.send(1, T0 + 61 + 121)
    assert late.reply is not None and late.reply.packet.yiaddr == A("192.0.2.100")


def test_discover_reuses_the_clients_lease_and_honours_requested_address() -> None:
    srv = server()
    c = FakeClient(srv, mac(1))
    c.dora(T0)
    assert c.address == A("192.0.2.100")
    off = c.send(1, T0 + 100)
    assert off.reply is not None and off.reply.packet.yiaddr == A("192.0.2.100")
    other = FakeClient(srv, mac(2))
    off2 = other.send(1, T0, requested="192.0.2.150")
    assert off2.reply is not None and off2.reply.packet.yiaddr == A("192.0.2.150")
    # requesting somebody else's active address gives a different one
    off3 = FakeClient(srv, mac(3)).send(1, T0, requested="192.0.2.100")
    assert off3.reply is not None and off3.reply.packet.yiaddr not in (
        A("192.0.2.100"),
        A("192.0.2.150"),
    )


def test_client_identifier_identifies_the_client_over_hardware() -> None:
    srv = server()
    c = FakeClient(srv, mac(1), client_id=b"\x01id-one")
    c.dora(T0)
    # same client id, new NIC: still the same lease
    moved = FakeClient(srv, mac(9), client_id=b"\x01id-one")
    off = moved.send(1, T0 + 5)
    assert off.reply is not None and off.reply.packet.yiaddr == c.address
    # same hardware, different client id: not that lease
    imp = FakeClient(srv, mac(1), client_id=b"\x01other")
    off2 = imp.send(1, T0 + 5)
    assert off2.reply is not None and off2.reply.packet.yiaddr != c.address


def test_request_for_another_servers_offer_frees_our_hold_silently() -> None:
    srv = server(subnets=(subnet(ranges=(("192.0.2.100", "192.0.2.100"),)),))
    c = FakeClient(srv, mac(1))
    assert c.send(1, T0).reply is not None
    out = c.send(3, T0 + 1, requested="198.51.100.7", server_id="198.51.100.1")
    assert out.reply is None and out.drop == "not our server id" and out.writes == []
    # the address is free again for someone else right away
    off = FakeClient(srv, mac(2)).send(1, T0 + 2)
    assert off.reply is not None and off.reply.packet.yiaddr == A("192.0.2.100")


def test_init_reboot_wrong_network_is_nakked_when_authoritative() -> None:
    other = Subnet(IPv4Network("198.51.100.0/24"), chain=((),))
    srv = server(subnets=(subnet(), other))
    c = FakeClient(srv, mac(1))
    out = c.send(3, T0, requested="198.51.100.20")
    assert out.reply is not None and out.reply.packet.options[53] == b"\x06"
    assert out.log == [
        "DHCPREQUEST for 198.51.100.20 from 52:54:00:00:00:01 via eth0: wrong network.",
        "DHCPNAK on 198.51.100.20 to 52:54:00:00:00:01 via eth0",
    ]
    assert (out.reply.dest_ip, out.reply.dest_port) == (A("255.255.255.255"), 68)
    assert out.reply.packet.flags & 0x8000
    assert out.reply.packet.options[54] == SERVER_IP.ip.packed
    # not authoritative: ignored
    srv2 = server(subnets=(subnet(), other), statements=())
    out2 = FakeClient(srv2, mac(1)).send(3, T0, requested="198.51.100.20")
    assert out2.reply is None and out2.log[-1].endswith("ignored (not authoritative).")


def test_init_reboot_unknown_lease_is_silent_and_taken_address_is_nakked() -> None:
    srv = server()
    # address outside every pool in our subnet, no lease: not ours -> silent
    out = FakeClient(srv, mac(1)).send(3, T0, requested="192.0.2.50")
    assert out.reply is None and out.log[-1].endswith("unknown lease 192.0.2.50.")
    owner = FakeClient(srv, mac(1))
    owner.dora(T0)
    thief = FakeClient(srv, mac(2)).send(3, T0 + 1, requested=str(owner.address))
    assert thief.reply is not None and thief.reply.packet.options[53] == b"\x06"
    assert thief.reply.packet.options[56] == b"requested address not available"
    assert thief.writes == []
    # INIT-REBOOT for its own lease: ACK
    again = owner.send(3, T0 + 2, requested=str(owner.address))
    assert again.reply is not None and again.reply.packet.options[53] == b"\x05"


def test_renewing_is_unicast_to_ciaddr_and_rebinding_broadcast_flag_honoured() -> None:
    srv = server()
    c = FakeClient(srv, mac(1))
    c.dora(T0)
    addr = str(c.address)
    meta = RxMeta("eth0", (SERVER_IP,), A(addr), 68, unicast=True)
    ren = c.send(3, T0 + 21600, meta=meta, ciaddr=addr)
    assert ren.reply is not None and ren.reply.packet.options[53] == b"\x05"
    assert (ren.reply.dest_ip, ren.reply.dest_port, ren.reply.dest_mac) == (A(addr), 68, None)
    assert ren.reply.packet.ciaddr == A(addr)
    assert ren.writes[0].ends == T0 + 21600 + 43200
    assert ren.log[0] == f"DHCPREQUEST for {addr} from 52:54:00:00:00:01 via eth0"
    reb = c.send(3, T0 + 40000, ciaddr=addr, flags=0x8000)
    assert reb.reply is not None and reb.reply.dest_ip == A("255.255.255.255")


def test_relayed_discover_goes_back_to_giaddr_and_echoes_option_82() -> None:
    remote = subnet("10.9.0.0/24", ranges=(("10.9.0.10", "10.9.0.20"),), block=())
    srv = server(subnets=(subnet(), remote))
    agent = bytes([1, 3]) + b"abc" + bytes([2, 2]) + b"xy"
    out = FakeClient(srv, mac(1)).send(1, T0, giaddr="10.9.0.1", extra={82: agent})
    assert out.reply is not None
    r = out.reply
    assert IPv4Interface(f"{r.packet.yiaddr}/24").network == IPv4Network("10.9.0.0/24")
    assert (r.dest_ip, r.dest_port, r.dest_mac) == (A("10.9.0.1"), 67, None)
    assert r.packet.giaddr == A("10.9.0.1")
    assert list(r.packet.options)[-1] == 82 and r.packet.options[82] == agent
    assert out.log[0] == "DHCPDISCOVER from 52:54:00:00:00:01 via 10.9.0.1"
    assert r.packet.options[1] == bytes([255, 255, 255, 0])  # subnet mask from the subnet


def test_subnet_selection_option_and_link_selection_suboption() -> None:
    remote = subnet("10.9.0.0/24", ranges=(("10.9.0.10", "10.9.0.20"),), block=())
    third = subnet("10.8.0.0/24", ranges=(("10.8.0.10", "10.8.0.20"),), block=())
    srv = server(subnets=(subnet(), remote, third))
    out = FakeClient(srv, mac(1)).send(1, T0, extra={118: A("10.9.0.0").packed})
    assert out.reply is not None and str(out.reply.packet.yiaddr).startswith("10.9.0.")
    link = bytes([5, 4]) + A("10.8.0.0").packed
    out2 = FakeClient(srv, mac(2)).send(
        1, T0, giaddr="10.9.0.1", extra={82: link, 118: A("10.9.0.0").packed}
    )
    assert out2.reply is not None and str(out2.reply.packet.yiaddr).startswith("10.8.0.")
    bad = FakeClient(srv, mac(3)).send(1, T0, extra={118: b"\x0a\x09"})
    assert bad.reply is None and bad.drop == "invalid subnet selection option"
    unknown = FakeClient(srv, mac(4)).send(1, T0, giaddr="203.0.113.1")
    assert unknown.reply is None and unknown.log[0].endswith(
        "via 203.0.113.1: unknown network segment"
    )


def test_shared_network_spans_its_subnets() -> None:
    s1 = subnet("192.0.2.0/24", ranges=(("192.0.2.100", "192.0.2.100"),), shared="lan")
    s2 = subnet("198.51.100.0/24", ranges=(("198.51.100.5", "198.51.100.5"),), shared="lan")
    srv = server(subnets=(s1, s2))
    got = set()
    for n in range(2):
        c = FakeClient(srv, mac(n))
        c.dora(T0)
        got.add(c.address)
    assert got == {A("192.0.2.100"), A("198.51.100.5")}
    off = FakeClient(srv, mac(7)).send(1, T0)
    assert off.reply is None and off.log[-1].endswith("network lan: no free leases")
    # the second subnet's mask is used for its address
    c = FakeClient(srv, mac(0))
    o = c.send(1, T0 + 1)
    assert o.reply is not None


def test_fixed_address_host_and_known_clients_pool() -> None:
    host_fixed = Host("printer", hardware=(1, mac(5)), fixed_addresses=(A("192.0.2.9"),))
    host_known = Host("laptop", hardware=(1, mac(6)))
    known_pool = Pool(
        (Range(A("192.0.2.100"), A("192.0.2.110")),),
        permits=(__import__("tandem.config.model").config.model.Permit(True, "known-clients"),),
        chain=(SEED_BLOCK,),
    )
    s = Subnet(IPv4Network("192.0.2.0/24"), (known_pool,), None, (SEED_BLOCK,))
    srv = server(
        subnets=(s,),
        hosts=(host_fixed, host_known),
        statements=(*AUTHORITATIVE, Param("use-host-decl-names", True)),
    )
    printer = FakeClient(srv, mac(5))
    off = printer.send(1, T0, prl=bytes([1, 3, 12]))
    assert off.reply is not None and off.reply.packet.yiaddr == A("192.0.2.9")
    assert off.reply.packet.options[12] == b"printer"
    ack = printer.send(3, T0, requested="192.0.2.9")
    assert ack.reply is not None and ack.reply.packet.options[53] == b"\x05"
    assert ack.writes == []  # fixed-address bindings are not stored (dhcpd)
    nak = printer.send(3, T0, requested="192.0.2.105")
    assert nak.reply is not None and nak.reply.packet.options[56] == (
        b"requested address is incorrect"
    )
    laptop = FakeClient(srv, mac(6)).send(1, T0)
    assert laptop.reply is not None and laptop.reply.packet.yiaddr == A("192.0.2.100")
    stranger = FakeClient(srv, mac(7)).send(1, T0)
    assert stranger.reply is None and stranger.drop == "no free leases"


def test_lease_time_negotiation_and_t1_t2() -> None:
    block = (
        *SEED_BLOCK,
        Param("default-lease-time", 600),
        Param("max-lease-time", 7200),
        Param("min-lease-time", 300),
    )
    srv = server(subnets=(subnet(block=block),))

    def offered(req: int | None) -> tuple[int, int, int]:
        extra = {51: req.to_bytes(4, "big")} if req is not None else None
        o = FakeClient(srv, mac(len(srv.db.offers) + 1)).send(1, T0, extra=extra)
        assert o.reply is not None
        opts = o.reply.packet.options
        return tuple(int.from_bytes(opts[k], "big") for k in (51, 58, 59))  # type: ignore[return-value]

    assert offered(None) == (600, 300, 525)
    assert offered(3600)[0] == 3600
    assert offered(100000)[0] == 7200
    assert offered(60)[0] == 300
    # configured T1/T2 win; a T2 beyond the lease is dropped (dhcpd)
    block2 = (*SEED_BLOCK, opt("dhcp-renewal-time", 58, (100).to_bytes(4, "big")))
    block2 += (opt("dhcp-rebinding-time", 59, (99999).to_bytes(4, "big")),)
    srv2 = server(subnets=(subnet(block=block2),))
    o = FakeClient(srv2, mac(1)).send(1, T0)
    assert o.reply is not None
    assert o.reply.packet.options[58] == (100).to_bytes(4, "big")
    assert o.reply.packet.options[59] == (43200 * 7 // 8).to_bytes(4, "big")


def test_lease_time_floor_is_dhcpds_default_min_lease_time() -> None:
    """ack_lease: without min-lease-time the floor is 300 s (DEFAULT_MIN_LEASE_TIME), lowered
    to max-lease-time when that is smaller; a configured min-lease-time is the floor as set.
    tests/lab/test_departures.py holds the same to dhcpd."""

    def granted(*params: Param, req: int | None = None) -> tuple[int, int]:
        srv = server(subnets=(subnet(block=(*SEED_BLOCK, *params)),))
        extra = {51: req.to_bytes(4, "big")} if req is not None else None
        c = FakeClient(srv, mac(1))
        off = c.send(1, T0, extra=extra)
        assert off.reply is not None
        yi = str(off.reply.packet.yiaddr)
        ack = c.send(3, T0, requested=yi, server_id="192.0.2.1", extra=extra)
        assert ack.reply is not None and ack.reply.packet.options[53] == b"\x05"
        (lease,) = ack.writes
        assert lease.ends == T0 + int.from_bytes(ack.reply.packet.options[51], "big")
        return tuple(int.from_bytes(o.reply.packet.options[51], "big") for o in (off, ack))  # type: ignore[union-attr,return-value]

    assert granted(Param("default-lease-time", 3)) == (300, 300)
    assert granted(Param("default-lease-time", 0)) == (300, 300)
    assert granted(req=10) == (300, 300)
    assert granted(Param("default-lease-time", 3), Param("max-lease-time", 60)) == (60, 60)
    assert granted(Param("default-lease-time", 3), Param("min-lease-time", 5)) == (5, 5)
    assert granted(Param("default-lease-time", 3), Param("min-lease-time", 0)) == (3, 3)
    assert granted(Param("max-lease-time", 60), Param("min-lease-time", 90)) == (90, 90)


def test_parameter_request_list_rules() -> None:
    block = (*SEED_BLOCK, opt("domain-name", 15, b"example.org"))
    srv = server(subnets=(subnet(block=block),))
    o = FakeClient(srv, mac(1)).send(1, T0, prl=bytes([3, 42]))
    assert o.reply is not None
    # protocol options, then exactly the list, then the subnet mask (DISCOVER/REQUEST)
    assert list(o.reply.packet.options) == [53, 54, 51, 58, 59, 3, 42, 1]
    o2 = FakeClient(srv, mac(2)).send(1, T0)
    assert o2.reply is not None
    keys = list(o2.reply.packet.options)
    assert keys[:6] == [53, 54, 51, 58, 59, 1] and keys[6] == 3
    assert set(keys) == {53, 54, 51, 58, 59, 1, 3, 42, 2, 28, 15}


def test_echo_client_id_sends_the_hosts_identifier_to_a_client_that_sent_none() -> None:
    """dhcp.c echo_client_id + cons_options: with echo-client-id on, option 61 goes right
    after the protocol options, PRL or not: the client's own, else the host's configured
    dhcp-client-identifier (matched here by hardware). tests/lab/test_departures.py holds the
    same to dhcpd."""
    host = Host(
        "cid",
        hardware=(1, mac(1)),
        chain=((opt("dhcp-client-identifier", 61, b"cfg-id"),),),
    )

    def offer(echo: bool, n: int, client_id: bytes | None = None) -> dict[int, bytes]:
        stmts = (*AUTHORITATIVE, Param("echo-client-id", echo))
        srv = server(hosts=(host,), statements=stmts)
        o = FakeClient(srv, mac(n), client_id=client_id).send(1, T0, prl=bytes([1, 3]))
        assert o.reply is not None
        return o.reply.packet.options

    on = offer(True, 1)
    assert on[61] == b"cfg-id" and list(on)[:6] == [53, 54, 51, 58, 59, 61]
    assert 61 not in offer(False, 1)  # not asked for, not echoed
    assert offer(True, 2, b"\x01own")[61] == b"\x01own"
    assert 61 not in offer(True, 3)  # nothing sent, nothing configured


def test_small_max_message_size_drops_what_does_not_fit() -> None:
    big = opt("domain-name", 15, b"x" * 200)
    srv = server(subnets=(subnet(block=(*SEED_BLOCK, big, opt("root-path", 17, b"y" * 100))),))
    o = FakeClient(srv, mac(1)).send(1, T0, extra={57: (576).to_bytes(2, "big")})
    assert o.reply is not None
    opts = o.reply.packet.options
    assert 15 in opts and 17 not in opts  # 312-byte option area: the second does not fit
    total = sum(len(v) + 2 for v in opts.values()) + 4 + 1
    assert total <= 312


def test_next_server_filename_server_name_and_server_identifier() -> None:
    block = (
        *SEED_BLOCK,
        Param("next-server", A("192.0.2.3")),
        Param("filename", "pxelinux.0"),
        Param("server-name", "boot"),
        Param("server-identifier", A("192.0.2.254")),
    )
    srv = server(subnets=(subnet(block=block),))
    c = FakeClient(srv, mac(1))
    o = c.send(1, T0)
    assert o.reply is not None
    p = o.reply.packet
    assert p.siaddr == A("192.0.2.3")
    assert p.file.rstrip(b"\x00") == b"pxelinux.0" and len(p.file) == 128
    assert p.sname.rstrip(b"\x00") == b"boot"
    assert p.options[54] == A("192.0.2.254").packed
    # a REQUEST naming the configured server identifier is ours
    ack = c.send(3, T0, requested=str(p.yiaddr), server_id="192.0.2.254")
    assert ack.reply is not None and ack.reply.packet.options[53] == b"\x05"


def test_vendor_option_space_is_encapsulated_into_option_43() -> None:
    from tandem.config.model import OptionSet, OptionSpace

    block = (
        *SEED_BLOCK,
        Param("vendor-option-space", "acme"),
        OptionSet("acme", 1, "one", b"\x01\x02"),
        OptionSet("acme", 7, "seven", b"hi"),
    )
    srv = DhcpServer(
        config(subnet(block=block), option_spaces=(OptionSpace("acme"),))  # type: ignore[arg-type]
    )
    o = FakeClient(srv, mac(1)).send(1, T0, prl=bytes([43]))
    assert o.reply is not None
    assert o.reply.packet.options[43] == b"\x01\x02\x01\x02\x07\x02hi"


def test_release_frees_the_lease_and_the_address_is_reusable() -> None:
    srv = server(subnets=(subnet(ranges=(("192.0.2.100", "192.0.2.100"),)),))
    c = FakeClient(srv, mac(1))
    c.dora(T0)
    rel = c.send(7, T0 + 10, ciaddr="192.0.2.100", server_id="192.0.2.1")
    assert rel.reply is None and [x.binding_state for x in rel.writes] == [BindingState.FREE]
    assert rel.log == [
        "DHCPRELEASE of 192.0.2.100 from 52:54:00:00:00:01 via eth0 (found)",
    ]
    other = FakeClient(srv, mac(2))
    other.dora(T0 + 11)
    assert other.address == A("192.0.2.100")
    # a release by a different client does nothing
    bogus = FakeClient(srv, mac(3)).send(7, T0 + 12, ciaddr="192.0.2.100")
    assert bogus.writes == [] and bogus.log[0].endswith("(not found)")


def test_decline_abandons_and_abandoned_is_used_last() -> None:
    srv = server(subnets=(subnet(ranges=(("192.0.2.100", "192.0.2.101"),)),))
    c = FakeClient(srv, mac(1))
    off = c.send(1, T0)
    assert off.reply is not None
    addr = str(off.reply.packet.yiaddr)
    c.send(3, T0, requested=addr)
    d = c.send(4, T0 + 1, requested=addr)
    (lease,) = d.writes
    assert lease.binding_state is BindingState.ABANDONED and lease.hardware is None
    assert d.log[-1] == f"DHCPDECLINE of {addr} from 52:54:00:00:00:01 via eth0: abandoned"
    # the free one goes first, the abandoned one only when nothing else is left
    first = FakeClient(srv, mac(2))
    first.dora(T0 + 2)
    assert str(first.address) != addr
    last = FakeClient(srv, mac(3))
    ack = last.dora(T0 + 3)
    assert str(last.address) == addr
    assert any("Reclaiming abandoned lease" in line for line in ack.log)


def test_deny_declines_and_decline_of_someone_elses_lease() -> None:
    block = (*SEED_BLOCK, Param("declines", "deny"))
    srv = server(subnets=(subnet(block=block),))
    c = FakeClient(srv, mac(1))
    c.dora(T0)
    d = c.send(4, T0, requested=str(c.address))
    assert d.writes == [] and d.log[-1].endswith(": ignored")
    srv2 = server()
    owner = FakeClient(srv2, mac(1))
    owner.dora(T0)
    d2 = FakeClient(srv2, mac(2)).send(4, T0, requested=str(owner.address))
    assert d2.writes == []


def test_inform_gives_options_without_lease() -> None:
    srv = server()
    meta = RxMeta("eth0", (SERVER_IP,), A("192.0.2.77"), 68, unicast=True)
    o = FakeClient(srv, mac(1)).send(8, T0, meta=meta, ciaddr="192.0.2.77", prl=bytes([3, 42]))
    assert o.reply is not None and o.writes == []
    opts = o.reply.packet.options
    assert opts[53] == b"\x05" and 51 not in opts and 58 not in opts
    assert opts[3] == A("192.0.2.5").packed and 1 not in opts  # not requested: no mask
    assert o.reply.packet.yiaddr == A("0.0.0.0") and o.reply.dest_ip == A("192.0.2.77")
    assert o.log[0] == "DHCPINFORM from 192.0.2.77 via eth0"
    srv2 = server(statements=())
    o2 = FakeClient(srv2, mac(1)).send(8, T0, meta=meta, ciaddr="192.0.2.77")
    assert o2.reply is None and "not authoritative" in o2.log[0]


def test_bootp_needs_dynamic_bootp_range_and_gets_infinite_lease() -> None:
    srv = server()
    p = packet(None, mac(1))
    out = srv.handle(p, META, T0)
    assert out.reply is None and out.log[-1].endswith(
        "BOOTP from dynamic client and no dynamic leases"
    )
    srv2 = server(subnets=(subnet(dynamic_bootp=True),))
    out2 = srv2.handle(p, META, T0)
    assert out2.reply is not None and 53 not in out2.reply.packet.options
    (lease,) = out2.writes
    assert lease.bootp and lease.ends is None and lease.binding_state is BindingState.ACTIVE
    assert out2.log == [
        "BOOTREQUEST from 52:54:00:00:00:01 via eth0",
        f"BOOTREPLY for {lease.address} to unknown (52:54:00:00:00:01) via eth0",
    ]
    block = (*SEED_BLOCK, Param("bootp", "deny"))
    srv3 = server(subnets=(subnet(block=block, dynamic_bootp=True),))
    out3 = srv3.handle(p, META, T0)
    assert out3.reply is None and out3.log[-1].endswith("bootp disallowed")
    # DHCP clients may use a dynamic-bootp range too
    assert FakeClient(srv2, mac(2)).send(1, T0).reply is not None


def test_one_lease_per_client_releases_the_other_lease() -> None:
    s1 = subnet()
    s2 = subnet("10.9.0.0/24", ranges=(("10.9.0.10", "10.9.0.20"),), block=())
    srv = server(subnets=(s1, s2), statements=(*AUTHORITATIVE, Param("one-lease-per-client", True)))
    c = FakeClient(srv, mac(1))
    c.dora(T0)
    first = c.address
    req = c.dora(T0 + 5, giaddr="10.9.0.1")
    states = {str(x.address): x.binding_state for x in req.writes}
    assert str(c.address).startswith("10.9.0.")
    assert states == {str(first): BindingState.FREE, str(c.address): BindingState.ACTIVE}


def test_tick_expires_active_leases_to_free() -> None:
    srv = server()
    c = FakeClient(srv, mac(1))
    c.dora(T0)
    assert srv.tick(T0 + 100) == []
    expired = srv.tick(T0 + 43200)
    assert len(expired) == 1 and expired[0].binding_state is BindingState.FREE
    assert srv.tick(T0 + 50000) == []


def test_loaded_leases_are_respected() -> None:
    taken = Lease(
        A("192.0.2.100"), BindingState.ACTIVE, starts=T0, ends=T0 + 1000, hardware=(1, mac(9))
    )
    srv = DhcpServer(config(), leases=[taken])
    off = FakeClient(srv, mac(1)).send(1, T0)
    assert off.reply is not None and off.reply.packet.yiaddr == A("192.0.2.101")
    mine = FakeClient(srv, mac(9)).send(1, T0)
    assert mine.reply is not None and mine.reply.packet.yiaddr == A("192.0.2.100")


def test_stats_count_messages_and_drops() -> None:
    srv = server()
    FakeClient(srv, mac(1)).dora(T0)
    srv.handle(packet(2, mac(1)), META, T0)
    st = srv.stats()
    assert st["rx.DHCPDISCOVER"] == 1 and st["tx.DHCPOFFER"] == 1 and st["tx.DHCPACK"] == 1
    assert st["drop.server message type"] == 1
    assert st["leases.active"] == 1 and st["pool.size"] == 101
