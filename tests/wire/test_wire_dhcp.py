"""Packet codec: real dhcpd packets, layout rules, malformed inputs and properties."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.wire import dhcp, optformat
from tandem.wire.dhcp import Packet, build_ethernet, build_ip_udp, decode, decode_ip_udp, encode
from tandem.wire.errors import MalformedPacket
from tandem.wire.options import (
    BROADCAST_ADDRESS,
    DHCP_MESSAGE_TYPE,
    LEASE_TIME,
    NTP_SERVERS,
    RELAY_AGENT_INFO,
    ROUTERS,
    SERVER_IDENTIFIER,
    SUBNET_MASK,
    TIME_OFFSET,
    MessageType,
)

A = IPv4Address
Z = A(0)
MAC = bytes.fromhex("020000000101")
COOKIE = dhcp.MAGIC_COOKIE


def _udp_payload(frame: bytes) -> bytes:
    return decode_ip_udp(frame[14:])[4]


def _raw(header_extra: bytes = b"", *, hlen: int = 6, options: bytes = b"\xff") -> bytes:
    """A DISCOVER-shaped packet with hand-written option bytes."""
    head = struct.pack("!BBBBIHHIIII", 1, 1, hlen, 0, 0x1234, 0, 0, 0, 0, 0, 0)
    head += MAC.ljust(16, b"\x00") + bytes(64) + bytes(128)
    return head + COOKIE + options + header_extra


def _packet(**options: bytes) -> Packet:
    return Packet(
        1, 1, 6, 0, 0x1234, 0, 0, Z, Z, Z, Z, MAC + bytes(10), options={
            int(k[1:]): v for k, v in options.items()
        }
    )  # fmt: skip


# --------------------------------------------------------------------------
# real dhcpd traffic (dhcp-udp.pcap from the reference failover pair)

DHCP_FRAMES = [1, 2, 3, 4, 7, 9, 10, 11, 12, 13, 14]


@pytest.mark.parametrize("number", DHCP_FRAMES)
def test_capture_decodes_and_reencodes_byte_identically(
    dhcp_frames: dict[int, bytes], number: int
) -> None:
    payload = _udp_payload(dhcp_frames[number])
    p = decode(payload)
    assert p.message_type is not None
    assert encode(p) == payload


def test_capture_offer_fields(dhcp_frames: dict[int, bytes]) -> None:
    p = decode(_udp_payload(dhcp_frames[2]))
    assert p.op == 2 and p.xid == 0x3EEDA50D and p.hlen == 6
    assert p.message_type == MessageType.OFFER
    assert p.yiaddr == A("192.0.2.150") and p.hwaddr == MAC
    assert list(p.options) == [53, 54, 51, 1, 28, 2, 3, 42]
    assert optformat.decode("IA", p.options[ROUTERS]) == [A("192.0.2.5")]
    assert optformat.decode("l", p.options[TIME_OFFSET]) == [2]
    assert optformat.to_text("IA", p.options[NTP_SERVERS]) == "192.0.2.6"


@pytest.mark.parametrize(("number", "mtype"), [(2, MessageType.OFFER), (4, MessageType.ACK)])
def test_reply_built_from_config_values_matches_dhcpd(
    dhcp_frames: dict[int, bytes], number: int, mtype: MessageType
) -> None:
    """Build the reply from the seed config's values (not from the capture) and compare
    the whole frame: Ethernet, IP and UDP headers and the DHCP payload."""
    frame = dhcp_frames[number]
    request = decode(_udp_payload(dhcp_frames[number - 1]))
    enc = optformat.encode
    server = A("192.0.2.1")
    reply = Packet(
        op=2, htype=1, hlen=6, hops=0, xid=request.xid, secs=0, flags=0,
        ciaddr=Z, yiaddr=A("192.0.2.150"), siaddr=Z, giaddr=Z, chaddr=request.chaddr,
        options={
            DHCP_MESSAGE_TYPE: enc("B", [mtype]),
            SERVER_IDENTIFIER: enc("I", [server]),
            LEASE_TIME: enc("L", [3600]),
            SUBNET_MASK: enc("I", [A("255.255.255.0")]),
            BROADCAST_ADDRESS: enc("I", [A("192.0.2.255")]),
            TIME_OFFSET: enc("l", [2]),
            ROUTERS: enc("IA", [A("192.0.2.5")]),
            NTP_SERVERS: enc("IA", [A("192.0.2.6")]),
        },
    )  # fmt: skip
    payload = encode(reply)
    assert payload == _udp_payload(frame)
    ip = build_ip_udp(server, 67, A("192.0.2.150"), 68, payload)
    assert build_ethernet(frame[0:6], frame[6:12], ip) == frame


def test_decode_ip_udp_of_capture(dhcp_frames: dict[int, bytes]) -> None:
    src, sport, dst, dport, payload = decode_ip_udp(dhcp_frames[1][14:])
    assert (src, sport, dst, dport) == (Z, 68, A("255.255.255.255"), 67)
    assert len(payload) == 300


# --------------------------------------------------------------------------
# layout rules


def test_order_53_54_rest_82_last_and_padding() -> None:
    p = _packet(o82=b"\x01\x02ab", o3=b"\x0a\x00\x00\x01", o54=b"\xc0\x00\x02\x01", o53=b"\x05")
    raw = encode(p)
    assert len(raw) == dhcp.BOOTP_MIN_LEN
    assert raw[240:] .startswith(
        bytes.fromhex("350105" "3604c0000201" "03040a000001" "52040102" "6162" "ff")
    )  # fmt: skip
    assert set(raw[240 + 22 :]) == {0}


def test_long_option_is_split_and_joined() -> None:
    value = bytes(range(256)) * 2 + b"xyz"  # 515 octets
    p = _packet(o53=b"\x05", o43=value)
    raw = encode(p, max_size=1500)
    opts = raw[240:]
    assert opts[3:5] == bytes((43, 255)) and opts[260:262] == bytes((43, 255))
    assert opts[517:519] == bytes((43, 5))
    assert decode(raw).options[43] == value


def test_overload_into_file_then_sname() -> None:
    # 8 options of 52 octets: 5 fit the 312-octet field (with 52 and END), 2 the file, 1 sname
    big = {f"o{c}": bytes([c]) * 50 for c in range(200, 208)}
    p = _packet(o53=b"\x05", **big)
    raw = encode(p)
    assert len(raw) <= 548
    q = decode(raw)
    assert q.options == p.options
    assert raw[108:110] == b"\xcd\x32" and raw[44:46] == b"\xcf\x32"  # 205 in file, 207 sname
    # option 52 is on the wire, the consumed fields read back as zeros
    assert b"\x34\x01\x03" in raw[240:]
    assert q.file == bytes(128) and q.sname == bytes(64)


def test_overload_not_used_when_file_is_taken_drops_lowest_priority() -> None:
    big = {f"o{c}": bytes([c]) * 50 for c in range(200, 208)}
    p = _packet(o53=b"\x05", **big, o1=b"\xff\xff\xff\x00")
    p.file = b"pxelinux.0".ljust(128, b"\x00")
    p.sname = b"tftp".ljust(64, b"\x00")
    q = decode(encode(p))
    assert q.file == p.file and q.sname == p.sname
    # 205-207 do not fit; the small, later option 1 still does
    assert list(q.options) == [53, 200, 201, 202, 203, 204, 1]


def test_bigger_max_size_keeps_everything_in_the_options_field() -> None:
    big = {f"o{c}": bytes([c]) * 100 for c in range(200, 205)}
    p = _packet(o53=b"\x05", **big)
    raw = encode(p, max_size=1500)
    assert b"\x34\x01" not in raw[240:260]
    assert decode(raw).options == p.options
    assert encode(p, max_size=100) == encode(p)  # below 576 means 576


def test_agent_option_is_echoed_outside_the_client_budget() -> None:
    filler = {f"o{c}": bytes([c]) * 100 for c in range(200, 203)}
    agent = b"\x01\x10" + b"c" * 16 + b"\x02\x10" + b"r" * 16
    p = _packet(o53=b"\x05", **filler, o82=agent)
    p.file = b"boot".ljust(128, b"\x00")
    p.sname = b"s".ljust(64, b"\x00")
    raw = encode(p)
    q = decode(raw)
    assert q.options[RELAY_AGENT_INFO] == agent
    assert list(q.options)[-1] == RELAY_AGENT_INFO
    assert len(raw) - 240 - 1 - len(agent) - 2 <= 312 - 4 - 1


def test_bootp_reply_without_options_has_cookie_and_end() -> None:
    p = _packet()
    raw = encode(p)
    assert raw[236:241] == COOKIE + b"\xff" and len(raw) == 300
    assert decode(raw).options == {}


def test_properties() -> None:
    p = _packet(o53=b"\x03", o61=b"\x01" + MAC, o50=b"\xc0\x00\x02\x96", o57=b"\x02\x00")
    p.flags = 0x8000
    assert p.message_type == 3 and p.client_id == b"\x01" + MAC
    assert p.requested_address == A("192.0.2.150") and p.broadcast and p.hwaddr == MAC
    assert p.max_message_size == 576  # 512 clamped up
    p.options[57] = b"\x05\xdc"
    assert p.max_message_size == 1500
    del p.options[57]
    assert p.max_message_size == 576 and not p.is_bootp


# --------------------------------------------------------------------------
# malformed packets (reference/ecosystem.md section 6)


def _reason(data: bytes) -> str:
    with pytest.raises(MalformedPacket) as info:
        decode(data)
    return info.value.reason


def test_truncated_header() -> None:
    assert _reason(_raw()[:235]) == "short-header"
    assert _reason(b"") == "short-header"


def test_truncated_cookie() -> None:
    assert _reason(_raw()[:238]) == "bad-cookie"


def test_bootp_without_cookie_is_valid() -> None:
    raw = _raw()
    bootp = raw[:236] + bytes(64)  # RFC 951 vendor area, no cookie
    p = decode(bootp)
    assert p.options == {} and p.is_bootp and p.message_type is None
    assert decode(raw[:236]).options == {}


def test_hlen_too_big() -> None:
    assert _reason(_raw(hlen=17)) == "hlen-too-big"
    assert decode(_raw(hlen=16)).hlen == 16


def test_zero_length_client_identifier() -> None:
    assert _reason(_raw(options=b"\x35\x01\x01\x3d\x00\xff")) == "zero-length-client-id"
    assert decode(_raw(options=b"\x3d\x01\x01\xff")).client_id == b"\x01"


@pytest.mark.parametrize(
    "options",
    [
        b"\x35\x01\x01\x0c\x05ab",  # declared 5, 2 present
        b"\x35\x01\x01\x0c",  # code with no length octet
        b"\x35\x05\x01",
    ],
)
def test_option_past_the_end(options: bytes) -> None:
    assert _reason(_raw(options=options)) == "option-overrun"


def test_option_past_the_end_of_file_area() -> None:
    head = bytearray(_raw(options=b"\x35\x01\x01\x34\x01\x01\xff"))
    head[108 + 126] = 12
    head[108 + 127] = 9  # host-name in file, runs 9 octets past the field
    assert _reason(bytes(head)) == "option-overrun"


def test_overload_loop_and_bad_overload() -> None:
    raw = bytearray(_raw(options=b"\x35\x01\x01\x34\x01\x01\xff"))
    raw[108:111] = b"\x34\x01\x02"  # option 52 inside the file field
    assert _reason(bytes(raw)) == "overload-loop"
    assert _reason(_raw(options=b"\x34\x01\x04\xff")) == "bad-overload"
    assert _reason(_raw(options=b"\x34\x00\xff")) == "bad-overload"
    assert _reason(_raw(options=b"\x34\x01\x01\x34\x01\x01\xff")) == "bad-overload"


def test_overload_is_followed_once() -> None:
    raw = bytearray(_raw(options=b"\x35\x01\x01\x34\x01\x03\xff"))
    raw[108:113] = b"\x0c\x03abc"  # host-name in file
    raw[44:49] = b"\x0f\x03xyz"  # domain-name in sname
    p = decode(bytes(raw))
    assert p.options == {53: b"\x01", 12: b"abc", 15: b"xyz"}
    assert p.file == bytes(128) and p.sname == bytes(64)


def test_max_message_size_below_576_is_clamped_and_bad_length_dropped() -> None:
    p = decode(_raw(options=b"\x35\x01\x01\x39\x02\x00\x40\xff"))
    assert p.max_message_size == 576
    assert _reason(_raw(options=b"\x39\x01\x40\xff")) == "bad-max-message-size"


def test_len_minus_two_underflow() -> None:
    """Length octet 0 or 1 where a 2-octet body is expected must not slice backwards."""
    assert _reason(_raw(options=b"\x39\x00\xff")) == "bad-max-message-size"
    p = decode(_raw(options=b"\x52\x00\xff"))  # empty option 82 is kept as is
    assert p.options[82] == b""


def test_empty_host_name_is_ignored() -> None:
    assert 12 not in decode(_raw(options=b"\x0c\x00\xff")).options


def test_rfc3396_concatenation() -> None:
    p = decode(_raw(options=b"\x0c\x02ab\x35\x01\x01\x0c\x02cd\xff"))
    assert p.options[12] == b"abcd" and list(p.options) == [12, 53]


def test_options_without_end_are_accepted() -> None:
    assert decode(_raw(options=b"\x35\x01\x01")).message_type == 1


def test_udp_length_mismatch_on_raw_path(dhcp_frames: dict[int, bytes]) -> None:
    ip = bytearray(dhcp_frames[1][14:])
    bad = bytearray(ip)
    bad[24:26] = (len(ip) - 20 + 50).to_bytes(2, "big")  # UDP length beyond the datagram
    with pytest.raises(MalformedPacket) as info:
        decode_ip_udp(bytes(bad), verify_udp_checksum=False)
    assert info.value.reason == "udp-length-mismatch"
    bad[24:26] = (4).to_bytes(2, "big")  # shorter than a UDP header
    with pytest.raises(MalformedPacket) as info:
        decode_ip_udp(bytes(bad), verify_udp_checksum=False)
    assert info.value.reason == "udp-length-mismatch"
    with pytest.raises(MalformedPacket) as info:
        decode_ip_udp(bytes(ip[:200]))  # IP total length says more than we have
    assert info.value.reason == "ip-length-mismatch"
    corrupt = bytearray(ip)
    corrupt[0] = 0x4F  # IHL 60 > what a valid header checksum covers
    with pytest.raises(MalformedPacket):
        decode_ip_udp(bytes(corrupt))
    flipped = bytearray(ip)
    flipped[-1] ^= 0xFF
    with pytest.raises(MalformedPacket) as info:
        decode_ip_udp(bytes(flipped))
    assert info.value.reason == "udp-checksum"
    assert decode_ip_udp(bytes(ip) + b"\x00" * 20)[4] == bytes(ip[28:])  # Ethernet padding


# --------------------------------------------------------------------------
# properties

_addr = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
_codes = st.integers(1, 254).filter(lambda c: c not in (52, 12, 57, 61))
_options = st.dictionaries(_codes, st.binary(max_size=300), max_size=8)


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    opts = draw(_options)
    if draw(st.booleans()):
        opts[61] = draw(st.binary(min_size=1, max_size=20))
    if draw(st.booleans()):
        opts[57] = draw(st.binary(min_size=2, max_size=2))
    return Packet(
        op=draw(st.integers(0, 255)),
        htype=draw(st.integers(0, 255)),
        hlen=draw(st.integers(0, 16)),
        hops=draw(st.integers(0, 255)),
        xid=draw(st.integers(0, 2**32 - 1)),
        secs=draw(st.integers(0, 2**16 - 1)),
        flags=draw(st.integers(0, 2**16 - 1)),
        ciaddr=draw(_addr),
        yiaddr=draw(_addr),
        siaddr=draw(_addr),
        giaddr=draw(_addr),
        chaddr=draw(st.binary(min_size=16, max_size=16)),
        sname=draw(st.sampled_from([bytes(64), b"srv".ljust(64, b"\x00")])),
        file=draw(st.sampled_from([bytes(128), b"boot.img".ljust(128, b"\x00")])),
        options=opts,
    )


@settings(max_examples=300, deadline=None)
@given(p=packets())
def test_round_trip_random_packets(p: Packet) -> None:
    raw = encode(p, max_size=65535)
    assert decode(raw) == p
    assert encode(decode(raw), max_size=65535) == raw


@settings(max_examples=300, deadline=None)
@given(p=packets())
def test_small_budget_keeps_a_subset_byte_for_byte(p: Packet) -> None:
    raw = encode(p)
    assert len(raw) <= 548 + sum(
        len(v) + 2 * (len(v) // 255 + 1) for k, v in p.options.items() if k == 82
    )
    q = decode(raw)
    for code, value in q.options.items():
        assert p.options[code] == value


@settings(max_examples=500, deadline=None)
@given(blob=st.binary(min_size=0, max_size=600))
def test_random_bytes_raise_only_malformed_packet(blob: bytes) -> None:
    try:
        p = decode(blob)
    except MalformedPacket:
        return
    assert decode(encode(p, max_size=65535)).options == p.options


@settings(max_examples=500, deadline=None)
@given(
    tail=st.binary(max_size=400),
    hlen=st.integers(0, 255),
    file=st.binary(min_size=128, max_size=128),
    sname=st.binary(min_size=64, max_size=64),
)
def test_random_options_after_a_valid_header(
    tail: bytes, hlen: int, file: bytes, sname: bytes
) -> None:
    head = struct.pack("!BBBBIHHIIII", 1, 1, hlen, 0, 1, 0, 0, 0, 0, 0, 0) + bytes(16)
    blob = head + sname + file + COOKIE + tail
    try:
        p = decode(blob)
    except MalformedPacket:
        return
    assert decode(encode(p, max_size=65535)).options == p.options


@settings(max_examples=300, deadline=None)
@given(blob=st.binary(max_size=120))
def test_ip_udp_random_bytes_raise_only_malformed_packet(blob: bytes) -> None:
    try:
        result = decode_ip_udp(b"\x45" + blob)
    except MalformedPacket:
        return
    assert len(result[4]) <= len(blob)


@settings(max_examples=200, deadline=None)
@given(src=_addr, dst=_addr, sport=st.integers(0, 65535), dport=st.integers(0, 65535),
       payload=st.binary(max_size=600))  # fmt: skip
def test_ip_udp_round_trip(
    src: IPv4Address, dst: IPv4Address, sport: int, dport: int, payload: bytes
) -> None:
    assert decode_ip_udp(build_ip_udp(src, sport, dst, dport, payload)) == (
        src, sport, dst, dport, payload
    )  # fmt: skip
