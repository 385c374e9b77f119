"""What the message flows work with: one server's lease database, allocator and replies.

``core.flows`` takes a ``ServerContext``; ``core.server.DhcpServer`` builds one and dispatches
each packet to a flow with it. Keeping it apart from the server means the flows never import
the module that dispatches to them.
"""

from __future__ import annotations

from collections import Counter

from tandem.core.allocator import Allocator
from tandem.core.billing import Billing
from tandem.core.client import Client
from tandem.core.events import LeaseEvents
from tandem.core.failover.policy import PoolFailover
from tandem.core.lease import BindingState, Lease
from tandem.core.ping import DEFAULT_ABANDON_LEASE_TIME, MAX_TIME, Pings
from tandem.core.pools import LeaseDB
from tandem.core.replies import ReplyBuilder
from tandem.core.scope import Classifier, HostIndex
from tandem.core.topology import Topology
from tandem.core.types import Outcome


class ServerContext:
    """One server's state as the flows see it; every member is public and documented."""

    def __init__(
        self,
        *,
        db: LeaseDB,
        topo: Topology,
        alloc: Allocator,
        replies: ReplyBuilder,
        hosts: HostIndex,
        classifier: Classifier,
        names: dict[str, tuple[str, int]],
    ) -> None:
        #: The lease database: leases by address, client, state; offers held; the free lists.
        self.db = db
        #: Subnets, shared networks and pools, and the scopes' values.
        self.topo = topo
        #: find_lease and allocate_lease.
        self.alloc = alloc
        #: Values, lease times, server identifiers, replies and NAKs.
        self.replies = replies
        self.hosts = hosts
        self.classifier = classifier
        self.names = names
        #: rx/tx per message type and drops by reason (``DhcpServer.stats``).
        self.counters: Counter[str] = Counter()
        #: Per-class lease billing (``lease limit``); None when no class has a limit.
        self.billing: Billing | None = None
        #: Whether any pool has a failover policy (saves the lookup per lease otherwise).
        self.failover_enabled = False
        #: Offers waiting for ping-check (core.ping); None when no scope can ping.
        self.pings: Pings | None = None
        #: The global ``abandon-lease-time``: how long an abandoned lease stays abandoned.
        self.abandon_lease_time = DEFAULT_ABANDON_LEASE_TIME
        #: Lease events (``on commit`` ...); None when the configuration has none.
        self.events: LeaseEvents | None = None
        #: auto-partner-down: failover partners' addresses whose DHCPINFORMs (their probes,
        #: io/probe.py) are counted in ``probed_by``; set by io/autopd.py, empty otherwise.
        self.probe_sources: frozenset[int] = frozenset()
        self.probed_by: dict[int, int] = {}

    def drop(self, out: Outcome, reason: str) -> Outcome:
        """Drop the packet: no reply, ``reason`` counted as ``drop.<reason>``."""
        out.drop = reason
        self.counters["drop." + reason] += 1
        return out

    def abandon(self, lease: Lease, now: int, why: str, out: Outcome) -> None:
        """dhcpd's abandon_lease (a DECLINE, an answered ping): no owner, ABANDONED until
        ``abandon-lease-time`` from now, written, and logged with dhcpd's line."""
        db = self.db
        db.drop_hold(int(lease.address))
        db.set_owner(lease, None, None)
        lease.binding_state = BindingState.ABANDONED
        lease.next_binding_state = None
        ends = now + self.abandon_lease_time
        lease.ends = ends if ends <= MAX_TIME else None
        lease.client_hostname = None
        db.requeue(lease)
        out.writes.append(lease)
        out.log.append(f"Abandoning IP address {lease.address}: {why}")

    def identify(self, c: Client) -> None:
        """Host lookup (known clients), then classification."""
        c.hosts = self.hosts.lookup(c.uid, c.hw)
        c.known = bool(c.hosts)
        if c.hosts:
            c.host = next((h for h in c.hosts if not h.fixed_addresses), c.hosts[0])
        if self.classifier.classes:
            c.classes = self.classifier.classify(c.ectx(self.names))

    def failover_of(self, addr: int) -> PoolFailover | None:
        """The failover relationship of a range address's pool, if any."""
        loc = self.db.locate(addr)
        return None if loc is None else loc[0].failover
