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

Not done (by design or yet): ping-check (the I/O layer could probe before an OFFER; the
parameter is parsed and ignored), DDNS updates, class lease limits,
``on commit/expiry/release`` statements. Fixed-address (host) leases are not stored, as in
dhcpd, so they never appear in ``writes``. OFFERs are held in memory and not written, as in
dhcpd (which does not commit offers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from ipaddress import IPv4Interface

from tandem.config.model import Config
from tandem.core import codes, flows
from tandem.core.allocator import Allocator
from tandem.core.billing import Billing
from tandem.core.client import Client
from tandem.core.codes import name_table
from tandem.core.context import ServerContext
from tandem.core.failover.policy import PoolFailover
from tandem.core.flood import NewLeaseGate, NewLeaseLimit
from tandem.core.lease import Lease
from tandem.core.pools import LeaseDB, PoolState
from tandem.core.replies import ReplyBuilder
from tandem.core.reply import DEFAULT_LEASE_TIME, MAX_LEASE_TIME
from tandem.core.scope import Classifier, HostIndex
from tandem.core.topology import Topology
from tandem.core.types import Outcome, Reply, RxMeta
from tandem.wire.dhcp import Packet

#: Builds the failover policies from the server's lease database and pools (in topology
#: order), by relationship name: ``tandem.core.failover.engine.FailoverSetup``.
FailoverFactory = Callable[[LeaseDB, Sequence[PoolState]], Mapping[str, PoolFailover]]

__all__ = ["DEFAULT_LEASE_TIME", "MAX_LEASE_TIME", "DhcpServer", "Outcome", "Reply", "RxMeta"]

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
        if self.failover_enabled and out.writes:
            for lease in out.writes:
                fo = ctx.failover_of(int(lease.address))
                if fo is not None:
                    fo.changed(lease, now)
        if out.reply is not None:
            rt = out.reply.packet.options.get(codes.MESSAGE_TYPE)
            self.counters[codes.TX_COUNTERS.get(rt[0] if rt else 0, "tx.BOOTREPLY")] += 1
        return out

    def tick(self, now: int) -> list[Lease]:
        """Expire leases past their end (to FREE) and lapsed offers; returns leases to persist."""
        self.db.expire_holds(now)
        if self.gate is not None and now >= self._next_free_count:
            self.db.count_free(self._pools)
            self._next_free_count = now + FREE_COUNT_PERIOD
        if self.failover_enabled:
            return self.db.expire(now, self._failover_expiry)
        return self.db.expire(now)

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
