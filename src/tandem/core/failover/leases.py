"""The lease side of one failover relationship: ownership, updates, acks, pool balancing.

This object is what the DHCP core sees of failover (it implements ``PoolFailover``) and what
the engine delegates binding messages to. It keeps, per relationship:

* FREE/BACKUP counts per pool and pool balancing, in ``tandem.core.failover.balance``;
* the set of addresses whose current state the peer has not acknowledged (ISC's
  ``tstp > atsfp`` scan, kept incrementally so UPDREQ and entering NORMAL are O(changes));
* the update queue: ``staged`` (changed, not yet committed), ``queue`` (committed, waiting
  for a window slot) and ``inflight`` (sent, un-acked: xid and what was sent).

Never-used addresses stay virtual (no Lease object) until something happens to them; they
are FREE by definition on both servers, so they are not sent on UPDREQALL either (ISC sends
them, all zeros; the receiver already has them FREE). Times are whole epoch seconds.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tandem.core.failover.balance import PoolBalance, PoolCounts
from tandem.core.failover.loadbalance import should_serve
from tandem.core.failover.policy import TakeRule
from tandem.core.failover.queue import UpdateQueue
from tandem.core.failover.rules import (
    RETURNING,
    LogIp,
    incoming_wins,
    later_end,
    may_take_peers,
    mclt_lease_time,
    own_free_state,
    peer_free_state,
    potential_expiry,
    reject_text,
    same_client,
    stale_end,
    transition_ok,
)
from tandem.core.failover.states import FailoverStateMachine, ServiceState
from tandem.core.lease import BindingState, Lease
from tandem.wire.failover_codes import IPFlags, RejectReason, ServerState
from tandem.wire.failover_fast import Binding

if TYPE_CHECKING:
    from tandem.config.model import FailoverPeer
    from tandem.core.pools import LeaseDB, PoolState

B = BindingState
S = ServerState
#: Wire value -> BindingState, without an enum call per update.
_STATUS = {int(x): x for x in BindingState}
_RESERVED = int(IPFlags.RESERVED)
_BOOTP = int(IPFlags.BOOTP)
INFINITE_ENDS = 0x7FFFFFFF  # ISC MAX_TIME: what an infinite lease's ``ends`` is sent as
MAX_CHADDR = 21  # ISC stores at most 21 bytes of client-hardware-address (htype + 20)


@dataclass(slots=True)
class Sent:
    """What an un-acked BNDUPD said (for the ack, and for dueling updates)."""

    xid: int
    status: BindingState
    cltt: int | None
    potential: int


Reject = tuple[RejectReason, str]


class FailoverLeases:
    """Lease ownership and binding updates of one relationship (implements PoolFailover)."""

    def __init__(
        self,
        db: LeaseDB,
        pools: Sequence[PoolState],
        peer: FailoverPeer,
        machine: FailoverStateMachine,
        log: list[str],
    ) -> None:
        self.name = peer.name
        self.role = peer.role
        self.cfg = peer
        self.db = db
        self.machine = machine
        self.log = log
        self.own = own_free_state(peer.role)
        self.other = peer_free_state(peer.role)
        self.hba: bytes | None = None  # primary: from config; secondary: from CONNECT
        self.pools = PoolBalance(db, pools, peer, log)
        self.unsynced: set[int] = set()
        self.staged: dict[int, None] = {}
        self.queue = UpdateQueue()
        self.inflight: dict[int, Sent] = {}
        self.writes: dict[int, Lease] = {}
        # Some write since the last take gates an outgoing message (see ``_write``).
        self.writes_gate = False
        self.deferred_expiry: set[int] = set()
        self._pd_heap: list[tuple[int, int]] = []  # PARTNER-DOWN: (free at, address)
        # Outside PARTNER-DOWN each server takes its own free state; only the primary
        # reclaims abandoned leases, once the peer has acked them (``_may_reclaim``). Built
        # once: the allocator asks on every allocation.
        primary = peer.role == "primary"
        self._rules = {
            ok: TakeRule(primary, not primary, ok and primary, None, self._may_reclaim)
            for ok in (False, True)
        }
        for a, lease in self.db.by_addr.items():
            pc = self.pools.of(a)
            if pc is None:
                continue
            self.pools.count(pc, a, lease.binding_state)
            if (lease.tstp or 0) > (lease.atsfp or 0) or lease.binding_state in RETURNING:
                self.unsynced.add(a)
            if lease.binding_state in RETURNING:
                lease.next_binding_state = B.FREE

    def rebind(self, db: LeaseDB, pools: Sequence[PoolState]) -> None:
        """A reload (``tandem.core.reload``): the same leases in a new database and pools.

        Everything kept by address (unsynced, the update queue, in-flight updates, pending
        writes, PARTNER-DOWN timers) stays; only the per-pool FREE/BACKUP counts are redone,
        for the pools that now name this relationship.
        """
        self.db = db
        self.pools.rebind(db, pools)
        for a, lease in db.by_addr.items():
            pc = self.pools.of(a)
            if pc is not None:
                self.pools.count(pc, a, lease.binding_state)

    # --- what the DHCP core asks (PoolFailover) ------------------------------------------

    @property
    def mclt(self) -> int:
        return self.machine.mclt

    @property
    def service(self) -> ServiceState:
        return self.machine.service_state

    def not_responding(self) -> str | None:
        service = self.service
        if service not in (ServiceState.NOT_RESPONDING, ServiceState.STARTUP):
            return None
        if self.machine.fence is not None:
            return f" (fenced: {self.machine.fence})"
        peer = self.machine.peer_state
        mine = self.machine.state
        if mine in (S.NORMAL, S.COMMUNICATIONS_INTERRUPTED, S.PARTNER_DOWN) and peer is not None:
            name = S(peer).keyword if peer in S._value2member_map_ else str(peer)
            return f" (peer demands: {name})"
        return f" ({mine.keyword})"

    def balance_to_peer(self, key: bytes, secs: int, mtype: int | None) -> bool:
        if self.service is not ServiceState.COOPERATING:
            return False
        lbmax = self.cfg.load_balance_max_seconds
        return not should_serve(self.role, self.hba, key, secs, lbmax, mtype)

    def peer_has_leases(self, pool: object) -> bool:
        return self.pools.peer_has_leases(pool)

    def mine_to_reallocate(self, lease: Lease | None, now: int) -> bool:
        st = lease.binding_state if lease is not None else B.FREE
        service = self.service
        if st is B.ACTIVE:
            return False
        if st is self.own:
            return True
        primary = self.role == "primary"
        if st is B.ABANDONED and lease is not None and primary and self._may_reclaim(lease):
            return True
        if st in (B.RELEASED, B.EXPIRED) and lease is not None:
            rewind = lease.rewind_binding_state
            if service is ServiceState.NOT_COOPERATING and rewind is self.own:
                return True
        if service is not ServiceState.PARTNER_DOWN:
            return False
        return may_take_peers(
            lease.tsfp if lease is not None else None, self.machine.stos, self.mclt, now
        )

    def take_rule(self, now: int, abandoned_ok: bool) -> TakeRule:
        if self.service is not ServiceState.PARTNER_DOWN:
            return self._rules[abandoned_ok]
        stos, mclt, own = self.machine.stos, self.mclt, self.own

        def accept(lease: Lease | None) -> bool:
            state = lease.binding_state if lease is not None else B.FREE
            if state is own:
                return True
            return may_take_peers(lease.tsfp if lease is not None else None, stos, mclt, now)

        def reclaim(lease: Lease) -> bool:
            return self._may_reclaim(lease) or may_take_peers(lease.tsfp, stos, mclt, now)

        return TakeRule(True, True, abandoned_ok, accept, reclaim)

    def _may_reclaim(self, lease: Lease) -> bool:
        """An ABANDONED lease goes to a new client only once the peer acked it abandoned;
        until then the peer may still re-activate it for its last client (simulator seed 612:
        a DECLINE during a partition, then the reclaim). Stricter than ISC 4.4."""
        return int(lease.address) not in self.unsynced

    def offer_time(self, lease: Lease | None, desired: int, now: int) -> int:
        return mclt_lease_time(desired, self.mclt, lease.tsfp if lease else None, now)

    def ack_time(self, lease: Lease, desired: int, now: int, held: int | None = None) -> int:
        granted = mclt_lease_time(desired, self.mclt, lease.tsfp, now)
        if held is not None and now + granted < held:
            granted = held - now  # never below the end this client already holds
        lease.tstp = min(now + max(desired + granted // 2, granted), 0xFFFFFFFF)
        return granted

    def release(self, lease: Lease, now: int) -> None:
        lease.ends = now
        lease.tstp = now
        if self.service is ServiceState.NOT_COOPERATING and lease.rewind_binding_state is self.own:
            lease.binding_state = self.own  # the peer never heard of this binding: rewind
            lease.next_binding_state = None
        else:
            lease.binding_state = B.RELEASED
            lease.next_binding_state = B.FREE

    def changed(self, lease: Lease, now: int) -> None:
        """A committed local change: book-keeping, then a BNDUPD (after the commit)."""
        a = int(lease.address)
        st = lease.binding_state
        if st is B.ACTIVE:
            lease.next_binding_state = B.EXPIRED
        lease.atsfp = None
        self.pools.recount(lease)
        self.unsynced.add(a)
        self.deferred_expiry.discard(a)
        if st in RETURNING and self.machine.state is S.PARTNER_DOWN:
            at = self.machine.stos + self.mclt
            lease.tsfp = at
            heapq.heappush(self._pd_heap, (max(at, now), a))
        self._stage(a)

    def expire(self, lease: Lease, now: int) -> bool | None:
        a = int(lease.address)
        if lease.binding_state is not B.ACTIVE:
            return False  # EXPIRED/RELEASED wait for the peer's ack (or PARTNER-DOWN)
        if self.role == "secondary" and self.machine.state is S.NORMAL:
            self.deferred_expiry.add(a)  # the primary expires leases while NORMAL
            return False
        if self.service is ServiceState.NOT_COOPERATING and lease.rewind_binding_state is self.own:
            lease.binding_state = self.own
            lease.next_binding_state = None
        else:
            lease.binding_state = B.EXPIRED
            lease.next_binding_state = B.FREE
        self.db.requeue(lease)
        self.changed(lease, now)
        return True

    # --- the update queue ---------------------------------------------------------------

    def _stage(self, a: int) -> None:
        """Queue a BNDUPD for ``a``; it leaves only after the next commit barrier."""
        if a in self.inflight:
            del self.inflight[a]  # ISC: a newer change replaces the un-acked one
        self.queue.discard(a)
        self.staged[a] = None

    def _write(self, lease: Lease, *, gates: bool = True) -> None:
        """Persist ``lease``; ``gates=False`` when no message we send depends on the record.

        Only a BNDACK's bookkeeping is such a write: losing it in a crash leaves the lease
        unacknowledged, and it is simply sent again. So the link need not sync it before
        the next window of BNDUPDs leaves (one sync per round trip instead of two).
        """
        self.writes[int(lease.address)] = lease
        if gates:
            self.writes_gate = True

    def barrier(self) -> None:
        """The caller committed everything written so far: staged updates may go."""
        if self.staged:
            self.queue.extend(self.staged)
            self.staged.clear()

    def rescind(self) -> None:
        """Un-acked updates go back to the front of the queue (link lost, state left)."""
        if not self.inflight:
            return
        self.queue.push_front(self.inflight)
        self.inflight.clear()

    def queue_unsynced(self) -> None:
        """UPDREQ / entering NORMAL: every change the peer has not acknowledged."""
        for a in sorted(self.unsynced):
            if a not in self.inflight and a not in self.staged:
                self.queue.add(a)

    def queue_all(self) -> None:
        """UPDREQALL: every lease we have a record of (never-used addresses excepted)."""
        for a in self.db.by_addr:
            if a not in self.inflight and a not in self.staged and self.pools.of(a) is not None:
                self.queue.add(a)

    def pending_update_addresses(self) -> set[int]:
        return set(self.queue) | set(self.inflight)

    def next_update(self, xid: int) -> tuple[Lease, Sent] | None:
        """Pop the next queued lease and record it as in flight under ``xid``."""
        while (a := self.queue.popleft()) is not None:
            lease = self.db.by_addr.get(a)
            if lease is None:
                continue
            sent = Sent(xid, lease.binding_state, lease.cltt, potential_expiry(lease))
            self.inflight[a] = sent
            return lease, sent
        return None

    # --- BNDUPD from the peer (§8.3) ---------------------------------------------------

    def process_update(self, b: Binding, now: int) -> Reject | None:
        """Apply a peer BNDUPD; returns (reason, message) when it must be refused."""
        if b.address is None or b.status is None:
            return RejectReason.MISSING_BINDINFO, "missing binding information"
        a = b.address
        ip = LogIp(a)
        pc = self.pools.of(a)
        if pc is None:
            return RejectReason.ILLEGAL_IP_ADDR, f"{ip}: not in a pool of {self.name}"
        status = _STATUS.get(b.status)
        if status is None:
            return RejectReason.MISSING_BINDINFO, f"{ip}: unknown binding status {b.status}"
        lease = self.db.by_addr.get(a)
        current = lease.binding_state if lease is not None else B.FREE
        ours = self.inflight.get(a)
        dueling = ours is not None or a in self.queue or a in self.staged
        same_binding = False
        if dueling:
            mine_st = ours.status if ours is not None else current
            mine_cltt = ours.cltt if ours is not None else (lease.cltt if lease else None)
            same_binding = (
                lease is not None
                and mine_st is B.ACTIVE
                and current is B.ACTIVE
                and status is B.ACTIVE
                and same_client(lease, b)
            )
            if not incoming_wins(self.role, mine_st, mine_cltt, status, b.cltt):
                if same_binding and lease is not None:
                    self._keep_later_end(lease, b, now)
                return (
                    RejectReason.LESS_CRIT_BIND_INFO,
                    "incoming update is less critical than outgoing update",
                )
        if b.chaddr is not None:
            if status is B.ABANDONED:
                return RejectReason.MISC_REJECT, f"{ip}: abandoned lease with client hardware"
            if len(b.chaddr) > MAX_CHADDR:
                return RejectReason.MISC_REJECT, f"{ip}: client hardware address too long"
        elif status in (B.ACTIVE, B.EXPIRED, B.RELEASED):
            return RejectReason.MISSING_BINDINFO, f"{ip}: no client hardware address"
        if b.uid is not None and status is B.ABANDONED:
            return RejectReason.MISC_REJECT, f"{ip}: abandoned lease with client identifier"
        flags = b.flags or 0
        if current is self.own and flags:
            if flags & _RESERVED:
                return RejectReason.IP_NOT_RESERVED, f"{ip}: not reserved here"
            if flags & _BOOTP and not (lease is not None and lease.bootp):
                return RejectReason.MISC_REJECT, f"{ip}: BOOTP flag on a non-BOOTP lease"
        normal = self.machine.state is S.NORMAL
        if not transition_ok(
            self.role,
            normal,
            current,
            status,
            ends=lease.ends if lease is not None else None,
            potential=b.potential,
            now=now,
            peer_ends=b.ends,
        ):
            if (
                lease is not None
                and current is B.ACTIVE
                and status is B.EXPIRED
                and stale_end(lease.ends, b.ends)
                and not dueling
            ):
                # The peer expired an older end than the client holds (it missed our later
                # binding): refused, and our binding goes to the peer again so the two
                # agree (ISC only re-sends on the next UPDREQ or entry to NORMAL).
                lease.tstp = potential_expiry(lease)  # before ``changed`` forgets atsfp
                self.changed(lease, now)
                self._write(lease)
            return (
                RejectReason.FATAL_CONFLICT,
                f"{ip}: invalid state transition: {current.keyword} to {status.keyword}",
            )
        if dueling:
            # Our own update is forgotten only now that the peer's is applied: had a later
            # check refused it, both updates would be lost and the two sides would keep
            # disagreeing (found by tandem.sim: secondary EXPIRED vs primary ACTIVE after a
            # partition, both refused, the secondary's lease EXPIRED for good).
            self.inflight.pop(a, None)
            self.queue.discard(a)
            self.staged.pop(a, None)
        if same_binding and lease is not None:
            mine = lease.ends, lease.tstp
            self._apply(a, b, status, flags, pc)
            self._keep_later_end(lease, b, now, mine)
        else:
            self._apply(a, b, status, flags, pc)
        return None

    def _keep_later_end(
        self, lease: Lease, b: Binding, now: int, mine: tuple[int | None, int | None] | None = None
    ) -> None:
        """Two ACTIVE updates for the same client crossed: keep the later end on both sides.

        Both servers ACKed the client at about the same time and neither knows which ACK
        arrived last, so the client may hold either end. ISC's duel rule (later cltt, a tie
        to the primary) picks one update whole, and the loser forgets the longer end it
        gave: it then expires, frees and reallocates the address while the client still
        holds it (tandem.sim seed 5587: the primary's 3 s ACK beat the secondary's 240 s
        one). The duel still decides whose update is applied (and which is refused with
        reason 16, as ISC does), but the end a server told a client is never shortened:
        the later one is kept, and re-sent, so the peer learns it too.

        ``mine``: our (ends, tstp) from before the peer's update was applied (we lost the
        duel); without it we won and refuse the peer's update but adopt its later end.
        """
        if mine is None:
            theirs = None if b.ends == INFINITE_ENDS else b.ends
            if b.ends is None or not later_end(theirs, lease.ends):
                return
            lease.ends = theirs
            if b.potential is not None and b.potential > (lease.tstp or 0):
                lease.tstp = b.potential
            if b.cltt is not None and b.cltt > (lease.cltt or 0):
                lease.cltt = b.cltt
        else:
            ours_end, ours_tstp = mine
            if not later_end(ours_end, lease.ends):
                return
            lease.ends = ours_end
            if (ours_tstp or 0) > (lease.tstp or 0):
                lease.tstp = ours_tstp
        self.db.schedule(lease)
        self.changed(lease, now)
        self._write(lease)

    def _apply(self, a: int, b: Binding, status: BindingState, flags: int, pc: PoolCounts) -> None:
        db = self.db
        if a in db.offers:
            db.drop_hold(a)
        lease = db.materialize(a)
        if status is B.ABANDONED:
            db.set_owner(lease, None, None)
        else:
            hw = lease.hardware
            if b.chaddr:
                hw = (b.chaddr[0], bytes(b.chaddr[1:]))
            uid = b.uid
            if uid is None and status in (B.FREE, B.BACKUP, B.RESET):
                uid = lease.uid
            db.set_owner(lease, hw, uid)
        if b.stos is not None:
            lease.starts = b.stos or None
        if b.ends is not None:
            if status is B.ACTIVE:
                lease.ends = None if b.ends == INFINITE_ENDS else b.ends
            else:
                lease.ends = b.ends or None
        if b.potential is not None:
            lease.tsfp = lease.atsfp = b.potential or None
        if (lease.tstp or 0) > (lease.atsfp or 0):
            lease.tstp = lease.atsfp  # what the peer now knows is the newest we know
        if b.cltt is not None:
            lease.cltt = b.cltt or None
        lease.bootp = bool(flags & _BOOTP)
        new = B.FREE if status in RETURNING else status
        lease.binding_state = new
        lease.next_binding_state = B.EXPIRED if new is B.ACTIVE else None
        lease.rewind_binding_state = new
        self.unsynced.discard(a)
        self.deferred_expiry.discard(a)
        db.requeue_moved(lease)
        if new is B.ACTIVE:
            db.schedule(lease)
        self.pools.count(pc, a, new)
        self._write(lease)

    # --- BNDACK from the peer (§8.4) ---------------------------------------------------

    def process_ack(self, b: Binding, now: int) -> int | None:
        """Apply a BNDACK; returns the address it settled (acked or refused), else None."""
        a = b.address
        if a is None:
            self.log.append(f"failover peer {self.name}: BNDACK without an address")
            return None
        sent = self.inflight.get(a)
        if sent is None:
            return None  # nothing outstanding (superseded by a newer change): ignore
        ip = LogIp(a)
        if sent.xid != b.xid:
            self.log.append(
                f"failover peer {self.name}: BNDACK for {ip}: xid mismatch "
                f"(sent {sent.xid}, got {b.xid})"
            )
            return None
        del self.inflight[a]
        if b.reject is not None:
            self.log.append(
                f"bind update on {ip} from {self.name} rejected: "
                f"{b.message or reject_text(b.reject)}"
            )
            return a
        lease = self.db.by_addr.get(a)
        if lease is None:
            return a
        lease.tsfp = lease.atsfp = sent.potential or None
        if lease.binding_state in RETURNING:
            lease.binding_state = B.FREE
            lease.next_binding_state = None
            lease.tstp = lease.ends
            self.db.requeue_moved(lease)
            self.pools.recount(lease)
        lease.rewind_binding_state = lease.binding_state
        self.unsynced.discard(a)
        self.writes[a] = lease  # _write(lease, gates=False), inlined: once per lease
        return a

    # --- PARTNER-DOWN and state changes ----------------------------------------------------

    def schedule_expired_to_free(self, now: int) -> None:
        """Entering PARTNER-DOWN: returned leases become FREE at STOS + MCLT."""
        at = self.machine.stos + self.mclt
        for a in self.unsynced:
            lease = self.db.by_addr.get(a)
            if lease is not None and lease.binding_state in RETURNING:
                lease.tsfp = at
                heapq.heappush(self._pd_heap, (max(at, now), a))

    def pd_deadline(self) -> int | None:
        return self._pd_heap[0][0] if self._pd_heap else None

    def run_pd_timer(self, now: int) -> None:
        while self._pd_heap and self._pd_heap[0][0] <= now:
            _, a = heapq.heappop(self._pd_heap)
            lease = self.db.by_addr.get(a)
            if (
                lease is None
                or lease.binding_state not in RETURNING
                or self.machine.state is not S.PARTNER_DOWN
            ):
                continue
            lease.binding_state = B.FREE
            lease.next_binding_state = None
            self.db.requeue_moved(lease)
            self.changed(lease, now)
            self._write(lease)

    def left_normal(self) -> None:
        """A secondary that leaves NORMAL runs the expiry it left to the primary."""
        for a in self.deferred_expiry:
            lease = self.db.by_addr.get(a)
            if lease is not None and lease.binding_state is B.ACTIVE:
                self.db.schedule(lease)
        self.deferred_expiry.clear()

    # --- pool balancing (§9, in ``balance``) ------------------------------------------------

    def balance(self, now: int, *, want_poolreq: bool = False) -> tuple[int, bool]:
        """ISC's dhcp_failover_pool_dobalance; returns (leases moved, POOLREQ wanted)."""
        if self.machine.state is not S.NORMAL:
            return 0, False
        return self.pools.balance(now, self.hba, self._move_to_peer, want_poolreq=want_poolreq)

    def _move_to_peer(self, lease: Lease, now: int) -> None:
        lease.binding_state = self.other
        lease.next_binding_state = None
        lease.tstp = now
        lease.starts = now
        self.db.requeue_moved(lease)
        self.changed(lease, now)
        self._write(lease)
