"""LeaseJournal: group commit, failure handling, torn tails and crash-safe rewrite."""

from __future__ import annotations

import errno
import os
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from tandem.core.lease import BindingState, Lease
from tandem.lab.shared import VECTORS as SHARED_VECTORS
from tandem.store import journal as journal_mod
from tandem.store.journal import JournalError, LeaseJournal
from tandem.store.leasefile import (
    FailoverStateRecord,
    format_header,
    format_lease,
    parse_leases,
)

NOW = 1_795_835_808


def lease(n: int, state: BindingState = BindingState.ACTIVE, ends: int = NOW + 3600) -> Lease:
    return Lease(
        IPv4Address(f"10.1.{n // 250}.{n % 250 + 1}"),
        state,
        next_binding_state=BindingState.FREE if state is BindingState.ACTIVE else None,
        starts=NOW,
        ends=ends,
        cltt=NOW,
        hardware=(1, bytes([2, 0, 0, 0, n >> 8 & 0xFF, n & 0xFF])),
        uid=b"\x01" + bytes([2, 0, 0, 0, n >> 8 & 0xFF, n & 0xFF]),
        client_hostname=f"host-{n}",
    )


STATE = FailoverStateRecord("fo", "normal", NOW, "normal", NOW, 3600)


class SyncCounter:
    """Counts fsync/fdatasync calls (and still syncs, so nothing else changes)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[int] = []
        real_fsync, real_fdatasync = os.fsync, os.fdatasync

        def fsync(fd: int) -> None:
            self.calls.append(fd)
            real_fsync(fd)

        def fdatasync(fd: int) -> None:
            self.calls.append(fd)
            real_fdatasync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "fdatasync", fdatasync)


def reload(path: Path) -> Any:
    return parse_leases(path.read_text(encoding="latin-1"), str(path))


def test_load_creates_a_missing_file_with_dhcpds_header(tmp_path: Path) -> None:
    path = tmp_path / "dhcpd.leases"
    with LeaseJournal(path) as jr:
        contents = jr.load()
        assert contents.leases == {} and contents.warnings == []
    text = path.read_text()
    assert text.startswith("# The format of this file is documented in the dhcpd.leases(5)")
    assert "authoring-byte-order little-endian;\n" in text or "big-endian" in text
    assert oct(path.stat().st_mode & 0o777) == oct(0o664 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_group_commit_one_write_one_sync_per_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "dhcpd.leases"
    jr = LeaseJournal(path)
    jr.load()
    syncs = SyncCounter(monkeypatch)
    writes: list[int] = []
    real_write = os.write

    def write(fd: int, data: Any) -> int:
        writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    size = path.stat().st_size
    for n in range(500):
        jr.append(lease(n))
    jr.append_state(STATE)
    assert path.stat().st_size == size  # append is memory only
    assert syncs.calls == [] and writes == []
    assert jr.commit() == 501
    assert len(syncs.calls) == 1 and len(writes) == 1
    assert jr.commit() == 0  # nothing pending: no system call at all
    assert len(syncs.calls) == 1 and len(writes) == 1
    jr.append(lease(7, BindingState.FREE))
    assert jr.commit() == 1
    assert len(syncs.calls) == 2 and len(writes) == 2
    jr.close()
    contents = reload(path)
    assert contents.records == 501
    assert contents.leases[lease(7).address].binding_state is BindingState.FREE
    assert contents.failover_states == {"fo": STATE}


def test_fsync_false_never_syncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jr = LeaseJournal(tmp_path / "l", fsync=False)
    jr.load()
    syncs = SyncCounter(monkeypatch)
    jr.append(lease(1))
    assert jr.commit() == 1
    assert syncs.calls == []
    jr.close()


def test_append_snapshots_the_lease(tmp_path: Path) -> None:
    """The core keeps mutating its leases; what was appended is what gets committed."""
    path = tmp_path / "l"
    jr = LeaseJournal(path)
    jr.load()
    live = lease(1)
    jr.append(live)
    live.binding_state = BindingState.RELEASED
    jr.commit()
    jr.close()
    assert reload(path).leases[live.address].binding_state is BindingState.ACTIVE


def test_partial_write_is_rolled_back_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "l"
    jr = LeaseJournal(path)
    jr.load()
    jr.append(lease(1))
    jr.commit()
    good_size = path.stat().st_size
    real_write = os.write
    calls = {"n": 0}

    def short_then_enospc(fd: int, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))  # a short write...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then the disk is full

    monkeypatch.setattr(os, "write", short_then_enospc)
    for n in range(2, 40):
        jr.append(lease(n))
    with pytest.raises(JournalError) as info:
        jr.commit()
    assert info.value.errno == errno.ENOSPC
    assert path.stat().st_size == good_size  # the half record was cut off again
    assert jr.pending == 38  # nothing claimed, nothing forgotten
    monkeypatch.setattr(os, "write", real_write)
    assert jr.commit() == 38
    jr.close()
    contents = reload(path)
    assert contents.warnings == [] and len(contents.leases) == 39


def test_partial_write_that_cannot_be_undone_leaves_a_torn_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If even ftruncate fails, the journal refuses to go on; the next load skips the tail."""
    path = tmp_path / "l"
    jr = LeaseJournal(path)
    jr.load()
    jr.append(lease(1))
    jr.commit()
    real_write = os.write

    def half(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.EIO, "I/O error")

    def no_truncate(fd: int, size: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "write", half)
    monkeypatch.setattr(os, "ftruncate", no_truncate)
    jr.append(lease(2))
    with pytest.raises(JournalError):
        jr.commit()
    monkeypatch.undo()
    jr.append(lease(3))
    with pytest.raises(JournalError, match="rewrite is needed"):
        jr.commit()  # broken: no more appends behind a torn record
    jr.close()

    again = LeaseJournal(path)
    contents = again.load()
    assert list(contents.leases) == [lease(1).address]
    assert len(contents.warnings) == 1 and "incomplete" in contents.warnings[0]
    again.append(lease(4))
    again.commit()
    again.close()
    after = reload(path)
    assert after.warnings == []  # the torn tail was truncated before appending
    assert set(after.leases) == {lease(1).address, lease(4).address}


