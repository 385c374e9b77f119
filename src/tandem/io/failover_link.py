"""A failover link: one relationship's TCP connection around its sans-IO engine.

The link owns the engine of one ``failover peer`` relationship and at most one *attached*
connection; tandem.io.failover_listen accepts and dials the connections and hands them over
(``accepted``, ``dialled``). What ISC dhcpd 4.4 does with them, and therefore what a peer of it
must put up with (failover-isc.md §1, §6, §14): the primary sends CONNECT on every new
connection, whoever opened it; the secondary waits for CONNECT; one established link per
relationship, a second one is closed. How that maps onto one engine, which only knows *one*
connection:

* as primary, a new connection (either direction) is *attached* to the engine at once (the
  engine queues CONNECT); another connection while one is attached is closed;
* as secondary, new connections stay *pending* (no engine state) until one delivers bytes,
  i.e. the primary's CONNECT; that one is attached, the others are closed. This is ISC's
  "first CONNECT wins, the second gets reject 7" without teaching the engine about two
  connections, and it settles the race of both sides dialling at once the same way on both
  ends. Pending connections are capped and time out after 15 s (the link-startup timer), so a
  silent or slow peer cannot hold them; once attached, the engine's own timers close a link
  that never completes its handshake or goes quiet.

Durability order: whatever the engine wants persisted (``take_writes``) is appended to the
shared lease journal and the bytes wait for the server's ``GroupCommit`` (fsync) *before*
``data_to_send`` goes out, so a BNDACK or a state change never reaches the peer ahead of the
disk. If the commit fails, nothing is sent and the link is aborted: the peer retransmits
un-acked updates on the next link.

One exception, measured (issue 3: balancing a fresh 60,000-address pair took 20-30 s, two
syncs in series per window of max-unacked-updates BNDUPDs): when the engine says that what
it releases does not depend on the records it returned (``output_needs_commit``: a read of
BNDACKs, whose bookkeeping a crash may lose, the lease is then simply sent again) and no
earlier send of this link still waits for a sync, the bytes go at once and those records are
committed behind them. "No earlier send waits" means every earlier ``after_durable`` action
of the link has run, so every record appended before it is on disk, including the one each
queued BNDUPD describes (an update is queued only by a barrier whose send went through
``after_durable``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

from tandem.config.model import FailoverPeer
from tandem.core.lease import FailoverStateRecord, Lease
from tandem.io.commit import GroupCommit

__all__ = ["Engine", "FailoverLink", "LinkCounters", "Timing"]

log = logging.getLogger("tandem")

READ_SIZE = 64 * 1024  #: bytes per recv: bounded, and a failover message is at most 2048
WRITE_HIGH_WATER = 1 << 20  #: stop reading from a peer that does not read our replies
LAZY_COMMIT_AFTER = 0.2  #: seconds: records no send depends on (see ``_commit_soon``)


class Engine(Protocol):
    """What the link needs from ``tandem.core.failover.FailoverEngine`` (sans-IO)."""

    name: str

    def connection_made(self, now: int) -> None: ...
    def connection_lost(self, now: int) -> None: ...
    def receive_data(self, data: bytes, now: int) -> None: ...
    def data_to_send(self) -> bytes: ...
    def close_reason(self) -> str | None: ...
    def get_timer(self) -> int | None: ...
    def handle_timer(self, now: int) -> None: ...
    def partner_down(self, now: int) -> None: ...
    def shutdown(self, now: int) -> bool: ...
    def handover_done(self) -> bool: ...
    def handed_over(self) -> bool: ...
    def status(self) -> dict[str, object]: ...
    def take_writes(self) -> tuple[list[Lease], list[FailoverStateRecord]]: ...
    def take_log(self) -> list[str]: ...


class Reporter(Protocol):
    """auto-partner-down's driver (io/autopd.py): told after every engine call, before the
    writes are taken (its rule may move the engine to PARTNER-DOWN or fence it), shown in
    ``status``, and the way the operator's partner-down goes when it is attached."""

    def engine_called(self) -> None: ...
    def operator_partner_down(self) -> None: ...
    def status(self) -> dict[str, object]: ...


@dataclass(frozen=True, slots=True)
class Timing:
    """ISC's cadence (failover-isc.md §1, §6); tests shrink it."""

    reconnect_after_drop: float = 5.0
    reconnect_after_failure: float = 90.0
    connect_timeout: float = 15.0
    pending_timeout: float = 15.0  #: link start-up: no CONNECT within 15 s -> close
    listen_retry: float = 90.0
    max_pending: int = 4  #: simultaneous not-yet-attached connections per relationship


