"""Lease events: dhcpd's ``on commit``, ``on release`` and ``on expiry``, sans I/O.

dhcpd's rules (server/dhcp.c ack_lease, server/mdb.c, common/execute.c), kept here:

* When a lease is committed (the DHCPACK of a REQUEST, a BOOTREPLY), its scopes run in
  ack_lease's order: global, shared-network and subnet; the pool; the client's classes, the
  last one matched first; the host. An ``on EVENT`` sets the lease's block for that event,
  replacing what an outer scope set (execute.c's on_statement; ``on EVENT;`` clears it), and
  ``set``/``unset`` change the lease's variables. Then the commit block runs, once, with the
  packet and the lease.
* The release block runs when the client releases the lease (DHCPRELEASE, or
  one-lease-per-client releasing its other leases), with the packet; the expiry block when the
  lease ends without a release, with the lease only (``hardware`` is then the lease's). A lease
  gets one of the two, never both; a release also drops the lease's variables (dhcpd's
  release_lease "blows away" its binding scope). A declined lease runs its expiry block, as
  dhcpd's ACTIVE -> ABANDONED transition does, outside failover.
* The blocks are kept per address on the server that committed the lease, as dhcpd keeps them
  on its lease structure: a failover peer's lease (a BNDUPD) gets none here, and a lease
  renewed at the peer keeps ours, rescheduled to its new end.

Nothing runs here: ``execute()`` becomes a ``RunProgram`` and ``log()`` a ``LogLine``
(core.types), which the I/O layer runs once the lease is on disk (io/events.py). The server
builds a ``LeaseEvents`` only when the configuration has an ``on`` block or a ``set`` or
``unset``; otherwise it holds None and no packet pays for any of this.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address

from tandem.config.model import (
    Block,
    Conditional,
    Config,
    Execute,
    LogStatement,
    OnEvent,
    SetVar,
)
from tandem.core import codes
from tandem.core.allocator import Allocator
from tandem.core.client import INFINITE, Client
from tandem.core.expr import ExprContext, ExprError, evaluate, evaluate_bool, evaluate_data
from tandem.core.lease import BindingState, Lease
from tandem.core.pools import LeaseDB
from tandem.core.replies import ReplyBuilder
from tandem.core.scope import chain_blocks
from tandem.core.topology import Topology
from tandem.core.types import EventAction, LogLine, Outcome, RunProgram

_ACTIVE = BindingState.ACTIVE
_ACK = bytes([codes.DHCPACK])


def has_events(config: Config) -> bool:
    """True when some scope has an ``on`` block or a ``set``/``unset`` statement."""
    chains: list[tuple[Block, ...]] = [(config.statements,)]
    chains += [s.chain for s in config.subnets]
    chains += [p.chain for s in config.subnets for p in s.pools]
    chains += [n.chain for n in config.shared_networks]
    chains += [p.chain for n in config.shared_networks for p in n.pools]
    chains += [h.chain for h in config.hosts]
    chains += [c.chain for c in config.classes]
    chains += [sc.chain for c in config.classes for sc in c.subclasses]
    return any(_mentions(b) for chain in chains for b in chain)


def _mentions(block: Block) -> bool:
    for s in block:
        if isinstance(s, OnEvent | SetVar):
            return True
        if isinstance(s, Conditional) and (
            any(_mentions(body) for _, body in s.branches) or _mentions(s.otherwise)
        ):
            return True
    return False


@dataclass(slots=True)
class Hooks:
    """One lease's release and expiry blocks (dhcpd's on_star) and what they need later."""

    release: Block = ()
    expiry: Block = ()
    ends: int | None = None  # the end the expiry is scheduled for
    host_name: str | None = None  # ``host-decl-name`` at commit


def _text(value: bytes | int | str | bool | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class LeaseEvents:
    """The event blocks of every lease this server committed, and their evaluation."""

    def __init__(
        self,
        *,
        db: LeaseDB,
        topo: Topology,
        alloc: Allocator,
        replies: ReplyBuilder,
        names: dict[str, tuple[str, int]],
    ) -> None:
        self.db = db
        self.topo = topo
        self.alloc = alloc
        self.replies = replies
        self.names = names
        #: Release and expiry blocks by address (int).
        self.hooks: dict[int, Hooks] = {}
        self._due: list[tuple[int, int]] = []  # (ends, address): expiries, a heap
        #: Expiry actions of ``tick`` not yet taken (``DhcpServer.take_events``).
        self.pending: list[EventAction] = []
        #: Statement blocks run so far (lets tests prove what was, or was not, evaluated).
        self.runs = 0

    # --- start-up --------------------------------------------------------------------------

    def restore(self, leases: Iterable[Lease]) -> None:
        """Give loaded ACTIVE leases the release/expiry blocks of their subnet and pool scopes.

        dhcpd writes the blocks into the lease file; Tandem does not, so after a restart a
        lease gets the blocks its scopes set without a packet to evaluate (``on`` statements
        outside ``if``; classes and hosts, which need the packet, are not run). Not in a
        failover pool: the file does not say which server committed a lease, and only that
        one may run its events.
        """
        for lease in leases:
            if lease.binding_state is not _ACTIVE or lease.ends is None:
                continue
            a = int(lease.address)
            pool, subnet = self.alloc.where(a)
            if subnet is None or (pool is not None and pool.model.failover_peer is not None):
                continue
            found: dict[str, Block] = {}
            for block in self.topo.blocks_for(subnet, pool):
                self._run(block, None, lease, found, [])
            self._keep(a, lease, found, None)

    def adopt(self, old: LeaseEvents) -> None:
        """A reload: keep the blocks the old server's commits set (dhcpd keeps them on its
        leases), over what ``restore`` gave from the new scopes, and its expiries not taken."""
        self.hooks.update(old.hooks)
        for ends, a in old._due:
            heapq.heappush(self._due, (ends, a))
        self.pending = old.pending + self.pending

    # --- one packet ------------------------------------------------------------------------

    def after_packet(self, c: Client, out: Outcome) -> None:
        """The events of one handled packet, into ``out.events`` (nothing if there are none)."""
        mtype = c.mtype
        actions: list[EventAction] = []
        if mtype in (codes.DHCPRELEASE, codes.DHCPREQUEST, codes.DHCPDECLINE):
            for lease in out.writes:
                if lease.binding_state is _ACTIVE or int(lease.address) not in self.hooks:
                    continue
                if mtype == codes.DHCPDECLINE:
                    actions += self._declined(lease, c.now)
                else:
                    actions += self._released(lease, c)
        reply = out.reply
        if reply is not None and (mtype == codes.DHCPREQUEST or mtype is None):
            mt = reply.packet.options.get(codes.MESSAGE_TYPE)
            if mt == _ACK or (mt is None and mtype is None):
                actions += self._committed(c, out, reply.packet.yiaddr)
        if actions:
            out.events = actions

    def _committed(self, c: Client, out: Outcome, yiaddr: IPv4Address) -> list[EventAction]:
        a = int(yiaddr)
        lease = next((x for x in out.writes if int(x.address) == a), None)
        static = lease is None
        if lease is None:  # a fixed address: dhcpd's mocked-up lease, never stored
            raw = out.reply.packet.options.get(codes.LEASE_TIME) if out.reply else None
            length = int.from_bytes(raw, "big") if raw is not None and len(raw) == 4 else None
            ends = None if length is None or length == INFINITE else c.now + length
            lease = Lease(yiaddr, _ACTIVE, starts=c.now, ends=ends, cltt=c.now)
            lease.hardware, lease.uid = c.hw, c.uid
        pool, subnet = self.alloc.where(a)
        if subnet is None:
            return []
        scopes: list[Block] = list(self.topo.blocks_for(subnet, pool))
        for _, chain in reversed(c.classes):
            scopes.extend(chain)
        if c.host is not None:
            scopes.extend(c.host.chain)
        host_name = c.host.name if c.host is not None else None
        vals = self.replies.values(c, subnet, pool)
        ctx = self._context(c.packet, lease, c.now, host_name, c.mtype or 0)
        ctx.known, ctx.static, ctx.config_options = c.known, static, dict(vals.options)
        found: dict[str, Block] = {}
        actions: list[EventAction] = []
        for block in chain_blocks(scopes):
            self._run(block, ctx, lease, found, actions)
        commit = found.pop("commit", ())
        if commit:  # run once, then forgotten (dhcpd dereferences on_commit)
            self._run(commit, ctx, lease, found, actions)
            found.pop("commit", None)
        if not static:
            self._keep(a, lease, found, host_name)
        return actions

    def _released(self, lease: Lease, c: Client) -> list[EventAction]:
        hooks = self.hooks.pop(int(lease.address))
        actions: list[EventAction] = []
        if hooks.release:
            ctx = self._context(c.packet, lease, c.now, hooks.host_name, c.mtype or 0)
            self._run(hooks.release, ctx, lease, {}, actions)
        lease.variables.clear()  # dhcpd: "Blow away any bindings."
        return actions

    def _declined(self, lease: Lease, now: int) -> list[EventAction]:
        a = int(lease.address)
        hooks = self.hooks.pop(a)
        loc = self.db.locate(a)
        if not hooks.expiry or (loc is not None and loc[0].failover is not None):
            return []  # with a peer, ACTIVE -> ABANDONED is no expiry in dhcpd
        lease.variables.clear()  # abandon_lease drops the scope, and the hardware, first
        return self._expiry(hooks, lease, now)

    # --- the timer -------------------------------------------------------------------------

    def tick(self, now: int) -> None:
        """Leases whose end has come (after the server expired them): their expiry blocks,
        into ``pending``. A lease still ACTIVE with a later end was renewed where this
        server did not commit it (a failover peer): its blocks wait for that end."""
        due = self._due
        while due and due[0][0] <= now:
            ends, a = heapq.heappop(due)
            hooks = self.hooks.get(a)
            if hooks is None or hooks.ends != ends:
                continue  # released, recommitted or rescheduled since
            lease = self.db.by_addr.get(a)
            renewed = lease is not None and lease.binding_state is _ACTIVE
            if renewed and lease is not None and (lease.ends is None or lease.ends > now):
                hooks.ends = lease.ends
                if lease.ends is not None:
                    heapq.heappush(due, (lease.ends, a))
                continue
            del self.hooks[a]
            if lease is not None and hooks.expiry:
                self.pending += self._expiry(hooks, lease, now)

    def _expiry(self, hooks: Hooks, lease: Lease, now: int) -> list[EventAction]:
        actions: list[EventAction] = []
        ctx = self._context(None, lease, now, hooks.host_name, 0)
        self._run(hooks.expiry, ctx, lease, {}, actions)
        return actions

    # --- evaluation ------------------------------------------------------------------------

    def _keep(self, a: int, lease: Lease, found: dict[str, Block], host: str | None) -> None:
        release, expiry = found.get("release", ()), found.get("expiry", ())
        if not release and not expiry:
            self.hooks.pop(a, None)
            return
        self.hooks[a] = Hooks(release, expiry, lease.ends, host)
        if lease.ends is not None:
            heapq.heappush(self._due, (lease.ends, a))

    def _context(
        self, packet: object, lease: Lease, now: int, host_name: str | None, state: int
    ) -> ExprContext:
        ends = lease.ends
        left = INFINITE if ends is None else (ends - now if ends >= now else None)
        return ExprContext(
            packet,  # type: ignore[arg-type]  # a Packet, or None at expiry
            self.names,
            host_name=host_name,
            leased_address=lease.address,
            client_state=state,
            lease_time=left,
            variables=lease.variables,
            hardware=lease.hardware,
        )

    def _run(
        self,
        block: Block,
        ctx: ExprContext | None,
        lease: Lease,
        found: dict[str, Block],
        actions: list[EventAction],
    ) -> None:
        """Execute ``block`` (execute.c's execute_statements) into ``found`` and ``actions``;
        without ``ctx`` only the ``on`` statements outside conditionals count."""
        self.runs += 1
        for s in block:
            if isinstance(s, OnEvent):
                for event in s.events:
                    found[event] = s.body
            elif ctx is None:
                continue
            elif isinstance(s, Conditional):
                for cond, body in s.branches:
                    if evaluate_bool(cond, ctx):
                        self._run(body, ctx, lease, found, actions)
                        break
                else:
                    self._run(s.otherwise, ctx, lease, found, actions)
            elif isinstance(s, SetVar):
                value = None
                if s.expr is not None:
                    try:
                        value = _text(evaluate(s.expr, ctx))
                    except ExprError:
                        value = None
                if value is None:
                    lease.variables.pop(s.name, None)
                else:
                    lease.variables[s.name] = value
            elif isinstance(s, Execute):
                self._execute(s, ctx, actions)
            elif isinstance(s, LogStatement):
                data = evaluate_data(s.expr, ctx)
                if data is not None:
                    actions.append(LogLine(s.level, data.decode("utf-8", "surrogateescape")))

    def _execute(self, s: Execute, ctx: ExprContext, actions: list[EventAction]) -> None:
        """``execute()``: the program and its evaluated arguments, with dhcpd's debug lines
        (a failed argument skips the program, as in execute.c)."""
        argv = [s.program]
        actions.append(LogLine("debug", f"execute_statement argv[0] = {s.program}"))
        for i, arg in enumerate(s.args, 1):
            data = evaluate_data(arg, ctx)
            if data is None:
                actions.append(LogLine("debug", f"execute: bad arg {i}"))
                return
            argv.append(data.decode("utf-8", "surrogateescape"))
            actions.append(LogLine("debug", f"execute_statement argv[{i}] = {argv[-1]}"))
        actions.append(RunProgram(tuple(argv)))
