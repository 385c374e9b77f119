"""Failover listening and dialling: how each relationship's connections are made.

What ISC dhcpd 4.4 does, and therefore what a peer of it must put up with (failover-isc.md §1,
§6, §14): both servers listen on ``address:port`` *and* dial ``peer address:peer port`` with the
local side bound to ``address``; an inbound connection is matched to a relationship by its
source IP alone; a dropped link is redialled after 5 s, a failed dial after 90 s.

* an inbound connection is checked against the peers' addresses right after ``accept`` and
  closed at once (and counted) if it is not from a configured peer; no protocol object, no
  buffer, no timer exists for it; one from a peer goes to that relationship's
  ``FailoverLink.accepted``, which decides whether it is kept (tandem.io.failover_link);
* each relationship has a ``Dialer``: it dials at start, again ``reconnect_after_failure``
  after a failed dial and ``reconnect_after_drop`` after the attached connection was lost,
  and hands what it connected to ``FailoverLink.dialled``;
* ``FailoverLinks`` is every relationship of the server: one listener per ``address:port``
  (shared by the relationships configured on it), the links and their dialers, and the hooks
  the runtime calls.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterable
from ipaddress import IPv4Address

from tandem.config.model import FailoverPeer
from tandem.core.failover.handover import HANDOVER_SECONDS
from tandem.io.commit import GroupCommit
from tandem.io.failover_link import Clock, Emit, Engine, FailoverLink, Timing

__all__ = ["Dialer", "FailoverLinks"]

log = logging.getLogger("tandem")

ACCEPTS_PER_WAKEUP = 16
LISTEN_BACKLOG = 8
_ISC_TIMING = Timing()


class Dialer:
    """Dials one relationship's peer from the relationship's own address, and redials."""

    def __init__(self, link: FailoverLink) -> None:
        self.link = link
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        link.on_attached = self._attached
        link.on_lost = self._lost

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Dial at once."""
        self._loop = loop
        self._schedule(0.0)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self._task is not None:
            self._task.cancel()

    def _attached(self) -> None:
        """A connection (either direction) is attached: no dial is due any more."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _lost(self) -> None:
        self._schedule(self.link.timing.reconnect_after_drop)

    def _schedule(self, delay: float) -> None:
        if self.link.closed or self._loop is None:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_later(delay, self._start_dial)

    def _start_dial(self) -> None:
        self._handle = None
        link = self.link
        if link.closed or link.attached is not None or link.candidates():
            return  # the link (or a candidate) exists; a drop schedules the next dial
        if self._task is not None and not self._task.done():
            return
        assert self._loop is not None
        self._task = self._loop.create_task(self._dial())

    async def _dial(self) -> None:
        assert self._loop is not None
        link = self.link
        peer = link.peer
        link.counters.dials += 1
        target = (str(peer.peer_address), peer.peer_port)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.bind((str(peer.address), 0))
            await asyncio.wait_for(
                self._loop.sock_connect(sock, target), link.timing.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            sock.close()
            link.counters.dial_failures += 1
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "timed out"
            retry = link.timing.reconnect_after_failure
            log.debug(
                "failover peer %s: connect to %s:%d failed: %s; next try in %g s",
                link.name,
                target[0],
                target[1],
                reason,
                retry,
            )
            self._schedule(retry)
            return
        except asyncio.CancelledError:
            sock.close()
            raise
        await link.dialled(sock)


class _Listener:
    """One listening socket, shared by the relationships configured on its address:port."""

    def __init__(self, address: IPv4Address, port: int, links: list[FailoverLink]) -> None:
        self.address = address
        self.port = port
        self.links = links
        self.sock: socket.socket | None = None
        self.refused_foreign = 0
        self.error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._retry_after = 90.0

    def start(self, loop: asyncio.AbstractEventLoop, retry_after: float) -> None:
        self._loop = loop
        self._retry_after = retry_after
        self._open()

    def _open(self) -> None:
        assert self._loop is not None
        self._retry = None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((str(self.address), self.port))
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            self.error = exc.strerror or str(exc)
            names = ", ".join(link.name for link in self.links)
            log.error(
                "failover peer %s: cannot listen on %s:%d: %s; retrying in %g s",
                names,
                self.address,
                self.port,
                self.error,
                self._retry_after,
            )
            self._retry = self._loop.call_later(self._retry_after, self._open)
            return
        self.error = None
        self.sock = sock
        self._loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        assert self.sock is not None
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                conn, addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ECONNABORTED, EMFILE...: try again on the next wakeup
                return
            # Match by source IP before anything is allocated (ISC: first matching peer).
            source = addr[0]
            link = next((x for x in self.links if str(x.peer.peer_address) == source), None)
            if link is None:
                self.refused_foreign += 1
                conn.close()
                continue
            conn.setblocking(False)
            link.accepted(conn)

    def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        if self.sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None


class FailoverLinks:
    """Every relationship of the server: listeners, links, and the hooks the runtime calls."""

    def __init__(
        self,
        engines: Iterable[tuple[Engine, FailoverPeer]],
        commit: GroupCommit,
        emit: Emit,
        *,
        timing: Timing = _ISC_TIMING,
        clock: Clock = time.time,
    ) -> None:
        self.timing = timing
        self._commit, self._emit, self._clock = commit, emit, clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self.links: dict[str, FailoverLink] = {}
        self.dialers: dict[str, Dialer] = {}
        for engine, peer in engines:
            self._add(engine, peer)
        self.listeners = [_Listener(a, p, links) for (a, p), links in self._by_addr().items()]

    def _add(self, engine: Engine, peer: FailoverPeer) -> FailoverLink:
        link = FailoverLink(
            engine, peer, self._commit, self._emit, timing=self.timing, clock=self._clock
        )
        self.links[peer.name] = link
        self.dialers[peer.name] = Dialer(link)
        return link

    def _by_addr(self) -> dict[tuple[IPv4Address, int], list[FailoverLink]]:
        by_addr: dict[tuple[IPv4Address, int], list[FailoverLink]] = {}
        for link in self.links.values():
            by_addr.setdefault((link.peer.address, link.peer.port), []).append(link)
        return by_addr

    def replace(self, engines: dict[str, tuple[Engine, FailoverPeer]]) -> list[str]:
        """A reload: keep the links whose engine is the same object (their connection stays
        up), close the others, open links for the new engines, and listen where the peers
        now say. Returns the names of the links (re)started."""
        for name, link in list(self.links.items()):
            if name not in engines or engines[name][0] is not link.engine:
                link.close()
                self.dialers.pop(name).close()
                del self.links[name]
        started = [name for name in engines if name not in self.links]
        for link in self.links.values():
            link.service()  # kept: re-arm its timer over the re-bound engine
        for name in started:
            self._add(*engines[name])
        wanted = self._by_addr()
        for listener in list(self.listeners):
            links = wanted.pop((listener.address, listener.port), None)
            if links is None:
                listener.close()
                self.listeners.remove(listener)
            else:
                listener.links[:] = links
        fresh = [_Listener(a, p, links) for (a, p), links in wanted.items()]
        self.listeners += fresh
        if self._loop is not None:
            for listener in fresh:
                listener.start(self._loop, self.timing.listen_retry)
            for name in started:
                self.links[name].start(self._loop)
                self.dialers[name].start(self._loop)
        return started

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for listener in self.listeners:
            listener.start(loop, self.timing.listen_retry)
        for name, link in self.links.items():
            link.start(loop)  # start-up writes and log lines, the engine timer
            self.dialers[name].start(loop)  # then dial at once

    def close(self) -> None:
        for listener in self.listeners:
            listener.close()
        for name, link in self.links.items():
            link.close()
            self.dialers[name].close()

    def after_batch(self) -> None:
        """After a DHCP batch was committed: send what the engines queued (BNDUPDs)."""
        for link in self.links.values():
            link.service()

    def partner_down(self, name: str) -> FailoverLink:
        """The operator's command; KeyError for an unknown relationship."""
        link = self.links[name]
        link.partner_down()
        return link

    async def handover(self, timeout: float = HANDOVER_SECONDS) -> dict[str, dict[str, object]]:
        """A planned stop (SIGTERM, failover-shutdown): hand every relationship over.

        Each one in NORMAL moves to SHUTDOWN and sends STATE (tandem.core.failover.handover);
        then this waits, at most ``timeout`` seconds in all, until every partner answered
        (its STATE PARTNER-DOWN and the BNDACKs of what was queued), makes the lease file
        durable, and closes the links cleanly (a FIN after the last bytes, not a reset).
        Returns per relationship: whether it handed over and the states it ended in.
        """
        loop = asyncio.get_running_loop()
        began = loop.time()
        deadline = began + timeout
        started = {name: link.shutdown() for name, link in self.links.items()}
        engines = [link.engine for link in self.links.values()]
        while not all(e.handover_done() for e in engines) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        durable: asyncio.Future[None] = loop.create_future()

        def synced() -> None:
            if not durable.done():
                durable.set_result(None)

        self._commit.after_durable(synced)
        try:
            await asyncio.wait_for(durable, max(0.5, deadline - loop.time()))
        except TimeoutError:
            log.error("failover: lease file not durable at shutdown")
        out: dict[str, dict[str, object]] = {}
        for name, link in self.links.items():
            st = link.engine.status()
            done = started[name] and link.engine.handed_over()
            out[name] = {
                "handed_over": done,
                "my_state": st["my_state"],
                "partner_state": st["partner_state"],
                "seconds": round(loop.time() - began, 3),
            }
            if started[name] and not done:
                log.error(
                    "failover peer %s: no answer to the shutdown in %g s "
                    "(partner %s, %d updates un-acked): the restart will wait out the MCLT",
                    name,
                    timeout,
                    st["partner_state"],
                    int(str(st["unacked_updates"])) + int(str(st["queued_updates"])),
                )
            link.finish()
        for dialer in self.dialers.values():
            dialer.close()
        # Let the transports write their last bytes and the FIN (bounded: a peer that stopped
        # reading gets the reset at exit).
        end = loop.time() + 0.5
        while any(link.unsent() for link in self.links.values()) and loop.time() < end:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        return out

    def status(self) -> dict[str, object]:
        out: dict[str, object] = {name: link.status() for name, link in self.links.items()}
        return out

    def listener_status(self) -> list[dict[str, object]]:
        return [
            {
                "address": f"{x.address}:{x.port}",
                "listening": x.sock is not None,
                "error": x.error,
                "refused_foreign": x.refused_foreign,
            }
            for x in self.listeners
        ]
