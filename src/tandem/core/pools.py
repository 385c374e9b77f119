"""Lease database and address allocation whose cost does not grow with the pool size.

Every address of a range is either *fresh* (no ``Lease`` object yet: never used since start-up
and not in the lease file) or has a ``Lease`` in ``by_addr``. The free queues are dhcpd's
(server/mdb.c lease_enqueue and lease_insert, server/dhcp.c allocate_lease): a pool hands out
the head of its free queue, which dhcpd keeps sorted by end time (never-used leases end at 0),
a lease going before the first one that does not end earlier. Here:

- fresh addresses come first, as runs handed out lowest first: one run per range on a fresh
  server, in address order. After a restart dhcpd builds its queues by walking its lease hash
  (expire_all_pools, buckets in address order modulo ``HASH_BUCKETS``); a never-used address
  that does not directly follow one of the same queue in that walk goes to the head of the
  queue, so every run that a leased address interrupts lands before the earlier runs.
  ``order_fresh`` reproduces that once the lease file is loaded;
- FREE (and, in failover, BACKUP) leases wait in heaps ordered by end time; among equal end
  times the one queued last comes first, as lease_insert does at run time (while the lease file
  is read, equal end times keep the hash walk's order). An offered address that was not
  requested comes back with the hold's end as its end time, as dhcpd moves an offered lease's
  ends two minutes ahead;
- ABANDONED leases wait in a heap of their own, used only when nothing else is left.

Heap entries are checked when reached (lazy deletion: an entry is live while it is its
address's entry in ``_queued``), so moving a lease between states never searches a queue.
Client lookups use dicts keyed by client identifier and hardware address, and expiry uses a heap
of end times, so nothing on the packet path or in ``tick`` scans the pools.

An OFFER does not change the lease (dhcpd does not commit offers either): the address is held
for the client in ``offers`` for two minutes and comes back when the hold lapses.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
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
HASH_BUCKETS = 100003  # dhcpd's LEASE_HASH_SIZE: its lease-by-address hash, walked at start-up
#: A free-queue entry: (sort time, tie, address). The sort time is dhcpd's sort_time (the
#: lease's end); the tie is -n for the n-th lease queued at run time (later first), the hash
#: bucket for one read from the lease file (the start-up walk's order), and HASH_BUCKETS + n
#: for one the failover relationship moved (earlier first: see ``LeaseDB.requeue_moved``).
QueueKey = tuple[int, int, int]
_Q_FRESH, _Q_FREE, _Q_BACKUP, _Q_ABANDONED = 0, 1, 2, 3

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

    fresh: deque[list[int]] = field(default_factory=deque)  # runs [next, last], in queue order
    free: list[QueueKey] = field(default_factory=list)  # heaps of QueueKey
    abandoned: list[QueueKey] = field(default_factory=list)
    backup: list[QueueKey] = field(default_factory=list)  # failover: the secondary's free state
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
        self._queued: dict[int, tuple[QueueKey, int]] = {}  # address -> (live entry, queue)
        self._seq = 0  # leases queued so far (ties: see QueueKey)
        self._taken: tuple[int, int, QueueKey | None] | None = None  # the last take, for give_back
        # (ends, -n, address) of leases that will expire: equal ends, the last scheduled first,
        # as dhcpd's active queue (pool_timer expires from its head).
        self._expiry: list[tuple[int, int, int]] = []
        self.offers: dict[int, Offer] = {}
        self._offer_uid: dict[bytes, int] = {}
        self._offer_hw: dict[HwKey, int] = {}
        self._offer_heap: list[tuple[int, int]] = []
        self.ops = 0  # queue/cursor steps taken by allocation (lets tests prove O(1))
        self.cannot_reuse: set[int] = set()  # dhcpd's lease->cannot_reuse (core.reuse)

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
            fl.fresh = deque(sorted(fl.fresh))

    def order_fresh(self) -> None:
        """Order the never-used addresses as dhcpd's start-up leaves its free queues.

        expire_all_pools walks the lease hash (bucket = address modulo ``HASH_BUCKETS``) and
        queues every lease; lease_insert, during that walk, puts a never-used lease right after
        the previous one only when the previous lease queued went to the same queue and also
        ends at 0, and otherwise at the head (nothing ends before 0). So each run of never-used
        addresses, cut by a lease from the file or by another pool's addresses, goes before the
        runs found earlier. Call once, after the lease file is loaded. Not modelled: ranges of
        more than ``HASH_BUCKETS`` addresses (buckets then hold several) and dhcpd's one queue
        for a pool's DHCP and dynamic-BOOTP ranges (two lists here).
        """
        pieces: list[tuple[int, int, int, int]] = []  # (bucket, low, high, index of the range)
        for i, (low, high, _, _, _) in enumerate(self._ranges):
            a = low
            while a <= high:
                end = min(high, a + HASH_BUCKETS - 1 - a % HASH_BUCKETS)
                pieces.append((a % HASH_BUCKETS, a, end, i))
                a = end + 1
        pieces.sort()
        leased = sorted(a for a in self.by_addr if self.locate(a) is not None)
        runs: dict[int, list[list[list[int]]]] = {}  # per list: runs, each of intervals
        lists: dict[int, FreeList] = {}
        last: FreeList | None = None  # the queue of the previous lease in the walk
        for _, low, high, i in pieces:
            fl = self._ranges[i][3]
            lists[id(fl)] = fl
            mine = runs.setdefault(id(fl), [])
            j = bisect_left(leased, low)
            a = low
            while a <= high:
                cut = leased[j] if j < len(leased) and leased[j] <= high else high + 1
                if a < cut:
                    if last is not fl:
                        mine.append([])
                    run = mine[-1]
                    if run and run[-1][1] == a - 1:
                        run[-1][1] = cut - 1
                    else:
                        run.append([a, cut - 1])
                    last = fl
                if cut <= high:
                    last = None  # a lease from the file: queued elsewhere or at its end time
                    j += 1
                a = cut + 1
        for key, fl in lists.items():
            fl.fresh = deque(iv for run in reversed(runs[key]) for iv in run)

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
        self._enqueue(lease, 0, True)
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

    def requeue(self, lease: Lease, *, at: int = 0) -> None:
        """Put a FREE, BACKUP or ABANDONED lease (back) into its pool's queue, by its end time,
        or ``at`` if later (an offer's hold end: dhcpd moves an offered lease's ends).

        Queueing again, even in the same state, makes the entry the newest among equal end
        times, as every supersede_lease in dhcpd re-inserts the lease.
        """
        self._enqueue(lease, at, False)

    def requeue_moved(self, lease: Lease) -> None:
        """Requeue a lease whose free state the failover relationship changed (a BNDUPD, a
        BNDACK, pool balancing, PARTNER-DOWN): the entry in the old queue goes stale.

        Unlike dhcpd, such a lease goes *behind* the others of its end time, so a secondary
        hands out the BACKUP lease it received first, not last (dhcpd's secondary in the
        vectors offered 192.0.2.149, Tandem's offers .100). Handing out the newest exposes a
        race the crash soak found: a primary killed before it records the BNDACK of a BACKUP
        update sends it again after its restart, and the secondary, which gave the address to
        a client meanwhile, takes it back (as dhcpd's normal_binding_state_transition_check
        does once tsfp has passed): two clients, one address. The oldest were acked long ago.
        """
        self._enqueue(lease, 0, False, fifo=True)

    def _enqueue(self, lease: Lease, at: int, loading: bool, *, fifo: bool = False) -> None:
        a = int(lease.address)
        where = self.locate(a)
        if where is None:
            return
        st = lease.binding_state
        if st is _FREE:
            code = _Q_FREE
        elif st is _BACKUP:
            code = _Q_BACKUP
        elif st is _ABANDONED:
            code = _Q_ABANDONED
        else:
            return
        t = lease.ends or 0
        self._push(where[1], code, max(t, at), a, loading=loading, fifo=fifo)

    def _push(
        self, fl: FreeList, code: int, t: int, a: int, *, loading: bool = False, fifo: bool = False
    ) -> None:
        if loading:
            tie = a % HASH_BUCKETS
        else:
            self._seq += 1
            tie = HASH_BUCKETS + self._seq if fifo else -self._seq
        key = (t, tie, a)
        heapq.heappush(_heap(fl, code), key)
        self._queued[a] = (key, code)

    def _live(self, key: QueueKey, code: int) -> bool:
        entry = self._queued.get(key[2])
        # ==, not is: mypyc keeps fixed-length tuples unboxed and boxes a new one on each read
        return entry is not None and entry[0] == key and entry[1] == code

    def queued(self, fl: FreeList, state: BindingState) -> list[int]:
        """The addresses queued as FREE or BACKUP in ``fl``, head first (pool balancing)."""
        code = _Q_FREE if state is _FREE else _Q_BACKUP
        return [k[2] for k in sorted(_heap(fl, code)) if self._live(k, code)]

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

        Preference as dhcpd's allocate_lease: the head of the free queue (never-used addresses,
        then the lease that ended the longest ago), then (last resort) the oldest abandoned
        lease. Failover narrows the choice: ``free`` / ``backup`` say which free states this
        server may use (never-used addresses are FREE), ``accept`` vetoes a candidate
        (PARTNER-DOWN's MCLT wait; ``None`` stands for a never-used address). A vetoed queued
        lease stays queued and ends the search of its queue (the rest ended later).
        ``reclaim`` vetoes an abandoned lease (failover: the peer has not yet acked that it
        is abandoned); a vetoed one stays queued and the next one is tried.
        """
        self._taken = None
        if free and (accept is None or accept(None)):
            a = self.take_fresh(fl)
            if a is not None:
                return a, False
        for code, q, ok in ((_Q_FREE, fl.free, free), (_Q_BACKUP, fl.backup, backup)):
            state = _FREE if code == _Q_FREE else _BACKUP
            while ok and q:
                self.ops += 1
                key = q[0]
                if not self._live(key, code):
                    heapq.heappop(q)
                    continue
                a = key[2]
                lease = self.by_addr.get(a)
                # None: a never-used address whose offer lapsed (queued at the hold's end)
                st = _FREE if lease is None else lease.binding_state
                if st is state and self._available(a):
                    if accept is not None and not accept(lease):
                        break
                    heapq.heappop(q)
                    del self._queued[a]
                    self._taken = (a, code, key)
                    return a, False
                heapq.heappop(q)
                del self._queued[a]  # held for a client (back at drop_hold) or not free now
                if st is _ABANDONED and lease is not None:  # became abandoned while queued
                    self._enqueue(lease, 0, False)
        if not abandoned_ok:
            return None
        q = fl.abandoned
        vetoed: list[QueueKey] = []
        found: tuple[int, bool] | None = None
        while q:
            self.ops += 1
            key = heapq.heappop(q)
            if not self._live(key, _Q_ABANDONED):
                continue
            a = key[2]
            lease = self.by_addr.get(a)
            if lease is not None and lease.binding_state is _ABANDONED and self._available(a):
                if reclaim is not None and not reclaim(lease):
                    vetoed.append(key)  # stays queued (and live) until the peer acks it
                    continue
                del self._queued[a]
                self._taken = (a, _Q_ABANDONED, key)
                found = (a, True)
                break
            del self._queued[a]
        for key in vetoed:
            heapq.heappush(q, key)
        return found

    def take_fresh(self, fl: FreeList) -> int | None:
        """The next never-used address of a free list (the head of dhcpd's free queue, which
        allocation and pool balancing both take from), or None."""
        fresh = fl.fresh
        while fresh:
            self.ops += 1
            r = fresh[0]
            a = r[0]
            r[0] += 1
            if r[1] < r[0]:
                fresh.popleft()
            if a not in self.by_addr and self._available(a):
                self._taken = (a, _Q_FRESH, None)
                return a
        return None

    def give_back(self, a: int) -> None:
        """Undo ``take`` for an address that was not used after all: back where it was."""
        taken = self._taken
        self._taken = None
        where = self.locate(a)
        if where is None:
            return
        fl = where[1]
        if taken is not None and taken[0] == a:
            key = taken[2]
            if key is None:
                fl.fresh.appendleft([a, a])
            else:
                heapq.heappush(_heap(fl, taken[1]), key)
                self._queued[a] = (key, taken[1])
            return
        lease = self.by_addr.get(a)
        if lease is None:
            fl.fresh.appendleft([a, a])
        elif a not in self._queued:
            self.requeue(lease)

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
        # dhcpd set the offered lease's ends to the hold's end (dhcpdiscover's "when"), so the
        # address goes back into the free queue at that time, a never-used one too.
        lease = self.by_addr.get(a)
        if lease is None:
            where = self.locate(a)
            if where is not None:
                self._push(where[1], _Q_FREE, off.until, a)
        else:
            self.requeue(lease, at=off.until)

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
            self._seq += 1
            heapq.heappush(self._expiry, (lease.ends, -self._seq, int(lease.address)))

    def expire(self, now: int, hook: ExpiryHook | None = None) -> list[Lease]:
        """Move ACTIVE/EXPIRED/RELEASED leases past their end to their next state (FREE).

        ``hook`` (failover) decides first for every due lease; see ``ExpiryHook``.
        """
        out: list[Lease] = []
        heap = self._expiry
        while heap and heap[0][0] <= now:
            ends, _, a = heapq.heappop(heap)
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


def _heap(fl: FreeList, code: int) -> list[QueueKey]:
    if code == _Q_FREE:
        return fl.free
    if code == _Q_BACKUP:
        return fl.backup
    return fl.abandoned
