"""A failover pair (Tandem or ISC dhcpd) as two processes in the lab, and how to watch it.

Written for bench/failover_bench.py; the ideas come from tests/lab/failover_kit.py (a restartable
node, state read from ``tandem status`` or from dhcpd's log lines) so the lab tests can move onto
this module later. Everything here observes from the outside, the same way for both
implementations where possible:

* failover states: Tandem answers ``status`` on its control socket; dhcpd only logs its moves
  ("failover peer NAME: I move from A to B", "... peer moves from A to B", "... Both servers
  normal"; a restart that finds the peer NORMAL in its lease file logs no "peer moves" line).
  The log is followed incrementally: a secondary logs one line per binding update, megabytes
  at 60000 leases, too much to re-read on every poll;
* pool counts: Tandem reports free/backup per pool; dhcpd logs the primary's counts after each
  balancing run ("balanced pool ... free F  backup B ..."), and what the secondary has really
  received shows up in its lease file, which is also followed incrementally.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path

from tandem.io.control import ControlUnavailable, control_path_for, request
from tandem.lab.netns import Host, LabError
from tandem.lab.servers import Server, run_dhcpd, run_tandem

FAILOVER_NAME = "failover-example"
PAIR_KINDS = ("tandem", "dhcpd")

_MOVE_RE = re.compile(
    r"^failover peer (\S+): (?:(I|peer) moves? from (\S+) to (\S+)|(Both servers normal))\s*$",
    re.M,
)
_POOL_RE = re.compile(
    r"^(balanced|IMBALANCED) pool \S+ .*?total (\d+)\s+free (\d+)\s+backup (\d+)\s+lts (-?\d+)"
    r"\s+max-misbal (\d+)",
    re.M,
)
_LEASE_RE = re.compile(r"^lease (\S+) \{\n(.*?)^\}", re.M | re.S)
_BINDING_RE = re.compile(r"^\s*binding state (\S+);", re.M)


_SPLIT_RE = re.compile(r"^(\s*)split \d+;", re.M)


def set_split(conf: str, split: int) -> str:
    """The primary's config with another ``split`` statement (the first one that starts a line,
    so a comment that mentions it is left alone); LabError if there is none."""
    new, n = _SPLIT_RE.subn(lambda m: f"{m.group(1)}split {split};", conf, count=1)
    if n != 1:
        raise LabError("config has no 'split N;' statement")
    return new


def misbalance_threshold(total: int, percent: int = 15) -> int:
    """dhcpd's rounding of max-lease-misbalance (percent of the pool) into a lease count."""
    return (total * percent + 50) // 100


@dataclass(frozen=True)
class PoolView:
    """One server's view of a failover pool: FREE leases (primary's) and BACKUP (secondary's)."""

    total: int
    free: int
    backup: int

    def within(self, percent: int = 15) -> bool:
        """True when dhcpd's "lts" (half the difference, truncated) is within the threshold."""
        lts = int((self.free - self.backup) / 2)
        return abs(lts) <= misbalance_threshold(self.total, percent)


class LogFollower:
    """Reads a growing log from where it stopped last time; only whole lines are returned."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def poll(self) -> str:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return ""
        if size < self._offset:  # truncated: a new run of the program writes the same file
            self._offset, self._partial = 0, b""
        if size == self._offset:
            return ""
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read(size - self._offset)
        self._offset += len(data)
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        return data[:cut].decode("utf-8", errors="replace")


class LeaseStates:
    """The last binding state of every address in a dhcpd-format lease file, read incrementally.

    Both servers append a whole ``lease A { ... }`` record per change, so the newest record of
    an address is its state. A rewrite (new inode or a shorter file) starts the count over.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.states: dict[str, str] = {}
        self._inode: int | None = None
        self._offset = 0
        self._rest = ""

    def poll(self) -> dict[str, str]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return self.states
        if st.st_ino != self._inode or st.st_size < self._offset:
            self._inode, self._offset, self._rest = st.st_ino, 0, ""
            self.states = {}
        if st.st_size > self._offset:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read(st.st_size - self._offset)
            self._offset += len(data)
            text = self._rest + data.decode("latin-1")
            end = 0
            for m in _LEASE_RE.finditer(text):
                b = _BINDING_RE.search(m.group(2))
                if b is not None:
                    self.states[m.group(1)] = b.group(1)
                end = m.end()
            # Keep the unfinished tail; drop fully read non-lease text (comments, state blocks).
            last_open = text.rfind("\nlease ", end)
            self._rest = text[last_open + 1 :] if last_open >= 0 else text[end:][-4096:]
        return self.states

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)


@dataclass
class Snapshot:
    """What one poll of a pair saw. ``None`` means "not known (yet)"."""

    primary_state: str | None = None
    primary_peer_state: str | None = None
    secondary_state: str | None = None
    secondary_peer_state: str | None = None
    primary_pool: PoolView | None = None
    secondary_pool: PoolView | None = None
    pending_updates: int | None = None  # Tandem only: queued + unacked on the primary

    @property
    def both_normal(self) -> bool:
        states = (
            self.primary_state,
            self.primary_peer_state,
            self.secondary_state,
            self.secondary_peer_state,
        )
        return all(s == "normal" for s in states)


