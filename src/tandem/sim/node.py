"""A simulated Tandem server: the production DhcpServer and FailoverEngine, no sockets.

The node replays the I/O layer's contract (tandem.io.commit, dhcp_socket, failover_link) in
virtual time: a DHCP packet is handled, its writes are appended to the journal, and the
reply waits for the next commit; after every batch the engine is serviced (take_writes,
append, then data_to_send), and its bytes also leave only after the commit that covers
them. Commits take ``COMMIT_MS`` of virtual time, so a crash can fall between the append
and the commit and lose exactly what was never promised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Address, IPv4Interface
from typing import Protocol

from tandem.config.model import Config
from tandem.core.failover.autopd_hook import AutoPDHook, attach, settings_for
from tandem.core.failover.engine import FailoverEngine, FailoverSetup
from tandem.core.failover.handover import HANDOVER_SECONDS
from tandem.core.server import DhcpServer
from tandem.core.types import Reply, RxMeta
from tandem.core.witness import WitnessRequest
from tandem.sim.journal import SimJournal
from tandem.wire import dhcp
from tandem.wire.errors import MalformedPacket

__all__ = ["COMMIT_MS", "T0", "Conn", "NodeWorld", "SimNode"]

T0 = 1_700_000_000  #: the epoch second virtual time 0 maps to
COMMIT_MS = 3  #: how long a group commit (write + fsync) takes
TICK_MS = 1000  #: the I/O layer calls DhcpServer.tick once a second
HANDOVER_MS = int(HANDOVER_SECONDS * 1000)  #: tandem.io.failover_listen.FailoverLinks.handover


@dataclass(eq=False)
class Conn:
    """One TCP connection between the two servers."""

    ident: int
    last_arrival: dict[str, int] = field(default_factory=dict)


class NodeWorld(Protocol):
    """What a server needs of its world (``sim.world.World``): the clock, timers, the
    network, the trace and the reports the invariant checker reads."""

    t: int  #: virtual time, ms
    verbose: bool

    def at(self, t: int, action: Callable[[], None]) -> None: ...

    def entered(self, node: SimNode, state: str) -> None: ...

    def note(self, text: str) -> None: ...

    def node_crashed(self, node: SimNode) -> None: ...

    def want_link(self) -> None: ...

    def link_send(self, src: SimNode, conn: Conn, data: bytes) -> None: ...

    def link_gone(self, src: SimNode, conn: Conn) -> None: ...

    def reply_to_client(
        self, node: SimNode, reply: Reply, ends: int | None, commit: int
    ) -> None: ...

    def apd_probe(self, node: SimNode) -> None: ...

    def apd_ask(self, node: SimNode, req: WitnessRequest) -> None: ...


class SimNode:
    """One server process (recreated from its journal on restart; the journal survives)."""

    def __init__(
        self, world: NodeWorld, name: str, config: Config, ip: IPv4Address, offset_ms: int
    ) -> None:
        self.world = world
        self.name = name
        self.config = config
        self.ip = ip
        self.iface = IPv4Interface(f"{ip}/24")
        self.offset_ms = offset_ms
        self.journal = SimJournal(name)
        self.up = False
        self.epoch = 0
        self.server: DhcpServer | None = None
        self.engine: FailoverEngine | None = None
        self.conn: Conn | None = None
        self.doomed: Conn | None = None  # the engine asked to close it
        self.waiting: list[Callable[[], None]] = []
        self.commit_due = False
        self.crash_at_commit: float | None = None  # -1: lose the batch, else torn fraction
        self.timer_at: int | None = None
        self.last_fired: int | None = None
        self.log: list[str] = []
        self.starts = 0
        self.stopping = False  # SIGTERM received: handing over, then exiting
        # Tandem's auto-partner-down rule (None: off, or dhcpd's blind timer)
        self.rule = "tandem"
        self.witness = False
        self.rate_ppm = 0  # the monotonic clock's rate error
        self.hook: AutoPDHook | None = None
        self.apd_at: int | None = None

    # --- clocks ---------------------------------------------------------------------------

    def now(self) -> int:
        """This server's wall clock in whole seconds (its offset included)."""
        return T0 + (self.world.t + self.offset_ms) // 1000

    def mono(self) -> int:
        """This server's monotonic clock, ms (its rate may be off, see sim.apd)."""
        return self.world.t * (1_000_000 + self.rate_ppm) // 1_000_000

    def ms_for(self, at: int) -> int:
        """The virtual time at which this server's clock reads ``at``."""
        return (at - T0) * 1000 - self.offset_ms

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start (or restart) from the journal, through the real parser, like serve()."""
        contents = self.journal.load()
        setup = FailoverSetup(self.config, contents.failover_states, self.now())
        server = DhcpServer(
            self.config,
            leases=contents.leases.values(),
            interfaces={"eth0": (self.iface,)},
            failover=setup,
        )
        (engine,) = setup.engines.values()
        self.hook = None
        settings = settings_for(engine, witness=self.witness, link_delay_ms=3000)
        if settings is not None and self.rule == "tandem":
            self.hook = attach(engine, settings, mono=self.mono())
        self.apd_at = None
        self.journal.rewrite(server.leases(), contents.failover_states.values())
        self.server, self.engine = server, engine
        self.up = True
        self.epoch += 1
        self.starts += 1
        self.conn = self.doomed = None
        self.stopping = False
        self.waiting = []
        self.commit_due = False
        self.crash_at_commit = None
        self.timer_at = self.last_fired = None
        self._say(engine.take_log())
        self.world.at(self.world.t + TICK_MS, partial(self._tick, self.epoch))
        self.service()

    def crash(self, torn_fraction: float | None = None) -> None:
        """The process dies: memory, pending records and queued replies are gone."""
        self.journal.crash(torn_fraction)
        self.up = False
        self.epoch += 1
        self.server = self.engine = None
        self.waiting = []
        self.commit_due = False
        self.crash_at_commit = None
        self.timer_at = None
        conn, self.conn = self.conn, None
        if conn is not None:
            self.world.link_gone(self, conn)

    # --- the commit pipeline -------------------------------------------------------------

    def after_durable(self, action: Callable[[], None]) -> None:
        """Run ``action`` once everything appended so far is committed (in order)."""
        if not self.journal.pending and not self.commit_due:
            action()
            return
        self.waiting.append(action)
        if not self.commit_due:
            self.commit_due = True
            self.world.at(self.world.t + COMMIT_MS, partial(self._commit, self.epoch))

    def _commit(self, epoch: int) -> None:
        if epoch != self.epoch or not self.up:
            return
        if self.crash_at_commit is not None:
            fraction = self.crash_at_commit
            self.world.note(f"{self.name}: crash during commit ({len(self.journal.pending)} rec)")
            self.crash(None if fraction < 0 else fraction)
            self.world.node_crashed(self)
            return
        self.journal.commit()
        self.commit_due = False
        actions, self.waiting = self.waiting, []
        for action in actions:
            if epoch != self.epoch:
                return
            action()

    # --- DHCP -----------------------------------------------------------------------------

    def receive_dhcp(self, data: bytes, src_ip: IPv4Address, unicast: bool) -> None:
        if not self.up or self.server is None:
            return
        try:
            packet = dhcp.decode(data)
        except MalformedPacket:
            return
        meta = RxMeta("eth0", (self.iface,), src_ip, 68, unicast)
        now = self.now()
        if self.hook is not None and self.engine is not None:
            before = self.engine.machine.state
            self.hook.service(now=now, mono=self.mono())
            if self.engine.machine.state is not before:
                self.service()
        out = self.server.handle(packet, meta, now)
        if out.ping is not None:
            # ping-check: the simulated network has no squatters, so every ping times out,
            # at once (the simulated clients need no second of delay to find bugs).
            more = self.server.ping_timed_out(out.ping.address, now=now)
            out.log += more.log
            out.writes += more.writes
            out.reply = more.reply
        self._say(out.log)
        for lease in out.writes:
            self.journal.append(lease)
        reply = out.reply
        if reply is not None:
            ends: int | None = None
            if reply.packet.message_type == 5:
                acked = self.server.db.by_addr.get(int(reply.packet.yiaddr))
                ends = None if acked is None else acked.ends
            self.after_durable(partial(self._send_reply, self.epoch, reply, ends))
        self.after_durable(self.service)

    def _send_reply(self, epoch: int, reply: Reply, ends: int | None) -> None:
        if epoch == self.epoch and self.up:
            self.world.reply_to_client(self, reply, ends, self.journal.commits)

    def _tick(self, epoch: int) -> None:
        if epoch != self.epoch or not self.up or self.server is None:
            return
        changed = self.server.tick(self.now())
        for lease in changed:
            self.journal.append(lease)
        if changed:
            self.after_durable(self.service)
        self.world.at(self.world.t + TICK_MS, partial(self._tick, epoch))

    # --- failover -------------------------------------------------------------------------

    def service(self) -> None:
        """Persist what the engine wants, then (after the commit) send and maybe close."""
        engine = self.engine
        if not self.up or engine is None:
            return
        self._apd()
        leases, states = engine.take_writes()
        for lease in leases:
            self.journal.append(lease)
        for rec in states:
            self.journal.append_state(rec)
        data = engine.data_to_send()
        conn = self.conn
        reason = None
        if conn is not None and self.doomed is not conn:
            reason = engine.close_reason()
            if reason is not None:
                self.doomed = conn
        if data or reason is not None or leases or states:
            self.after_durable(partial(self._deliver, self.epoch, conn, data, reason))
        self._say(engine.take_log())
        self._arm_timer()

    def _deliver(self, epoch: int, conn: Conn | None, data: bytes, reason: str | None) -> None:
        if epoch != self.epoch or conn is None or conn is not self.conn:
            return
        if data:
            self.world.link_send(self, conn, data)
        if reason is not None:
            self.world.note(f"{self.name}: closes the link: {reason}")
            self.link_lost(conn)
            self.world.link_gone(self, conn)

    def link_made(self, conn: Conn) -> None:
        if self.engine is None:
            return
        self.conn = conn
        self.engine.connection_made(self.now())
        self.service()

    def link_lost(self, conn: Conn) -> None:
        if conn is not self.conn or self.engine is None:
            return
        self.conn = None
        self.engine.connection_lost(self.now())
        self.service()
        self.world.want_link()

    def link_data(self, conn: Conn, data: bytes) -> None:
        if conn is not self.conn or self.engine is None or self.doomed is conn:
            return
        self.engine.receive_data(data, self.now())
        self.service()

    def terminate(self, on_exit: Callable[[bool], None]) -> None:
        """SIGTERM, as tandem.io.runtime handles it: the engine hands over (at most
        ``HANDOVER_MS``), the journal is made durable, then ``on_exit(handed_over)``."""
        engine = self.engine
        assert engine is not None
        self.stopping = True
        began = engine.shutdown(self.now())
        self.service()
        self._await_handover(self.epoch, self.world.t + HANDOVER_MS, began, on_exit)

    def _await_handover(
        self, epoch: int, deadline: int, began: bool, on_exit: Callable[[bool], None]
    ) -> None:
        engine = self.engine
        if epoch != self.epoch or engine is None:
            return  # it crashed meanwhile
        if not engine.handover_done() and self.world.t < deadline:
            again = partial(self._await_handover, epoch, deadline, began, on_exit)
            self.world.at(self.world.t + 10, again)
            return
        done = began and engine.handed_over()
        self.after_durable(lambda: on_exit(done) if epoch == self.epoch else None)

    def partner_down(self) -> None:
        if self.engine is not None and not self.stopping:
            if self.hook is not None:
                self.hook.operator_partner_down(now=self.now(), mono=self.mono())
            else:
                self.engine.partner_down(self.now())
            self.service()

    # --- auto-partner-down: what io/probe.py and io/witness_client.py do ------------------

    def _apd(self) -> None:
        hook, engine = self.hook, self.engine
        if hook is None or engine is None:
            return
        now, mono = self.now(), self.mono()
        hook.service(now=now, mono=mono)
        rule = hook.rule
        if rule.probe_due(mono):
            rule.probe_sent(mono)
            self.world.apd_probe(self)
        if rule.ask_due(mono):
            rule.witness_asked(mono)
            want = rule.want_partner_down(mono)
            req = WitnessRequest(engine.name, engine.role, want, engine.machine.mclt)
            self.world.apd_ask(self, req)
        hook.service(now=now, mono=mono)
        at = hook.next_deadline(mono)
        if at is not None and at != self.apd_at:
            self.apd_at = at
            t = -(-at * 1_000_000 // (1_000_000 + self.rate_ppm))
            self.world.at(max(t, self.world.t + 1), partial(self._apd_fire, self.epoch, at))

    def _apd_fire(self, epoch: int, at: int) -> None:
        if epoch != self.epoch or not self.up or at != self.apd_at:
            return
        self.apd_at = None
        self.service()

    def partner_probed(self) -> None:
        if self.hook is not None and self.up:
            self.hook.rule.partner_probed(self.mono())
            self.service()

    def probe_answered(self, sent: int) -> None:
        if self.hook is not None and self.up:
            self.hook.rule.probe_answered(sent, self.mono())
            self.service()

    def witness_answered(self, sent: int, ticket: int, grant: int, partner: bool) -> None:
        if self.hook is not None and self.up:
            rule = self.hook.rule
            rule.witness_answer(
                sent, self.mono(), ticket_ms=ticket, grant_ms=grant, partner_grant=partner
            )
            self.service()

    def fenced(self) -> str | None:
        return None if self.engine is None else self.engine.machine.fence

    def _arm_timer(self) -> None:
        engine = self.engine
        if engine is None:
            return
        at = engine.get_timer()
        if at is None or at == self.timer_at:
            return
        self.timer_at = at
        when = max(self.ms_for(at), self.world.t + 1)
        if self.last_fired is not None and at <= self.last_fired:
            when = max(when, self.world.t + 50)  # an engine asking for "now" again: no spin
        self.world.at(when, partial(self._fire, self.epoch, at))

    def _fire(self, epoch: int, at: int) -> None:
        if epoch != self.epoch or self.engine is None or at != self.timer_at:
            return
        self.timer_at = None
        now = self.now()
        self.last_fired = now
        self.engine.handle_timer(now)
        self.service()

    def _say(self, lines: list[str]) -> None:
        for line in lines:
            if " I move from " in line:
                self.world.entered(self, line.rsplit(" ", 1)[-1])
            if self.world.verbose:
                self.world.note(f"{self.name}: {line}")

    # --- what the checker reads -------------------------------------------------------------

    def state(self) -> str:
        if self.engine is None:
            return "down"
        return self.engine.machine.state.keyword

    def partner_state(self) -> str:
        if self.engine is None:
            return "down"
        return str(self.engine.status()["partner_state"])
