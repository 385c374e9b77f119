"""The group-commit scheduler on its own (tandem.io.commit.GroupCommit), on a real lease file.

What the DHCP endpoint and the failover links rely on: an action runs only once every record
appended before it is written and synced; actions run in the order queued, even when one queues
another while its group runs (a reordered failover send looked like a failed commit and dropped
the link under load); what gathers during one sync shares the next one; a failed sync runs none
of its actions and keeps its records for the next attempt.
"""

from __future__ import annotations

import asyncio
import errno
import threading
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from tandem.core.lease import BindingState, Lease
from tandem.io import commit as commit_module
from tandem.io.commit import GroupCommit
from tandem.store.journal import JournalError, LeaseJournal, PendingChunk

pytestmark = pytest.mark.timeout(60)


def new_journal(tmp_path: Path, name: str = "dhcpd.leases") -> LeaseJournal:
    journal = LeaseJournal(tmp_path / name, fsync=False)
    journal.load()
    return journal


def lease(n: int) -> Lease:
    return Lease(IPv4Address(f"10.0.0.{n}"), BindingState.ACTIVE, ends=1)


def on_disk(journal: LeaseJournal, n: int) -> bool:
    return f"lease 10.0.0.{n} {{" in Path(journal.path).read_text()


class HeldWrite:
    """The journal's next chunk write waits until ``go`` is set (a slow disk, on demand);
    ``entered`` is set once that write has started. Later writes are not held."""

    def __init__(self, journal: LeaseJournal) -> None:
        self.go = threading.Event()
        self.entered = threading.Event()
        self._write = journal.write_chunk
        journal.write_chunk = self._write_chunk  # type: ignore[method-assign]

    def _write_chunk(self, chunk: PendingChunk) -> int:
        if not self.entered.is_set():
            self.entered.set()
            assert self.go.wait(10), "write held too long"
        return self._write(chunk)


def fail_writes(journal: LeaseJournal, times: int) -> None:
    """The journal's next ``times`` chunk writes fail, as a full disk would."""
    left = [times]
    write = journal.write_chunk

    def write_chunk(chunk: PendingChunk) -> int:
        if left[0]:
            left[0] -= 1
            raise JournalError(errno.ENOSPC, "injected: no space left on device")
        return write(chunk)

    journal.write_chunk = write_chunk  # type: ignore[method-assign]


