"""What must agree between two failover peers, as items with their ``file:line``, and a digest.

Two peers of a relationship serve the same clients from the same pools, so their files must
agree on what decides an address: subnets and shared networks, pools with their ranges,
permits and failover peer, the peer block's shared parameters, host reservations, classes
(and subclasses), and the options and allocation parameters of each of those scopes. Each
becomes an ``Item``: a ``key`` naming it the same way on both peers (``subnet 192.0.2.0/24
pool 1 range 1``), its ``value`` as text, and where it was written (``loc``, ``file:line``),
which is never part of the comparison. ``config_digest`` hashes the sorted (key, value) pairs;
equal digests mean equal items.

The peer block is seen from the primary's side on both peers (the side-swap of
``tandem.config.sides`` undone: ``primary address``, ``secondary port``, ...), so a block and
its mirror compare equal. ``mclt`` and ``split``/``hba`` are left out: only the primary's
count, and the ISC protocol hands them to the secondary (its CONNECT), as are each server's
own ``max-response-delay`` and ``max-unacked-updates``. Reservations added at run time
(``reservation-add``, the lease file's ``host { dynamic; }``) are not in a ``Config``, so they
are never drift. Statements in ``group`` blocks around declarations are not itemised.
Pure: a ``Config`` in, items out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

from tandem.config.model import (
    Block,
    ClientClass,
    Conditional,
    Config,
    Expr,
    FailoverPeer,
    Host,
    Location,
    OptionSet,
    Param,
    Pool,
    Subnet,
)

__all__ = ["Difference", "Item", "compare", "config_digest", "digest_items"]

#: Parameters of a scope that decide which address a client gets, or for how long.
ALLOCATION_PARAMS = frozenset(
    {
        "default-lease-time",
        "max-lease-time",
        "min-lease-time",
        "authoritative",
        "one-lease-per-client",
        "unknown-clients",
        "known-clients",
        "booting",
        "bootp",
        "dynamic-bootp-lease-length",
        "dynamic-bootp-lease-cutoff",
        "duplicates",
        "declines",
        "use-host-decl-names",
        "get-lease-hostnames",
        "boot-unknown-clients",
        "adaptive-lease-time-threshold",
        "stash-agent-options",
        "ping-check",
    }
)
#: The peer block's settings both peers must share (seen from the primary's side).
_PEER_FIELDS = (
    "load_balance_max_seconds",
    "max_lease_misbalance",
    "max_lease_ownership",
    "min_balance",
    "max_balance",
)


@dataclass(frozen=True, slots=True)
class Item:
    """One thing that must agree: ``key`` (the same on both peers), ``value``, ``loc``."""

    key: str
    value: str
    loc: str  #: ``file:line``; never compared


@dataclass(frozen=True, slots=True)
class Difference:
    """One key whose value differs (None: the key is missing on that side)."""

    key: str
    here: str | None
    here_loc: str | None
    peer: str | None
    peer_loc: str | None

    def describe(self) -> str:
        here = "absent" if self.here is None else f"{self.here} ({self.here_loc})"
        peer = "absent" if self.peer is None else f"{self.peer} ({self.peer_loc})"
        return f"{self.key}: here {here}, peer {peer}"


def _loc(loc: Location) -> str:
    return f"{loc.file}:{loc.line}"


def config_digest(items: Iterable[Item]) -> str:
    """SHA-256 over the sorted ``key\\tvalue`` lines (locations excluded), hex."""
    h = hashlib.sha256()
    for key, value in sorted((i.key, i.value) for i in items):
        h.update(f"{key}\t{value}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def digest_items(config: Config, relationship: str | None = None) -> list[Item]:
    """Every item of ``config`` (only the pools of ``relationship``'s peer block and that
    block, when given; subnets, hosts, classes and global parameters always)."""
    out: list[Item] = []
    for peer in config.failover_peers:
        if relationship is None or peer.name == relationship:
            out += _peer_items(peer)
    out += _block_items("global", config.statements)
    for shared in config.shared_networks:
        scope = f"shared-network {shared.name}"
        out.append(Item(scope, ",".join(str(s.network) for s in shared.subnets), _loc(shared.loc)))
        if shared.chain:
            out += _block_items(scope, shared.chain[-1])
        out += _pool_items(scope, shared.pools, relationship, None)
    for subnet in config.subnets:
        out += _subnet_items(subnet, relationship)
    for host in config.hosts:
        out += _host_items(host)
    for cls in config.classes:
        out += _class_items(cls)
    return out


def _peer_items(peer: FailoverPeer) -> Iterator[Item]:
    scope = f"failover peer {peer.name}"
    loc = _loc(peer.loc)
    swapped = peer.role == "secondary"
    primary = (peer.peer_address, peer.peer_port) if swapped else (peer.address, peer.port)
    secondary = (peer.address, peer.port) if swapped else (peer.peer_address, peer.peer_port)
    yield Item(f"{scope} primary", f"{primary[0]} port {primary[1]}", loc)
    yield Item(f"{scope} secondary", f"{secondary[0]} port {secondary[1]}", loc)
    for name in _PEER_FIELDS:
        yield Item(f"{scope} {name.replace('_', '-')}", str(getattr(peer, name)), loc)


def _subnet_items(subnet: Subnet, relationship: str | None) -> list[Item]:
    scope = f"subnet {subnet.network}"
    out = [Item(scope, f"shared-network {subnet.shared_network or '-'}", _loc(subnet.loc))]
    if subnet.chain:
        out += _block_items(scope, subnet.chain[-1])
    out += _pool_items(scope, subnet.pools, relationship, subnet.chain)
    return out


def _pool_items(
    scope: str,
    pools: Sequence[Pool],
    relationship: str | None,
    parent_chain: tuple[Block, ...] | None,
) -> list[Item]:
    out: list[Item] = []
    for n, pool in enumerate(pools, 1):
        if relationship is not None and pool.failover_peer not in (None, relationship):
            continue
        ps = f"{scope} pool {n}"
        loc = _loc(pool.loc if pool.loc.line else (pool.ranges[0].loc if pool.ranges else pool.loc))
        out.append(Item(f"{ps} failover peer", pool.failover_peer or "-", loc))
        for r, rng in enumerate(pool.ranges, 1):
            value = f"{rng.low} {rng.high}" + (" dynamic-bootp" if rng.dynamic_bootp else "")
            out.append(Item(f"{ps} range {r}", value, _loc(rng.loc)))
        permits = sorted(
            ("allow " if p.allow else "deny ")
            + p.kind
            + (f' of "{p.class_name}"' if p.class_name else "")
            + (f" {p.after}" if p.after is not None else "")
            for p in pool.permits
        )
        if permits:
            out.append(Item(f"{ps} permits", "; ".join(permits), _loc(pool.permits[0].loc)))
        implicit = parent_chain is not None and pool.chain == parent_chain
        if pool.chain and not implicit:
            out += _block_items(ps, pool.chain[-1])
    return out


def _host_items(host: Host) -> list[Item]:
    scope = f"host {host.name}"
    parts = []
    if host.hardware is not None:
        parts.append(f"hardware {host.hardware[0]} {host.hardware[1].hex(':')}")
    if host.client_id is not None:
        parts.append(f"client-id {host.client_id.hex(':')}")
    addrs = [str(a) for a in host.fixed_addresses] + list(host.fixed_hostnames)
    if addrs:
        parts.append("fixed-address " + ", ".join(addrs))
    out = [Item(scope, "; ".join(parts) or "-", _loc(host.loc))]
    if host.chain:
        out += _block_items(scope, host.chain[-1])
    return out


def _class_items(cls: ClientClass) -> list[Item]:
    scope = f"class {cls.name}"
    parts = []
    if cls.match_if is not None:
        parts.append(f"match if {_expr(cls.match_if)}")
    if cls.match is not None:
        parts.append(f"match {_expr(cls.match)}")
    if cls.spawn is not None:
        parts.append(f"spawn with {_expr(cls.spawn)}")
    if cls.lease_limit is not None:
        parts.append(f"lease limit {cls.lease_limit}")
    out = [Item(scope, "; ".join(parts) or "-", _loc(cls.loc))]
    if cls.chain:
        out += _block_items(scope, cls.chain[-1])
    for sub in cls.subclasses:
        limit = f" lease limit {sub.lease_limit}" if sub.lease_limit is not None else ""
        out.append(
            Item(f"{scope} subclass {sub.key.hex(':')}", limit.strip() or "-", _loc(sub.loc))
        )
    return out


def _block_items(scope: str, block: Block) -> list[Item]:
    """A scope's options, allocation parameters and conditionals (numbered per name)."""
    out: list[Item] = []
    seen: dict[str, int] = {}
    for stmt in block:
        key: str | None = None
        if isinstance(stmt, OptionSet):
            key = f"{scope} option {stmt.space}.{stmt.name}"
            value = stmt.data.hex(":") if stmt.data is not None else "= " + _expr(stmt.expr)
        elif isinstance(stmt, Param) and stmt.name in ALLOCATION_PARAMS:
            key = f"{scope} {stmt.name}"
            value = _value(stmt.value)
        elif isinstance(stmt, Conditional):
            key = f"{scope} if"
            value = _conditional(stmt)
        if key is None:
            continue
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key = f"{key} #{seen[key]}"
        out.append(Item(key, value, _loc(stmt.loc)))
    return out


