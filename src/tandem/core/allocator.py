"""Which address a client gets: dhcpd's find_lease and allocate_lease, sans I/O.

``Allocator.find`` looks for the lease a client already has or asks for (a fixed address of
one of its hosts, its lease by client identifier or hardware address, the requested address,
an offer held for it) and returns a ``Found``. ``Allocator.allocate`` takes a new address from
the first pool on the client's network that permits it. In a failover pool the pool's policy
(``core.failover.policy.PoolFailover``) supplies the ``TakeRule`` by which free and backup
addresses may be taken; the allocator does the taking.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import NamedTuple

from tandem.config.model import Host
from tandem.core import codes
from tandem.core.client import Candidate, Client
from tandem.core.failover.policy import PoolFailover
from tandem.core.flood import NewLeaseGate
from tandem.core.lease import BindingState, Lease
from tandem.core.pools import FreeList, LeaseDB, PoolState
from tandem.core.scope import HostIndex, permitted
from tandem.core.topology import NetState, SubnetState, Topology

_ACTIVE = BindingState.ACTIVE
_FREE = BindingState.FREE
_BACKUP = BindingState.BACKUP
_ABANDONED = BindingState.ABANDONED


class Found(NamedTuple):
    """What ``Allocator.find`` found for a client."""

    #: The address to give, or None.
    candidate: Candidate | None
    #: The requested address is one we manage and could not give: a DHCPREQUEST for it is
    #: NAKed.
    ours: bool
    #: The text for such a NAK's option 56.
    message: str


def owned_by(lease: Lease, c: Client) -> bool:
    """dhcpd's identity rule: the client identifier if the lease has one, else hardware."""
    if lease.uid is not None:
        return lease.uid == c.uid
    return lease.hardware == c.hw


