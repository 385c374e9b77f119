"""Two failover engines joined by an in-memory link, driven by a virtual clock.

No sockets and no real time: bytes are pumped from one engine's ``data_to_send`` to the
other's ``receive_data`` until both are quiet, the way the I/O layer would move them, and
the clock jumps from one engine deadline to the next. Used by the tests and meant for a
simulator (``python -m tandem.sim``): the same loop with many clients around it.

The pump honours the engines' commit contract: ``take_writes`` is called (and what it
returns handed to ``on_commit``, the stand-in for the journal) before ``data_to_send``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tandem.core.failover.engine import FailoverEngine
from tandem.core.lease import FailoverStateRecord, Lease

Commit = Callable[[FailoverEngine, list[Lease], list[FailoverStateRecord]], None]
Ticker = Callable[[int], None]


@dataclass
class Pair:
    """An in-memory link between ``a`` and ``b`` plus a virtual clock ``now``."""

    a: FailoverEngine
    b: FailoverEngine
    now: int
    on_commit: Commit | None = None
    tickers: list[Ticker] = field(default_factory=list)  # e.g. DhcpServer.tick wrappers
    up: bool = False
    bytes_moved: int = 0
    closed: list[str] = field(default_factory=list)  # close reasons seen, in order
    records: dict[str, list[FailoverStateRecord]] = field(default_factory=dict)

    def engines(self) -> tuple[FailoverEngine, FailoverEngine]:
        return self.a, self.b

    def connect(self) -> None:
        """Open the link (both ends see a new connection) and pump until quiet."""
        self.up = True
        self.a.connection_made(self.now)
        self.b.connection_made(self.now)
        self.pump()

    def disconnect(self) -> None:
        """Drop the link (both ends notice at once, as on a TCP reset)."""
        if not self.up:
            return
        self.up = False
        self.a.connection_lost(self.now)
        self.b.connection_lost(self.now)
        self.pump()

    def commit(self) -> None:
        for eng in self.engines():
            writes, records = eng.take_writes()
            if records:
                self.records.setdefault(eng.name + ":" + eng.role, []).extend(records)
            if self.on_commit is not None and (writes or records):
                self.on_commit(eng, writes, records)

    def pump(self, max_rounds: int = 10_000_000) -> int:
        """Move bytes both ways until neither side has anything to say; returns rounds."""
        rounds = 0
        while rounds < max_rounds:
            rounds += 1
            self.commit()
            moved = False
            for src, dst in ((self.a, self.b), (self.b, self.a)):
                data = src.data_to_send()
                if data and self.up:
                    moved = True
                    self.bytes_moved += len(data)
                    dst.receive_data(data, self.now)
            for eng in self.engines():
                reason = eng.close_reason()
                if reason is not None and self.up:
                    self.closed.append(f"{eng.role}: {reason}")
                    rest = eng.data_to_send()  # flush (e.g. a CONNECTACK reject) first
                    other = self.b if eng is self.a else self.a
                    if rest:
                        other.receive_data(rest, self.now)
                    self.disconnect()
                    moved = True
            if not moved:  # this round committed first, so nothing is held back
                return rounds
        raise RuntimeError("failover pair did not settle")

    def next_deadline(self) -> int | None:
        times = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None]
        return min(times) if times else None

    def advance(self, seconds: int) -> None:
        """Let ``seconds`` of virtual time pass, firing every timer on the way."""
        target = self.now + seconds
        while True:
            t = self.next_deadline()
            if t is None or t > target:
                break
            self.now = max(self.now, t)
            self._fire()
        self.now = target
        self._fire()

    def _fire(self) -> None:
        for tick in self.tickers:
            tick(self.now)
        for eng in self.engines():
            t = eng.get_timer()
            if t is not None and t <= self.now:
                eng.handle_timer(self.now)
        self.pump()
