"""The lease file as a write-ahead journal: group commit on the hot path, dhcpd-style rewrite.

The core hands over the leases a batch of packets changed; ``append`` formats them into
memory and ``commit`` makes the whole batch durable with one ``write`` and one
``fdatasync`` before any reply leaves (dhcpd's delayed-ack, without the delay).

Failure model. ``commit`` either returns (every record appended so far is on stable
storage) or raises ``JournalError`` (nothing may be claimed; the records stay buffered so a
later ``commit`` retries them). A write that stops midway is cut back off the file with
``ftruncate``; if even that fails, or ``fdatasync`` fails (after which Linux may have
dropped the dirty pages, so the file's content is unknown), the journal refuses further
commits until ``rewrite`` has produced a fresh file, like dhcpd's ``lease_file_is_corrupt``.
If the process dies mid-write, the next ``load`` finds a torn last record, skips it with a
warning and truncates it away before appending.

``rewrite`` follows dhcpd's ``new_lease_file``: write ``PATH.new`` completely and sync it,
hard-link the current file to ``PATH~``, rename the new one over ``PATH``, then sync the
directory. A crash at any step leaves ``PATH`` either the old or the new complete file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from tandem import __version__
from tandem.core.lease import Lease
from tandem.core.reservations import Reservation
from tandem.store.leasefile import (
    FailoverStateRecord,
    LeaseFileContents,
    format_failover_state,
    format_header,
    format_lease,
    format_server_duid,
    parse_leases,
)
from tandem.store.leasehosts import format_host

__all__ = ["JournalError", "LeaseJournal", "PendingChunk"]

WRITER: Final = f"tandem-{__version__}"
_BYTE_ORDER: Final = "little-endian" if sys.byteorder == "little" else "big-endian"
_FILE_MODE: Final = 0o664  # dhcpd's mode for lease files
_READ_CHUNK: Final = 1 << 20


class JournalError(OSError):
    """The journal could not make records durable; replies must not be sent."""


def _sync(fd: int) -> None:
    """Data (and size) to stable storage; fdatasync skips the needless mtime flush."""
    sync = getattr(os, "fdatasync", None)
    if sync is not None:
        sync(fd)
    else:  # pragma: no cover - non-Linux
        os.fsync(fd)


def _sync_dir(path: str) -> None:
    """Make a create/rename in ``path``'s directory durable."""
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """Loop over short writes (a regular file returns one when the disk fills up)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # pragma: no cover - os.write raises instead on Linux
            raise OSError(errno.EIO, "write returned 0")
        view = view[written:]


@dataclass(frozen=True, slots=True)
class PendingChunk:
    """Formatted records detached from the journal, waiting for ``write_chunk``."""

    data: bytes
    count: int
    records: tuple[str, ...]


class LeaseJournal:
    """One dhcpd-format lease file, appended to in group commits."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = os.fspath(path)
        self.fsync = fsync
        self._fd: int | None = None
        self._size = 0  # bytes of the file known to be complete records
        self._pending: list[str] = []
        self._broken: OSError | None = None
        self._states: dict[str, FailoverStateRecord] = {}
        self._server_duid: bytes | None = None
        self._hosts: dict[str, Reservation] = {}  # dynamic hosts, kept by every rewrite
        self.commits = 0
        self.records_committed = 0

    # --- opening ------------------------------------------------------------------------

    def load(self) -> LeaseFileContents:
        """Read the file (creating it if missing), drop a torn tail, open it for append.

        Raises ``LeaseFileError`` for a damaged file and ``OSError`` if it cannot be read.
        A stale ``PATH.new`` (a rewrite that crashed before its rename) is removed.
        """
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path + ".new")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, _FILE_MODE)
        try:
            raw = _read_all(fd)
            contents = parse_leases(raw.decode("latin-1"), self.path)
            size = len(raw)
            if contents.torn_at is not None:
                size = contents.torn_at
                os.ftruncate(fd, size)
            repair = b""
            if size == 0:
                repair = format_header(WRITER, _BYTE_ORDER).encode("ascii")
            elif raw[size - 1 : size] != b"\n":
                repair = b"\n"  # a record cut right after its '}': start the next line clean
            if repair:
                _write_all(fd, repair)
                size += len(repair)
            if repair or contents.torn_at is not None:
                _sync(fd)
                _sync_dir(self.path)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._size = size
        self._broken = None
        self._states = dict(contents.failover_states)
        self._server_duid = contents.server_duid
        self._hosts = dict(contents.hosts)
        return contents

    # --- the hot path -------------------------------------------------------------------

    def append(self, lease: Lease) -> None:
        """Snapshot ``lease`` into the pending batch (formatting only, no system call)."""
        self._pending.append(format_lease(lease))

    def append_state(self, rec: FailoverStateRecord) -> None:
        """Queue a failover state record; it is also kept for every later ``rewrite``."""
        self._pending.append(format_failover_state(rec))
        self._states[rec.name] = rec

    def append_host(self, rec: Reservation) -> None:
        """Queue a dynamic host record (``store.leasehosts``); kept for every ``rewrite``
        (tombstones too: they order a deletion against the peer's older copy)."""
        self._pending.append(format_host(rec))
        self._hosts[rec.name] = rec

    @property
    def pending(self) -> int:
        """Records appended since the last successful commit."""
        return len(self._pending)

    def commit(self) -> int:
        """Make everything appended durable: one write, one fdatasync. Returns the count.

        Raises ``JournalError``; then nothing appended since the last successful commit
        may be assumed durable.
        """
        chunk = self.detach()
        if chunk is None:
            return 0
        try:
            return self.write_chunk(chunk)
        except JournalError:
            self.requeue(chunk)
            raise

    def requeue(self, chunk: PendingChunk) -> None:
        """Put a chunk whose write failed back in front of the pending records."""
        self._pending[:0] = chunk.records

    def detach(self) -> PendingChunk | None:
        """Take everything appended so far as one chunk to make durable (the first half of
        ``commit``). Appends after this go into the next chunk, so the event loop can keep
        serving while a worker thread runs ``write_chunk`` (pipelined group commit)."""
        pending = self._pending
        if not pending:
            return None
        self._pending = []
        return PendingChunk("".join(pending).encode("ascii"), len(pending), tuple(pending))

    def write_chunk(self, chunk: PendingChunk) -> int:
        """Write and sync one detached chunk (the second half of ``commit``).

        Safe to call from one worker thread at a time while the owner keeps appending.
        Raises ``JournalError``; then the chunk's records must not be assumed durable.
        """
        fd = self._require_open()
        if self._broken is not None:
            raise JournalError(
                self._broken.errno,
                f"{self.path}: lease file unusable since an earlier failure "
                f"({self._broken.strerror}); a rewrite is needed",
            )
        data = chunk.data
        try:
            _write_all(fd, data)
        except OSError as exc:
            self._undo_partial_write(fd, exc)
            raise JournalError(
                exc.errno, f"{self.path}: cannot append leases: {exc.strerror}"
            ) from exc
        if self.fsync:
            try:
                _sync(fd)
            except OSError as exc:
                self._broken = exc
                raise JournalError(
                    exc.errno, f"{self.path}: cannot sync leases: {exc.strerror}"
                ) from exc
        self._size += len(data)
        self.commits += 1
        self.records_committed += chunk.count
        return chunk.count

    def _undo_partial_write(self, fd: int, cause: OSError) -> None:
        try:
            os.ftruncate(fd, self._size)
        except OSError:
            self._broken = cause

    # --- compaction ---------------------------------------------------------------------

    def rewrite(
        self,
        leases: Iterable[Lease],
        states: Iterable[FailoverStateRecord] = (),
        *,
        server_duid: bytes | None = None,
    ) -> None:
        """Replace the file with one holding exactly the given state (dhcpd's rewrite).

        Failover states not passed are taken from the last ones loaded or appended, so a
        rewrite never forgets a peer's state; likewise the server DUID. Records still
        pending are superseded by ``leases`` (which must be every lease) and dropped.
        Raises ``OSError``; then the old file is still in place and still in use.
        """
        self._require_open()
        for rec in states:
            self._states[rec.name] = rec
        if server_duid is not None:
            self._server_duid = server_duid
        parts = [format_header(WRITER, _BYTE_ORDER)]
        parts.extend(format_failover_state(rec) for rec in self._states.values())
        parts.extend(format_lease(lease) for lease in leases)
        parts.extend(
            format_host(rec) for rec in self._hosts.values() if rec.stamp[0] or not rec.deleted
        )
        if self._server_duid is not None:
            parts.append(format_server_duid(self._server_duid))
        data = "".join(parts).encode("ascii")

        new_path = self.path + ".new"
        backup = self.path + "~"
        fd = os.open(new_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, _FILE_MODE)
        try:
            _write_all(fd, data)
            _sync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(new_path)
            raise
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(backup)
            with contextlib.suppress(FileNotFoundError):
                os.link(self.path, backup)
            os.rename(new_path, self.path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(new_path)
            raise
        # From here PATH is the new file; whatever happens next, use it.
        old, self._fd = self._fd, None
        if old is not None:
            os.close(old)
        os.close(fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._size = len(data)
        self._pending = []
        self._broken = None
        _sync_dir(self.path)

    # --- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file. Records not committed are discarded (they were never promised)."""
        fd, self._fd = self._fd, None
        self._pending = []
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> LeaseJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_open(self) -> int:
        if self._fd is None:
            raise JournalError(errno.EBADF, f"{self.path}: lease journal is not open (load it)")
        return self._fd


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, _READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
