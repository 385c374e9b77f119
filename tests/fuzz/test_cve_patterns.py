"""One regression test per CVE pattern of reference/ecosystem.md section 6 that applies to us.

Each test feeds the exact malformed input of the pattern (or its DHCPv4 form, where the
original was DHCPv6) to our code and asserts the clean outcome: a drop counted under its
reason by the real DHCP endpoint, an error with a file:line:col location, a refused
connection. Row 13 (CVE-2022-0934, a DHCPv6 write-after-free in C) has no DHCPv4 or Python
counterpart and has no test; fuzz/README.md says why for every row.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest
from fuzzkit import fuzzlib

from tandem.config import ConfigError, parse_text
from tandem.config.model import FailoverPeer
from tandem.core.lease import BindingState, Lease
from tandem.core.server import DhcpServer
from tandem.core.types import Outcome, RxMeta
from tandem.io.commit import GroupCommit
from tandem.io.control import ControlError, parse_request
from tandem.io.dhcp_socket import DhcpEndpoint, _Port
from tandem.io.failover_link import Timing
from tandem.io.failover_listen import FailoverLinks
from tandem.io.netif import Interface
from tandem.store.journal import LeaseJournal
from tandem.store.leasefile import FailoverStateRecord, LeaseFileError, format_lease, parse_leases
from tandem.wire import dhcp
from tandem.wire.dhcp import Packet, decode, encode
from tandem.wire.errors import FormatError, MalformedPacket
from tandem.wire.failover import FailoverProtocolError, decode_message
from tandem.wire.fqdn import decode_fqdn
from tandem.wire.ipudp import build_ip_udp, decode_ip_udp
from tandem.wire.suboptions import decode_suboptions

pytestmark = pytest.mark.timeout(60)

A = IPv4Address
T0 = 1_700_000_000
IFACE = Interface("eth0", 2, bytes.fromhex("020000000001"), (IPv4Interface("192.0.2.1/24"),))
BCAST = RxMeta("eth0", IFACE.addrs, A("0.0.0.0"), 68, unicast=False)
COOKIE = b"\x63\x82\x53\x63"


def mac(n: int) -> bytes:
    return bytes([0x52, 0x54, 0, 0, n >> 8 & 0xFF, n & 0xFF])


def request(
    mtype: int | None,
    hw: bytes = mac(1),
    options: dict[int, bytes] | None = None,
    *,
    ciaddr: str = "0.0.0.0",
    giaddr: str = "0.0.0.0",
    xid: int = 1,
) -> Packet:
    opts: dict[int, bytes] = {} if mtype is None else {53: bytes([mtype])}
    opts.update(options or {})
    return Packet(1, 1, len(hw), 0, xid, 0, 0, A(ciaddr), A(0), A(0), A(giaddr),
                  hw.ljust(16, b"\0"), options=opts)  # fmt: skip


def raw_packet(options: bytes, hw: bytes = mac(1)) -> bytes:
    """A BOOTREQUEST header and cookie followed by exactly ``options`` (no fixing up)."""
    header = encode(request(None, hw))[:236]
    return header + COOKIE + options


@pytest.fixture
def seed_server() -> DhcpServer:
    return DhcpServer(parse_text(fuzzlib.SEED_CONFIG))


@pytest.fixture
def endpoint(tmp_path: Path, seed_server: DhcpServer) -> Iterator[tuple[DhcpEndpoint, _Port]]:
    """The real DHCP endpoint (decode, handle, count drops) with no socket opened."""
    journal = LeaseJournal(str(tmp_path / "dhcpd.leases"), fsync=False)
    journal.load()
    commit = GroupCommit(journal)
    ep = DhcpEndpoint(seed_server, commit, [], emit=lambda _lines: None, clock=lambda: T0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # never bound nor used: drops only
    try:
        yield ep, _Port(IFACE, sock)
    finally:
        ep.close()
        commit.close()
        sock.close()


def ingest(ep: tuple[DhcpEndpoint, _Port], *datagrams: bytes) -> dict[str, int]:
    endpoint, port = ep
    endpoint.process_batch(port, [(d, False, ("0.0.0.0", 68)) for d in datagrams])
    assert endpoint.counters.replied == 0
    return dict(endpoint.counters.drops)


def served(srv: DhcpServer, pkt: Packet, meta: RxMeta = BCAST, now: int = T0) -> Outcome:
    """handle() plus what the endpoint does with a reply: encode it within the client's size."""
    out = srv.handle(pkt, meta, now)
    assert isinstance(out, Outcome)
    if out.ping is not None:  # ping-check (the seed leaves it on): nobody answers, at once
        more = srv.ping_timed_out(out.ping.address, now=now)
        out.log += more.log
        out.writes += more.writes
        out.reply = more.reply
        out.ping = None
    if out.reply is not None:
        wire = encode(out.reply.packet, max_size=pkt.max_message_size)
        assert decode(wire).xid == pkt.xid
    return out


