"""DHCPLEASEQUERY (RFC 4388) as dhcpd 4.4.3's server/dhcpleasequery.c answers it (pure)."""

from __future__ import annotations

from ipaddress import IPv4Interface

from corekit import A, FakeClient, mac, packet

from tandem.config import parse_text
from tandem.core.server import DhcpServer, Outcome, RxMeta

T0 = 1_000_000
RELAY = "192.0.2.2"
META = RxMeta("eth0", (IPv4Interface("192.0.2.1/24"),), A(RELAY), 67, unicast=True)

BASE = """
authoritative;
default-lease-time 600;
max-lease-time 600;
option domain-name "example.org";
subnet 192.0.2.0 netmask 255.255.255.0 {
    option routers 192.0.2.5;
    range 192.0.2.100 192.0.2.110;
    %s
}
subnet 198.51.100.0 netmask 255.255.255.0 {
    range 198.51.100.100 198.51.100.110;
}
host fixed { hardware ethernet 52:54:00:00:09:09; fixed-address 192.0.2.50; }
"""


def server(permit: str = "allow leasequery;", glob: str = "") -> DhcpServer:
    return DhcpServer(parse_text(glob + BASE % permit))


def query(
    srv: DhcpServer,
    now: int,
    *,
    ciaddr: str = "0.0.0.0",
    hw: bytes = b"",
    client_id: bytes | None = None,
    giaddr: str = RELAY,
    xid: int = 77,
) -> Outcome:
    p = packet(10, hw, xid=xid, ciaddr=ciaddr, giaddr=giaddr, client_id=client_id)
    return srv.handle(p, META, now)


def bound(srv: DhcpServer, n: int, now: int, client_id: bytes | None = None) -> FakeClient:
    c = FakeClient(srv, mac(n), client_id=client_id)
    ack = c.dora(now)
    assert c.address is not None, ack.log
    return c


def mtype(out: Outcome) -> int:
    assert out.reply is not None, (out.drop, out.log)
    return out.reply.packet.options[53][0]


def test_by_ip_active_lease_options_and_log() -> None:
    srv = server()
    c = bound(srv, 1, T0, client_id=b"\x01cid-1")
    out = query(srv, T0 + 100, ciaddr=str(c.address))
    assert mtype(out) == 13  # DHCPLEASEACTIVE
    assert out.reply is not None
    p = out.reply.packet
    assert p.op == 2 and p.xid == 77 and p.ciaddr == c.address and p.giaddr == A(RELAY)
    assert (p.htype, p.hlen, p.chaddr[:6]) == (1, 6, mac(1))
    o = p.options
    assert list(o)[:2] == [53, 54] and o[54] == A("192.0.2.1").packed
    assert int.from_bytes(o[51], "big") == 500  # remaining
    assert int.from_bytes(o[58], "big") == 200  # starts + 300 - now
    assert int.from_bytes(o[59], "big") == 425  # starts + 300 + 150 + 75 - now
    assert o[61] == b"\x01cid-1"
    assert int.from_bytes(o[91], "big") == 100  # client-last-transaction-time
    assert set(o) == {53, 54, 51, 58, 59, 61, 91}  # no routers, no PRL options: dhcpd's set
    assert (out.reply.dest_ip, out.reply.dest_port) == (A(RELAY), 67)
    assert out.log == [
        f"DHCPLEASEQUERY from {RELAY} for IP {c.address}",
        f"DHCPLEASEACTIVE to {RELAY} for IP {c.address} (0 associated IPs)",
    ]
    assert srv.counters["rx.DHCPLEASEQUERY"] == 1 and srv.counters["tx.DHCPLEASEACTIVE"] == 1


