"""The ICMP edge of ping-check: one raw socket, echo requests out, echo replies matched.

dhcpd (common/icmp.c) opens one raw ICMP socket at start-up, before it drops root, sends an
echo request to an address before offering it, and takes any echo reply from that address as
"in use". ``Pinger`` does the same with an identifier and sequence number of its own: a reply
counts only if it comes from the pinged address and carries the identifier and sequence of the
request still waiting for it (the socket also sees the replies to every other ping on the
host). Each ping's timer is a ``loop.call_later``; the socket has its own reader on the event
loop, never read on the DHCP per-packet path. A kernel filter (``ICMP_FILTER``) keeps all but
echo replies off the socket. What cannot be an echo reply of ours is ignored and counted.

``done(address, answered)`` reports each ping once: answered, or timed out.

A socket that cannot be opened (no CAP_NET_RAW) is logged with dhcpd's line, ``unable to create
icmp socket: ...``, and, as in dhcpd (whose icmp_echorequest then sends nothing and reports
success), OFFERs still wait ``ping-timeout`` but nothing is pinged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv4Address

__all__ = ["Pinger", "echo_reply_of", "echo_request", "icmp_checksum", "open_icmp_socket"]

ICMP_ECHOREPLY = 0
ICMP_ECHO = 8
SOL_RAW = 255  # <linux/socket.h>; the socket module does not export these two
ICMP_FILTER = 1  # <linux/icmp.h>: a bit per ICMP type to drop
#: Datagrams read per readable event; the rest wait for the next one.
MAX_READ = 64
#: The echo request's size: dhcpd sends a ``struct icmp`` (28 bytes: 8 of header, 20 zero).
PAYLOAD = bytes(20)
#: Send buffer: a ping to an address nobody holds waits in the kernel for ARP (about 3 s) and
#: is charged to the socket meanwhile; at a thousand new clients a second the default buffer
#: (~200 KiB) is full and the next pings fail with ENOBUFS.
SNDBUF = 4 * 1024 * 1024
#: Seconds between two "icmp_echorequest" error lines (each failure is counted).
SEND_ERROR_LOG_INTERVAL = 1.0

_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence

log = logging.getLogger("tandem")


def icmp_checksum(data: bytes) -> int:
    """RFC 1071: the one's complement of the one's complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes = PAYLOAD) -> bytes:
    """An ICMP echo request (type 8) with its checksum."""
    body = _HEADER.pack(ICMP_ECHO, 0, 0, ident, seq) + payload
    return _HEADER.pack(ICMP_ECHO, 0, icmp_checksum(body), ident, seq) + payload


def echo_reply_of(datagram: bytes) -> tuple[int, int] | str:
    """(identifier, sequence) of an echo reply as a raw socket receives it (IPv4 header
    first), or why it is not one: "short", "bad header", "checksum", "not an echo reply"."""
    if len(datagram) < 20:
        return "short"
    ihl = (datagram[0] & 0x0F) * 4
    if datagram[0] >> 4 != 4 or ihl < 20:
        return "bad header"
    icmp = datagram[ihl:]
    if len(icmp) < _HEADER.size:
        return "short"
    if icmp_checksum(icmp) != 0:
        return "checksum"
    kind, code, _, ident, seq = _HEADER.unpack_from(icmp)
    if kind != ICMP_ECHOREPLY or code != 0:
        return "not an echo reply"
    return ident, seq


def open_icmp_socket() -> socket.socket:
    """The raw ICMP socket (needs CAP_NET_RAW: open it before dropping root)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        sock.setblocking(False)
        # Only echo replies reach us (every other type's bit set: dropped by the kernel).
        mask = 0xFFFFFFFF & ~(1 << ICMP_ECHOREPLY)
        sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("=I", mask))
        with contextlib.suppress(OSError):  # capped by net.core.wmem_max
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
    except OSError:
        sock.close()
        raise
    return sock


class Pinger:
    """Pings addresses for ping-check and reports each one answered or timed out."""

    def __init__(
        self,
        sock: socket.socket | None,
        done: Callable[[IPv4Address, bool], None],
        *,
        ident: int | None = None,
    ) -> None:
        self.sock = sock
        self.done = done
        self.ident = (os.getpid() if ident is None else ident) & 0xFFFF
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        #: address -> (sequence number, timer) of each ping still waiting.
        self._waiting: dict[int, tuple[int, asyncio.TimerHandle]] = {}
        #: sent, answered, timed-out, send-error, and what was ignored, by reason.
        self.counters: Counter[str] = Counter()
        self._error_logged = 0.0  # time.monotonic() of the last send-error line

    @classmethod
    def open(cls, done: Callable[[IPv4Address, bool], None]) -> Pinger:
        """A pinger on a new socket; without one (logged as dhcpd logs it) if that fails."""
        try:
            sock: socket.socket | None = open_icmp_socket()
        except OSError as exc:
            log.error("unable to create icmp socket: %s", exc.strerror)
            sock = None
        return cls(sock, done)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        if self.sock is not None:
            loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        for _, timer in self._waiting.values():
            timer.cancel()
        self._waiting.clear()
        if self.sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def ping(self, address: IPv4Address, timeout_ms: int) -> None:
        """Send an echo request to ``address``; ``done`` follows within ``timeout_ms``."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("Pinger.ping before start")
        a = int(address)
        old = self._waiting.pop(a, None)
        if old is not None:
            old[1].cancel()
        self._seq = seq = (self._seq + 1) & 0xFFFF
        if self.sock is not None:
            try:
                self.sock.sendto(echo_request(self.ident, seq), (str(address), 0))
                self.counters["sent"] += 1
            except OSError as exc:  # dhcpd logs it and waits all the same
                self.counters["send-error"] += 1
                now = time.monotonic()
                if now - self._error_logged >= SEND_ERROR_LOG_INTERVAL:
                    self._error_logged = now
                    log.error("icmp_echorequest %s: %s", address, exc.strerror)
        timer = loop.call_later(timeout_ms / 1000.0, self._timed_out, a, seq)
        self._waiting[a] = (seq, timer)

    def _timed_out(self, a: int, seq: int) -> None:
        entry = self._waiting.get(a)
        if entry is None or entry[0] != seq:
            return
        del self._waiting[a]
        self.counters["timed-out"] += 1
        self.done(IPv4Address(a), False)

    def _readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        for _ in range(MAX_READ):
            try:
                data, addr = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.counters[f"recv-error-{exc.errno}"] += 1
                return
            self.receive(data, addr[0])

    def receive(self, datagram: bytes, source: str) -> None:
        """One datagram from the socket (IPv4 header first), sent by ``source``."""
        got = echo_reply_of(datagram)
        if isinstance(got, str):
            self.counters["ignored: " + got] += 1
            return
        ident, seq = got
        if ident != self.ident:
            self.counters["ignored: not ours"] += 1  # another program's ping on this host
            return
        try:
            a = int(IPv4Address(source))
        except ValueError:
            self.counters["ignored: bad source"] += 1
            return
        entry = self._waiting.get(a)
        if entry is None or entry[0] != seq:
            self.counters["ignored: late or unexpected"] += 1
            return
        del self._waiting[a]
        entry[1].cancel()
        self.counters["answered"] += 1
        self.done(IPv4Address(a), True)