def dora(srv: DhcpServer, hw: bytes, options: dict[int, bytes]) -> Lease:
    offer = served(srv, request(1, hw, options))
    assert offer.reply is not None, offer.drop
    addr = str(offer.reply.packet.yiaddr)
    ack = served(srv, request(3, hw, {**options, 50: A(addr).packed, 54: A("192.0.2.1").packed}))
    assert ack.reply is not None and ack.reply.packet.options[53] == b"\x05", ack.drop
    (lease,) = ack.writes
    return lease


def reread(lease: Lease) -> Lease:
    """The lease as a restart reads it back from the lease file."""
    contents = parse_leases(format_lease(lease), "dhcpd.leases")
    assert list(contents.leases) == [lease.address]
    return contents.leases[lease.address]


# 1 -------------------------------------------------------------------------------------------


def test_cve_2012_3571_zero_length_client_identifier(endpoint: tuple[DhcpEndpoint, _Port]) -> None:
    discover = b"\x35\x01\x01"
    inputs = [
        raw_packet(discover + b"\x3d\x00\xff"),
        raw_packet(discover + b"\x3d\x00\x3d\x00\xff"),  # two empty parts still join to empty
        raw_packet(b"\x3d\x00" + discover),  # no END at all
    ]
    drops = ingest(endpoint, *inputs)
    assert drops == {"zero-length-client-id": 3}
    assert endpoint[0].journal.pending == 0
    # Length 1 is accepted (as ISC does): served, keyed on that one octet.
    srv = endpoint[0].server
    lease = dora(srv, mac(9), {61: b"\x01"})
    assert lease.uid == b"\x01" and reread(lease).uid == b"\x01"


# 2 -------------------------------------------------------------------------------------------


def test_cve_2012_3570_client_id_content_never_read_as_hardware(seed_server: DhcpServer) -> None:
    # DHCPv6 DUID->hardware conversion has no v4 code path; the v4 form of the trap is
    # trusting option 61's "htype + chaddr" layout. Ours is opaque bytes, whatever it says.
    for n, cid in enumerate([b"\x01", b"\x01\x52", b"\x01" + bytes(254), b"\xff" * 255], 1):
        lease = dora(seed_server, mac(n), {61: cid})
        assert lease.uid == cid
        assert lease.hardware == (1, mac(n))  # from chaddr, never from the client id
        assert reread(lease).uid == cid


# 3 -------------------------------------------------------------------------------------------


def test_cve_2015_8605_ip_and_udp_lengths_checked_against_the_frame() -> None:
    payload = encode(request(1))
    frame = build_ip_udp(A("192.0.2.9"), 68, A("255.255.255.255"), 67, payload)

    def with_udp_length(n: int) -> bytes:
        return frame[:24] + struct.pack("!H", n) + frame[26:]

    cases = {
        "udp-length-mismatch": [with_udp_length(len(frame) - 20 + 1), with_udp_length(7)],
        "ip-length-mismatch": [frame[:-1], frame[:2] + b"\xff\xff" + frame[4:]],
        "ip-header": [frame[:19], b"\x4f" + frame[1:40]],
    }
    for reason, frames in cases.items():
        for bad in frames:
            with pytest.raises(MalformedPacket) as err:
                decode_ip_udp(bad, verify_udp_checksum=False)
            assert err.value.reason == reason
    # Every truncation of a good frame: a reason, never IndexError/struct.error.
    for cut in range(len(frame)):
        with pytest.raises(MalformedPacket):
            decode_ip_udp(frame[:cut])
    assert decode_ip_udp(frame)[4] == payload


# 4 -------------------------------------------------------------------------------------------