async def wait_until(pred: Callable[[], bool]) -> None:
    for _ in range(500):
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def slow_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sync of a started commit goes to the worker thread."""
    monkeypatch.setattr(commit_module, "INLINE_SYNC_MAX", 0.0)


# --- durability -------------------------------------------------------------------------


def test_an_unstarted_commit_syncs_before_it_acts(tmp_path: Path) -> None:
    journal = new_journal(tmp_path)
    commit = GroupCommit(journal)
    journal.append(lease(1))
    seen: list[tuple[int, bool]] = []
    commit.after_durable(lambda: seen.append((journal.pending, on_disk(journal, 1))))
    assert seen == [(0, True)]  # ran before returning, with its record written
    assert commit.commits == 1


def test_defer_starts_no_commit_until_flush(tmp_path: Path) -> None:
    journal = new_journal(tmp_path)
    commit = GroupCommit(journal)
    journal.append(lease(1))
    ran: list[bool] = []
    commit.defer(lambda: ran.append(on_disk(journal, 1)))
    assert ran == [] and journal.pending == 1 and not on_disk(journal, 1)
    commit.flush()
    assert ran == [True]


def test_an_action_with_nothing_pending_runs_at_once(tmp_path: Path) -> None:
    journal = new_journal(tmp_path)
    commit = GroupCommit(journal)
    ran: list[int] = []
    commit.after_durable(lambda: ran.append(1))
    assert ran == [1]
    assert commit.commits == 0 and journal.commits == 0  # no sync for nothing


@pytest.mark.usefixtures("slow_disk")
def test_on_the_worker_an_action_runs_only_after_its_sync(tmp_path: Path) -> None:
    async def scenario() -> None:
        journal = new_journal(tmp_path)
        commit = GroupCommit(journal)
        commit.start(asyncio.get_running_loop())
        held = HeldWrite(journal)
        journal.append(lease(1))
        ran: list[bool] = []
        commit.after_durable(lambda: ran.append(on_disk(journal, 1)))
        assert commit.syncing
        await asyncio.sleep(0.05)
        assert ran == []  # the loop kept running; the action still waits
        held.go.set()
        await wait_until(lambda: bool(ran))
        assert ran == [True] and not commit.syncing
        commit.close()

    asyncio.run(scenario())


# --- order ------------------------------------------------------------------------------


@pytest.mark.usefixtures("slow_disk")
def test_actions_never_overtake_their_group(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        journal = new_journal(tmp_path)
        commit = GroupCommit(journal)
        commit.start(asyncio.get_running_loop())
        order: list[str] = []
        journal.append(lease(1))
        commit.after_durable(lambda: order.append("A"))  # waits for the sync in flight

        def b() -> None:
            order.append("B")
            commit.after_durable(lambda: order.append("C"))  # queued after D

        commit.after_durable(b)
        commit.after_durable(lambda: order.append("D"))
        await wait_until(lambda: len(order) == 4)
        commit.close()
        return order

    assert asyncio.run(scenario()) == ["A", "B", "D", "C"]


def test_inline_an_action_queued_by_an_action_runs_after_the_rest_of_its_group(
    tmp_path: Path,
) -> None:
    journal = new_journal(tmp_path)
    commit = GroupCommit(journal)
    order: list[str] = []

    def b() -> None:
        order.append("B")
        journal.append(lease(2))
        commit.after_durable(lambda: order.append(f"C{int(on_disk(journal, 2))}"))

    journal.append(lease(1))
    commit.defer(lambda: order.append("A"))
    commit.defer(b)
    commit.defer(lambda: order.append("D"))
    commit.flush()
    assert order == ["A", "B", "D", "C1"]  # C after D, and after its own record's sync


@pytest.mark.usefixtures("slow_disk")
def test_an_action_with_nothing_pending_waits_behind_a_sync_in_flight(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        journal = new_journal(tmp_path)
        commit = GroupCommit(journal)
        commit.start(asyncio.get_running_loop())
        held = HeldWrite(journal)
        order: list[str] = []
        journal.append(lease(1))
        commit.after_durable(lambda: order.append("ack"))
        commit.after_durable(lambda: order.append("offer"))  # needs no record, still waits
        await asyncio.sleep(0.05)
        assert order == []
        held.go.set()
        await wait_until(lambda: len(order) == 2)
        commit.close()
        return order

    assert asyncio.run(scenario()) == ["ack", "offer"]


# --- windows ----------------------------------------------------------------------------


def test_the_records_and_actions_of_one_batch_share_one_sync(tmp_path: Path) -> None:
    journal = new_journal(tmp_path)
    commit = GroupCommit(journal)
    seen: list[int] = []
    for n in (1, 2, 3):
        journal.append(lease(n))
        commit.defer(lambda: seen.append(journal.pending))
    commit.flush()
    assert seen == [0, 0, 0]
    assert journal.commits == 1 and commit.commits == 1


@pytest.mark.usefixtures("slow_disk")
def test_what_gathers_during_a_sync_shares_the_next_one(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, list[tuple[bool, bool]]]:
        journal = new_journal(tmp_path)
        commit = GroupCommit(journal)
        commit.start(asyncio.get_running_loop())
        held = HeldWrite(journal)
        journal.append(lease(1))
        commit.after_durable(lambda: None)  # the sync in flight
        seen: list[tuple[bool, bool]] = []
        for n in (2, 3):  # two batches while the disk is busy
            journal.append(lease(n))
            commit.after_durable(lambda: seen.append((on_disk(journal, 2), on_disk(journal, 3))))
        held.go.set()
        await wait_until(lambda: len(seen) == 2)
        commit.close()
        return journal.commits, seen

    commits, seen = asyncio.run(scenario())
    assert commits == 2  # the first chunk, then one for both batches
    assert seen == [(True, True), (True, True)]


def test_a_fast_commit_runs_on_the_loop_a_slow_one_on_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No worker hand-off while the last sync was fast (under INLINE_SYNC_MAX)."""

    async def scenario(inline_max: float) -> tuple[list[int], list[int]]:
        monkeypatch.setattr(commit_module, "INLINE_SYNC_MAX", inline_max)
        journal = new_journal(tmp_path, f"dhcpd-{inline_max}.leases")
        commit = GroupCommit(journal)
        commit.start(asyncio.get_running_loop())
        at_return: list[int] = []
        ran: list[int] = []
        journal.append(lease(1))
        commit.after_durable(lambda: ran.append(journal.pending))
        at_return.append(len(ran))
        await wait_until(lambda: bool(ran))
        commit.close()
        return at_return, ran

    assert asyncio.run(scenario(1.0)) == ([1], [0])  # ran, committed, before returning
    assert asyncio.run(scenario(0.0)) == ([0], [0])  # a slow disk: behind the worker's sync


# --- failures ---------------------------------------------------------------------------


