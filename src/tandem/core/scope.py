"""Scopes: running dhcpd statement blocks into parameters and options for one reply.

dhcpd executes the global block, then the subnet, pool, class and host blocks in that order;
a later (more specific) setting overrides an earlier one. Most configurations have no
conditionals, so a chain of blocks gives the same result for every packet: ``Values`` for such
chains are computed once at start-up (``is_static``) and shared read-only on the hot path. Only
chains with ``if`` or expression-valued settings are executed per packet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from tandem.config.model import (
    Block,
    ClientClass,
    Conditional,
    Config,
    Expr,
    Host,
    OptionSet,
    Param,
    ParamValue,
    Permit,
    Pool,
    Statement,
)
from tandem.core.expr import ExprContext, evaluate, evaluate_bool, evaluate_data

ScalarValue = bool | int | str | bytes | IPv4Address | tuple[IPv4Address, ...]


@dataclass(slots=True)
class Values:
    """Parameters and options in force after running some blocks (later wins)."""

    params: dict[str, ScalarValue] = field(default_factory=dict)
    options: dict[tuple[str, int], bytes] = field(default_factory=dict)
    shared: bool = False  # precomputed and shared between packets: never mutate
    # What tandem.core.reply derives from shared values once (a ReplyPlan); not copied.
    plan: Any = field(default=None, compare=False, repr=False)  # Any: see PoolState.share

    def copy(self) -> Values:
        return Values(dict(self.params), dict(self.options))

    def flag(self, name: str, default: bool) -> bool:
        """A boolean parameter; ``allow``/``deny``/``ignore`` words count as on/off."""
        v = self.params.get(name)
        if v is None:
            return default
        if isinstance(v, str):
            return v == "allow" or v in ("true", "on")
        if isinstance(v, bytes):
            return any(v)
        return bool(v)

    def ignored(self, name: str) -> bool:
        """True for ``ignore NAME`` (dhcpd then drops silently, without a log line)."""
        return self.params.get(name) == "ignore"

    def integer(self, name: str, default: int | None = None) -> int | None:
        v = self.params.get(name)
        if isinstance(v, bool) or v is None:
            return default
        if isinstance(v, int):
            return v
        if isinstance(v, bytes):
            return int.from_bytes(v, "big") if v else default
        if isinstance(v, str) and v.isdigit():
            return int(v)
        return default

    def text(self, name: str) -> str | None:
        v = self.params.get(name)
        if v is None or isinstance(v, bool):
            return None
        if isinstance(v, bytes):
            return v.decode("latin-1")
        if isinstance(v, tuple):
            return str(v[0]) if v else None
        return str(v)

    def address(self, name: str) -> IPv4Address | None:
        v = self.params.get(name)
        if isinstance(v, IPv4Address):
            return v
        if isinstance(v, tuple) and v:
            return v[0]
        if isinstance(v, bytes) and len(v) >= 4:
            return IPv4Address(v[:4])
        return None


def _statement_static(s: Statement) -> bool:
    if isinstance(s, Conditional):
        return False
    if isinstance(s, Param):
        return not isinstance(s.value, Expr)
    if isinstance(s, OptionSet):
        return s.expr is None
    return True


def is_static(blocks: Iterable[Block]) -> bool:
    """True when the blocks give the same values for every packet."""
    return all(_statement_static(s) for b in blocks for s in b)


def execute(blocks: Iterable[Block], into: Values, ctx: ExprContext | None) -> Values:
    """Run blocks in order into ``into`` (also returned). ``ctx`` is needed for dynamic blocks."""
    for block in blocks:
        _run_block(block, into, ctx)
    return into


def _run_block(block: Sequence[Statement], into: Values, ctx: ExprContext | None) -> None:
    for s in block:
        if isinstance(s, Param):
            _set_param(s.name, s.value, into, ctx)
        elif isinstance(s, OptionSet):
            if s.expr is None:
                if s.data is not None:
                    into.options[(s.space, s.code)] = s.data
            elif ctx is not None:
                ctx.config_options = into.options
                data = evaluate_data(s.expr, ctx)
                if data is not None:
                    into.options[(s.space, s.code)] = data
        elif isinstance(s, Conditional):
            if ctx is None:
                continue
            ctx.config_options = into.options
            for cond, body in s.branches:
                if evaluate_bool(cond, ctx):
                    _run_block(body, into, ctx)
                    break
            else:
                _run_block(s.otherwise, into, ctx)


def _set_param(name: str, value: ParamValue, into: Values, ctx: ExprContext | None) -> None:
    if isinstance(value, Expr):
        if ctx is None:
            return
        try:
            v = evaluate(value, ctx)
        except Exception:  # an expression that fails leaves the setting untouched
            return
        if v is None:
            return
        into.params[name] = v
    else:
        into.params[name] = value


def chain_blocks(*chains: Sequence[Block]) -> tuple[Block, ...]:
    """Concatenate chains, dropping blocks already present (same object) earlier on."""
    seen: set[int] = set()
    out: list[Block] = []
    for chain in chains:
        for b in chain:
            if id(b) not in seen and b:
                seen.add(id(b))
                out.append(b)
    return tuple(out)


# --- classes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Classifier:
    """Decides which classes a packet belongs to (``match if`` and ``match`` + subclasses)."""

    classes: tuple[ClientClass, ...]
    subclass_keys: dict[str, dict[bytes, Block]]  # class name -> key -> subclass block chain

    @classmethod
    def build(cls, config: Config) -> Classifier:
        keys: dict[str, dict[bytes, Block]] = {}
        for c in config.classes:
            table = keys.setdefault(c.name, {})
            for sub in c.subclasses:
                table[sub.key] = tuple(s for b in sub.chain for s in b)
        return cls(config.classes, keys)

    def classify(self, ctx: ExprContext) -> list[tuple[str, tuple[Block, ...]]]:
        """The classes the packet is a member of, in configuration order, with their blocks."""
        out: list[tuple[str, tuple[Block, ...]]] = []
        for c in self.classes:
            if c.match_if is not None and evaluate_bool(c.match_if, ctx):
                out.append((c.name, c.chain))
                continue
            key_expr = c.match if c.match is not None else c.spawn
            if key_expr is not None:
                key = evaluate_data(key_expr, ctx)
                if key is None:
                    continue
                sub = self.subclass_keys.get(c.name, {}).get(key)
                if sub is not None:
                    out.append((c.name, (*c.chain, sub)))
        return out


def permitted(
    permits: Sequence[Permit], *, known: bool, classes: Sequence[str], bootp: bool, now: int
) -> bool:
    """dhcpd's pool permit rule: no matching deny, and (no allow lines or one matches)."""
    has_allow = allowed = False
    for p in permits:
        if p.allow:
            has_allow = True
            if not allowed:
                allowed = _permit_matches(p, known, classes, bootp, now)
        elif _permit_matches(p, known, classes, bootp, now):
            return False
    return allowed or not has_allow


