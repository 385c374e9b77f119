"""auto-partner-down's probes: while a failover link is down, is the partner's DHCP service
still answering clients? Asked over the client network, never the failover port.

The probe is a DHCPINFORM (RFC 2131 §3.4) with ciaddr = this server's own address on the way
to the partner, sent by unicast from that address's port 68 to the partner's port 67, on a
socket of its own (not the server's port-67 sockets, so the per-packet path never sees it).
Why this message (docs/auto-partner-down-io.md has the measurements):

* ISC dhcpd 4.4 answers it (server/dhcp.c ``dhcpinform``) in every failover state: it looks
  at no lease, allocates nothing and writes nothing; the DHCPACK goes to ciaddr:68
  ("If ciaddr is not zero, send the packet there always"), i.e. back to this socket. Its log
  shows ``DHCPINFORM from 192.0.2.2 via eth0`` and ``DHCPACK to 192.0.2.2 (mac) via eth0``.
* A Tandem partner answers it the same way (core/inform.py, no failover check, no lease).
* Both answer only where they are ``authoritative;`` for the prober's subnet (dhcpd's rule,
  kept): without it the partner stays silent and the probe cannot tell it is alive. The
  runtime warns at start-up when the prober's own subnet is not authoritative (one-config
  pairs share the statement).
* The relayed form (ciaddr 0, giaddr = own address) would bring the answer to port 67, into
  the server's own sockets: not used.

An answer counts when it is a BOOTREPLY DHCPACK with the xid of one of the last probes,
coming from the target (source address or server identifier). Each is reported to
``on_answer(sent, now)`` (monotonic milliseconds: when that probe left, and now); what it
means is the core's business (core/failover/autopd.py: ``probe_answered``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv4Address

from tandem.core import codes
from tandem.wire import dhcp
from tandem.wire.errors import MalformedPacket

#: Seconds between two probes while the link is down (a few per auto-partner-down N).
PROBE_INTERVAL = 2.0
#: Probes whose answer still counts (a late answer to an older probe is as good).
OUTSTANDING = 8
VENDOR_CLASS = b"tandem-probe"  # option 60: what the partner's admin sees in a capture

log = logging.getLogger("tandem")


def source_for(target: IPv4Address, port: int) -> IPv4Address:
    """The local address the kernel would send from to reach ``target`` (no packet sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as scratch:
        scratch.connect((str(target), port))
        return IPv4Address(scratch.getsockname()[0])


def inform_packet(xid: int, source: IPv4Address, hwaddr: bytes = bytes(6)) -> bytes:
    """The probe: a DHCPINFORM from ``source`` (ciaddr), asking for the subnet mask only."""
    packet = dhcp.Packet(
        op=1,
        htype=1,
        hlen=6,
        hops=0,
        xid=xid,
        secs=0,
        flags=0,
        ciaddr=source,
        yiaddr=dhcp.ipv4(0),
        siaddr=dhcp.ipv4(0),
        giaddr=dhcp.ipv4(0),
        chaddr=hwaddr[:6].ljust(16, b"\x00"),
        options={
            codes.MESSAGE_TYPE: bytes([codes.DHCPINFORM]),
            codes.PARAMETER_REQUEST_LIST: bytes([1]),
            60: VENDOR_CLASS,
        },
    )
    return dhcp.encode(packet)


class Prober:
    """One relationship's probe socket: ``send`` a probe, answers reported to ``on_answer``."""

    def __init__(
        self,
        target: IPv4Address,
        on_answer: Callable[[int, int], None],
        *,
        server_port: int = 67,
        source: IPv4Address | None = None,
        hwaddr: bytes = bytes(6),
        clock: Callable[[], int] = lambda: time.monotonic_ns() // 1_000_000,
    ) -> None:
        self.target = target
        self.server_port = server_port
        self.on_answer = on_answer
        self.clock = clock
        self.source = source
        self.hwaddr = hwaddr
        self.sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._xids: dict[int, int] = {}  # xid -> send time (ms), the last OUTSTANDING
        self.sent = 0
        self.answered = 0
        self.drops: Counter[str] = Counter()
        self.last_sent: int | None = None
        self.last_answer: int | None = None
        self.error: str | None = None

    def open(self) -> None:
        """Bind (own address, server port + 1) now: port 68 needs root, gone after -user."""
        try:
            if self.source is None:
                self.source = source_for(self.target, self.server_port)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((str(self.source), self.server_port + 1))
            sock.setblocking(False)
        except OSError as exc:
            self.error = f"probe socket for {self.target}: {exc.strerror or exc}"
            log.error("%s (auto-partner-down sees no probe answers)", self.error)
            return
        self.sock = sock

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        if self.sock is not None:
            loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        if self.sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    def send(self) -> bool:
        """One probe to the target; False when it could not leave (counted)."""
        if self.sock is None or self.source is None:
            self.drops["no-socket"] += 1
            return False
        xid = int.from_bytes(os.urandom(4), "big")
        now = self.clock()
        try:
            self.sock.sendto(
                inform_packet(xid, self.source, self.hwaddr), (str(self.target), self.server_port)
            )
        except OSError as exc:
            self.drops[f"send-error-{exc.errno}"] += 1
            return False
        self._xids[xid] = now
        while len(self._xids) > OUTSTANDING:
            del self._xids[next(iter(self._xids))]
        self.sent += 1
        self.last_sent = now
        return True

    def _readable(self) -> None:
        sock = self.sock
        while sock is not None:
            try:
                data, addr = sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP port unreachable surfacing, and the like
                self.drops[f"recv-error-{exc.errno}"] += 1
                return
            self.receive(data, IPv4Address(addr[0]))

    def receive(self, data: bytes, source: IPv4Address) -> bool:
        """One datagram on the probe socket: an answer to a probe (reported) or a drop."""
        try:
            packet = dhcp.decode(data)
        except MalformedPacket as exc:
            self.drops[exc.reason] += 1
            return False
        reason = self._mismatch(packet, source)
        if reason is not None:
            self.drops[reason] += 1
            return False
        sent = self._xids.pop(packet.xid)
        now = self.clock()
        self.answered += 1
        self.last_answer = now
        self.on_answer(sent, now)
        return True

    def _mismatch(self, packet: dhcp.Packet, source: IPv4Address) -> str | None:
        if packet.op != 2 or packet.message_type != codes.DHCPACK:
            return "not-an-ack"
        if packet.xid not in self._xids:
            return "unknown-xid"
        server_id = packet.options.get(codes.SERVER_IDENTIFIER)
        if source != self.target and server_id != self.target.packed:
            return "not-the-partner"
        return None

    def status(self) -> dict[str, object]:
        now = self.clock()
        return {
            "target": str(self.target),
            "source": None if self.source is None else str(self.source),
            "sent": self.sent,
            "answered": self.answered,
            "last_sent_ms_ago": None if self.last_sent is None else now - self.last_sent,
            "last_answer_ms_ago": None if self.last_answer is None else now - self.last_answer,
            "dropped": dict(self.drops),
            "error": self.error,
        }


__all__ = ["PROBE_INTERVAL", "Prober", "inform_packet", "source_for"]