def test_failed_sync_breaks_the_journal_until_rewrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "l"
    jr = LeaseJournal(path)
    jr.load()

    def eio(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fdatasync", eio)
    jr.append(lease(1))
    with pytest.raises(JournalError):
        jr.commit()
    monkeypatch.undo()
    with pytest.raises(JournalError, match="rewrite is needed"):
        jr.commit()
    jr.rewrite([lease(1), lease(2)])
    jr.append(lease(3))
    assert jr.commit() == 1
    jr.close()
    assert len(reload(path).leases) == 3


def test_commit_before_load_raises(tmp_path: Path) -> None:
    jr = LeaseJournal(tmp_path / "l")
    jr.append(lease(1))
    with pytest.raises(JournalError, match="not open"):
        jr.commit()


def test_load_drops_torn_tail_and_keeps_appending(tmp_path: Path) -> None:
    path = tmp_path / "l"
    good = format_header() + format_lease(lease(1)) + format_lease(lease(2))
    path.write_text(good + format_lease(lease(3))[:-20] + "\0" * 100)
    jr = LeaseJournal(path)
    contents = jr.load()
    assert len(contents.leases) == 2 and len(contents.warnings) == 1
    assert path.read_text() == good
    jr.append(lease(3))
    jr.commit()
    jr.close()
    assert path.read_text() == good + format_lease(lease(3))


def test_load_repairs_a_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "l"
    path.write_text(format_header() + format_lease(lease(1))[:-1])  # ends in '}'
    jr = LeaseJournal(path)
    jr.load()
    jr.append(lease(2))
    jr.commit()
    jr.close()
    assert path.read_text() == format_header() + format_lease(lease(1)) + format_lease(lease(2))


# --- rewrite ------------------------------------------------------------------------------


def test_rewrite_compacts_and_keeps_backup_like_dhcpd(tmp_path: Path) -> None:
    path = tmp_path / "dhcpd.leases"
    jr = LeaseJournal(path)
    jr.load()
    for round_ in range(3):
        for n in range(10):
            jr.append(lease(n, ends=NOW + round_))
        jr.commit()
    jr.append_state(STATE)
    jr.commit()
    before = path.read_bytes()
    inode = path.stat().st_ino
    final = [lease(n, ends=NOW + 2) for n in range(10)]
    jr.rewrite(final)
    backup = tmp_path / "dhcpd.leases~"
    assert backup.read_bytes() == before
    assert backup.stat().st_ino == inode  # a hard link to the old file, as dhcpd does
    assert not (tmp_path / "dhcpd.leases.new").exists()
    contents = reload(path)
    assert contents.records == 10  # compacted
    assert contents.failover_states == {"fo": STATE}  # remembered, though not passed
    assert list(contents.leases.values()) == final
    jr.append(lease(99))
    jr.commit()  # appends go to the new file
    jr.close()
    assert len(reload(path).leases) == 11


def test_rewrite_syncs_file_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jr = LeaseJournal(tmp_path / "l")
    jr.load()
    syncs = SyncCounter(monkeypatch)
    jr.rewrite([lease(1)])
    assert len(syncs.calls) == 2  # the new file, then its directory
    jr.close()


def test_rewrite_carries_server_duid_and_states(tmp_path: Path) -> None:
    path = tmp_path / "l"
    vector = SHARED_VECTORS / "secondary.leases"
    path.write_bytes(vector.read_bytes())
    jr = LeaseJournal(path)
    contents = jr.load()
    jr.rewrite(contents.leases.values())
    jr.close()
    again = reload(path)
    assert again.leases == contents.leases
    assert again.failover_states == contents.failover_states
    assert again.server_duid == contents.server_duid
    assert again.records == len(contents.leases)


_STEPS = ["write", "fdatasync", "unlink", "link", "rename"]


@pytest.mark.parametrize("step", _STEPS)
def test_crash_at_any_rewrite_step_leaves_a_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """Kill the rewrite at each system call: PATH is the complete old file or the new one."""
    path = tmp_path / "dhcpd.leases"
    jr = LeaseJournal(path)
    jr.load()
    old = [lease(n, ends=NOW + 1) for n in range(20)]
    for item in old:
        jr.append(item)
    jr.commit()
    (tmp_path / "dhcpd.leases~").write_text("an older backup\n")

    class Crash(BaseException):
        """Stands for the process dying: nothing after it runs."""

    dead = False
    real_unlink = os.unlink

    def crash(*args: Any, **kwargs: Any) -> Any:
        nonlocal dead
        dead = True
        raise Crash

    def unlink(*args: Any, **kwargs: Any) -> Any:
        if dead:
            return None  # a dead process cleans nothing up: PATH.new may be left behind
        if step == "unlink":
            return crash()
        return real_unlink(*args, **kwargs)

    if step != "unlink":
        monkeypatch.setattr(os, step, crash)
    monkeypatch.setattr(os, "unlink", unlink)
    new = [lease(n, BindingState.FREE) for n in range(20)]
    with pytest.raises(Crash):
        jr.rewrite(new)
    monkeypatch.undo()
    # a new process starts
    restarted = LeaseJournal(path)
    contents = restarted.load()
    assert contents.warnings == []
    assert list(contents.leases.values()) == old  # the new file never replaced it
    assert not (tmp_path / "dhcpd.leases.new").exists()
    restarted.rewrite(new)
    restarted.close()
    assert list(reload(path).leases.values()) == new


def test_crash_after_rename_before_directory_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "dhcpd.leases"
    jr = LeaseJournal(path)
    jr.load()
    jr.append(lease(1))
    jr.commit()

    class Crash(BaseException):
        pass

    def crash(path: str) -> None:
        raise Crash

    monkeypatch.setattr(journal_mod, "_sync_dir", crash)
    with pytest.raises(Crash):
        jr.rewrite([lease(1, BindingState.FREE)])
    monkeypatch.undo()
    contents = LeaseJournal(path).load()
    assert contents.leases[lease(1).address].binding_state is BindingState.FREE
    assert (tmp_path / "dhcpd.leases~").exists()


def test_failed_rewrite_keeps_using_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "l"
    jr = LeaseJournal(path)
    jr.load()
    jr.append(lease(1))
    jr.commit()

    def fail(*args: Any) -> None:
        raise OSError(errno.EXDEV, "rename failed")

    monkeypatch.setattr(os, "rename", fail)
    with pytest.raises(OSError):
        jr.rewrite([lease(1), lease(2)])
    monkeypatch.undo()
    assert not (tmp_path / "l.new").exists()
    jr.append(lease(3))
    assert jr.commit() == 1
    jr.close()
    assert set(reload(path).leases) == {lease(1).address, lease(3).address}