class Allocator:
    """Finds and allocates addresses in one server's lease database and topology."""

    def __init__(
        self, db: LeaseDB, topo: Topology, hosts: HostIndex, gate: NewLeaseGate | None
    ) -> None:
        self.db = db
        self.topo = topo
        self.hosts = hosts
        self.gate = gate
        #: The pool the new-lease gate refused in the last ``allocate``, if any.
        self.gated: PoolState | None = None

    def fixed_for(self, c: Client, share: NetState | None) -> tuple[Host, IPv4Address] | None:
        """The first fixed-address of the client's hosts that lies on its network."""
        if share is None:
            return None
        for h in c.hosts:
            for a in h.fixed_addresses:
                st = self.topo.subnet_of(a)
                if st is not None and st.share is share:
                    return h, a
        return None

    def pool_ok(self, c: Client, pool: PoolState | None) -> bool:
        """Whether the pool's permits let this client have an address in it."""
        if pool is None or not pool.permits:
            return True
        return permitted(
            pool.permits, known=c.known, classes=c.class_names, bootp=c.bootp, now=c.now
        )

    def where(self, addr: int) -> tuple[PoolState | None, SubnetState | None]:
        """The pool (None outside ranges) and subnet (None off our networks) of ``addr``."""
        loc = self.db.locate(addr)
        if loc is not None:
            pool, _, sub = loc
            return pool, sub if isinstance(sub, SubnetState) else self.topo.subnet_of(addr)
        return None, self.topo.subnet_of(addr)

    def _usable(self, c: Client, lease: Lease, share: NetState) -> Candidate | None:
        a = int(lease.address)
        pool, sub = self.where(a)
        if sub is None or sub.share is not share or not self.pool_ok(c, pool):
            return None
        if a in self.db.excluded:
            return None  # reserved for another host (the client's own came from fixed_for)
        return Candidate(a, lease, pool, sub)

    def find(self, c: Client, share: NetState, cip: IPv4Address | None) -> Found:
        """The lease this client should get, following dhcpd's find_lease."""
        request = c.mtype == codes.DHCPREQUEST
        now = c.now
        db = self.db
        fixed = self.fixed_for(c, share)
        if fixed is not None:
            host, addr = fixed
            c.host = host
            if request and cip != addr:
                return Found(None, True, "requested address is incorrect")
            sub = self.topo.subnet_of(addr)
            assert sub is not None
            return Found(Candidate(int(addr), None, None, sub, static=True), False, "")
        by_uid, by_hw = db.leases_of(c.uid, c.hw)
        uid_c: Candidate | None = None
        for lease in by_uid:
            uid_c = self._usable(c, lease, share)
            if uid_c is not None:
                break
        hw_c: Candidate | None = None
        for lease in by_hw:
            if (
                lease.binding_state not in (_FREE, _BACKUP)
                and lease.uid is not None
                and lease.uid != c.uid
            ):
                continue
            hw_c = self._usable(c, lease, share)
            if hw_c is not None:
                break
        ours = False
        message = "requested address not available"
        ip_c: Candidate | None = None
        if cip is not None:
            a = int(cip)
            ipl = db.by_addr.get(a)
            pool, sub = self.where(a)
            if ipl is not None or pool is not None:
                ours = True
                if sub is None or sub.share is not share:
                    message = "requested address on bad subnet"
                elif a in db.excluded:
                    pass  # reserved for another host: nobody else gets it, an old holder neither
                elif ipl is None:
                    if not db.is_held_by_other(a, c.uid, c.hw):
                        ip_c = Candidate(a, None, pool, sub)
                else:
                    st = ipl.binding_state
                    if st is _ACTIVE and ipl.ends is not None and ipl.ends <= now:
                        st = _FREE  # expired; the timer has not moved it yet
                    held = db.offers.get(a)
                    mine = owned_by(ipl, c) or (
                        held is not None and not db.is_held_by_other(a, c.uid, c.hw)
                    )
                    if not mine and st not in (_FREE, _BACKUP):
                        # Someone else's: NAK only if it is actively bound (dhcpd).
                        ours = st is _ACTIVE
                    elif not mine and db.is_held_by_other(a, c.uid, c.hw):
                        pass
                    else:
                        ip_c = Candidate(a, ipl, pool, sub, abandoned=st is _ABANDONED)
                if ip_c is not None and not self.pool_ok(c, pool):
                    ip_c = None
        if request and ip_c is None:
            return Found(None, ours, message)
        chosen = ip_c or uid_c
        if chosen is None and hw_c is not None:
            hl = hw_c.lease
            if hl is None or hl.uid is None or hl.uid == c.uid or (c.uid is None and c.bootp):
                chosen = hw_c
        if chosen is None and not request:
            held = db.held_for(c.uid, c.hw)
            if held is not None:
                pool, sub = self.where(held.address)
                if sub is not None and sub.share is share and self.pool_ok(c, pool):
                    chosen = Candidate(held.address, db.by_addr.get(held.address), pool, sub)
        if (
            chosen is not None
            and chosen.lease is not None
            and chosen.lease.binding_state is _ABANDONED
        ):
            if not (chosen is ip_c and request):
                return Found(None, True, message)
            chosen.abandoned = True  # reclaimed: the client insists on it
        return Found(chosen, ours, message)

    def allocate(self, c: Client, share: NetState) -> Candidate | None:
        """A new address from the first permitted pool with one (abandoned ones last).

        Pool permits decide who may allocate where (dhcpd gives the implicit pool of plain
        subnet ranges a "deny dynamic bootp clients" permit); DHCP clients prefer ordinary
        ranges and fall back to dynamic-bootp ones. BOOTP clients never get an address from a
        failover pool (dhcpd refuses dynamic BOOTP there).
        """
        fallback: tuple[PoolState, FreeList] | None = None
        gate = self.gate
        self.gated = None
        for pool in share.pools:
            if not self.pool_ok(c, pool) or (c.bootp and pool.failover is not None):
                continue
            if gate is not None and not gate.allow(id(pool), pool.size, pool.free_hint, c.now):
                self.gated = pool  # in its reserve and out of tokens: see core.flood
                continue
            for fl in (pool.dhcp, pool.bootp):
                got = self._take(fl, pool.failover, c.now, False)
                if got is not None:
                    pool.free_hint -= 1
                    return self._candidate(got[0], pool)
                if fallback is None and fl.abandoned:
                    fallback = (pool, fl)
        if fallback is not None:
            got = self._take(fallback[1], fallback[0].failover, c.now, True)
            if got is not None:
                cand = self._candidate(got[0], fallback[0])
                cand.abandoned = got[1]
                return cand
        return None

    def _take(
        self, fl: FreeList, fo: PoolFailover | None, now: int, abandoned_ok: bool
    ) -> tuple[int, bool] | None:
        """Take from ``fl``; in a failover pool by the rule its relationship gives."""
        if fo is None:
            return self.db.take(fl, abandoned_ok=abandoned_ok)
        rule = fo.take_rule(now, abandoned_ok)
        return self.db.take(
            fl,
            abandoned_ok=rule.abandoned_ok,
            free=rule.free,
            backup=rule.backup,
            accept=rule.accept,
            reclaim=rule.reclaim,
        )

    def _candidate(self, a: int, pool: PoolState) -> Candidate:
        _, sub = self.where(a)
        assert sub is not None  # a range address always lies in a subnet of its network
        return Candidate(a, self.db.by_addr.get(a), pool, sub)