def test_a_failed_sync_runs_none_of_its_actions_and_retries_its_records(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = new_journal(tmp_path)
    commit = GroupCommit(journal)
    fail_writes(journal, 1)
    ran: list[str] = []
    journal.append(lease(1))
    commit.defer(lambda: ran.append("ack1"))
    commit.defer(lambda: ran.append("offer"))
    commit.flush()
    assert ran == []
    assert commit.failures == 1 and commit.withheld == 2
    assert "replies withheld" in caplog.text
    assert not on_disk(journal, 1) and journal.pending == 1  # requeued, not retried at once
    journal.append(lease(2))
    commit.after_durable(lambda: ran.append("ack2"))  # the next flush writes both
    assert ran == ["ack2"]
    assert on_disk(journal, 1) and on_disk(journal, 2) and journal.pending == 0
    assert commit.commits == 1


def test_a_disk_that_stays_full_costs_one_failed_write_per_flush(tmp_path: Path) -> None:
    """A write that keeps failing is not retried in a loop (that recursed until
    RecursionError): each flush tries once; once the disk has room, nothing is lost."""
    journal = new_journal(tmp_path)
    commit = GroupCommit(journal)
    fail_writes(journal, 10_000)
    ran: list[str] = []
    journal.append(lease(1))
    for n in range(5):
        commit.after_durable(lambda n=n: ran.append(f"ack{n}"))  # type: ignore[misc]
    assert ran == [] and commit.failures == 5 and commit.withheld == 5
    assert journal.pending == 1


@pytest.mark.usefixtures("slow_disk")
def test_serving_a_failed_write_is_retried_after_a_pause_without_new_traffic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit_module, "RETRY_AFTER", 0.05)

    async def scenario() -> tuple[int, bool]:
        journal = new_journal(tmp_path)
        commit = GroupCommit(journal)
        commit.start(asyncio.get_running_loop())
        fail_writes(journal, 3)
        journal.append(lease(1))
        commit.flush()
        await wait_until(lambda: journal.pending == 0 and not commit.syncing)
        failures = commit.failures
        commit.close()
        return failures, on_disk(journal, 1)

    failures, written = asyncio.run(scenario())
    assert failures == 3 and written


@pytest.mark.usefixtures("slow_disk")
def test_a_failed_sync_on_the_worker_withholds_its_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit_module, "RETRY_AFTER", 0.05)

    async def scenario() -> tuple[list[str], int]:
        journal = new_journal(tmp_path)
        commit = GroupCommit(journal)
        commit.start(asyncio.get_running_loop())
        fail_writes(journal, 1)
        ran: list[str] = []
        journal.append(lease(1))
        commit.after_durable(lambda: ran.append("ack1"))
        await wait_until(lambda: commit.failures == 1 and not commit.syncing)
        await wait_until(lambda: journal.pending == 0)  # the retry wrote the records
        journal.append(lease(2))
        commit.after_durable(lambda: ran.append("ack2"))
        await wait_until(lambda: bool(ran))
        commit.close()
        return ran, commit.withheld

    ran, withheld = asyncio.run(scenario())
    assert ran == ["ack2"] and withheld == 1


# --- compaction and shutdown ------------------------------------------------------------


def test_compact_rewrites_the_file_and_runs_what_waited(tmp_path: Path) -> None:
    journal = new_journal(tmp_path)
    commit = GroupCommit(journal)
    journal.append(lease(1))
    commit.after_durable(lambda: None)
    journal.append(lease(2))  # pending, superseded by the rewrite
    ran: list[int] = []
    commit.defer(lambda: ran.append(journal.pending))
    assert commit.compact([lease(3)])
    assert ran == [0]
    assert on_disk(journal, 3) and not on_disk(journal, 1) and not on_disk(journal, 2)


@pytest.mark.usefixtures("slow_disk")
def test_compact_waits_while_a_sync_is_in_flight(tmp_path: Path) -> None:
    async def scenario() -> None:
        journal = new_journal(tmp_path)
        commit = GroupCommit(journal)
        commit.start(asyncio.get_running_loop())
        held = HeldWrite(journal)
        journal.append(lease(1))
        commit.after_durable(lambda: None)
        assert not commit.compact([lease(3)])  # try later
        held.go.set()
        await wait_until(lambda: not commit.syncing)
        assert on_disk(journal, 1) and not on_disk(journal, 3)
        assert commit.compact([lease(3)])
        assert on_disk(journal, 3)
        commit.close()

    asyncio.run(scenario())


@pytest.mark.usefixtures("slow_disk")
def test_close_waits_for_the_sync_in_flight_and_commits_what_is_pending(tmp_path: Path) -> None:
    async def scenario() -> None:
        journal = new_journal(tmp_path)
        commit = GroupCommit(journal)
        commit.start(asyncio.get_running_loop())
        held = HeldWrite(journal)
        journal.append(lease(1))
        commit.after_durable(lambda: None)
        journal.append(lease(2))
        assert held.entered.wait(5)  # the worker is in the middle of the first write
        release = threading.Timer(0.1, held.go.set)
        release.start()
        commit.close()  # blocks until the held write is done
        release.join()
        assert on_disk(journal, 1) and on_disk(journal, 2) and journal.pending == 0
        text = Path(journal.path).read_text()
        assert text.index("lease 10.0.0.1 {") < text.index("lease 10.0.0.2 {")  # in order

    asyncio.run(scenario())
