"""Fixtures for the wire tests: the dhcpd pair's DHCP capture, read with a tiny pcap reader."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tandem.lab.shared import VECTORS as SHARED_VECTORS

VECTORS = SHARED_VECTORS
_PCAP_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")


def read_pcap(path: Path) -> list[bytes]:
    """Frames of a classic little-endian microsecond pcap (what tcpdump/tshark wrote here)."""
    data = path.read_bytes()
    magic, _vmaj, _vmin, _tz, _sig, _snap, linktype = _PCAP_HEADER.unpack_from(data, 0)
    assert magic == 0xA1B2C3D4, f"unexpected pcap magic {magic:#x}"
    assert linktype == 1, "expected Ethernet frames"
    frames = []
    pos = _PCAP_HEADER.size
    while pos < len(data):
        _sec, _usec, incl, _orig = _RECORD.unpack_from(data, pos)
        pos += _RECORD.size
        frames.append(data[pos : pos + incl])
        pos += incl
    return frames


@pytest.fixture(scope="session")
def dhcp_frames() -> dict[int, bytes]:
    """Frame number (1-based, as in dhcp-udp-summary.txt) -> Ethernet frame."""
    return dict(enumerate(read_pcap(VECTORS / "dhcp-udp.pcap"), start=1))
