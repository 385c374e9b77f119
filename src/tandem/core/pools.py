"""Lease database and address allocation whose cost does not grow with the pool size.

Every address of a range is either *fresh* (no ``Lease`` object yet: never used since start-up
and not in the lease file) or has a ``Lease`` in ``by_addr``. Fresh addresses are handed out
from per-range cursors, highest address first like dhcpd; leases that become FREE go into a
per-pool FIFO (oldest first, as dhcpd sorts its free queue by end time), ABANDONED ones into a
second FIFO used only when nothing else is left. Queue entries are checked when taken (lazy
deletion), so moving a lease between states never searches a queue. Client lookups use dicts
keyed by client identifier and hardware address, and expiry uses a heap of end times, so
nothing on the packet path or in ``tick`` scans the pools.

An OFFER does not change the lease (dhcpd does not commit offers either): the address is held
for the client in ``offers`` for two minutes and comes back when the hold lapses.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tandem.config.model import Permit, Pool
from tandem.core.lease import BindingState, Lease
from tandem.wire.dhcp import ipv4

if TYPE_CHECKING:
    from tandem.core.failover.policy import PoolFailover

HwKey = tuple[int, bytes]
OFFER_HOLD = 120  # dhcpd: "Set the lease to really expire in 2 minutes" (dhcpdiscover)

_FREE = BindingState.FREE
_ACTIVE = BindingState.ACTIVE
_ABANDONED = BindingState.ABANDONED
_BACKUP = BindingState.BACKUP

#: Called for every lease due in ``expire``: None = not mine (default handling), True =
#: changed (persist it), False = left alone.
ExpiryHook = Callable[[Lease, int], bool | None]


@dataclass(eq=False, slots=True)
class FreeList:
    """Allocation state of one kind of range (DHCP or dynamic-BOOTP) of one pool."""

    fresh: list[list[int]] = field(default_factory=list)  # [low, next-high] still unused
    free: deque[int] = field(default_factory=deque)
    abandoned: deque[int] = field(default_factory=deque)
    backup: deque[int] = field(default_factory=deque)  # failover: the secondary's free state
    size: int = 0


@dataclass(eq=False, slots=True)
class PoolState:
    """Runtime state of one ``pool`` (or the implicit pool of a subnet's ranges)."""

    model: Pool
    permits: tuple[Permit, ...]
    dhcp: FreeList
    bootp: FreeList
    # The NetState it belongs to (set by the topology). Any, not object: mypyc (see
    # scripts/build_native.py) cannot compile a slotted dataclass field typed object.
    share: Any = None
    failover: PoolFailover | None = None  # given by the server (its ``failover=``)
    # Free addresses as last counted by LeaseDB.count_free, minus allocations since: what the
    # new-lease gate (core.flood) reads. -1 = never counted.
    free_hint: int = -1

    @property
    def size(self) -> int:
        return self.dhcp.size + self.bootp.size


@dataclass(slots=True)
class Offer:
    """An address held for a client between OFFER and REQUEST."""

    address: int
    hw: HwKey
    uid: bytes | None
    until: int


class LeaseDB:
    """All leases, their indexes, the free queues and the offer holds."""

    def __init__(self) -> None:
        self.by_addr: dict[int, Lease] = {}
        self.by_uid: dict[bytes, list[int]] = {}
        self.by_hw: dict[HwKey, list[int]] = {}
        self.excluded: set[int] = set()  # fixed addresses, network and broadcast addresses
        self._range_lows: list[int] = []
        self._ranges: list[tuple[int, int, PoolState, FreeList, object]] = []
        self._queued: set[int] = set()  # addresses currently sitting in some queue
        self._expiry: list[tuple[int, int]] = []  # (ends, address) of leases that will expire
        self.offers: dict[int, Offer] = {}
        self._offer_uid: dict[bytes, int] = {}
        self._offer_hw: dict[HwKey, int] = {}
        self._offer_heap: list[tuple[int, int]] = []
        self.ops = 0  # queue/cursor steps taken by allocation (lets tests prove O(1))

    # --- ranges ------------------------------------------------------------------------

    def add_range(self, low: int, high: int, pool: PoolState, fl: FreeList, subnet: object) -> None:
        """Register a range; call ``finish_ranges`` once all are added."""
        self._ranges.append((low, high, pool, fl, subnet))
        fl.fresh.append([low, high])
        fl.size += high - low + 1

    def finish_ranges(self) -> None:
        self._ranges.sort(key=lambda r: r[0])
        self._range_lows = [r[0] for r in self._ranges]
        for _, _, _, fl, _ in self._ranges:
            fl.fresh.sort()

    def count_free(self, pools: Iterable[PoolState]) -> None:
        """Set every pool's ``free_hint``: its size minus its leases not FREE or BACKUP.

        O(leases): the server calls it at start and every few seconds while the new-lease
        gate is on, and decrements the hint on each allocation in between.
        """
        used: dict[int, int] = {}
        for a, lease in self.by_addr.items():
            if lease.binding_state is _FREE or lease.binding_state is _BACKUP:
                continue
            loc = self.locate(a)
            if loc is not None:
                used[id(loc[0])] = used.get(id(loc[0]), 0) + 1
        for pool in pools:
            pool.free_hint = pool.size - used.get(id(pool), 0)

    def locate(self, addr: int) -> tuple[PoolState, FreeList, object] | None:
        """The pool, kind and subnet of a range address, or None when in no range."""
        i = bisect_right(self._range_lows, addr) - 1
        if i < 0:
            return None
        _, high, pool, fl, subnet = self._ranges[i]
        if addr > high:
            return None
        return pool, fl, subnet

    # --- leases and indexes ------------------------------------------------------------

    def load(self, lease: Lease) -> None:
        """Insert a lease read from storage (a later one for the same address wins)."""
        a = int(lease.address)
        old = self.by_addr.get(a)
        if old is not None:
            self._unindex(old)
        self.by_addr[a] = lease
        self._index(lease)
        self.requeue(lease)
        if lease.binding_state in (_ACTIVE, BindingState.EXPIRED, BindingState.RELEASED):
            self.schedule(lease)

    def materialize(self, addr: int) -> Lease:
        """The lease for an address, creating a FREE one for a fresh address."""
        lease = self.by_addr.get(addr)
        if lease is None:
            lease = Lease(ipv4(addr))
            self.by_addr[addr] = lease
        return lease

    def _index(self, lease: Lease) -> None:
        a = int(lease.address)
        if lease.uid is not None:
            lst = self.by_uid.setdefault(lease.uid, [])
            if a not in lst:
                lst.append(a)
        if lease.hardware is not None:
            lst = self.by_hw.setdefault(lease.hardware, [])
            if a not in lst:
                lst.append(a)

    def _unindex(self, lease: Lease) -> None:
        a = int(lease.address)
        if lease.uid is not None:
            lst = self.by_uid.get(lease.uid)
            if lst is not None and a in lst:
                lst.remove(a)
                if not lst:
                    del self.by_uid[lease.uid]
        if lease.hardware is not None:
            lst = self.by_hw.get(lease.hardware)
            if lst is not None and a in lst:
                lst.remove(a)
                if not lst:
                    del self.by_hw[lease.hardware]

    def set_owner(self, lease: Lease, hw: HwKey | None, uid: bytes | None) -> None:
        """Change who a lease belongs to, keeping the client indexes right."""
        if lease.hardware == hw and lease.uid == uid:
            return
        self._unindex(lease)
        lease.hardware = hw
        lease.uid = uid
        self._index(lease)

    def leases_of(self, uid: bytes | None, hw: HwKey) -> tuple[list[Lease], list[Lease]]:
        """(leases by client identifier, leases by hardware address), most recent first."""
        by_addr = self.by_addr
        ua = self.by_uid.get(uid) if uid else None
        ha = self.by_hw.get(hw)
        # New clients have neither: skip building the comprehensions (hot path).
        by_uid = [by_addr[a] for a in reversed(ua)] if ua else []
        by_hw = [by_addr[a] for a in reversed(ha)] if ha else []
        return by_uid, by_hw

    # --- queues ------------------------------------------------------------------------

    def requeue(self, lease: Lease) -> None:
        """Put a FREE or ABANDONED lease (back) into its pool's queue."""
        a = int(lease.address)
        if a in self._queued:
            return
        where = self.locate(a)
        if where is None:
            return
        fl = where[1]
        if lease.binding_state is _FREE:
            fl.free.append(a)
        elif lease.binding_state is _BACKUP:
            fl.backup.append(a)
        elif lease.binding_state is _ABANDONED:
            fl.abandoned.append(a)
        else:
            return
        self._queued.add(a)

    def requeue_moved(self, lease: Lease) -> None:
        """Requeue a lease whose free state changed (FREE <-> BACKUP, failover): the entry
        in the old queue goes stale and is dropped when reached."""
        self._queued.discard(int(lease.address))
        self.requeue(lease)

    def _available(self, a: int) -> bool:
        return a not in self.offers and a not in self.excluded

    def take(
        self,
        fl: FreeList,
        *,
        abandoned_ok: bool = True,
        free: bool = True,
        backup: bool = False,
        accept: Callable[[Lease | None], bool] | None = None,
        reclaim: Callable[[Lease], bool] | None = None,
    ) -> tuple[int, bool] | None:
        """Remove and return (address, was_abandoned) from a free list, or None.

        Preference as dhcpd's allocate_lease: never-used addresses, then the free lease that
        has been free the longest, then (last resort) the oldest abandoned lease. Failover
        narrows the choice: ``free`` / ``backup`` say which free states this server may use
        (never-used addresses are FREE), ``accept`` vetoes a candidate (PARTNER-DOWN's MCLT
        wait; ``None`` stands for a never-used address). A vetoed queued lease stays queued
        and ends the search of its queue (queues are oldest first, so the rest is younger).
        ``reclaim`` vetoes an abandoned lease (failover: the peer has not yet acked that it
        is abandoned); a vetoed one stays queued and the next one is tried.
        """
        fresh = fl.fresh
        if free and (accept is None or accept(None)):
            while fresh:
                self.ops += 1
                r = fresh[-1]
                a = r[1]
                r[1] -= 1
                if r[1] < r[0]:
                    fresh.pop()
                if a not in self.by_addr and self._available(a):
                    return a, False
        for state, q, ok in ((_FREE, fl.free, free), (_BACKUP, fl.backup, backup)):
            while ok and q:
                self.ops += 1
                a = q[0]
                lease = self.by_addr.get(a)
                if lease is not None and lease.binding_state is state:
                    if self._available(a):
                        if accept is not None and not accept(lease):
                            break
                        q.popleft()
                        self._queued.discard(a)
                        return a, False
                    q.popleft()
                    self._queued.discard(a)
                    continue
                q.popleft()
                if lease is None:
                    self._queued.discard(a)
                elif lease.binding_state is _ABANDONED:  # became abandoned while queued as free
                    fl.abandoned.append(a)
                elif lease.binding_state not in (_FREE, _BACKUP):
                    self._queued.discard(a)
                # else: a stale entry; ``requeue_moved`` put the lease in its new queue
        if not abandoned_ok:
            return None
        q = fl.abandoned
        vetoed: list[int] = []
        found: tuple[int, bool] | None = None
        while q:
            self.ops += 1
            a = q.popleft()
            lease = self.by_addr.get(a)
            if lease is not None and lease.binding_state is _ABANDONED and self._available(a):
                if reclaim is not None and not reclaim(lease):
                    vetoed.append(a)
                    continue
                self._queued.discard(a)
                found = (a, True)
                break
            self._queued.discard(a)
        if vetoed:
            q.extendleft(reversed(vetoed))
        return found

    def take_fresh_low(self, fl: FreeList) -> int | None:
        """A never-used address from the *low* end of a range (pool balancing gives these
        away, while allocation hands out the high end), or None."""
        fresh = fl.fresh
        while fresh:
            self.ops += 1
            r = fresh[0]
            a = r[0]
            r[0] += 1
            if r[1] < r[0]:
                fresh.pop(0)
            if a not in self.by_addr and self._available(a):
                return a
        return None

    def give_back(self, a: int) -> None:
        """Undo ``take`` for an address that was not used after all."""
        lease = self.by_addr.get(a)
        where = self.locate(a)
        if where is None:
            return
        fl = where[1]
        if lease is None:
            fl.fresh.append([a, a])
        elif a not in self._queued and lease.binding_state in (_FREE, _BACKUP, _ABANDONED):
            queue = {_FREE: fl.free, _BACKUP: fl.backup}.get(lease.binding_state, fl.abandoned)
            queue.appendleft(a)
            self._queued.add(a)

    # --- offers --------------------------------------------------------------------------

    def hold(self, a: int, hw: HwKey, uid: bytes | None, now: int) -> None:
        """Hold an address for a client for OFFER_HOLD seconds."""
        self.release_hold_of(uid, hw)
        until = now + OFFER_HOLD
        self.offers[a] = Offer(a, hw, uid, until)
        if uid is not None:
            self._offer_uid[uid] = a
        self._offer_hw[hw] = a
        heapq.heappush(self._offer_heap, (until, a))

    def adopt_holds(self, offers: Iterable[Offer]) -> None:
        """Hold what another database held, until the same time (a reload builds a new
        database over the same leases: tandem.core.reload), so no offer is handed twice."""
        for off in offers:
            a = off.address
            if a in self.offers:
                continue
            self.offers[a] = Offer(a, off.hw, off.uid, off.until)
            if off.uid is not None:
                self._offer_uid[off.uid] = a
            self._offer_hw[off.hw] = a
            heapq.heappush(self._offer_heap, (off.until, a))

    def held_for(self, uid: bytes | None, hw: HwKey) -> Offer | None:
        """The client's current hold, by client identifier first, else hardware address."""
        a = self._offer_uid.get(uid) if uid is not None else None
        if a is None:
            a = self._offer_hw.get(hw)
        return None if a is None else self.offers.get(a)

    def drop_hold(self, a: int) -> None:
        """Forget a hold (REQUEST committed it, or the client went elsewhere)."""
        off = self.offers.pop(a, None)
        if off is None:
            return
        if off.uid is not None and self._offer_uid.get(off.uid) == a:
            del self._offer_uid[off.uid]
        if self._offer_hw.get(off.hw) == a:
            del self._offer_hw[off.hw]
        lease = self.by_addr.get(a)
        if lease is None:
            where = self.locate(a)
            if where is not None:
                where[1].fresh.append([a, a])
        else:
            self.requeue(lease)

    def release_hold_of(self, uid: bytes | None, hw: HwKey) -> None:
        off = self.held_for(uid, hw)
        if off is not None:
            self.drop_hold(off.address)

    def expire_holds(self, now: int) -> None:
        """Return lapsed holds to the free queues (cheap when nothing lapsed)."""
        heap = self._offer_heap
        while heap and heap[0][0] <= now:
            until, a = heapq.heappop(heap)
            off = self.offers.get(a)
            if off is not None and off.until == until:
                self.drop_hold(a)

    def is_held_by_other(self, a: int, uid: bytes | None, hw: HwKey) -> bool:
        off = self.offers.get(a)
        if off is None:
            return False
        if uid is not None and off.uid is not None:
            return off.uid != uid
        return off.hw != hw

    # --- expiry --------------------------------------------------------------------------

    def schedule(self, lease: Lease) -> None:
        if lease.ends is not None:
            heapq.heappush(self._expiry, (lease.ends, int(lease.address)))

    def expire(self, now: int, hook: ExpiryHook | None = None) -> list[Lease]:
        """Move ACTIVE/EXPIRED/RELEASED leases past their end to their next state (FREE).

        ``hook`` (failover) decides first for every due lease; see ``ExpiryHook``.
        """
        out: list[Lease] = []
        heap = self._expiry
        while heap and heap[0][0] <= now:
            ends, a = heapq.heappop(heap)
            lease = self.by_addr.get(a)
            if lease is None or lease.ends != ends:
                continue
            st = lease.binding_state
            if st not in (_ACTIVE, BindingState.EXPIRED, BindingState.RELEASED):
                continue
            if hook is not None:
                verdict = hook(lease, now)
                if verdict is not None:
                    if verdict:
                        out.append(lease)
                    continue
            nxt = lease.next_binding_state
            lease.binding_state = nxt if nxt in (_FREE, BindingState.BACKUP) else _FREE
            lease.next_binding_state = None
            self.requeue(lease)
            out.append(lease)
        return out
