"""The crash soak's referee: captured DHCPACKs checked against the lease files a kill left.

``tandem.lab.crash`` runs the soak (a failover pair under perfdhcp, killed with kill -9 and
restarted); this module judges it, with pure functions over the ACKs decoded from the client-side
capture and the text of the lease files copied right after each kill. What is checked:

* history: every ACK a server sent during one of its runs has a record in the file copied after
  that run's kill, for the same address and MAC, ``binding state active``, ending no earlier
  than the ACKed end (capture time + lease time) minus ``END_SLACK`` (the server stamps the
  lease when it handles the request; the ACK leaves after the fsync, a little later);
* state: in that copy replayed (last record wins), every binding the server ACKed earlier and
  whose ACKed end is still ahead is active for the same MAC, with its end;
* the same state check on the final files, after both servers were restarted once more on them
  (the load path with its rewrite) and stopped cleanly;
* overlaps: across both servers, no address was ACKed to a second MAC while an ACK to another
  MAC still ran (perfdhcp never releases, so only expiry may end a binding).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tandem.core.lease import BindingState, Lease
from tandem.lab.netns import LabError
from tandem.store.leasefile import LeaseFileReader

#: Seconds an ACK's end may exceed the lease record's: the server stamps a lease when it
#: handles the request, the ACK is captured after the batch's fsync.
END_SLACK = 3.0
#: Fields read from every DHCPACK in the capture.
ACK_FIELDS = (
    "frame.time_epoch",
    "dhcp.ip.your",
    "dhcp.hw.mac_addr",
    "dhcp.option.ip_address_lease_time",
    "dhcp.option.dhcp_server_id",
)


@dataclass(frozen=True, slots=True)
class Ack:
    """One DHCPACK as captured: when, which binding, for how long, from which server."""

    time: float
    address: str
    mac: str
    lease_time: int
    server: str

    @property
    def end(self) -> float:
        return self.time + self.lease_time


@dataclass(slots=True)
class Run:
    """One life of one server process: from its spawn to its kill (or final stop)."""

    server: str  # the server identifier its ACKs carry
    number: int
    started: float
    stopped: float | None = None
    snapshot: Path | None = None  # the lease file as the kill left it


@dataclass(frozen=True, slots=True)
class Finding:
    """A broken promise: ``kind`` is lost, stale, rebound or overlap."""

    kind: str
    detail: str


@dataclass
class Verdict:
    """What the checks found, with the counts that say how much they covered."""

    history_checked: int = 0  # ACKs looked up in their own run's post-kill file
    state_checked: int = 0  # (binding, file) pairs where the binding must still be active
    lapsed: int = 0  # ACKed bindings already over when a file was read (not required)
    superseded: int = 0  # bindings the wire shows moved on (other MAC) before the file
    max_lag: float = 0.0  # largest ACKed end minus recorded end that was accepted
    findings: list[Finding] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)

    @property
    def lost(self) -> int:
        """ACKed bindings missing from, or contradicted by, a lease file."""
        return self.count("lost") + self.count("stale") + self.count("rebound")

    def merge(self, other: Verdict) -> None:
        self.history_checked += other.history_checked
        self.state_checked += other.state_checked
        self.lapsed += other.lapsed
        self.superseded += other.superseded
        self.max_lag = max(self.max_lag, other.max_lag)
        self.findings.extend(other.findings)


def parse_acks(rows: Iterable[Sequence[str]]) -> list[Ack]:
    """ACKs from tshark rows of ``ACK_FIELDS``; rows without a yiaddr (INFORM) are skipped.

    Raises LabError on a row it cannot read: a silently skipped ACK would be an unchecked one.
    """
    out: list[Ack] = []
    for row in rows:
        if len(row) < len(ACK_FIELDS) or not row[1] or row[1] == "0.0.0.0":
            continue
        try:
            out.append(
                Ack(
                    time=float(row[0]),
                    address=row[1],
                    mac=row[2].lower(),
                    lease_time=int(row[3]),
                    server=row[4],
                )
            )
        except ValueError as exc:
            raise LabError(f"unreadable ACK row {row!r}: {exc}") from exc
    out.sort(key=lambda a: a.time)
    return out


def assign_runs(acks: Iterable[Ack], runs: Sequence[Run]) -> dict[tuple[str, int], list[Ack]]:
    """Which run of its server sent each ACK: the last one started before it was captured.

    A server is down between a kill and the next start, so an ACK captured before run N+1
    started came from run N (even if it was still in flight when the kill landed).
    Raises LabError for an ACK from an unknown server or from before its first start.
    """
    by_server: dict[str, list[Run]] = {}
    for run in runs:
        by_server.setdefault(run.server, []).append(run)
    for lst in by_server.values():
        lst.sort(key=lambda r: r.started)
    out: dict[tuple[str, int], list[Ack]] = {(r.server, r.number): [] for r in runs}
    for ack in acks:
        lives = by_server.get(ack.server)
        if not lives:
            raise LabError(f"ACK from unknown server {ack.server}: {ack}")
        owner = None
        for run in lives:
            if run.started <= ack.time:
                owner = run
            else:
                break
        if owner is None:
            raise LabError(f"ACK captured before {ack.server} was started: {ack}")
        out[(owner.server, owner.number)].append(ack)
    return out


def _mac(lease: Lease) -> str | None:
    return lease.hardware[1].hex(":") if lease.hardware is not None else None


def read_history(text: str, filename: str) -> list[Lease]:
    """Every lease record in file order (a torn last record is left out, as the server does)."""
    reader = LeaseFileReader(text, filename)
    return [rec.record for rec in reader.records() if isinstance(rec.record, Lease)]


def replay(history: Iterable[Lease]) -> dict[str, Lease]:
    """Address -> the last record for it (what a server loads)."""
    return {str(lease.address): lease for lease in history}


def check_history(
    acks: Iterable[Ack], history: Sequence[Lease], slack: float = END_SLACK
) -> Verdict:
    """Each ACK of one run must have an active record (address, MAC, end) in that run's file."""
    best: dict[tuple[str, str | None], float] = {}
    for lease in history:
        if lease.binding_state is not BindingState.ACTIVE:
            continue
        key = (str(lease.address), _mac(lease))
        end = float("inf") if lease.ends is None else float(lease.ends)
        if end > best.get(key, float("-inf")):
            best[key] = end
    verdict = Verdict()
    for ack in acks:
        verdict.history_checked += 1
        found = best.get((ack.address, ack.mac))
        if found is None:
            verdict.findings.append(Finding("lost", f"no active record for {_ack_text(ack)}"))
        elif found < ack.end - slack:
            verdict.findings.append(
                Finding(
                    "stale", f"record ends {found:.0f}, ACK said {ack.end:.0f}: {_ack_text(ack)}"
                )
            )
        else:
            verdict.max_lag = max(verdict.max_lag, ack.end - found)
    return verdict