def _permit_matches(p: Permit, known: bool, classes: Sequence[str], bootp: bool, now: int) -> bool:
    kind = p.kind
    if kind == "all-clients":
        return True
    if kind == "known-clients":
        return known
    if kind == "unknown-clients":
        return not known
    if kind == "members":
        return p.class_name in classes
    if kind == "dynamic-bootp-clients":
        return bootp
    if kind == "unauthenticated-clients":
        return True
    if kind == "after":
        return p.after is not None and now > p.after
    return False  # authenticated-clients: Tandem authenticates nobody


def pool_is_static(pool: Pool) -> bool:
    return is_static(pool.chain)


# --- hosts ---------------------------------------------------------------------------------


@dataclass(slots=True)
class HostIndex:
    """Host declarations by client identifier and by hardware address, in file order."""

    by_uid: dict[bytes, list[Host]] = field(default_factory=dict)
    by_hw: dict[tuple[int, bytes], list[Host]] = field(default_factory=dict)
    fixed: set[int] = field(default_factory=set)  # every fixed-address, as int

    @classmethod
    def build(cls, hosts: Iterable[Host]) -> HostIndex:
        idx = cls()
        for h in hosts:
            if h.client_id is not None:
                idx.by_uid.setdefault(h.client_id, []).append(h)
            if h.hardware is not None:
                idx.by_hw.setdefault(h.hardware, []).append(h)
            for a in h.fixed_addresses:
                idx.fixed.add(int(a))
        return idx

    def lookup(self, uid: bytes | None, hw: tuple[int, bytes]) -> list[Host]:
        """Hosts for a client: by client identifier first, else by hardware (dhcpd's order)."""
        if uid is not None:
            found = self.by_uid.get(uid)
            if found:
                return found
        return self.by_hw.get(hw, [])