def test_cve_2011_2749_crafted_bootp_packets(endpoint: tuple[DhcpEndpoint, _Port]) -> None:
    header = encode(request(None))[:236]
    bootp = [
        header,  # no vendor area at all
        header + bytes(64),  # vendor area without a cookie
        header + COOKIE,  # cookie, nothing after it
        header + COOKIE + b"\xff",
        header + COOKIE + b"\x00" * 60,  # all PAD, no END
        b"\x02" + header[1:] + COOKIE + b"\xff",  # a BOOTREPLY sent to the server
    ]
    # Ranges written in the subnet: dhcpd's implicit pool denies dynamic BOOTP clients, so
    # "no dynamic bootp leases" for the requests, "not a BOOTREQUEST" for the reply; nothing
    # else and nothing written.
    plain = DhcpServer(
        parse_text("subnet 192.0.2.0 netmask 255.255.255.0 { range 192.0.2.10 192.0.2.20; }")
    )
    endpoint[0].server = plain
    ingest(endpoint, *bootp)
    drops = endpoint[0].counters.drops
    assert drops == {"no dynamic bootp leases": 5, "not a BOOTREQUEST": 1}
    assert endpoint[0].journal.pending == 0
    # With a dynamic-bootp range the same packets are served.
    srv = DhcpServer(
        parse_text(
            "subnet 192.0.2.0 netmask 255.255.255.0 { range dynamic-bootp 192.0.2.10 192.0.2.20; }"
        )
    )
    for data in bootp[:5]:
        out = served(srv, decode(data))
        assert out.reply is not None and out.reply.packet.yiaddr in srv.db.excluded | {
            A(f"192.0.2.{i}") for i in range(10, 21)
        }


# 5 -------------------------------------------------------------------------------------------


def test_cve_2010_3611_unspecified_or_unknown_relay_address(seed_server: DhcpServer) -> None:
    # v6: relay-forward with link-address ::. v4: giaddr 0.0.0.0 on a relayed packet (82
    # present, hops > 0) is a normal direct packet; an unknown giaddr is a counted drop.
    relayed_direct = request(1, mac(1), {82: b"\x01\x04eth0"})
    relayed_direct.hops = 3
    assert served(seed_server, relayed_direct).reply is not None
    for giaddr in ("198.51.100.1", "255.255.255.255", "127.0.0.1"):
        out = served(seed_server, request(1, mac(2), {82: b"\x01\x04eth0"}, giaddr=giaddr))
        assert out.reply is None and out.drop == "unknown network segment"
    assert seed_server.counters["drop.unknown network segment"] == 3


# 6 -------------------------------------------------------------------------------------------


class _NullEngine:
    """The link's engine, recording only whether any connection ever reached it."""

    name = "fo"

    def __init__(self) -> None:
        self.events: list[str] = []

    def connection_made(self, now: int) -> None:
        self.events.append("made")

    def connection_lost(self, now: int) -> None:
        self.events.append("lost")

    def receive_data(self, data: bytes, now: int) -> None:
        self.events.append("data")

    def data_to_send(self) -> bytes:
        return b""

    def close_reason(self) -> str | None:
        return None

    def get_timer(self) -> int | None:
        return None

    def handle_timer(self, now: int) -> None:
        pass

    def partner_down(self, now: int) -> None:
        pass

    def status(self) -> dict[str, object]:
        return {}

    def take_writes(self) -> tuple[list[Lease], list[FailoverStateRecord]]:
        return [], []

    def take_log(self) -> list[str]:
        return []


def test_cve_2010_3616_and_2016_2774_failover_port_strangers_and_connection_flood(
    tmp_path: Path,
) -> None:
    us, peer, stranger = "127.0.0.1", "127.0.0.2", "127.0.0.3"
    with socket.socket() as s:
        s.bind((us, 0))
        port = int(s.getsockname()[1])
    fo = FailoverPeer(name="fo", role="secondary", address=A(us), peer_address=A(peer),
                      port=port, peer_port=1)  # fmt: skip
    journal = LeaseJournal(str(tmp_path / "leases"), fsync=False)
    journal.load()
    engine = _NullEngine()
    timing = Timing(reconnect_after_failure=60.0, pending_timeout=30.0, max_pending=2)
    links = FailoverLinks([(engine, fo)], GroupCommit(journal), lambda _lines: None, timing=timing)

    async def body() -> None:
        links.start(asyncio.get_running_loop())
        listener = links.listeners[0]
        for _ in range(200):
            if listener.sock is not None:
                break
            await asyncio.sleep(0.01)
        # 2010: a non-peer connects (and sends nothing). Closed at once, no state at all.
        strangers = [
            await asyncio.open_connection(us, port, local_addr=(stranger, 0)) for _ in range(30)
        ]
        for r, w in strangers:
            assert await asyncio.wait_for(r.read(), 5) == b""
            w.close()
        assert listener.refused_foreign == 30
        # 2016: a flood from the peer's own address: at most max_pending are kept.
        flood = [await asyncio.open_connection(us, port, local_addr=(peer, 0)) for _ in range(40)]
        for _ in range(500):
            if links.links["fo"].counters.refused_pending_cap >= 38:
                break
            await asyncio.sleep(0.01)
        link = links.links["fo"]
        assert len(link.pending) <= 2
        assert link.counters.refused_pending_cap == 38
        assert engine.events == []  # no protocol state for any of them
        for _, w in flood:
            w.close()
        links.close()

    asyncio.run(asyncio.wait_for(body(), 30))