def test_by_ip_past_t1_omits_t1_and_free_address_is_unassigned() -> None:
    srv = server()
    c = bound(srv, 1, T0)
    o = query(srv, T0 + 400, ciaddr=str(c.address))
    assert mtype(o) == 13 and o.reply is not None
    assert 58 not in o.reply.packet.options and 59 in o.reply.packet.options
    # A range address never handed out is a FREE lease in dhcpd: unassigned.
    free = query(srv, T0, ciaddr="192.0.2.105")
    assert mtype(free) == 11 and free.reply is not None
    opts = free.reply.packet.options
    # The relay's scope's options, as dhcpd sends them (its option state as is).
    assert opts[3] == A("192.0.2.5").packed and opts[15] == b"example.org"
    assert 51 not in opts and 91 not in opts
    assert free.log[-1] == f"DHCPLEASEUNASSIGNED to {RELAY} for IP 192.0.2.105 (0 associated IPs)"


def test_released_and_expired_leases_are_unassigned() -> None:
    srv = server()
    c = bound(srv, 1, T0)
    c.send(7, T0 + 5, ciaddr=str(c.address))  # DHCPRELEASE
    assert mtype(query(srv, T0 + 6, ciaddr=str(c.address))) == 11
    d = bound(srv, 2, T0)
    srv.tick(T0 + 601)
    assert mtype(query(srv, T0 + 602, ciaddr=str(d.address))) == 11
    # ACTIVE in the database but past its end (expiry not run yet): dhcpd's timer would
    # already have expired it.
    e = bound(srv, 3, T0 + 700)
    assert mtype(query(srv, T0 + 1301, ciaddr=str(e.address))) == 11


def test_unknown_addresses() -> None:
    srv = server()
    for addr in ("192.0.2.50", "192.0.2.20", "203.0.113.1"):  # fixed, outside range, no subnet
        out = query(srv, T0, ciaddr=addr)
        assert mtype(out) == 12, addr
        assert out.log[-1] == f"DHCPLEASEUNKNOWN to {RELAY} for IP {addr} (0 associated IPs)"


def test_by_mac_sets_ciaddr_and_chaddr() -> None:
    srv = server()
    c = bound(srv, 1, T0)
    out = query(srv, T0 + 10, hw=mac(1))
    assert mtype(out) == 13 and out.reply is not None
    assert out.reply.packet.ciaddr == c.address
    assert 92 not in out.reply.packet.options and 61 not in out.reply.packet.options
    assert out.log == [
        f"DHCPLEASEQUERY from {RELAY} for MAC address 52:54:00:00:00:01",
        f"DHCPLEASEACTIVE to {RELAY} for MAC address 52:54:00:00:00:01 (0 associated IPs)",
    ]
    unknown = query(srv, T0, hw=mac(2))
    assert mtype(unknown) == 12 and unknown.reply is not None
    assert unknown.reply.packet.ciaddr == A("0.0.0.0")


def test_by_mac_released_lease_is_unassigned_with_its_address() -> None:
    srv = server()
    c = bound(srv, 1, T0)
    c.send(7, T0 + 5, ciaddr=str(c.address))
    out = query(srv, T0 + 6, hw=mac(1))
    assert mtype(out) == 11 and out.reply is not None
    assert out.reply.packet.ciaddr == c.address


def test_by_mac_several_leases_newest_and_associated_ip() -> None:
    srv = server()
    cl = FakeClient(srv, mac(1))
    # The same client on two subnets (through two relays): two ACTIVE leases.
    first = cl.dora(T0, giaddr="198.51.100.1")
    second = cl.dora(T0 + 50)
    assert first.reply is not None and second.reply is not None
    a1, a2 = first.reply.packet.yiaddr, second.reply.packet.yiaddr
    out = query(srv, T0 + 60, hw=mac(1))
    assert mtype(out) == 13 and out.reply is not None
    assert out.reply.packet.ciaddr == a2  # latest cltt
    assert out.reply.packet.options[92] == a1.packed
    assert out.log[-1].endswith("(1 associated IPs)")
    # By IP: never associated-ip.
    by_ip = query(srv, T0 + 60, ciaddr=str(a1))
    assert by_ip.reply is not None and 92 not in by_ip.reply.packet.options


