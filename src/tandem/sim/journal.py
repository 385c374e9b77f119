"""The lease file of a simulated server: text that is durable only once committed.

It mirrors ``tandem.store.journal.LeaseJournal`` without a file: ``append`` formats the
record at once (the core keeps mutating the lease object), ``commit`` is the fsync that
makes everything appended so far durable, and a crash loses what was not committed, or
leaves a torn prefix of it (a crash in the middle of the write). ``load`` goes through the
real ``parse_leases``, drops a torn tail like the real journal, and ``rewrite`` compacts the
text as the server does at start-up, so a restart reads exactly what dhcpd would.
"""

from __future__ import annotations

from collections.abc import Iterable

from tandem.core.lease import Lease
from tandem.store.leasefile import (
    FailoverStateRecord,
    LeaseFileContents,
    format_failover_state,
    format_header,
    format_lease,
    parse_leases,
)

__all__ = ["SimJournal"]


class SimJournal:
    """Durable text plus the records appended since the last commit."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.durable: list[str] = []
        self.pending: list[str] = []
        self.commits = 0
        self.torn_writes = 0
        self._pending_addrs: list[int] = []
        self.last_commit: dict[int, int] = {}  # address -> number of the commit that wrote it

    def append(self, lease: Lease) -> None:
        self.pending.append(format_lease(lease))
        self._pending_addrs.append(int(lease.address))

    def append_state(self, rec: FailoverStateRecord) -> None:
        self.pending.append(format_failover_state(rec))

    def commit(self) -> None:
        """The fsync: every record appended so far is durable from now on."""
        self.commits += 1
        if self.pending:
            self.durable.append("".join(self.pending))
            self.pending.clear()
        for a in self._pending_addrs:
            self.last_commit[a] = self.commits
        self._pending_addrs.clear()

    def crash(self, torn_fraction: float | None = None) -> None:
        """The process dies: uncommitted records are lost, or a prefix of them is written."""
        if torn_fraction is not None and self.pending:
            text = "".join(self.pending)
            cut = int(len(text) * torn_fraction)
            if cut:
                self.durable.append(text[:cut])
                self.torn_writes += 1
        self.pending.clear()
        self._pending_addrs.clear()

    @property
    def text(self) -> str:
        return "".join(self.durable)

    def load(self) -> LeaseFileContents:
        """Parse the durable text with the real reader; a torn last record is cut off."""
        text = self.text
        contents = parse_leases(text, self.name)
        if contents.torn_at is not None:
            text = text[: contents.torn_at]
            if text and not text.endswith("\n"):
                text += "\n"
        self.durable = [text] if text else []
        return contents

    def rewrite(self, leases: Iterable[Lease], states: Iterable[FailoverStateRecord]) -> None:
        """Compaction at start-up: header, failover states, then one record per lease."""
        parts = [format_header()]
        parts.extend(format_failover_state(rec) for rec in states)
        parts.extend(format_lease(lease) for lease in leases)
        self.durable = ["".join(parts)]
        self.pending.clear()
        self._pending_addrs.clear()
