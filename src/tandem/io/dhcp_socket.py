"""The DHCP datagram edge: sockets in, batches through the core, replies out behind the commit.

Measured, not guessed: one asyncio callback per datagram collapsed under load, so each readable
event drains the socket with non-blocking reads until EAGAIN (up to ``MAX_BATCH``), hands every
packet to the pure core, and queues the replies behind the lease records the batch appended.

Durability is the server's ``GroupCommit`` (tandem.io.commit), shared with the failover links:
after each batch the records it appended are written and fdatasync'ed once, then its replies
go out. A lease is on disk before its DHCPACK leaves; a reply that needs nothing durable still
waits its turn so replies never overtake.

Sockets, per served interface:

* a UDP socket on 0.0.0.0:67 bound to the device (SO_BINDTODEVICE), with IP_PKTINFO so the core
  knows whether a request was broadcast or unicast to us;
* an AF_PACKET socket, opened on first use, for RFC 2131's "unicast to yiaddr/chaddr" case: the
  client has no address yet, so the reply is a whole Ethernet frame and no ARP is needed.

ping-check: an outcome that asks for a ping (``Outcome.ping``) goes to the ``Pinger``
(tandem.io.ping, its own socket and reader); when it answers or times out, the core's
``ping_answered``/``ping_timed_out`` outcome is delivered like a batch's: records appended,
one commit, then the OFFER (if any), then the failover links. Without a pinger (tests, tools)
a ping times out at once, in the batch.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface

from tandem.core.server import DhcpServer, Outcome, Reply, RxMeta
from tandem.core.types import EventAction, PingRequest
from tandem.io.commit import GroupCommit
from tandem.io.netif import Interface
from tandem.io.ping import Pinger
from tandem.wire import dhcp
from tandem.wire.errors import MalformedPacket

IP_PKTINFO = 8  # Linux <netinet/in.h>; the socket module does not export it
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
ETH_P_IP = 0x0800
# Packets read per readable event before they are handled. Smaller batches let a finished
# sync's replies go out sooner (its completion runs between batches): at 9000 DORA/s in
# bench/perf.py's lab, 512 lost 34-44 % of exchanges and 128 lost 8-9 % (same build).
MAX_BATCH = 128
RCVBUF = 8 * 1024 * 1024
MALFORMED_LOG_INTERVAL = 1.0  # seconds between two "Dropped malformed" lines of one reason
#: dhcpd's per-packet log lines: written at once, unless the last write was less than this many
#: seconds ago; then with whatever else arrives until then (or once LOG_FLUSH_LINES wait). A
#: write(2) per batch (a few packets under moderate load; a failover secondary sees every
#: broadcast) cost ~3 µs a packet; this caps it at 500 writes a second. Short, so a line still
#: shows up a few milliseconds at most after its packet (tests and `tail -f` read them).
LOG_MIN_INTERVAL = 0.002
LOG_FLUSH_LINES = 1024
_PKTINFO = struct.Struct("=I4s4s")  # ifindex, spec_dst, addr (header destination)
_IPPROTO_IP = socket.IPPROTO_IP

log = logging.getLogger("tandem")

# (payload, sent to us by unicast, (source ip, source port))
_Datagram = tuple[bytes, bool, tuple[str, int]]


@dataclass(slots=True)
class _Port:
    iface: Interface
    sock: socket.socket
    raw: socket.socket | None = None
    # RxMeta by (source, unicast): frozen, so one instance serves every packet of a client
    # or relay (parsing the source text and building the dataclass cost ~2 µs a packet).
    metas: dict[tuple[tuple[str, int], bool], RxMeta] = field(default_factory=dict)
    # Header destinations that are not unicast to us: limited and subnet broadcasts.
    broadcasts: frozenset[bytes] = frozenset()

    def __post_init__(self) -> None:
        self.broadcasts = frozenset(
            [b"\xff\xff\xff\xff", *(a.network.broadcast_address.packed for a in self.iface.addrs)]
        )


@dataclass(slots=True)
class Counters:
    received: int = 0
    replied: int = 0
    batches: int = 0
    drops: Counter[str] = field(default_factory=Counter)


class DhcpEndpoint:
    """Serves one ``DhcpServer`` on a set of interfaces; its replies wait for ``commit``."""

    def __init__(
        self,
        server: DhcpServer,
        commit: GroupCommit,
        interfaces: list[Interface],
        *,
        server_port: int = 67,
        emit: Callable[[list[str]], None] | None = None,
        clock: Callable[[], float] = time.time,
        after_commit: Callable[[], None] | None = None,
        events: Callable[[list[EventAction]], None] | None = None,
    ) -> None:
        self.server = server
        self.commit = commit
        self.journal = commit.journal
        self.server_port = server_port
        self.client_port = server_port + 1
        self.counters = Counters()
        self._emit = emit or _emit_stderr
        self._clock = clock
        # Failover: once a batch is durable, the engines may send the BNDUPDs it caused.
        self._after_commit = after_commit
        #: Lease events (io.events.EventRunner.submit): queued behind their leases' records.
        self.events = events
        self._ports: dict[int, _Port] = {}
        for iface in interfaces:
            self._ports[iface.index] = _Port(iface, self._open_udp(iface))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drop_logged: dict[str, float] = {}  # reason -> monotonic time of its last line
        # Log lines of the batches handled since the last write (see LOG_MIN_INTERVAL).
        self._lines: list[str] = []
        self._log_timer: asyncio.TimerHandle | None = None
        self._last_emit = 0.0  # time.monotonic() of the last write of log lines
        #: ping-check's ICMP edge (``attach_pinger``); None: pings time out at once.
        self.pinger: Pinger | None = None
        # address -> (port, max message size) of each OFFER waiting for its ping
        self._pinging: dict[int, tuple[_Port, int]] = {}

    # --- lifecycle ---------------------------------------------------------------------

    def _open_udp(self, iface: Interface) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, iface.name.encode())
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, RCVBUF)
        except OSError:  # pragma: no cover - capped by net.core.rmem_max
            pass
        sock.bind(("0.0.0.0", self.server_port))
        sock.setblocking(False)
        return sock

    def attach_pinger(self, pinger: Pinger) -> None:
        """Ping before OFFERs through ``pinger`` (its ``done`` must be ``ping_done``)."""
        self.pinger = pinger

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        tune_for_serving()
        for port in self._ports.values():
            loop.add_reader(port.sock.fileno(), self._drain, port)
        if self.pinger is not None:
            self.pinger.start(loop)

    def close(self) -> None:
        """Write the log lines still waiting and close the sockets (the commit is the
        runtime's: ``GroupCommit.close`` after this one)."""
        self._emit_lines()
        for port in self._ports.values():
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(port.sock.fileno())
            port.sock.close()
            if port.raw is not None:
                port.raw.close()
        if self.pinger is not None:
            self.pinger.close()

    # --- the hot path ------------------------------------------------------------------

    def _drain(self, port: _Port) -> None:
        sock = port.sock
        recvmsg = sock.recvmsg
        anc_size = socket.CMSG_SPACE(_PKTINFO.size)
        broadcasts = port.broadcasts
        received: list[_Datagram] = []
        for _ in range(MAX_BATCH):
            try:
                data, ancdata, _flags, addr = recvmsg(4096, anc_size)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP errors surfacing on the socket
                self.counters.drops[f"recv-error-{exc.errno}"] += 1
                break
            unicast = False
            for level, kind, cdata in ancdata:
                if level == _IPPROTO_IP and kind == IP_PKTINFO and len(cdata) >= 12:
                    # in_pktinfo: ifindex, spec_dst, addr (the header destination).
                    unicast = cdata[8:12] not in broadcasts
            received.append((data, unicast, addr))
        if not received:
            return
        self.process_batch(port, received)

    def process_batch(
        self, port: _Port, received: list[tuple[bytes, bool, tuple[str, int]]]
    ) -> None:
        """Decode, handle, commit once, then reply: the order that makes ACKs durable."""
        counters = self.counters
        counters.batches += 1
        counters.received += len(received)
        now = int(self._clock())
        server = self.server
        journal = self.journal
        iface = port.iface
        metas = port.metas
        commit = self.commit
        send = self._send
        lines: list[str] = []
        wrote = False
        for data, unicast, addr in received:
            try:
                packet = dhcp.decode(data)
            except MalformedPacket as exc:
                counters.drops[exc.reason] += 1
                self._log_malformed(exc.reason, addr[0], iface.name)
                continue
            meta = metas.get((addr, unicast))
            if meta is None:
                meta = _rx_meta(port, addr, unicast)
            try:
                outcome = server.handle(packet, meta, now)
                if outcome.ping is not None:
                    outcome = self._ping(port, outcome, outcome.ping, packet.max_message_size, now)
            except Exception:  # a bug must cost one packet, never the server
                log.exception("internal error handling a packet from %s", addr[0])
                counters.drops["internal-error"] += 1
                continue
            lines.extend(outcome.log)
            if outcome.writes:
                wrote = True
                for lease in outcome.writes:
                    journal.append(lease)
            if outcome.drop is not None:
                counters.drops[outcome.drop] += 1
            if outcome.reply is not None:
                commit.defer(functools.partial(send, port, outcome.reply, packet.max_message_size))
            if outcome.events is not None and self.events is not None:
                commit.defer(functools.partial(self.events, outcome.events))
        if lines:
            self._lines += lines
        commit.flush()
        # The batch's lines go out (or get their timer) once its sync is done if that ran
        # inline, and always before the failover links are pumped, so they precede the lines
        # of the BNDUPDs the batch caused.
        self._emit_soon()
        if wrote and self._after_commit is not None:
            # Only a batch that changed leases can have queued failover updates. A failover
            # secondary at split 256 drops every broadcast it sees: pumping its links after
            # each of those batches cost ~5 µs of Python per lease for nothing.
            commit.after_durable(self._after_commit)

    # --- ping-check ----------------------------------------------------------------------

    def _ping(
        self, port: _Port, out: Outcome, req: PingRequest, max_size: int, now: int
    ) -> Outcome:
        """Start the ping an outcome asks for; without a pinger, time it out at once."""
        pinger = self.pinger
        if pinger is None:
            more = self.server.ping_timed_out(req.address, now=now)
            out.log += more.log
            out.writes += more.writes
            out.reply = more.reply
            return out
        self._pinging[int(req.address)] = (port, max_size)
        pinger.ping(req.address, req.timeout_ms)
        return out

    def ping_done(self, address: IPv4Address, answered: bool) -> None:
        """The pinger's report: the core decides, and its outcome goes out like a batch's."""
        entry = self._pinging.pop(int(address), None)
        if entry is None:
            return
        port, max_size = entry
        now = int(self._clock())
        server = self.server
        try:
            if answered:
                out = server.ping_answered(address, now=now)
            else:
                out = server.ping_timed_out(address, now=now)
        except Exception:  # as for a packet: one offer lost, never the server
            log.exception("internal error after the ping of %s", address)
            self.counters.drops["internal-error"] += 1
            return
        if out.log:
            self._lines += out.log
        for lease in out.writes:
            self.journal.append(lease)
        if out.drop is not None:
            self.counters.drops[out.drop] += 1
        commit = self.commit
        if out.reply is not None:
            commit.defer(functools.partial(self._send, port, out.reply, max_size))
        commit.flush()
        self._emit_soon()
        if out.writes and self._after_commit is not None:
            commit.after_durable(self._after_commit)

    def _emit_soon(self) -> None:
        """Write the pending log lines now, or LOG_MIN_INTERVAL after the last write."""
        if not self._lines or self._log_timer is not None:
            return  # nothing to write, or a write is already due
        loop = self._loop
        wait = self._last_emit + LOG_MIN_INTERVAL - time.monotonic()
        if loop is None or loop.is_closed() or wait <= 0 or len(self._lines) >= LOG_FLUSH_LINES:
            self._emit_lines()
        else:
            self._log_timer = loop.call_later(wait, self._emit_lines)

    def _emit_lines(self) -> None:
        if self._log_timer is not None:
            self._log_timer.cancel()
            self._log_timer = None
        lines = self._lines
        if lines:
            self._lines = []
            self._last_emit = time.monotonic()
            self._emit(lines)

    def _log_malformed(self, reason: str, source: str, iface: str) -> None:
        """One line per drop reason per second at most, like dhcpd's "Dropped ..." lines.

        A flood of bad packets must not become a flood of log lines (the counter keeps the
        exact number, and each line carries it), yet an operator should see that it happens.
        """
        now = time.monotonic()
        last = self._drop_logged.get(reason)
        if last is not None and now - last < MALFORMED_LOG_INTERVAL:
            return
        self._drop_logged[reason] = now
        self._lines.append(
            f"Dropped malformed DHCP packet from {source} via {iface}: {reason} "
            f"({self.counters.drops[reason]} dropped so far)"
        )
        self._emit_lines()  # with the lines still waiting (LOG_MIN_INTERVAL), in order

    # --- replies ----------------------------------------------------------------------

    def _send(self, port: _Port, reply: Reply, max_size: int) -> None:
        payload = dhcp.encode(reply.packet, max_size=max_size)
        try:
            if reply.dest_mac is not None:
                self._send_raw(port, reply, payload)
            else:  # str() of the core's (interned) addresses is cached, broadcast included
                port.sock.sendto(payload, (str(reply.dest_ip), reply.dest_port))
        except OSError as exc:
            self.counters.drops[f"send-error-{exc.errno}"] += 1
            return
        self.counters.replied += 1

    def open_packet_sockets(self) -> None:
        """Open every port's packet socket now, not on first use: it needs CAP_NET_RAW, which
        a server that drops root (``-user``, tandem.io.privileges) no longer has by then."""
        for port in self._ports.values():
            _open_raw(port)

    def _send_raw(self, port: _Port, reply: Reply, payload: bytes) -> None:
        if port.raw is None:
            _open_raw(port)
        assert port.raw is not None and reply.dest_mac is not None
        datagram = dhcp.build_ip_udp(
            reply.server_ip, self.server_port, reply.dest_ip, reply.dest_port, payload
        )
        # SOCK_DGRAM packet sockets build the Ethernet header from the address we give.
        port.raw.sendto(datagram, (port.iface.name, ETH_P_IP, 0, 0, reply.dest_mac))

    # --- timers --------------------------------------------------------------------------

    def tick(self) -> None:
        """Once a second: expiry in the core, persisted like any other change."""
        now = int(self._clock())
        changed = self.server.tick(now)
        for lease in changed:
            self.journal.append(lease)
        if changed:
            self.commit.flush()
        if self.events is not None:
            events = self.server.take_events()  # expiries: run once their leases are durable
            if events:
                self.commit.after_durable(functools.partial(self.events, events))
        if self._after_commit is not None:
            self.commit.after_durable(self._after_commit)


def _open_raw(port: _Port) -> None:
    if port.raw is None:
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        raw.bind((port.iface.name, ETH_P_IP))
        raw.setblocking(False)
        port.raw = raw


_RX_META_MAX = 4096


def _rx_meta(port: _Port, addr: tuple[str, int], unicast: bool) -> RxMeta:
    metas = port.metas
    if len(metas) >= _RX_META_MAX:
        metas.clear()
    iface = port.iface
    meta = metas[(addr, unicast)] = RxMeta(
        interface=iface.name,
        if_addrs=iface.addrs,
        src_ip=dhcp.ipv4(IPv4Address(addr[0]).packed),
        src_port=addr[1],
        unicast=unicast,
    )
    return meta


#: Cyclic-GC thresholds while serving (CPython's default is 700, 10, 10). Measured with
#: bench/core_bench.py: the default young-generation collections cost ~9 % of a DORA.
GC_THRESHOLDS = (50_000, 20, 100)
#: How long the busy event loop may keep the GIL from the fsync worker (CPython: 5 ms).
#: The worker needs it back to report a finished sync; every millisecond it waits is a
#: millisecond more that the chunk's replies wait.
SWITCH_INTERVAL = 0.0005


def tune_for_serving() -> None:
    """Process-wide interpreter settings for a long-running server (called by ``start``).

    Cyclic GC: everything alive now (configuration, the lease database loaded at start-up)
    moves to the permanent generation, so full collections never traverse it again, and
    the young generation is collected every 50,000 allocations instead of 700. Reference
    counting still frees everything that is not in a cycle. GIL: see SWITCH_INTERVAL.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL)


def _emit_stderr(lines: list[str]) -> None:
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def interface_served(iface: Interface, networks: list[IPv4Interface]) -> bool:
    """True if the interface has an address inside one of the configured subnets."""
    return any(a.ip in n.network for a in iface.addrs for n in networks)