def test_by_client_id() -> None:
    srv = server()
    c = bound(srv, 1, T0, client_id=b"\x01\x52\x54\x00\x00\x00\x01")
    out = query(srv, T0 + 1, client_id=b"\x01\x52\x54\x00\x00\x00\x01")
    assert mtype(out) == 13 and out.reply is not None
    assert out.reply.packet.ciaddr == c.address
    what = "client-id 01:52:54:00:00:00:01"
    assert out.log == [
        f"DHCPLEASEQUERY from {RELAY} for {what}",
        f"DHCPLEASEACTIVE to {RELAY} for {what} (0 associated IPs)",
    ]
    # Printable identifiers are logged quoted, as dhcpd's print_hex_1 does.
    text = query(srv, T0 + 1, client_id=b"lab-1")
    assert mtype(text) == 12
    assert text.log[0] == f'DHCPLEASEQUERY from {RELAY} for client-id "lab-1"'
    # The client identifier wins over chaddr.
    both = query(srv, T0 + 1, hw=mac(1), client_id=b"other")
    assert mtype(both) == 12


def test_not_permitted_is_dropped_and_counted() -> None:
    srv = server(permit="")
    out = query(srv, T0, ciaddr="192.0.2.100")
    assert out.reply is None and out.drop == "leasequery not allowed"
    assert out.log == [f"DHCPLEASEQUERY from {RELAY}: LEASEQUERY not allowed, query ignored"]
    assert srv.counters["drop.leasequery not allowed"] == 1
    assert query(server(permit="deny leasequery;"), T0, ciaddr="192.0.2.100").reply is None


def test_permit_is_the_relay_subnets_scope_else_global() -> None:
    srv = server()  # allowed in 192.0.2.0/24 only
    assert query(srv, T0, ciaddr="192.0.2.100", giaddr="198.51.100.1").reply is None
    assert query(srv, T0, ciaddr="192.0.2.100", giaddr="203.0.113.9").reply is None
    glob = server(permit="", glob="allow leasequery;\n")
    assert mtype(query(glob, T0, ciaddr="192.0.2.100", giaddr="203.0.113.9")) == 11
    assert mtype(query(glob, T0, ciaddr="192.0.2.100", giaddr="198.51.100.1")) == 11
    # A subnet's deny overrides the global allow.
    denied = server(permit="deny leasequery;", glob="allow leasequery;\n")
    assert query(denied, T0, ciaddr="192.0.2.100").reply is None
    assert mtype(query(denied, T0, ciaddr="192.0.2.100", giaddr="198.51.100.1")) == 11


def test_permit_in_a_class_the_query_matches() -> None:
    cls = 'class "relays" { match if option dhcp-message-type = 0a; allow leasequery; }\n'
    srv = server(permit="", glob=cls)
    assert mtype(query(srv, T0, ciaddr="192.0.2.100")) == 11


def test_missing_giaddr_is_dropped_and_counted() -> None:
    srv = server(glob="allow leasequery;\n")
    out = query(srv, T0, ciaddr="192.0.2.100", giaddr="0.0.0.0")
    assert out.reply is None and out.drop == "leasequery: missing giaddr"
    assert out.log == [
        "DHCPLEASEQUERY from 0.0.0.0: missing giaddr, ciaddr is 192.0.2.100, no reply sent"
    ]
    assert srv.counters["drop.leasequery: missing giaddr"] == 1


def test_configured_server_identifier_in_unknown_reply() -> None:
    srv = server(permit="allow leasequery; server-identifier 192.0.2.9;")
    out = query(srv, T0, ciaddr="203.0.113.1")
    assert mtype(out) == 12 and out.reply is not None
    assert out.reply.packet.options[54] == A("192.0.2.9").packed
    assert out.reply.server_ip == A("192.0.2.9")