@dataclass(slots=True)
class LinkCounters:
    """Per relationship; reported by the control socket's ``status``."""

    dials: int = 0
    dial_failures: int = 0
    accepted: int = 0
    attached: int = 0
    lost: int = 0
    closed_by_engine: int = 0
    refused_duplicate: int = 0  #: a second connection while one is attached
    refused_pending_cap: int = 0
    pending_timeouts: int = 0
    journal_errors: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    bytes_discarded: int = 0  #: engine output with no link to carry it


Emit = Callable[[list[str]], None]
Clock = Callable[[], float]


class _Conn(asyncio.BufferedProtocol):
    """One TCP connection of a relationship: a fixed read buffer, flow control, no parsing."""

    def __init__(self, link: FailoverLink, outgoing: bool) -> None:
        self.link = link
        self.outgoing = outgoing
        self.transport: asyncio.Transport | None = None
        self.closing = False
        self.lost = False
        self.doomed = False  # the engine asked to close it: feed it nothing more
        self.pending_timer: asyncio.TimerHandle | None = None
        self._buf = bytearray(READ_SIZE)
        self._view = memoryview(self._buf)

    # asyncio callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.link._made(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        if not self.closing and not self.doomed:
            self.link._data(self, self._view[:nbytes].tobytes())  # one copy, not two

    def eof_received(self) -> bool:
        return False  # a half-closed failover link is a closed one

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = self.lost = True
        self.link._lost(self)

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    # used by the link --------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    def close(self) -> None:
        """Flush what is buffered, then close (asyncio's close does exactly that)."""
        if not self.closing and self.transport is not None:
            self.closing = True
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closing = True
            self.transport.abort()


