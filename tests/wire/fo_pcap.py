"""Tiny pcap + Ethernet + IPv4 + TCP reader for the failover golden vectors.

Enough for captures written by tcpdump/tshark on Ethernet: classic pcap (either byte
order, µs or ns), IPv4 without fragmentation, TCP with options. Each direction of each TCP
connection is reassembled by sequence number (duplicates and retransmissions collapse),
starting at the SYN's ISN + 1.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from tandem.lab.shared import VECTORS as SHARED_VECTORS

VECTORS = SHARED_VECTORS
FAILOVER_PCAP = VECTORS / "failover-tcp.pcap"

_FLAG_SYN = 0x02


@dataclass(frozen=True)
class Segment:
    src: tuple[str, int]
    dst: tuple[str, int]
    seq: int
    flags: int
    payload: bytes


@dataclass
class Stream:
    """One direction of one TCP connection."""

    src: tuple[str, int]
    dst: tuple[str, int]
    isn: int | None = None
    chunks: dict[int, bytes] = field(default_factory=dict)  # relative offset -> bytes

    def data(self) -> bytes:
        """Contiguous bytes from offset 0; a gap would be a capture loss (assert)."""
        out = bytearray()
        for offset in sorted(self.chunks):
            chunk = self.chunks[offset]
            if offset > len(out):
                raise AssertionError(f"gap in {self.src}->{self.dst} at {len(out)}")
            out += chunk[len(out) - offset :]
        return bytes(out)


def _ip(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def read_segments(path: Path) -> list[Segment]:
    data = path.read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError("not a classic pcap file")
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    if linktype != 1:
        raise ValueError(f"link type {linktype} is not Ethernet")
    record = struct.Struct(endian + "IIII")
    pos = 24
    segments = []
    while pos + record.size <= len(data):
        _, _, caplen, _ = record.unpack_from(data, pos)
        pos += record.size
        frame = data[pos : pos + caplen]
        pos += caplen
        if len(frame) < 14 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        if ip[9] != 6:  # not TCP
            continue
        tcp = ip[ihl:total]
        sport, dport, seq, _, off_flags = struct.unpack_from("!HHIIH", tcp, 0)
        doff = (off_flags >> 12) * 4
        segments.append(
            Segment(
                src=(_ip(ip[12:16]), sport),
                dst=(_ip(ip[16:20]), dport),
                seq=seq,
                flags=off_flags & 0x3F,
                payload=bytes(tcp[doff:]),
            )
        )
    return segments


def reassemble(segments: list[Segment]) -> list[Stream]:
    """Streams in order of their SYN; payload before a SYN is not expected in our vectors."""
    streams: dict[tuple[tuple[str, int], tuple[str, int]], Stream] = {}
    order: list[Stream] = []
    for seg in segments:
        key = (seg.src, seg.dst)
        if seg.flags & _FLAG_SYN:
            stream = Stream(seg.src, seg.dst, isn=seg.seq)
            streams[key] = stream  # a new connection reusing the 4-tuple replaces the old
            order.append(stream)
            continue
        stream_or_none = streams.get(key)
        if stream_or_none is None or stream_or_none.isn is None or not seg.payload:
            continue
        offset = (seg.seq - stream_or_none.isn - 1) % (1 << 32)
        stream_or_none.chunks.setdefault(offset, seg.payload)
    return [s for s in order if s.chunks]
