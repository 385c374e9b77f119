"""Pool balancing for one failover relationship: FREE/BACKUP counts per pool, ISC's rebalance.

The primary allocates FREE leases and the secondary BACKUP ones, so each server needs its share
of every pool. As ISC does, ``PoolBalance`` keeps each pool's FREE and BACKUP counts
(``free_leases`` / ``backup_leases``) up to date on every change, so that balancing and "the
peer holds free leases" cost O(1). In NORMAL it moves leases to the peer when we hold too many
(``dhcp_failover_pool_dobalance``) and works out when to look again
(``dhcp_failover_pool_check``). Moving a lease is a lease change with a BNDUPD behind it, so
the caller (``tandem.core.failover.leases``) passes in the function that does it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tandem.core.failover.loadbalance import bucket_is_mine, lb_hash
from tandem.core.failover.rules import own_free_state
from tandem.core.lease import BindingState, Lease

if TYPE_CHECKING:
    from tandem.config.model import FailoverPeer, Pool
    from tandem.core.pools import LeaseDB, PoolState

B = BindingState


def ranges_text(pool: Pool) -> str:
    """A pool's ranges as a person writes them: ``192.0.2.100-192.0.2.200`` (comma-joined)."""
    return ",".join(f"{r.low}-{r.high}" for r in pool.ranges)


@dataclass(slots=True)
class PoolCounts:
    """One failover pool's balance book-keeping."""

    pool: PoolState
    ident: int  # stable number for log lines (dhcpd prints the pool's pointer)
    free: int = 0
    backup: int = 0