# 7 -------------------------------------------------------------------------------------------


def test_cve_2022_2929_fqdn_label_longer_than_63(seed_server: DhcpServer) -> None:
    long_label = b"\x05\x00\x00" + b"\x40" + b"a" * 64 + b"\x00"  # E flag, a 64-octet label
    long_name = b"\x05\x00\x00" + (b"\x3f" + b"a" * 63) * 5 + b"\x00"  # 320 octets
    pointer = b"\x05\x00\x00\x03www\xc0\x03"  # compression is not allowed in option 81
    for data, reason in (
        (long_label, "fqdn-label-too-long"),
        (long_name, "fqdn-too-long"),
        (pointer, "fqdn-label-too-long"),  # 0xc0 read as a length: over 63, refused
    ):
        with pytest.raises(MalformedPacket) as err:
            decode_fqdn(data)
        assert err.value.reason == reason, data
    # dhcpd ignores a bad option 81 and serves the client; repeated, nothing accumulates.
    for n in range(2000):
        served(seed_server, request(1, mac(n % 50), {81: long_label}, xid=n), now=T0 + n)
    assert seed_server.counters["tx.DHCPOFFER"] == 2000
    assert len(seed_server.db.offers) <= 50


# 8 -------------------------------------------------------------------------------------------


def test_cve_2022_2928_2018_5733_repeated_error_paths_keep_state_bounded(
    endpoint: tuple[DhcpEndpoint, _Port],
) -> None:
    srv = endpoint[0].server
    errors = [
        lambda n: request(3, mac(n), {50: A("192.0.2.150").packed, 54: A("192.0.2.99").packed}),
        lambda n: request(7, mac(n), ciaddr=f"10.{n >> 8 & 255}.{n & 255}.1"),
        lambda n: request(4, mac(n), {50: A(f"10.0.{n >> 8 & 255}.{n & 255}").packed}),
        lambda n: request(8, mac(n)),
        lambda n: request(1, mac(n), giaddr=f"203.0.{n >> 8 & 255}.{n & 255}"),
    ]
    for n in range(20_000):
        served(srv, errors[n % len(errors)](n), now=T0 + n // 100)
    malformed = [raw_packet(b"\x3d\x00\xff", hw=mac(n)) for n in range(5000)]
    ingest(endpoint, *malformed)
    assert len(srv.counters) < 40  # keys are reasons, never client data
    assert len(endpoint[0].counters.drops) == 1
    assert len(srv.db.offers) == 0 and endpoint[0].journal.pending == 0
    assert len(dhcp._addr_cache) <= dhcp._ADDR_CACHE_MAX  # interned addresses: capped
    for name in dir(srv):  # not vars(): a compiled DhcpServer (build_native.py) has no __dict__
        value = getattr(srv, name)
        if isinstance(value, dict | set | list):
            assert len(value) < 2000, f"server.{name} grew to {len(value)} entries"


# 9 -------------------------------------------------------------------------------------------


def test_cve_2021_25217_lease_file_hex_longer_than_1024_octets() -> None:
    ok = "lease 192.0.2.1 {\n  uid " + ":".join(["ab"] * 1024) + ";\n}\n"
    assert parse_leases(ok, "dhcpd.leases").leases[A("192.0.2.1")].uid == b"\xab" * 1024
    for line in (
        "  uid " + ":".join(["ab"] * 1025) + ";",
        '  uid "' + "\\377" * 1025 + '";',
        '  client-hostname "' + "x" * 1025 + '";',
        '  set foo = "' + "y" * 5000 + '";',
    ):
        with pytest.raises(LeaseFileError) as err:
            parse_leases("lease 192.0.2.1 {\n" + line + "\n}\n", "dhcpd.leases")
        assert (err.value.filename, err.value.line) == ("dhcpd.leases", 2)
        assert str(err.value).startswith("dhcpd.leases:2:")


# 10 ------------------------------------------------------------------------------------------


def test_cve_2007_5365_max_message_size_below_ip_minimum(
    seed_server: DhcpServer, endpoint: tuple[DhcpEndpoint, _Port]
) -> None:
    everything = bytes(range(1, 255))  # ask for every option
    for value in (0, 1, 100, 575):
        pkt = request(1, mac(value), {57: value.to_bytes(2, "big"), 55: everything})
        assert pkt.max_message_size == 576
        out = served(seed_server, pkt)
        assert out.reply is not None
        assert len(encode(out.reply.packet, max_size=pkt.max_message_size)) <= 576 - 28
    drops = ingest(endpoint, raw_packet(b"\x35\x01\x01\x39\x01\x00\xff"))
    assert drops == {"bad-max-message-size": 1}


# 11 ------------------------------------------------------------------------------------------


def test_cve_2017_14493_fixed_size_fields_reject_oversize(
    endpoint: tuple[DhcpEndpoint, _Port],
) -> None:
    good = encode(request(1))
    drops = ingest(endpoint, good[:2] + b"\x11" + good[3:], good[:2] + b"\xff" + good[3:])
    assert drops == {"hlen-too-big": 2}
    pkt = request(1)
    for field, size in (("chaddr", 17), ("sname", 65), ("file", 129)):
        setattr(pkt, field, bytes(size))
        with pytest.raises(FormatError, match=field):
            encode(pkt)
        pkt = request(1)
    with pytest.raises(LeaseFileError, match="longer than 16"):
        parse_leases(
            "lease 192.0.2.1 {\n  hardware ethernet " + ":".join(["01"] * 17) + ";\n}\n", "l"
        )


# 12 ------------------------------------------------------------------------------------------


def test_cve_2017_14494_option_length_past_the_end(endpoint: tuple[DhcpEndpoint, _Port]) -> None:
    drops = ingest(
        endpoint,
        raw_packet(b"\x35\x01\x01\x0c\x20abc"),  # host-name says 32 octets, 3 follow
        raw_packet(b"\x35\x01\x01\x0c"),  # a code without its length octet
    )
    assert drops == {"option-overrun": 2}
    # Overload pointing into a file field whose option runs past 128 octets.
    pkt = bytearray(encode(request(1)))
    pkt[108:111] = b"\x0c\xff\x41"  # option 12 of 255 octets at file[0]
    opts = b"\x35\x01\x01\x34\x01\x01\xff"
    with pytest.raises(MalformedPacket) as err:
        decode(bytes(pkt[:236]) + COOKIE + opts)
    assert err.value.reason == "option-overrun"
    # Failover: an option length past the message end closes the link.
    msg = struct.pack("!HBBII", 12 + 4 + 2, 9, 12, T0, 1) + struct.pack("!HH", 2, 100) + b"ab"
    with pytest.raises(FailoverProtocolError) as ferr:
        decode_message(msg)
    assert ferr.value.reason == "option-overrun"
    with pytest.raises(FormatError):
        decode_suboptions(b"\x01\x10eth0")


# 14 ------------------------------------------------------------------------------------------


def test_dnsmasq_9ad7492_option82_off_by_one_and_length_underflow(
    seed_server: DhcpServer,
) -> None:
    # Relay-agent information of length 0, 1 (a sub-option without its length) and with a
    # sub-option running past the option: no exception, and the reply echoes it unchanged.
    for agent in (b"", b"\x01", b"\x01\x05eth0", b"\x01\x04eth0\x02"):
        if agent:
            with pytest.raises(FormatError):
                decode_suboptions(agent)
        pkt = request(1, mac(len(agent)), {82: agent}, giaddr="192.0.2.254")
        out = served(seed_server, pkt)
        assert out.reply is not None
        assert out.reply.packet.options.get(82) == agent
    # `len - 2` with len < 2: fixed-size failover options shorter than their field.
    for code, length in ((2, 3), (2, 0), (3, 0), (3, 2), (6, 1)):  # address, status, cltt
        body = struct.pack("!HH", code, length) + bytes(length)
        msg = struct.pack("!HBBII", 12 + len(body), 3, 12, T0, 1) + body  # BNDUPD
        with pytest.raises(FailoverProtocolError) as err:
            decode_message(msg)
        assert err.value.reason == "option-size"


# 15 ------------------------------------------------------------------------------------------


def test_cve_2019_6472_6473_6474_long_client_id_fuzzed_hostname_bare_lease_rows(
    seed_server: DhcpServer,
) -> None:
    # 6472: the 255-octet client id of Forge's test_cve2019v4, and 510 octets (RFC 3396).
    for n, cid in enumerate((b"\x00" + b"\xaa" * 254, b"\x01" * 510), 1):
        lease = dora(seed_server, mac(n), {61: cid})
        assert lease.uid == cid and reread(lease).uid == cid
    # 6473: a host name "straight from a fuzzer".
    fuzzed = bytes(range(256))[::-1][:255]
    lease = dora(seed_server, mac(3), {12: fuzzed, 81: b"\x05\x00\x00" + fuzzed[:40]})
    assert reread(lease).address == lease.address
    # 6474: lease rows without hardware or uid load, and the server starts with them.
    bare = "lease 192.0.2.150 {\n  starts 3 2024/01/03 10:00:00;\n  binding state active;\n}\n"
    contents = parse_leases(bare * 3, "dhcpd.leases")
    srv = DhcpServer(parse_text(fuzzlib.SEED_CONFIG), leases=contents.leases.values())
    assert served(srv, request(1, mac(4))).reply is not None


# 16 ------------------------------------------------------------------------------------------


def test_cve_2025_40779_11232_unicast_without_subnet_and_empty_hostname(
    seed_server: DhcpServer,
) -> None:
    unicast = RxMeta("eth0", IFACE.addrs, A("203.0.113.9"), 68, unicast=True)
    for mtype, options, reason in (
        (3, {50: A("203.0.113.9").packed}, "unknown lease"),
        (3, {54: A("192.0.2.1").packed, 12: b"x"}, "unknown lease"),
        (8, {}, "unknown subnet"),
        (7, {}, "release of unknown lease"),
    ):
        out = served(seed_server, request(mtype, mac(5), options, ciaddr="203.0.113.9"), unicast)
        assert out.reply is None and out.drop == reason, (mtype, out.drop)
    # A host name that sanitises to nothing (NULs only): served, never echoed empty.
    lease = dora(seed_server, mac(6), {12: b"\x00\x00\x00"})
    assert not lease.client_hostname
    assert reread(lease).address == lease.address


# 17 ------------------------------------------------------------------------------------------


def test_cve_2026_3608_deeply_nested_control_json_and_config() -> None:
    bomb = ("{" + '"bogus": {' * 20_000 + "}" * 20_001).encode()
    with pytest.raises(ControlError, match="longer than"):
        parse_request(bomb)
    with pytest.raises(ControlError, match="nested deeper"):
        parse_request(bomb[:4000])
    for text in ("{" * 20_000, "group { " * 20_000, "if (" * 20_000):
        with pytest.raises(ConfigError) as err:
            parse_text(text, "dhcpd.conf")
        assert err.value.loc.file == "dhcpd.conf" and err.value.loc.line == 1


# 18 ------------------------------------------------------------------------------------------


def test_cve_2009_0692_2011_0997_oversized_subnet_mask_and_hostile_strings(
    seed_server: DhcpServer,
) -> None:
    # A client sending a 255-octet subnet-mask (the dhclient overflow) is served normally.
    lease = dora(seed_server, mac(7), {1: b"\xff" * 255})
    assert lease.address in {A(f"192.0.2.{i}") for i in range(100, 201)}
    with pytest.raises(ConfigError):
        parse_text("option subnet-mask 255.255.255.0.0;")
    # Option strings that would break a script or the lease file stay data: written
    # escaped or left out, and never turn into extra records when read back.
    evil = [b'x"; } lease 10.0.0.1 { binding state active; ', b"$(reboot)`id`\n}", b"a\\"]
    for n, name in enumerate(evil, 8):
        lease = dora(seed_server, mac(n), {12: name, 61: name})
        contents = parse_leases(format_lease(lease), "dhcpd.leases")
        assert list(contents.leases) == [lease.address]
        assert contents.leases[lease.address].uid == name
    assert all(b.binding_state is BindingState.ACTIVE for b in seed_server.leases() if b.uid)
