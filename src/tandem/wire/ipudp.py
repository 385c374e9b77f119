"""IPv4 + UDP (+ Ethernet) framing for the raw-socket paths.

dhcpd answers clients that have no address yet through a packet socket, so it
builds the IP and UDP headers itself; :func:`build_ip_udp` reproduces its
header (TOS low-delay 0x10, TTL 128, IP id 0, no fragmentation: common/packet.c
assemble_udp_ip_header) so our frames look like dhcpd's on the wire.

:func:`decode_ip_udp` is the CVE-2015-8605 guard: the IP header length, the IP
total length and the UDP length are all checked against what was actually
received before anything is sliced.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

from tandem.wire.errors import MalformedPacket

_IP = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
_ETH = struct.Struct("!6s6sH")
ETHERTYPE_IPV4 = 0x0800
IPPROTO_UDP = 17
IPTOS_LOWDELAY = 0x10


def _checksum(data: bytes, start: int = 0) -> int:
    """One's-complement sum folded to 16 bits (not yet inverted)."""
    if len(data) % 2:
        data += b"\x00"
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    total = start + sum(words)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _udp_checksum(src: bytes, dst: bytes, udp: bytes) -> int:
    pseudo = src + dst + struct.pack("!BBH", 0, IPPROTO_UDP, len(udp))
    return _checksum(pseudo + udp)


def decode_ip_udp(
    frame: bytes, *, verify_udp_checksum: bool = True
) -> tuple[IPv4Address, int, IPv4Address, int, bytes]:
    """Parse an IPv4 datagram carrying UDP; return (src, sport, dst, dport, payload).

    Bytes after the IP total length (Ethernet padding) are ignored. A UDP
    checksum of zero means "none" (RFC 768). Pass ``verify_udp_checksum=False``
    for sockets where the kernel may hand over partially checksummed frames
    (checksum offload on the local host). Raises :class:`MalformedPacket`.
    """
    n = len(frame)
    if n < 20:
        raise MalformedPacket("ip-header", f"{n} octets cannot hold an IPv4 header")
    vihl, _tos, total, _ident, frag, _ttl, proto, _csum, src, dst = _IP.unpack_from(frame, 0)
    if vihl >> 4 != 4:
        raise MalformedPacket("ip-header", f"IP version {vihl >> 4}")
    ihl = (vihl & 0x0F) * 4
    if ihl < 20 or ihl > n:
        raise MalformedPacket("ip-header", f"IP header length {ihl} with {n} octets received")
    if total < ihl or total > n:
        raise MalformedPacket("ip-length-mismatch", f"IP total length {total}, received {n}")
    if _checksum(frame[:ihl]) != 0xFFFF:
        raise MalformedPacket("ip-checksum", "bad IPv4 header checksum")
    if frag & 0x3FFF:
        raise MalformedPacket("ip-fragment", "fragmented datagram")
    if proto != IPPROTO_UDP:
        raise MalformedPacket("not-udp", f"IP protocol {proto}")
    if ihl + 8 > total:
        raise MalformedPacket("udp-length-mismatch", "no room for a UDP header")
    sport, dport, ulen, ucsum = _UDP.unpack_from(frame, ihl)
    if ulen < 8 or ihl + ulen > total:
        raise MalformedPacket(
            "udp-length-mismatch", f"UDP length {ulen} with {total - ihl} octets of IP payload"
        )
    udp = frame[ihl : ihl + ulen]
    if verify_udp_checksum and ucsum != 0 and _udp_checksum(src, dst, udp) != 0xFFFF:
        raise MalformedPacket("udp-checksum", "bad UDP checksum")
    return IPv4Address(src), sport, IPv4Address(dst), dport, udp[8:]


def build_ip_udp(
    src_ip: IPv4Address,
    src_port: int,
    dst_ip: IPv4Address,
    dst_port: int,
    payload: bytes,
    *,
    ttl: int = 128,
    tos: int = IPTOS_LOWDELAY,
) -> bytes:
    """IPv4 header (with checksum) + UDP header (with checksum) + payload."""
    ulen = 8 + len(payload)
    total = 20 + ulen
    if total > 0xFFFF:
        raise MalformedPacket("too-big", f"{total} octets do not fit in one IPv4 datagram")
    src = src_ip.packed
    dst = dst_ip.packed
    header = _IP.pack(0x45, tos, total, 0, 0, ttl, IPPROTO_UDP, 0, src, dst)
    ip_sum = ~_checksum(header) & 0xFFFF
    header = header[:10] + ip_sum.to_bytes(2, "big") + header[12:]
    udp = _UDP.pack(src_port, dst_port, ulen, 0) + payload
    udp_sum = ~_udp_checksum(src, dst, udp) & 0xFFFF
    if udp_sum == 0:
        udp_sum = 0xFFFF  # RFC 768: a computed zero is sent as all ones
    return header + udp[:6] + udp_sum.to_bytes(2, "big") + payload


def build_ethernet(
    dst_mac: bytes, src_mac: bytes, payload: bytes, ethertype: int = ETHERTYPE_IPV4
) -> bytes:
    """An Ethernet II frame (no FCS; the NIC appends it)."""
    if len(dst_mac) != 6 or len(src_mac) != 6:
        raise MalformedPacket("bad-mac", "Ethernet addresses are 6 octets")
    return _ETH.pack(dst_mac, src_mac, ethertype) + payload