class FailoverLink:
    """One relationship: its engine, at most one attached connection, the engine's timer.

    Its bytes leave through ``commit`` (the server's ``GroupCommit``), after the records
    they depend on. Dialling and listening are tandem.io.failover_listen's; the dialer hears
    of an attached and of a lost connection through ``on_attached`` and ``on_lost``.
    """

    def __init__(
        self,
        engine: Engine,
        peer: FailoverPeer,
        commit: GroupCommit,
        emit: Emit,
        *,
        timing: Timing = Timing(),
        clock: Clock = time.time,
    ) -> None:
        self.engine = engine
        self.peer = peer
        self.name = peer.name
        self.commit = commit
        self.journal = commit.journal
        self.timing = timing
        self.counters = LinkCounters()
        self._emit = emit
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self.attached: _Conn | None = None
        self.pending: list[_Conn] = []
        #: A connection was attached (the dialer stops waiting to redial).
        self.on_attached: Callable[[], None] = _nothing
        #: The attached connection was lost while the link is open (the dialer redials).
        self.on_lost: Callable[[], None] = _nothing
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: int | None = None
        #: auto-partner-down's driver (io/autopd.py), shown in ``status``; None when off.
        self.autopd: Reporter | None = None
        self._last_fired: int | None = None
        self._wrapping = 0  # sockets on their way into a _Conn
        self._issued = 0  # service() rounds handed to after_durable, and delivered
        self._delivered = 0
        self._closed = False
        self._lazy: asyncio.TimerHandle | None = None  # see _commit_soon
        self._finishing: _Conn | None = None  # see finish()

    # --- lifecycle ----------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Flush start-up writes and log lines, arm the engine timer."""
        self._loop = loop
        self.service()

    def close(self) -> None:
        self._closed = True
        for handle in (self._timer, self._lazy):
            if handle is not None:
                handle.cancel()
        if self._lazy is not None:
            self._lazy = None
            self.commit.after_durable(_nothing)
        for conn in [*self.pending, *([self.attached] if self.attached else [])]:
            conn.abort()

    @property
    def closed(self) -> bool:
        return self._closed

    def _now(self) -> int:
        return int(self._clock())

    # --- connections ------------------------------------------------------------------

    def accepted(self, sock: socket.socket) -> None:
        """An inbound connection whose source address is this relationship's peer."""
        assert self._loop is not None
        self.counters.accepted += 1
        if self.attached is not None and self.peer.role == "primary":
            # Cheapest refusal: never build a protocol object for it.
            self.counters.refused_duplicate += 1
            sock.close()
            return
        if self.peer.role == "secondary" and self.candidates() >= self.timing.max_pending:
            self.counters.refused_pending_cap += 1
            sock.close()
            return
        self._wrapping += 1
        self._loop.create_task(self._wrap(sock, outgoing=False))

    async def dialled(self, sock: socket.socket) -> None:
        """A connection the dialer opened; refused if one is attached meanwhile."""
        if self._closed or self.attached is not None:
            self.counters.refused_duplicate += 1
            sock.close()
            return
        self._wrapping += 1
        await self._wrap(sock, outgoing=True)

    def candidates(self) -> int:
        """Connections that may still be attached: pending ones and those being wrapped."""
        return len(self.pending) + self._wrapping

    async def _wrap(self, sock: socket.socket, outgoing: bool) -> None:
        """Hand a connected socket to asyncio; ``_made`` decides its fate."""
        assert self._loop is not None
        try:
            if self._closed:
                sock.close()
                return
            await self._loop.connect_accepted_socket(lambda: _Conn(self, outgoing), sock)
        except OSError:
            sock.close()
        finally:
            self._wrapping -= 1

    def _made(self, conn: _Conn) -> None:
        if self._closed:
            conn.abort()
            return
        if self.attached is not None:
            # ISC: CONNECTACK reject 7 (secondary) / DISCONNECT 7 (primary), then close.
            self.counters.refused_duplicate += 1
            conn.close()
            return
        if self.peer.role == "primary":
            self._attach(conn, None)
            return
        if len(self.pending) >= self.timing.max_pending:
            self.counters.refused_pending_cap += 1
            conn.close()
            return
        assert self._loop is not None
        conn.pending_timer = self._loop.call_later(
            self.timing.pending_timeout, self._pending_expired, conn
        )
        self.pending.append(conn)

    def _pending_expired(self, conn: _Conn) -> None:
        if conn in self.pending:
            self.pending.remove(conn)
            self.counters.pending_timeouts += 1
            conn.abort()

    def _attach(self, conn: _Conn, first_data: bytes | None) -> None:
        self.attached = conn
        self.counters.attached += 1
        for other in self.pending:
            if other.pending_timer is not None:
                other.pending_timer.cancel()
            self.counters.refused_duplicate += 1
            other.close()
        self.pending.clear()
        self.on_attached()
        now = self._now()
        self.engine.connection_made(now)
        if first_data is not None:
            self.counters.bytes_in += len(first_data)
            self.engine.receive_data(first_data, now)
        self.service()

    def _data(self, conn: _Conn, data: bytes) -> None:
        if conn is self.attached:
            self.counters.bytes_in += len(data)
            self.engine.receive_data(data, self._now())
            self.service()
        elif conn in self.pending:
            self.pending.remove(conn)
            if conn.pending_timer is not None:
                conn.pending_timer.cancel()
            self._attach(conn, data)
        else:  # raced with another connection that won
            conn.close()

    def _lost(self, conn: _Conn) -> None:
        if conn.pending_timer is not None:
            conn.pending_timer.cancel()
        if conn in self.pending:
            self.pending.remove(conn)
            return
        if conn is not self.attached:
            return
        self.attached = None
        self.counters.lost += 1
        if self._closed:
            return
        self.engine.connection_lost(self._now())
        self.service(disconnected=True)
        self.on_lost()

    # --- the engine pump ----------------------------------------------------------------

    def service(self, *, disconnected: bool = False) -> None:
        """Persist, then send and honour close_reason once durable; log; re-arm the timer.

        Called after every engine input and after every DHCP batch (the core may have queued
        BNDUPDs for leases that batch just made durable). Sending always goes through
        ``after_durable``, even when this call wrote nothing: the commit runs those actions
        in order, so bytes never overtake earlier bytes still waiting for a sync.
        """
        engine = self.engine
        if self.autopd is not None:
            self.autopd.engine_called()
        leases, states = engine.take_writes()
        gated = _needs_commit(engine)
        journal = self.journal
        for lease in leases:
            journal.append(lease)
        for rec in states:
            journal.append_state(rec)
        data = engine.data_to_send()
        conn = self.attached
        reason = engine.close_reason() if conn is not None and not conn.doomed else None
        if reason is not None and conn is not None:
            conn.doomed = True  # no more input for it; closed once its last bytes are out
        if not gated and self._issued == self._delivered:
            # Nothing sent depends on these records, and nothing of ours waits for a sync:
            # every record the bytes describe is durable already (module docstring).
            if data or reason is not None:
                self._issued += 1
                self._deliver(self._issued, conn, data, reason)
            if leases or states:
                self._commit_soon()
        elif data or reason is not None or leases or states:
            self._issued += 1
            self.commit.after_durable(
                functools.partial(self._deliver, self._issued, conn, data, reason)
            )
        self._log(engine.take_log(), disconnected)
        self._arm_timer()

    def _commit_soon(self) -> None:
        """Have records that gate nothing committed within ``LAZY_COMMIT_AFTER`` seconds.

        Not at once: while balancing, a sync per window of BNDACKs would compete with the
        peer's own sync (same disk, often the same CPU) for nothing. Any other commit in the
        meantime (a DHCP batch, the next gated send, the runtime's tick) takes them along.
        """
        if self._lazy is not None:
            return
        if self._loop is None or self._closed:
            self.commit.after_durable(_nothing)
            return
        self._lazy = self._loop.call_later(LAZY_COMMIT_AFTER, self._lazy_commit)

    def _lazy_commit(self) -> None:
        self._lazy = None
        self.commit.after_durable(_nothing)

    def _deliver(self, seq: int, conn: _Conn | None, data: bytes, reason: str | None) -> None:
        """Runs once everything persisted before it is on disk."""
        skipped = seq != self._delivered + 1
        self._delivered = seq
        live = conn is not None and conn is self.attached and not conn.closing
        if skipped:
            # An earlier delivery was withheld because its commit failed: the stream has a
            # hole, so this link cannot go on. The peer re-sends what we never acked.
            self.counters.journal_errors += 1
            log.error("failover peer %s: lease file commit failed; dropping the link", self.name)
            self.counters.bytes_discarded += len(data)
            if live and conn is not None:
                conn.abort()
            return
        if not live or conn is None:
            self.counters.bytes_discarded += len(data)
            return
        if data:
            conn.write(data)
            self.counters.bytes_out += len(data)
        if reason is not None:
            self.counters.closed_by_engine += 1
            conn.close()

    def _log(self, lines: list[str], disconnected: bool) -> None:
        if disconnected and not any("disconnected" in line for line in lines):
            lines = [f"peer {self.name}: disconnected", *lines]
        if lines:
            self._emit(lines)

    def _arm_timer(self) -> None:
        if self._closed or self._loop is None:
            return
        at = self.engine.get_timer()
        if at == self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at is None:
            return
        # Engine time is whole wall-clock seconds: wake once int(clock()) >= at.
        delay = max(0.0, at - self._clock()) + 0.001
        if self._last_fired is not None and at <= self._last_fired:
            delay = max(delay, 0.05)  # an engine that re-asks for "now": do not spin
        self._timer = self._loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self._now()
        self._last_fired = now
        self.engine.handle_timer(now)
        self.service()

    # --- operator -----------------------------------------------------------------------

    def partner_down(self) -> None:
        if self.autopd is not None:  # through the rule: it overrides the fence
            self.autopd.operator_partner_down()
        else:
            self.engine.partner_down(self._now())
        self.service()

    def shutdown(self) -> bool:
        """A planned stop: NORMAL -> SHUTDOWN and STATE to the peer; False: nothing to hand over."""
        began = self.engine.shutdown(self._now())
        self.service()
        return began

    def finish(self) -> None:
        """After a handover: stop, and close the connection cleanly (its bytes, then a FIN)."""
        conn, self.attached = self.attached, None  # close() aborts only what is left
        self.close()
        if conn is not None:
            conn.close()
            self._finishing = conn

    def unsent(self) -> int:
        """Bytes a finished connection still has to write."""
        conn = self._finishing
        if conn is None or conn.transport is None or conn.lost:
            return 0
        return conn.transport.get_write_buffer_size()

    def status(self) -> dict[str, object]:
        out: dict[str, object] = dict(self.engine.status())
        conn = self.attached
        out["tcp"] = {
            "connected": conn is not None and not conn.closing,
            "direction": None if conn is None else ("outgoing" if conn.outgoing else "incoming"),
            "pending": len(self.pending),
            "listen": f"{self.peer.address}:{self.peer.port}",
            "peer": f"{self.peer.peer_address}:{self.peer.peer_port}",
            "counters": asdict(self.counters),
        }
        if self.autopd is not None:
            out["auto_partner_down"] = self.autopd.status()
        return out


def _needs_commit(engine: Engine) -> bool:
    """The engine's ``output_needs_commit()``; True for an engine without one (always safe)."""
    ask = getattr(engine, "output_needs_commit", None)
    return True if ask is None else bool(ask())


def _nothing() -> None:
    """An ``after_durable`` action that only makes sure a commit is started."""