def check_state(
    server: str,
    acks: Sequence[Ack],
    leases: dict[str, Lease],
    at: float,
    slack: float = END_SLACK,
) -> Verdict:
    """The file ``server`` had at time ``at`` holds every binding it ACKed that still runs.

    ``acks`` are all captured ACKs (both servers, time order). For each address, the last ACK
    ``server`` sent before ``at`` is the binding it promised; a later ACK of the same address
    to the same MAC (either server) may have changed its end, one to another MAC means the
    binding was over (the overlap check judges that). A binding whose end has passed by
    ``at`` (+ slack) may have expired in the file: counted as lapsed, not required.
    """
    own: dict[str, Ack] = {}
    last: dict[str, Ack] = {}
    for ack in acks:
        if ack.time >= at:
            break
        last[ack.address] = ack
        if ack.server == server:
            own[ack.address] = ack
    verdict = Verdict()
    for addr, ack in own.items():
        latest = last[addr]
        if latest.mac != ack.mac:
            verdict.superseded += 1
            continue
        need = min(ack.end, latest.end)
        if need <= at + slack:
            verdict.lapsed += 1
            continue
        verdict.state_checked += 1
        lease = leases.get(addr)
        if lease is None:
            verdict.findings.append(Finding("lost", f"no record at all for {_ack_text(ack)}"))
            continue
        if lease.binding_state is not BindingState.ACTIVE or _mac(lease) != ack.mac:
            verdict.findings.append(
                Finding(
                    "rebound",
                    f"file says {lease.binding_state.keyword} {_mac(lease)} for {_ack_text(ack)}",
                )
            )
            continue
        end = float("inf") if lease.ends is None else float(lease.ends)
        if end < need - slack:
            verdict.findings.append(
                Finding("stale", f"record ends {end:.0f}, ACK said {need:.0f}: {_ack_text(ack)}")
            )
    return verdict


def check_overlaps(acks: Iterable[Ack], slack: float = END_SLACK) -> Verdict:
    """No address ACKed to a MAC while another MAC's latest ACK for it had not yet ended."""
    holder: dict[str, Ack] = {}
    verdict = Verdict()
    for ack in sorted(acks, key=lambda a: a.time):
        prev = holder.get(ack.address)
        if prev is not None and prev.mac != ack.mac and ack.time < prev.end - slack:
            verdict.findings.append(
                Finding(
                    "overlap",
                    f"{ack.address} ACKed to {ack.mac} by {ack.server} at {ack.time:.3f} while "
                    f"{prev.mac}'s lease from {prev.server} ran until {prev.end:.0f}",
                )
            )
        holder[ack.address] = ack
    return verdict


def _ack_text(ack: Ack) -> str:
    return (
        f"{ack.address} -> {ack.mac} (ACK from {ack.server} at {ack.time:.3f}, "
        f"{ack.lease_time} s, ends {ack.end:.0f})"
    )


def check_run_file(run: Run, acks: Sequence[Ack], mine: Sequence[Ack], text: str) -> Verdict:
    """Both file checks for one post-kill copy: its run's ACKs in the history, and the state."""
    history = read_history(text, str(run.snapshot))
    verdict = check_history(mine, history)
    assert run.stopped is not None
    verdict.merge(check_state(run.server, acks, replay(history), run.stopped))
    return verdict