def _value(value: object) -> str:
    if isinstance(value, Expr):
        return _expr(value)
    if isinstance(value, bytes):
        return value.hex(":")
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, (bool, int, str, IPv4Address)):
        return str(value)
    return repr(value)


def _expr(expr: Expr | None) -> str:
    """An expression as text without its locations (so only what it means is compared)."""
    if expr is None:
        return "-"
    value = "" if expr.value is None else _value(expr.value)
    args = ", ".join(_expr(a) for a in expr.args)
    return f"{expr.op}({value}{'; ' if value and args else ''}{args})"


def _conditional(stmt: Conditional) -> str:
    parts = []
    for cond, body in stmt.branches:
        parts.append(f"if {_expr(cond)} {{{_statements(body)}}}")
    if stmt.otherwise:
        parts.append(f"else {{{_statements(stmt.otherwise)}}}")
    return " ".join(parts)


def _statements(block: Block) -> str:
    return "; ".join(i.key.removeprefix("- ") + " " + i.value for i in _block_items("-", block))


def compare(mine: Sequence[Item], theirs: Sequence[Item]) -> list[Difference]:
    """The differences, in the order of our items (then keys only the peer has)."""
    here = {i.key: i for i in mine}
    there = {i.key: i for i in theirs}
    out: list[Difference] = []
    for item in mine:
        other = there.get(item.key)
        if other is None:
            out.append(Difference(item.key, item.value, item.loc, None, None))
        elif other.value != item.value:
            out.append(Difference(item.key, item.value, item.loc, other.value, other.loc))
    for item in theirs:
        if item.key not in here:
            out.append(Difference(item.key, None, None, item.value, item.loc))
    return out
