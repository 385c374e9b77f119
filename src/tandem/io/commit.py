"""Group commit: lease records become durable in batches, and what waits for them runs after.

Every lease record the server appends to the journal (a DHCP batch's bindings, a failover
engine's updates and state records) must be on disk before anything that depends on it leaves
the process: a DHCPACK, a BNDACK, a BNDUPD. ``GroupCommit`` is the one scheduler that
guarantees it, shared by the DHCP endpoint and every failover link of the server:

* an *action* (send this reply, deliver these bytes) is queued with ``defer`` or
  ``after_durable`` and runs once every record appended before it is written and synced;
* ``flush`` detaches everything pending as one chunk, writes it with one ``write`` and one
  ``fdatasync``, then runs, in the order queued, every action that was waiting: all the
  records and actions gathered since the last sync share that one sync (the "window");
* an action with nothing pending before it still waits its turn behind earlier actions, so
  replies and link bytes never overtake each other; an action queued by a running action runs
  after the rest of that group;
* if the write fails, the chunk's actions are dropped (withheld: clients retry, a failover
  peer re-sends what was never acked) and its records go back in front of the queue; they are
  tried again by the next ``flush`` (the next batch) or, serving on a loop, after
  ``RETRY_AFTER`` seconds: never at once, so a disk that stays full costs one failed write
  per batch or per retry, not a loop of them.

On a fast disk (the last sync took under ``INLINE_SYNC_MAX``) the sync happens on the event loop
itself: the loop waits ~0.2 ms for the disk, and the next batch is whatever arrived meanwhile,
so under load one fsync covers more and more requests. On a slow disk the sync is pipelined
instead: a worker thread writes and syncs a detached chunk while the loop keeps serving and
appending to the next one. The worker costs more CPU than the wait it saves on a fast disk
(measured in bench/perf.py's lab with the hot path compiled: 38-53 µs of user time per lease
with the worker, 35-42 µs inline; 14,000 DORA/s lost 4.8 % with the worker and 0.1 % inline):
every hand-off of the GIL between the two threads is a context switch on the server's one CPU.
Before ``start`` (tests, benches, shutdown) every sync is inline.

Public API: ``start``, ``close``, ``defer``, ``after_durable``, ``flush``, ``compact``, the
``syncing`` property, the counters ``commits``, ``failures`` and ``withheld``, and
``sync_times``: how long each committed chunk took to write and sync (one observation per
chunk, not per lease; ``GET /metrics`` shows it as ``tandem_lease_commit_seconds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from tandem.core.lease import Lease
from tandem.store.journal import JournalError, LeaseJournal, PendingChunk

__all__ = ["COMMIT_BUCKETS", "INLINE_SYNC_MAX", "RETRY_AFTER", "Action", "GroupCommit", "SyncTimes"]

#: A commit runs on the event loop itself, no worker hand-off, while the last sync took less
#: than this (see ``flush`` and the module docstring). Measured: DHCP batches, see above;
#: balancing a fresh 60,000-address failover pair (one sync per window of BNDUPDs on the
#: secondary) went from 2.7 to 2.2-2.4 s and the secondary's CPU from 1.27 to 1.0 s. A slow
#: disk (an SD card, a loaded array) gets the worker, which keeps serving during the sync.
INLINE_SYNC_MAX = 0.003

#: Seconds after a failed write before its records are tried again, when no batch comes first.
RETRY_AFTER = 1.0

log = logging.getLogger("tandem")

#: Something to run once the records appended before it are durable (a reply, a link's send).
Action = Callable[[], None]

#: Upper bounds (seconds) of the commit-latency histogram's buckets: a fast disk syncs in
#: 0.1-3 ms (``INLINE_SYNC_MAX``), an SD card or a loaded array in tens to hundreds.
COMMIT_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class SyncTimes:
    """A histogram of chunk write+sync times: per-bucket counts (the last one is +Inf), their
    sum and number. Observed once per committed chunk; read by the metrics collector."""

    def __init__(self) -> None:
        self.counts = [0] * (len(COMMIT_BUCKETS) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(COMMIT_BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1


class GroupCommit:
    """The server's one group-commit scheduler over its ``LeaseJournal``.

    Appending is the caller's business (``journal.append``, ``journal.append_state``); the
    scheduler decides when the appended records are synced and runs what waits for them.
    """

    def __init__(self, journal: LeaseJournal) -> None:
        self.journal = journal
        #: Chunks written and synced.
        self.commits = 0
        #: Chunks whose write or sync failed (their actions were withheld).
        self.failures = 0
        #: Actions dropped because the chunk they waited for failed.
        self.withheld = 0
        #: Write+sync time of every committed chunk.
        self.sync_times = SyncTimes()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sync_worker = ThreadPoolExecutor(1, thread_name_prefix="tandem-fsync")
        self._syncing = False
        self._running = False  # a durable group's actions are being run
        self._waiting: list[Action] = []  # run once what precedes is durable
        self._last_sync = 0.0  # seconds the last chunk took to write and sync
        self._retry: asyncio.TimerHandle | None = None  # after a failed write

    # --- lifecycle ---------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve on ``loop``: a sync that was slow may now go to the worker thread."""
        self._loop = loop

    def close(self) -> None:
        """Wait for the sync in flight, then commit what is pending (best effort, no action
        runs: nobody is left to answer)."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._sync_worker.shutdown(wait=True)
        if self.journal.pending:
            with contextlib.suppress(JournalError):
                self.journal.commit()

    # --- queueing ----------------------------------------------------------------------

    def defer(self, action: Action) -> None:
        """Queue ``action`` behind every record appended so far, without starting a commit.

        For a caller that queues many (a DHCP batch's replies) and calls ``flush`` once.
        """
        self._waiting.append(action)

    def after_durable(self, action: Action) -> None:
        """Run ``action`` once every record appended to the journal so far is on disk.

        At once (before returning) if nothing is pending or the sync runs inline; later, from
        the event loop, if a sync is in flight or goes to the worker. Actions run in the order
        queued; one whose commit failed is dropped, never run early.
        """
        self._waiting.append(action)
        self.flush()

    def flush(self) -> None:
        """Start syncing what is pending, or run the waiting actions if nothing is."""
        if self._syncing or self._running:
            # The sync in flight, or the group being run, calls us again when done: an
            # action queued by an action must not overtake the rest of that group.
            return
        chunk = self.journal.detach()
        group, self._waiting = self._waiting, []
        if chunk is None:
            self._run_group(group)
            if self._waiting or self.journal.pending:
                self.flush()
            return
        loop = self._loop
        if loop is None or self._last_sync < INLINE_SYNC_MAX:
            # Not started (tests, shutdown), or the disk is fast: the thread hand-offs cost
            # more CPU than waiting for the sync here.
            self._synced(chunk, group, self._write(chunk))
            return
        self._syncing = True
        future = self._sync_worker.submit(self._write, chunk)

        def done(_: Future[OSError | None]) -> None:
            # At shutdown the loop may be gone before the last sync returns: the chunk is on
            # disk all the same, and nobody is left to answer.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._synced, chunk, group, future.result())

        future.add_done_callback(done)

    def compact(self, leases: Iterable[Lease]) -> bool:
        """Rewrite the lease file from ``leases`` (every lease: dhcpd's hourly rewrite), between
        two syncs.

        Records still pending are superseded by the full rewrite, so the actions waiting on
        them run once it is durable. Returns False (try later) while a sync is in flight.
        """
        if self._syncing:
            return False
        self.journal.detach()
        group, self._waiting = self._waiting, []
        self.journal.rewrite(leases)
        self._run_group(group)
        if self._waiting or self.journal.pending:
            self.flush()
        return True

    @property
    def syncing(self) -> bool:
        """True while a chunk is being written; a compaction must wait for it."""
        return self._syncing

    # --- the sync ----------------------------------------------------------------------

    def _write(self, chunk: PendingChunk) -> OSError | None:
        started = time.monotonic()
        try:
            self.journal.write_chunk(chunk)
        except JournalError as exc:
            return exc
        finally:
            self._last_sync = time.monotonic() - started
        return None

    def _synced(self, chunk: PendingChunk, group: list[Action], error: OSError | None) -> None:
        self._syncing = False
        if error is None:
            self.commits += 1
            self.sync_times.observe(self._last_sync)
            self._run_group(group)
        else:
            # Nothing in this chunk may be called durable: its replies are not sent (clients
            # retry), and the records go back in front of the queue for the next attempt.
            log.error("%s -- replies withheld", error)
            self.journal.requeue(chunk)
            self.failures += 1
            self.withheld += len(group)
            # Not again at once: the disk that failed now fails now too (and flushing here
            # would recurse until it stopped failing). The next flush retries, or the timer.
            loop = self._loop
            if loop is not None and self._retry is None:
                self._retry = loop.call_later(RETRY_AFTER, self._retry_flush)
            return
        if self._waiting or self.journal.pending:
            self.flush()

    def _retry_flush(self) -> None:
        self._retry = None
        self.flush()

    def _run_group(self, group: list[Action]) -> None:
        """Run, in order, actions whose records are durable (``flush`` defers re-entry)."""
        self._running = True
        try:
            for action in group:
                action()
        finally:
            self._running = False
