"""Reload, the I/O side: read and check the new configuration, say what happened.

``Runtime.reload`` (tandem.io.runtime) reads the file with ``read_config`` (in a thread: host
names in ``failover peer`` blocks are resolved, which may wait on DNS), then, on the event loop
and between two batches, decides with ``tandem.core.reload.plan``, builds with ``rebuild`` and
swaps the server into the endpoint and the engines into the failover links. This module holds
the result and its log lines, and what only the I/O layer knows a reload cannot do.

What a reload cannot change (the log says so, each time it matters):

* the interfaces served: their sockets are bound at start-up (and, with ``-user``, root is
  gone); a served interface left without a subnet is ignored until one covers it again;
* a failover listener on a new address or port below 1024 once ``-user`` dropped root;
* ``log-facility`` (tandem.core.reload), and the command-line flags (``-lf``, ``-pf``, ports).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Interface

from tandem.config import ConfigError, load
from tandem.config.model import Config, FailoverPeer
from tandem.core.failover.engine import FailoverEngine
from tandem.core.reload import plan, rebuild
from tandem.core.server import DhcpServer
from tandem.io.commit import GroupCommit
from tandem.io.failover_link import Emit
from tandem.io.failover_listen import FailoverLinks

__all__ = ["ReloadResult", "Swap", "apply", "interface_notes", "listener_notes", "read_config"]


@dataclass
class ReloadResult:
    """What a reload did: applied (``ok``) or refused with the config's errors."""

    ok: bool
    path: str
    errors: list[str] = field(default_factory=list)  # FILE:LINE:COL: error: ...
    warnings: list[str] = field(default_factory=list)
    summary: str = ""  # "3 subnets, 2 hosts"
    notes: list[str] = field(default_factory=list)  # not applied until a restart
    restarted: list[str] = field(default_factory=list)  # failover links (re)started

    def log_lines(self) -> list[str]:
        if not self.ok:
            lines = [f"Reload of {self.path} refused: {e}" for e in self.errors]
            lines[-1] += "; still serving the previous configuration"
            return lines
        lines = [f"Reloaded {self.path}: {self.summary}"]
        lines += [f"Reload of {self.path}: {w}" for w in self.warnings]
        lines += [f"Reload of {self.path}: {n}" for n in self.notes]
        return lines

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "config": self.path,
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "summary": self.summary,
            "notes": list(self.notes),
            "restarted": list(self.restarted),
        }


def read_config(path: str, chroot: str | None = None) -> Config | ReloadResult:
    """The checked configuration (as ``tandem -t`` checks it), or a refused result."""
    try:
        return load(path)
    except ConfigError as exc:
        errors = [str(d) for d in exc.diagnostics] or [str(exc)]
    except OSError as exc:
        errors = [f"Can't open {path}: {exc.strerror or exc}"]
    if chroot and not os.path.exists(path):
        errors[-1] += (
            f" (Tandem runs in -chroot {chroot}: the path is looked up inside it;"
            " put the configuration there too, or restart to read it)"
        )
    return ReloadResult(False, path, errors)


def interface_notes(config: Config, served: Mapping[str, tuple[IPv4Interface, ...]]) -> list[str]:
    """Served interfaces the new configuration gives no subnet (their sockets stay open)."""
    networks = [s.network for s in config.subnets]
    return [
        f"no subnet declaration for interface {name} any more: its requests are ignored "
        "(the interfaces served are chosen at start-up: restart to change them)"
        for name, addrs in served.items()
        if not any(a.ip in n for a in addrs for n in networks)
    ]


def listener_notes(
    before: Mapping[str, FailoverPeer], after: Mapping[str, FailoverPeer], user: str | None
) -> list[str]:
    """New failover listeners the dropped server cannot open (a port below 1024)."""
    if user is None:
        return []
    old = {(p.address, p.port) for p in before.values()}
    return [
        f"failover peer {p.name}: listening on {p.address}:{p.port} needs root (a port below "
        f"1024) and Tandem runs as {user}: restart Tandem to apply, or use a port above 1023"
        for p in after.values()
        if (p.address, p.port) not in old and p.port < 1024
    ]


@dataclass
class Swap:
    """What ``apply`` built: the runtime puts ``server`` into the endpoint, and ``links``
    (new when the first failover peer appeared) behind it."""

    server: DhcpServer
    links: FailoverLinks | None
    result: ReloadResult


def apply(
    config: Config,
    server: DhcpServer,
    *,
    links: FailoverLinks | None,
    commit: GroupCommit,
    emit: Emit,
    path: str,
    user: str | None,
) -> Swap:
    """Build the server for ``config`` and re-wire the failover links; call it on the loop,
    between batches (it is synchronous). ``user``: the ``-user`` the server dropped to."""
    old = server
    decided = plan(old.config, config)
    engines = {} if links is None else {n: x.engine for n, x in links.links.items()}
    kept = {n: e for n, e in engines.items() if isinstance(e, FailoverEngine)}
    new, built = rebuild(old, config, kept, decided, now=int(time.time()))
    before = {p.name: p for p in old.config.failover_peers}
    after = {p.name: p for p in config.failover_peers}
    notes = [
        *decided.notes,
        *interface_notes(config, old.replies.interfaces),
        *listener_notes(before, after, user),
    ]
    restarted: list[str] = []
    if links is None and built:
        links = FailoverLinks([], commit, emit)
        links.start(asyncio.get_running_loop())
    if links is not None:
        restarted = links.replace({n: (e, after[n]) for n, e in built.items()})
    result = ReloadResult(
        True,
        path,
        warnings=[str(w) for w in config.warnings],
        summary=decided.summary(),
        notes=notes,
        restarted=restarted,
    )
    return Swap(new, links, result)