@dataclass
class PairNode:
    """One server of a pair, restartable with its files (lease file, log, pid file)."""

    kind: str
    role: str
    host: Host
    conf: str
    leases_path: Path
    cpu: int | None = None
    server: Server | None = None
    _log: LogFollower | None = field(default=None, repr=False)
    _moves: tuple[str | None, str | None] = (None, None)
    _pool: PoolView | None = None

    def start(self, ready_timeout: float = 60.0) -> Server:
        if self.kind == "tandem":
            self.server = run_tandem(
                self.host, self.conf, self.leases_path, cpu=self.cpu, ready_timeout=ready_timeout
            )
        elif self.kind == "dhcpd":
            self.server = run_dhcpd(
                self.host, self.conf, self.leases_path, cpu=self.cpu, ready_timeout=ready_timeout
            )
        else:
            raise LabError(f"unknown pair kind {self.kind!r} (known: {PAIR_KINDS})")
        self._log = LogFollower(self.server.proc.log_path)
        self._moves, self._pool = (None, None), None
        return self.server

    @property
    def pid(self) -> int:
        if self.server is None:
            raise LabError(f"{self.kind} {self.role} not started")
        return self.server.proc.pid

    def running(self) -> bool:
        return self.server is not None and self.server.proc.running()

    def send_stop(self) -> None:
        """SIGTERM without waiting (so both peers of a pair can be told at the same moment)."""
        if self.server is not None and self.server.proc.running():
            os.kill(self.server.proc.pid, signal.SIGTERM)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def log_tail(self, chars: int = 1500) -> str:
        return self.server.log()[-chars:] if self.server is not None else ""

    # --- observation ------------------------------------------------------------------

    def tandem_status(self) -> dict[str, object] | None:
        """The relationship's entry of ``tandem status``; None while the socket is not up."""
        if self.server is None or self.server.pid_path is None:
            return None
        try:
            answer = request(control_path_for(str(self.server.pid_path)), {"command": "status"})
        except ControlUnavailable:
            return None
        result = answer.get("result")
        if not answer.get("ok") or not isinstance(result, dict):
            return None
        failover = result.get("failover")
        info = failover.get(FAILOVER_NAME) if isinstance(failover, dict) else None
        return info if isinstance(info, dict) else None

    def dhcpd_observe(self) -> None:
        """Follow the log: the last own and peer state moves, the last balancing verdict."""
        if self._log is None:
            return
        text = self._log.poll()
        if not text:
            return
        mine, peer = self._moves
        for m in _MOVE_RE.finditer(text):
            if m.group(1) != FAILOVER_NAME:
                continue
            if m.group(5):
                # A restart from a lease file that recorded the peer as NORMAL logs no "peer
                # moves" line, only this one: it is dhcpd's own verdict on both states.
                mine = peer = "normal"
            elif m.group(2) == "I":
                mine = m.group(4)
            else:
                peer = m.group(4)
        self._moves = (mine, peer)
        for p in _POOL_RE.finditer(text):
            self._pool = PoolView(int(p.group(2)), int(p.group(3)), int(p.group(4)))

    @property
    def dhcpd_states(self) -> tuple[str | None, str | None]:
        return self._moves

    @property
    def dhcpd_pool(self) -> PoolView | None:
        return self._pool


def tandem_pool(info: dict[str, object] | None) -> PoolView | None:
    """Sum of the pools in a Tandem status entry (the bench has one failover pool)."""
    pools = info.get("pools") if info is not None else None
    if not isinstance(pools, list) or not pools:
        return None
    total = free = backup = 0
    for p in pools:
        if not isinstance(p, dict):
            return None
        total += int(p.get("total", 0))
        free += int(p.get("free", 0))
        backup += int(p.get("backup", 0))
    return PoolView(total, free, backup)


class PairWatch:
    """Polls a running pair (both nodes of the same kind) into :class:`Snapshot` objects."""

    def __init__(self, primary: PairNode, secondary: PairNode, pool_total: int) -> None:
        if primary.kind != secondary.kind:
            raise LabError("a watched pair must be of one kind")
        self.primary = primary
        self.secondary = secondary
        self.pool_total = pool_total
        self.secondary_leases = LeaseStates(secondary.leases_path)

    def snapshot(self, *, read_leases: bool = True) -> Snapshot:
        """One observation; ``read_leases`` also follows the dhcpd secondary's lease file."""
        snap = Snapshot()
        if self.primary.kind == "tandem":
            p = self.primary.tandem_status()
            s = self.secondary.tandem_status()
            if p is not None:
                snap.primary_state = str(p.get("my_state"))
                snap.primary_peer_state = str(p.get("partner_state"))
                snap.primary_pool = tandem_pool(p)
                snap.pending_updates = int(str(p.get("queued_updates", 0))) + int(
                    str(p.get("unacked_updates", 0))
                )
            if s is not None:
                snap.secondary_state = str(s.get("my_state"))
                snap.secondary_peer_state = str(s.get("partner_state"))
                snap.secondary_pool = tandem_pool(s)
            return snap
        for node in (self.primary, self.secondary):
            node.dhcpd_observe()
        snap.primary_state, snap.primary_peer_state = self.primary.dhcpd_states
        snap.secondary_state, snap.secondary_peer_state = self.secondary.dhcpd_states
        snap.primary_pool = self.primary.dhcpd_pool
        if read_leases:
            states = self.secondary_leases.poll()
            backup = sum(1 for v in states.values() if v == "backup")
            taken = sum(1 for v in states.values() if v not in ("free", "backup"))
            snap.secondary_pool = PoolView(
                self.pool_total, self.pool_total - backup - taken, backup
            )
        return snap


__all__ = [
    "FAILOVER_NAME",
    "PAIR_KINDS",
    "LeaseStates",
    "LogFollower",
    "PairNode",
    "PairWatch",
    "PoolView",
    "Snapshot",
    "misbalance_threshold",
    "set_split",
    "tandem_pool",
]