class PoolBalance:
    """The FREE/BACKUP counts of one relationship's pools, and their balancing."""

    def __init__(
        self, db: LeaseDB, pools: Sequence[PoolState], peer: FailoverPeer, log: list[str]
    ) -> None:
        self.db = db
        self.cfg = peer
        self.role = peer.role
        self.log = log
        self.own = own_free_state(peer.role)
        self.counts: dict[int, PoolCounts] = {}  # id(PoolState) -> counts
        self._counted: dict[int, BindingState] = {}  # address -> state it is counted as
        self.last_balance = 0
        self.next_balance: int | None = None
        # The server makes the relationship the ``failover`` of exactly these pools once its
        # factory (``engine.FailoverSetup``) returns.
        self._adopt(pools)

    def _adopt(self, pools: Sequence[PoolState]) -> None:
        for pool in pools:
            if pool.model.failover_peer == self.cfg.name:
                self.counts[id(pool)] = PoolCounts(pool, len(self.counts) + 1, pool.size)

    def rebind(self, db: LeaseDB, pools: Sequence[PoolState]) -> None:
        """A reload built a new lease database and pools over the same leases: count them
        again (the caller then recounts each lease of ``db``). Balancing times are kept."""
        self.db = db
        self.counts = {}
        self._counted = {}
        self._adopt(pools)

    # --- counts ---------------------------------------------------------------------------

    def of(self, a: int) -> PoolCounts | None:
        """The counts of the pool holding address ``a``; None outside this relationship."""
        loc = self.db.locate(a)
        if loc is None:
            return None
        return self.counts.get(id(loc[0]))  # only this relationship's pools are counted

    def count(self, pc: PoolCounts, a: int, new: BindingState) -> None:
        old = self._counted.get(a, B.FREE)
        if old is new:
            return
        if old is B.FREE:
            pc.free -= 1
        elif old is B.BACKUP:
            pc.backup -= 1
        if new is B.FREE:
            pc.free += 1
        elif new is B.BACKUP:
            pc.backup += 1
        self._counted[a] = new

    def recount(self, lease: Lease) -> None:
        a = int(lease.address)
        pc = self.of(a)
        if pc is not None:
            self.count(pc, a, lease.binding_state)

    def peer_has_leases(self, pool: object) -> bool:
        pc = self.counts.get(id(pool))
        if pc is None:
            return False
        return (pc.backup if self.role == "primary" else pc.free) > 0

    def summary(self) -> list[dict[str, int | str]]:
        return [
            {
                "pool": pc.ident,
                "ranges": ranges_text(pc.pool.model),
                "total": pc.pool.size,
                "free": pc.free,
                "backup": pc.backup,
            }
            for pc in self.counts.values()
        ]

    # --- balancing (§9) -------------------------------------------------------------------

    def balance(
        self,
        now: int,
        hba: bytes | None,
        move: Callable[[Lease, int], None],
        *,
        want_poolreq: bool = False,
    ) -> tuple[int, bool]:
        """ISC's dhcp_failover_pool_dobalance; returns (leases moved, POOLREQ wanted).

        ``hba``: the hash buckets in force; ``move(lease, now)`` hands a lease to the peer.
        """
        self.last_balance = now
        moved = 0
        poolreq = False
        cfg = self.cfg
        for pc in self.counts.values():
            own_n, peer_n = (pc.free, pc.backup) if self.role == "primary" else (pc.backup, pc.free)
            lts = int((own_n - peer_n) / 2)  # C division truncates toward zero
            total = pc.free + pc.backup
            thresh = (total * cfg.max_lease_misbalance + 50) // 100
            hold = (total * cfg.max_lease_ownership + 50) // 100
            panic = -2 * thresh or -1
            req = want_poolreq and lts < panic
            poolreq |= req
            share = getattr(pc.pool.share, "name", "")
            self.log.append(
                f"balancing pool {pc.ident:x} {share}  total {pc.pool.size}  free {pc.free}  "
                f"backup {pc.backup}  lts {lts}  max-own (+/-){hold}"
                + ("  (requesting peer rebalance!)" if req else "")
            )
            given = self._give_away(pc, lts, hold, now, hba=hba, move=move)
            moved += given
            lts -= given
            verdict = "IMBALANCED" if lts > thresh else "balanced"
            self.log.append(
                f"{verdict} pool {pc.ident:x} {share}  total {pc.pool.size}  free {pc.free}  "
                f"backup {pc.backup}  lts {lts}  max-misbal {thresh}"
            )
        self.schedule(now)
        return moved, poolreq

    def _give_away(
        self,
        pc: PoolCounts,
        lts: int,
        hold: int,
        now: int,
        *,
        hba: bytes | None,
        move: Callable[[Lease, int], None],
    ) -> int:
        db = self.db
        given = 0
        lists = (pc.pool.dhcp, pc.pool.bootp)
        # Pass 1: used leases whose client the load-balancing hash gives to the peer.
        for fl in lists:
            for a in db.queued(fl, self.own):
                if lts - given <= -hold:
                    break
                lease = db.by_addr.get(a)
                if lease is None or lease.binding_state is not self.own or a in db.offers:
                    continue
                if self._peer_wants(lease, hba):
                    move(lease, now)
                    given += 1
        # Pass 2: from the head of the queue, never-used first (down to an even split), then
        # used ones: the same head allocation takes from, so a fresh primary gives away the
        # lowest addresses and hands out the next ones (the vectors' dhcpd pair: 192.0.2.100-149
        # to BACKUP, its first client 192.0.2.150).
        for fl in lists:
            while self.own is B.FREE and lts - given > 0:
                fresh = db.take_fresh(fl)
                if fresh is None:
                    break
                move(db.materialize(fresh), now)
                given += 1
            for a in db.queued(fl, self.own):
                lease = db.by_addr.get(a)
                if lease is None or lease.binding_state is not self.own or a in db.offers:
                    continue
                if lts - given <= (hold if lease.ends else 0):
                    break
                move(lease, now)
                given += 1
        return given

    def _peer_wants(self, lease: Lease, hba: bytes | None) -> bool:
        if lease.uid is not None:
            key = lease.uid
        elif lease.hardware is not None:
            key = lease.hardware[1]
        else:
            return False
        return not bucket_is_mine(lb_hash(key), hba, self.role) if hba else False

    def schedule(self, now: int) -> None:
        """dhcp_failover_pool_check, without the random 0-4 s (core is deterministic)."""
        est = 0
        for pc in self.counts.values():
            for fl in (pc.pool.dhcp, pc.pool.bootp):
                for q in (fl.free, fl.backup):
                    head = self.db.by_addr.get(q[0][2]) if q else None
                    if head is not None and head.ends is not None and head.ends < now:
                        age = ((now - head.ends) * self.cfg.max_lease_misbalance + 50) // 100
                        est = age if est == 0 else min(est, age)
        at = now + min(est, self.cfg.max_balance)
        if self.last_balance:
            at = max(at, self.last_balance + self.cfg.min_balance)
        if self.next_balance is None or at < self.next_balance or self.next_balance <= now:
            self.next_balance = at
