"""Mutable scopes the parser fills in, and their conversion to the frozen model.

dhcpd's scopes are groups that point at their parent; statements written *after* a nested
declaration still apply to it. So the parser records a tree of scopes and only at the end
turns each declaration's ancestry into its ``chain`` of blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from tandem.config.model import (
    Block,
    ClientClass,
    Expr,
    Host,
    Location,
    Permit,
    Pool,
    Range,
    SharedNetwork,
    Statement,
    Subclass,
    Subnet,
)

_DENY_BOOTP = Permit(allow=False, kind="dynamic-bootp-clients")
_ALLOW_ALL = Permit(allow=True, kind="all-clients")


@dataclass(eq=False)
class Scope:
    kind: str  # root, group, shared-network, subnet, pool, host, class, subclass
    parent: Scope | None
    loc: Location
    stmts: list[Statement] = field(default_factory=list)

    def nearest(self, *kinds: str) -> Scope | None:
        scope: Scope | None = self
        while scope is not None:
            if scope.kind in kinds:
                return scope
            scope = scope.parent
        return None

    def ancestry(self) -> list[Scope]:
        """Scopes from the outermost non-root one down to this one."""
        out: list[Scope] = []
        scope: Scope | None = self
        while scope is not None and scope.kind != "root":
            out.append(scope)
            scope = scope.parent
        out.reverse()
        return out


@dataclass(eq=False)
class SharedB(Scope):
    name: str = ""
    subnets: list[SubnetB] = field(default_factory=list)
    pools: list[PoolB] = field(default_factory=list)
    failover_peer: str | None = None


@dataclass(eq=False)
class SubnetB(Scope):
    network: IPv4Network = field(default_factory=lambda: IPv4Network("0.0.0.0/32"))
    shared: SharedB | None = None
    pools: list[PoolB] = field(default_factory=list)
    ranges: list[Range] = field(default_factory=list)  # written directly in the subnet


@dataclass(eq=False)
class PoolB(Scope):
    ranges: list[Range] = field(default_factory=list)
    permits: list[Permit] = field(default_factory=list)
    failover_peer: str | None = None


@dataclass(eq=False)
class HostB(Scope):
    name: str = ""
    hardware: tuple[int, bytes] | None = None
    uid: bytes | None = None
    fixed: list[IPv4Address] = field(default_factory=list)
    fixed_names: list[str] = field(default_factory=list)
    has_fixed: bool = False


@dataclass(eq=False)
class SubclassB(Scope):
    class_name: str = ""
    key: bytes = b""
    lease_limit: int | None = None


@dataclass(eq=False)
class ClassB(Scope):
    name: str = ""
    match_if: Expr | None = None
    match: Expr | None = None
    spawn: Expr | None = None
    lease_limit: int | None = None
    subclasses: list[SubclassB] = field(default_factory=list)


class Freezer:
    """Turns scopes into model objects; each scope's block becomes one shared tuple."""

    def __init__(self) -> None:
        self._blocks: dict[int, Block] = {}

    def block(self, scope: Scope) -> Block:
        key = id(scope)
        if key not in self._blocks:
            self._blocks[key] = tuple(scope.stmts)
        return self._blocks[key]

    def chain(self, scope: Scope) -> tuple[Block, ...]:
        return tuple(self.block(s) for s in scope.ancestry())

    def pool(self, pool: PoolB) -> Pool:
        return Pool(
            tuple(pool.ranges),
            tuple(pool.permits),
            pool.failover_peer,
            self.chain(pool),
            pool.loc,
        )

    def subnet(self, subnet: SubnetB) -> Subnet:
        chain = self.chain(subnet)
        pools: list[Pool] = []
        plain = [r for r in subnet.ranges if not r.dynamic_bootp]
        bootp = [r for r in subnet.ranges if r.dynamic_bootp]
        # dhcpd (confpars.c, ranges outside a pool): plain ranges go to an implicit pool that
        # denies dynamic BOOTP clients, dynamic-bootp ranges to one that allows all clients.
        # Ranges inside an explicit pool get no such rule: its own permits decide.
        for ranges, permit in ((plain, _DENY_BOOTP), (bootp, _ALLOW_ALL)):
            if ranges:
                pools.append(Pool(tuple(ranges), (permit,), None, chain, ranges[0].loc))
        pools.extend(self.pool(p) for p in subnet.pools)
        shared = subnet.shared.name if subnet.shared else None
        return Subnet(subnet.network, tuple(pools), shared, chain, subnet.loc)

    def host(self, host: HostB) -> Host:
        return Host(
            host.name,
            host.hardware,
            host.uid,
            tuple(host.fixed),
            self.chain(host),
            host.loc,
            tuple(host.fixed_names),
        )

    def client_class(self, cls: ClassB) -> ClientClass:
        chain = self.chain(cls)
        subclasses = tuple(
            Subclass(sub.class_name, sub.key, (*chain, self.block(sub)), sub.loc, sub.lease_limit)
            for sub in cls.subclasses
        )
        return ClientClass(
            cls.name,
            cls.match_if,
            cls.match,
            cls.spawn,
            cls.lease_limit,
            subclasses,
            chain,
            cls.loc,
        )

    def shared(self, shared: SharedB, subnets: dict[int, Subnet]) -> SharedNetwork:
        return SharedNetwork(
            shared.name,
            tuple(subnets[id(s)] for s in shared.subnets),
            tuple(self.pool(p) for p in shared.pools),
            self.chain(shared),
            shared.loc,
        )
