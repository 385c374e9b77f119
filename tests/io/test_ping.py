"""tandem.io.ping without a socket: the echo codec, and how replies are matched and counted.
(The same on a real raw socket in a namespace: tests/lab/test_ping_check.py.)"""

from __future__ import annotations

import asyncio
import struct
from ipaddress import IPv4Address

from tandem.io.ping import Pinger, echo_reply_of, echo_request, icmp_checksum

A = IPv4Address


def ip_header(src: str, payload_len: int, ihl: int = 5) -> bytes:
    return struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + payload_len, 0, 0, 64, 1, 0, A(src).packed,
        A("192.0.2.1").packed,
    ) + bytes(4 * (ihl - 5))  # fmt: skip


def reply(ident: int, seq: int, *, kind: int = 0, cksum: int | None = None) -> bytes:
    body = struct.pack("!BBHHH", kind, 0, 0, ident, seq) + bytes(20)
    c = icmp_checksum(body) if cksum is None else cksum
    return struct.pack("!BBHHH", kind, 0, c, ident, seq) + bytes(20)


def test_echo_request_is_a_valid_icmp_echo() -> None:
    req = echo_request(0x1234, 7)
    assert len(req) == 28  # dhcpd's struct icmp
    assert req[0] == 8 and req[1] == 0
    assert icmp_checksum(req) == 0
    assert struct.unpack("!HH", req[4:8]) == (0x1234, 7)


def test_echo_reply_of_accepts_replies_and_names_the_rest() -> None:
    good = reply(0x1234, 7)
    assert echo_reply_of(ip_header("192.0.2.9", len(good)) + good) == (0x1234, 7)
    assert echo_reply_of(ip_header("192.0.2.9", len(good), ihl=6) + good) == (0x1234, 7)
    assert echo_reply_of(b"\x45" * 10) == "short"
    assert echo_reply_of(ip_header("192.0.2.9", 4) + good[:4]) == "short"
    bad_ihl = bytearray(ip_header("192.0.2.9", len(good)) + good)
    bad_ihl[0] = 0x43
    assert echo_reply_of(bytes(bad_ihl)) == "bad header"
    wrong = reply(0x1234, 7, cksum=0xBEEF)
    assert echo_reply_of(ip_header("192.0.2.9", len(wrong)) + wrong) == "checksum"
    request = echo_request(0x1234, 7)
    assert echo_reply_of(ip_header("192.0.2.9", 28) + request) == "not an echo reply"


def test_pinger_matches_source_identifier_and_sequence() -> None:
    loop = asyncio.new_event_loop()
    try:
        done: list[tuple[str, bool]] = []
        pinger = Pinger(None, lambda a, ok: done.append((str(a), ok)), ident=0x4242)
        pinger.start(loop)
        pinger.ping(A("192.0.2.9"), 5000)
        pinger.ping(A("192.0.2.10"), 50)
        seq9 = pinger._waiting[int(A("192.0.2.9"))][0]

        def rx(src: str, ident: int, seq: int) -> None:
            data = reply(ident, seq)
            pinger.receive(ip_header(src, len(data)) + data, src)

        rx("192.0.2.9", 0x4243, seq9)  # another identifier: someone else's ping
        rx("192.0.2.9", 0x4242, seq9 + 1)  # another sequence
        rx("192.0.2.11", 0x4242, seq9)  # from an address we did not ping
        assert done == []
        rx("192.0.2.9", 0x4242, seq9)
        assert done == [("192.0.2.9", True)]
        rx("192.0.2.9", 0x4242, seq9)  # a duplicate reply: reported once only
        loop.run_until_complete(asyncio.sleep(0.2))  # 192.0.2.10's 50 ms are over
        assert done == [("192.0.2.9", True), ("192.0.2.10", False)]
        assert pinger.waiting == 0
        c = pinger.counters
        assert c["answered"] == 1 and c["timed-out"] == 1
        assert c["ignored: not ours"] == 1
        assert c["ignored: late or unexpected"] == 3
        assert c["sent"] == 0  # no socket: nothing sent, the timers run all the same (dhcpd)
    finally:
        loop.close()


def test_pinging_again_replaces_the_waiting_ping() -> None:
    loop = asyncio.new_event_loop()
    try:
        done: list[tuple[str, bool]] = []
        pinger = Pinger(None, lambda a, ok: done.append((str(a), ok)), ident=1)
        pinger.start(loop)
        pinger.ping(A("192.0.2.9"), 30)
        pinger.ping(A("192.0.2.9"), 30)
        loop.run_until_complete(asyncio.sleep(0.15))
        assert done == [("192.0.2.9", False)]
    finally:
        loop.close()
