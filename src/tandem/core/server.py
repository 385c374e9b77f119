"""The DHCP server core: RFC 2131 message handling with dhcpd's choices, sans I/O.

``DhcpServer.handle`` takes one decoded request plus what the I/O layer knows about it and
returns an ``Outcome``: the reply and its destination, the leases to make durable first, and
dhcpd-style log lines. Nothing here reads a clock or a socket; ``now`` is passed in.

The server builds its parts and dispatches: the per-message flows are ``core.flows``, which
work on a ``core.context.ServerContext`` holding the lease database, the ``Allocator``
(``core.allocator``: dhcpd's find_lease and allocate_lease) and the ``ReplyBuilder``
(``core.replies``). The per-packet client view is ``core.client.Client``.

Failover: pools with ``failover peer`` carry a ``PoolFailover`` (given to the server when
it is built, ``failover=``) that the flows consult for service state, load balancing,
lease ownership and the MCLT clamp, and that the allocator asks for its ``TakeRule``; every
committed change of such a lease is handed to it here (``handle``/``tick``), where it becomes
a BNDUPD.

ping-check (``core.ping``): a DISCOVER whose OFFER must wait for a ping returns an ``Outcome``
with ``ping`` set and no reply; the I/O layer pings and calls ``ping_timed_out`` (the OFFER
leaves) or ``ping_answered`` (the address is abandoned, written and, in a failover pool,
replicated like a DECLINE's).

Lease events (``on commit``, ``on release``, ``on expiry``: ``core.events``) are evaluated after
each packet's flow and in ``tick`` only when the configuration has them; their actions come
out as data (``Outcome.events``, ``take_events``) for the I/O layer to run.

Not done (by design or yet): DDNS updates.
Fixed-address (host) leases are not stored, as in dhcpd, so they never appear in ``writes``.
OFFERs are held in memory and not written, as in dhcpd (which does not commit offers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from ipaddress import IPv4Address, IPv4Interface

from tandem.config.model import Config
from tandem.core import codes, flows
from tandem.core.allocator import Allocator
from tandem.core.billing import Billing
from tandem.core.client import Client
from tandem.core.codes import name_table
from tandem.core.context import ServerContext
from tandem.core.events import LeaseEvents, has_events
from tandem.core.failover.policy import PoolFailover
from tandem.core.flood import NewLeaseGate, NewLeaseLimit
from tandem.core.lease import BindingState, Lease
from tandem.core.ping import Pings, abandon_lease_time, ping_configured
from tandem.core.pools import LeaseDB, PoolState
from tandem.core.replies import ReplyBuilder
from tandem.core.reply import DEFAULT_LEASE_TIME, MAX_LEASE_TIME
from tandem.core.scope import Classifier, HostIndex
from tandem.core.topology import Topology
from tandem.core.types import EventAction, Outcome, Reply, RxMeta
from tandem.wire.dhcp import Packet

#: Builds the failover policies from the server's lease database and pools (in topology
#: order), by relationship name: ``tandem.core.failover.engine.FailoverSetup``.
FailoverFactory = Callable[[LeaseDB, Sequence[PoolState]], Mapping[str, PoolFailover]]

__all__ = [
    "BOUND_STATES",
    "DEFAULT_LEASE_TIME",
    "MAX_LEASE_TIME",
    "DhcpServer",
    "Outcome",
    "Reply",
    "RxMeta",
]

#: The states in which an address holds a binding (a lease a client has or had): what the
#: command layer lists and deletes. FREE and BACKUP addresses are the pools' stock.
BOUND_STATES = frozenset(
    {BindingState.ACTIVE, BindingState.EXPIRED, BindingState.RELEASED, BindingState.ABANDONED}
)

FREE_COUNT_PERIOD = 5  # seconds between exact free counts while the new-lease gate is on


class DhcpServer:
    """A DHCPv4 server core serving one configuration from an in-memory lease database."""

    def __init__(
        self,
        config: Config,
        *,
        leases: Iterable[Lease] = (),
        interfaces: Mapping[str, tuple[IPv4Interface, ...]] | None = None,
        default_t1_t2: bool = True,
        new_lease_limit: NewLeaseLimit | None = None,
        failover: FailoverFactory | None = None,
    ) -> None:
        self.config = config
        self.gate = NewLeaseGate(new_lease_limit) if new_lease_limit is not None else None
        self.db = db = LeaseDB()
        self.topo = topo = Topology(config, db)
        hosts = HostIndex.build(config.hosts)
        db.excluded |= hosts.fixed
        names = name_table(config)
        self.alloc = Allocator(db, topo, hosts, self.gate)
        self.replies = ReplyBuilder(config, topo, names, interfaces or {}, default_t1_t2)
        self.ctx = ctx = ServerContext(
            db=db,
            topo=topo,
            alloc=self.alloc,
            replies=self.replies,
            hosts=hosts,
            classifier=Classifier.build(config),
            names=names,
        )
        self.counters = ctx.counters
        ctx.billing = Billing.build(config)
        for lease in leases:
            db.load(lease)
        db.order_fresh()  # dhcpd's start-up order of never-used addresses (see core.pools)
        if ctx.billing is not None:
            ctx.billing.restore_all(db.by_addr.values())
        if has_events(config):
            ctx.events = LeaseEvents(
                db=db, topo=topo, alloc=self.alloc, replies=self.replies, names=names
            )
            ctx.events.restore(db.by_addr.values())
        self._pools = [p for share in topo.shares for p in share.pools]
        # Failover is given here, once the leases are loaded: the factory (the engine's
        # ``FailoverSetup``) returns a policy per relationship, and each pool with
        # ``failover peer NAME`` consults NAME's from now on.
        policies = failover(db, self._pools) if failover is not None else {}
        for pool in self._pools:
            name = pool.model.failover_peer
            if name is not None:
                pool.failover = policies.get(name)
        ctx.failover_enabled = self.failover_enabled = bool(policies)
        ctx.abandon_lease_time = abandon_lease_time(config)
        if ping_configured(config):
            ctx.pings = Pings()
        #: Whether some scope may ping before an OFFER (the I/O layer then opens its socket).
        self.ping_enabled = ctx.pings is not None
        self._next_free_count = 0
        if self.gate is not None:
            db.count_free(self._pools)

    # --- public API --------------------------------------------------------------------

    def handle(self, packet: Packet, meta: RxMeta, now: int) -> Outcome:
        """Handle one received packet (see ``Outcome`` for the durability contract)."""
        ctx = self.ctx
        self.db.expire_holds(now)
        out = Outcome()
        if packet.op != 1:
            return ctx.drop(out, "not a BOOTREQUEST")
        mt = packet.options.get(codes.MESSAGE_TYPE)
        mtype: int | None = None
        if mt is not None:
            if len(mt) != 1:
                return ctx.drop(out, "bad message type option")
            mtype = mt[0]
        hlen = min(packet.hlen, 16)
        c = Client(
            packet,
            meta,
            now,
            mtype,
            (packet.htype, bytes(packet.chaddr[:hlen])),
            packet.options.get(codes.CLIENT_IDENTIFIER),
            str(packet.giaddr) if int(packet.giaddr) else meta.interface,
        )
        self.counters[codes.RX_COUNTERS.get(mtype or 0, "rx.BOOTREQUEST")] += 1
        handler = flows.HANDLERS.get(mtype)
        if handler is None:
            name = f"type {mtype}"
            out.log.append(f"{name} from {c.hwstr} via {c.via}: unknown packet type")
            return ctx.drop(out, "unknown packet type")
        handler(ctx, c, out)
        if ctx.events is not None:
            ctx.events.after_packet(c, out)
        return self._finish(out, now)

    def ping_timed_out(self, address: IPv4Address, *, now: int) -> Outcome:
        """ping-check: nobody answered ``address`` in time, so its held OFFER leaves now
        (dhcpd's lease_ping_timeout). An empty ``Outcome`` if no offer waited for it."""
        out = Outcome()
        pings = self.ctx.pings
        if pings is not None:
            self.db.expire_holds(now)
            pings.timed_out(self.db, int(address), out)
        return self._finish(out, now)

    def ping_answered(self, address: IPv4Address, *, now: int) -> Outcome:
        """ping-check: ``address`` answered before its OFFER left (dhcpd's lease_pinged): it
        is abandoned "pinged before offer" as a DECLINE abandons, and nothing is sent."""
        out = Outcome()
        pings = self.ctx.pings
        a = int(address)
        if pings is None or pings.pending.pop(a, None) is None:
            return self.ctx.drop(out, "ping: unexpected echo reply")  # late or spurious
        self.ctx.abandon(self.db.materialize(a), now, "pinged before offer", out)
        return self._finish(out, now)

    def _finish(self, out: Outcome, now: int) -> Outcome:
        """Hand the changed leases to their failover policies; count the reply."""
        if self.failover_enabled and out.writes:
            for lease in out.writes:
                fo = self.ctx.failover_of(int(lease.address))
                if fo is not None:
                    fo.changed(lease, now)
        if out.reply is not None:
            rt = out.reply.packet.options.get(codes.MESSAGE_TYPE)
            self.counters[codes.TX_COUNTERS.get(rt[0] if rt else 0, "tx.BOOTREPLY")] += 1
        return out

    def delete_lease(self, addr: int, now: int) -> Outcome:
        """The operator's delete (``lease4-del``): end the binding of ``addr`` as a DHCPRELEASE
        would (FREE; in a failover pool RELEASED, with a BNDUPD to the partner).

        dhcpd has no OMAPI delete for leases; its operators set the lease's ``state`` to free,
        which supersedes it like any other change. The caller makes ``writes`` durable before
        it answers, as for a packet. ``drop`` is set when ``addr`` holds no binding.
        """
        out = Outcome()
        lease = self.db.by_addr.get(addr)
        if lease is None or lease.binding_state not in BOUND_STATES:
            out.drop = "no such lease"
            return out
        old = lease.binding_state.keyword
        flows.operator_release(self.ctx, lease, now, out)
        out.log.append(
            f"lease {lease.address} state changed from {old} to {lease.binding_state.keyword}"
        )
        if self.failover_enabled:
            fo = self.ctx.failover_of(addr)
            if fo is not None:
                fo.changed(lease, now)
        return out

    def tick(self, now: int) -> list[Lease]:
        """Expire leases past their end (to FREE) and lapsed offers; returns leases to persist."""
        self.db.expire_holds(now)
        if self.gate is not None and now >= self._next_free_count:
            self.db.count_free(self._pools)
            self._next_free_count = now + FREE_COUNT_PERIOD
        if self.failover_enabled:
            changed = self.db.expire(now, self._failover_expiry)
        else:
            changed = self.db.expire(now)
        if self.ctx.events is not None:
            self.ctx.events.tick(now)  # expiry blocks, for take_events
        return changed

    def take_events(self) -> list[EventAction]:
        """The lease events' actions of the ticks so far (expiries), to run once ``tick``'s
        leases are durable; always empty without ``on`` blocks."""
        events = self.ctx.events
        if events is None or not events.pending:
            return []
        out, events.pending = events.pending, []
        return out

    def failover_of(self, addr: int) -> PoolFailover | None:
        """The failover relationship of a range address's pool, if any."""
        return self.ctx.failover_of(addr)

    def _failover_expiry(self, lease: Lease, now: int) -> bool | None:
        fo = self.ctx.failover_of(int(lease.address))
        return None if fo is None else fo.expire(lease, now)

    def leases(self) -> Iterable[Lease]:
        return self.db.by_addr.values()

    def stats(self) -> dict[str, int]:
        """Counters (rx/tx per message type, drops by reason) and lease counts by state."""
        out = dict(self.counters)
        by_state: Counter[str] = Counter(lease.binding_state.keyword for lease in self.leases())
        size = sum(p.size for s in self.topo.shares for p in s.pools)
        materialized_in_pools = 0
        for a in self.db.by_addr:
            if self.db.locate(a) is not None:
                materialized_in_pools += 1
        for state, n in by_state.items():
            out["leases." + state] = n
        out["leases.fresh"] = size - materialized_in_pools
        out["pool.size"] = size
        out["offers.held"] = len(self.db.offers)
        return out
