"""Micro-benchmark of the packet codec: ``.venv/bin/python tests/wire/bench_wire_codec.py``.

A relayed DISCOVER carrying 53/61/57/60/12/55/82 (the mix used in
reference/ecosystem.md section 4) is decoded and encoded; a dhcpd-shaped ACK
is encoded. Not collected by pytest.
"""

from __future__ import annotations

import timeit
from ipaddress import IPv4Address

from tandem.wire import dhcp

Z = IPv4Address(0)
MAC = bytes.fromhex("020000000101") + bytes(10)
DISCOVER = dhcp.Packet(
    1, 1, 6, 1, 0x12345678, 0, 0x8000, Z, Z, Z, IPv4Address("10.0.0.1"), MAC,
    options={
        53: b"\x01",
        61: b"\x01" + MAC[:6],
        57: b"\x05\xdc",
        60: b"MSFT 5.0",
        12: b"host-1",
        55: bytes([1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252]),
        82: b"\x01\x04eth0\x02\x06" + MAC[:6],
    },
)  # fmt: skip
ACK = dhcp.Packet(
    2, 1, 6, 0, 0x12345678, 0, 0, Z, IPv4Address("192.0.2.150"), Z, Z, MAC,
    options={
        53: b"\x05", 54: bytes([192, 0, 2, 1]), 51: b"\x00\x00\x0e\x10",
        1: b"\xff\xff\xff\x00", 28: bytes([192, 0, 2, 255]), 2: b"\x00\x00\x00\x02",
        3: bytes([192, 0, 2, 5]), 42: bytes([192, 0, 2, 6]),
    },
)  # fmt: skip


def main(n: int = 200_000) -> None:
    raw = dhcp.encode(DISCOVER)
    parsed = dhcp.decode(raw)
    dec = min(timeit.repeat(lambda: dhcp.decode(raw), number=n, repeat=3)) / n * 1e6
    enc = min(timeit.repeat(lambda: dhcp.encode(parsed), number=n, repeat=3)) / n * 1e6
    ack = min(timeit.repeat(lambda: dhcp.encode(ACK), number=n, repeat=3)) / n * 1e6
    print(f"decode DISCOVER {dec:.2f} us, encode DISCOVER {enc:.2f} us, encode ACK {ack:.2f} us")
    print(f"decode DISCOVER + encode ACK: {dec + ack:.2f} us -> {1e6 / (dec + ack):,.0f} pkt/s")


if __name__ == "__main__":
    main()
