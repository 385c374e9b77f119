"""Reloading the configuration (SIGHUP, ``config-reload``), sans I/O.

dhcpd has no reload; Tandem's keeps what a restart would lose:

* ``plan(old, new)`` compares two checked configurations: which ``failover peer`` blocks are
  unchanged (their link stays up), changed (that relationship restarts: a new engine from the
  current state, a new connection), added or removed, and what a reload cannot apply
  (``notes``; the I/O layer adds what only it knows: interfaces, privileges);
* ``rebuild`` builds a new ``DhcpServer`` from the new configuration over the *same* ``Lease``
  objects (so no lease is lost, in memory or in the lease file, even one outside the new
  ranges: it stays until it ends, and no range hands it out), the offers still held, the
  packet counters, and the kept engines, re-bound to the new lease database and pools. The
  caller swaps it in between two batches; new reservations and options apply to the next
  packet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from tandem.config.model import Config, FailoverPeer, Param
from tandem.core.failover.engine import FailoverEngine
from tandem.core.failover.policy import PoolFailover
from tandem.core.pools import LeaseDB, PoolState
from tandem.core.server import DhcpServer

__all__ = ["ReloadPlan", "peer_changed", "plan", "rebuild"]

#: FailoverPeer fields that do not change what the relationship does: where it was written,
#: and a host name (its resolved address is compared instead).
_IGNORED = frozenset({"loc", "span", "address_name", "peer_address_name"})


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What a new configuration changes, decided before anything is touched."""

    kept: tuple[str, ...]  # failover peers whose block is unchanged: the link stays up
    restarted: tuple[str, ...]  # block changed: that relationship's link restarts
    added: tuple[str, ...]
    removed: tuple[str, ...]
    subnets: int
    hosts: int
    notes: tuple[str, ...]  # what a reload does not apply, and what to do about it

    def summary(self) -> str:
        """``3 subnets, 2 hosts`` (and the failover changes, if any)."""
        parts = [_count(self.subnets, "subnet"), _count(self.hosts, "host")]
        for verb, names in (
            ("restarted", self.restarted),
            ("added", self.added),
            ("removed", self.removed),
        ):
            if names:
                parts.append(f"failover peer {', '.join(names)} {verb}")
        return ", ".join(parts)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def peer_changed(old: FailoverPeer, new: FailoverPeer) -> bool:
    """Does the relationship need a new link? Any setting of the block, addresses included."""
    return any(
        getattr(old, f.name) != getattr(new, f.name)
        for f in fields(FailoverPeer)
        if f.name not in _IGNORED
    )


def _global(config: Config, name: str) -> str | None:
    for s in config.statements:
        if isinstance(s, Param) and s.name == name:
            return str(s.value)
    return None


def plan(old: Config, new: Config) -> ReloadPlan:
    """Compare the running configuration with a new one that passed the ``-t`` check."""
    before = {p.name: p for p in old.failover_peers}
    after = {p.name: p for p in new.failover_peers}
    kept = tuple(n for n, p in after.items() if n in before and not peer_changed(before[n], p))
    restarted = tuple(n for n, p in after.items() if n in before and peer_changed(before[n], p))
    notes: list[str] = []
    facility = _global(old, "log-facility"), _global(new, "log-facility")
    if facility[0] != facility[1]:
        notes.append(
            f"log-facility {facility[1] or 'daemon'} applies after a restart "
            f"(logging to {facility[0] or 'daemon'} until then)"
        )
    return ReloadPlan(
        kept=kept,
        restarted=restarted,
        added=tuple(n for n in after if n not in before),
        removed=tuple(n for n in before if n not in after),
        subnets=len(new.subnets),
        hosts=len(new.hosts),
        notes=tuple(notes),
    )


def rebuild(
    old: DhcpServer,
    config: Config,
    engines: Mapping[str, FailoverEngine],
    decided: ReloadPlan,
    *,
    now: int,
) -> tuple[DhcpServer, dict[str, FailoverEngine]]:
    """The server for ``config`` over ``old``'s leases, and the engines it uses.

    A kept engine is the same object, re-bound; a restarted one is new, started from the old
    one's current state (as a restart would read it from the lease file); an added one starts
    from nothing. The interfaces and the ``--reserve`` limit are ``old``'s (flags, not
    configuration). ``old`` and the engines not returned must not be used afterwards.
    """
    built: dict[str, FailoverEngine] = {}
    # The extension channel's setup (features, secret, nonces) carries over to new engines.
    ext = next((e.ext_setup for e in engines.values() if e.ext_setup is not None), None)

    def factory(db: LeaseDB, pools: Sequence[PoolState]) -> dict[str, PoolFailover]:
        for peer in config.failover_peers:
            engine = engines.get(peer.name)
            if engine is not None and peer.name in decided.kept:
                engine.rebind(db, pools)
            else:
                saved = engine.state_record() if engine is not None else None
                engine = FailoverEngine(db, pools, peer, saved, now, ext=ext)
            built[peer.name] = engine
        return {name: engine.leases for name, engine in built.items()}

    server = DhcpServer(
        config,
        leases=list(old.leases()),
        interfaces=old.replies.interfaces,
        new_lease_limit=old.gate.limit if old.gate is not None else None,
        failover=factory if config.failover_peers else None,
    )
    server.db.adopt_holds(old.db.offers.values())
    if server.ctx.pings is not None and old.ctx.pings is not None:
        server.ctx.pings.pending.update(old.ctx.pings.pending)  # OFFERs waiting for a ping
    server.counters.update(old.counters)
    if server.ctx.events is not None and old.ctx.events is not None:
        server.ctx.events.adopt(old.ctx.events)  # lease events set by earlier commits
    return server, built
