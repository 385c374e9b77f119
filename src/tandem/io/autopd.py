"""auto-partner-down's I/O, per relationship with ``auto-partner-down N;``: probes and witness
requests while the failover link is down, their answers into the core's rule, the rule's
decisions into the engine, and the log lines and status an admin reads.

The rule itself (when to probe and ask, when PARTNER-DOWN is allowed, when this server is
fenced) is ``core/failover/autopd.py``, bound to the engine by ``core/failover/autopd_hook.py``;
the witness's table is ``core/witness.py``. This module only moves facts, with monotonic
milliseconds for the rule and wall seconds for the engine:

* the link calls ``engine_called`` after every engine input (its ``service``, which also runs
  after each DHCP batch that wrote), and a timer here fires at the rule's next deadline: both
  run ``hook.service``, which moves COMMUNICATIONS-INTERRUPTED -> PARTNER-DOWN or sets the
  fence; the link then persists and sends what that caused, as for every engine input;
* on the timer, what is due goes out: a probe (``io/probe.py``), a witness request
  (``io/witness_client.py``, with the relationship's MCLT); their answers go to the rule with
  the time their request left;
* DHCPINFORMs from the partner's address (its probes) are counted by the core
  (``ServerContext.probed_by``) and reported as ``partner_probed``: an answered probe is
  evidence only because its receiver counts it as hearing from the prober.

Relationships without the statement get no driver and pay nothing.

Log lines, once per change::

    failover peer NAME: partner alive, failover link down
    failover peer NAME: partner-down granted by witness ADDR:PORT for 12 s
    failover peer NAME: fenced: no valid witness ticket and no probe answer (answering no client)
    failover peer NAME: no longer fenced
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from ipaddress import IPv4Address

from tandem.core.failover.autopd_hook import AutoPDHook, attach, settings_for
from tandem.core.failover.engine import FailoverEngine
from tandem.core.server import DhcpServer
from tandem.io.failover_link import FailoverLink
from tandem.io.failover_listen import FailoverLinks
from tandem.io.probe import Prober
from tandem.io.witness_client import WitnessClient, monotonic_ms
from tandem.wire.witness import WitnessAnswer

log = logging.getLogger("tandem")

MAX_WAIT = 1.0  # seconds: the timer fires at least this often (status, log lines)

Emit = Callable[[list[str]], None]


class AutoPdDriver:
    """One relationship's probes and witness requests around its engine's rule."""

    def __init__(
        self,
        link: FailoverLink,
        engine: FailoverEngine,
        hook: AutoPDHook,
        *,
        prober: Prober,
        witness: WitnessClient | None,
        emit: Emit,
        server: Callable[[], DhcpServer],
        clock: Callable[[], int] = monotonic_ms,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.link = link
        self.engine = engine
        self.hook = hook
        self.rule = hook.rule
        self.name = link.name
        self.role = link.peer.role
        self.seconds = link.peer.auto_partner_down
        self.prober = prober
        self.witness = witness
        self.emit = emit
        self.server = server
        self.clock = clock
        self.wall = wall
        self.partner = int(link.peer.peer_address)
        self._probed_seen = 0
        self._summary = "failover link up"
        self._last_said: dict[str, str] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        prober.on_answer = self._probe_answered

    # --- the loop -------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.prober.start(loop)
        self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.prober.close()

    def _arm(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if self._timer is not None:
            self._timer.cancel()
        now = self.clock()
        deadline = self.hook.next_deadline(now)
        wait = MAX_WAIT if deadline is None else min(MAX_WAIT, max(0, deadline - now) / 1000)
        self._timer = loop.call_later(wait, self._fired)

    def _fired(self) -> None:
        self._timer = None
        try:
            self.tick()
        except Exception:  # a bug here must not stop the server's loop
            log.exception("failover peer %s: auto-partner-down", self.name)
        self._arm()

    def _service(self) -> None:
        engine = self.link.engine
        if engine is not self.engine and isinstance(engine, FailoverEngine):
            # A reload replaced the relationship's engine (its peer block changed): the rule
            # goes with it, starting afresh (fenced until the partner's STATE is seen again).
            settings = settings_for(engine, witness=self.witness is not None)
            if settings is not None:
                self.engine = engine
                self.hook = attach(engine, settings, mono=self.clock())
                self.rule = self.hook.rule
        self.hook.service(now=int(self.wall()), mono=self.clock())

    def engine_called(self) -> None:
        """The link is about to take the engine's writes (after any engine input)."""
        self._service()

    def operator_partner_down(self) -> None:
        self.hook.operator_partner_down(now=int(self.wall()), mono=self.clock())

    def tick(self) -> None:
        rule = self.rule
        self._count_partner_probes()
        now = self.clock()
        if rule.probe_due(now):
            self.prober.send()  # a send that fails is counted there, and is a lost probe
            rule.probe_sent(now)
        if self.witness is not None and rule.ask_due(now):
            want = rule.want_partner_down(now)
            mclt = self.engine.machine.mclt
            self.witness.ask(self.name, self.role, want, self._witness_answered, mclt)
            rule.witness_asked(now)
        self.link.service()  # hook.service, then the writes and bytes it caused
        self._log_changes()

    def _count_partner_probes(self) -> None:
        ctx = self.server().ctx
        if self.partner not in ctx.probe_sources:
            ctx.probe_sources = ctx.probe_sources | {self.partner}  # after a reload too
        seen = ctx.probed_by.get(self.partner, 0)
        if seen != self._probed_seen:
            if seen > self._probed_seen:
                self.rule.partner_probed(self.clock())
            self._probed_seen = seen

    def _probe_answered(self, sent: int, now: int) -> None:
        self.rule.probe_answered(sent, now)
        self.link.service()
        self._log_changes()

    def _witness_answered(self, answer: WitnessAnswer, sent_ms: int) -> None:
        self.rule.witness_answer(
            sent_ms,
            self.clock(),
            ticket_ms=answer.ticket_ms,
            grant_ms=answer.grant_ms,
            partner_grant=answer.partner_granted,
        )
        if not answer.grant_ms:
            self._last_said.pop("grant", None)  # a later grant is logged again
        elif self.witness is not None:
            host, port = self.witness.address
            self._say(
                f"partner-down granted by witness {host}:{port} for {answer.grant_ms / 1000:g} s",
                key="grant",
            )
        self.link.service()
        self._log_changes()

    # --- what an admin reads ----------------------------------------------------------------

    def summary(self, st: dict[str, object]) -> str:
        fenced = st.get("fenced")
        if isinstance(fenced, str):
            return f"fenced: {fenced} (answering no client)"
        if st.get("linked"):
            return "failover link up"
        if st.get("partner_alive"):
            return "partner alive, failover link down"
        if self.engine.machine.state.keyword == "partner-down":
            if st.get("grant_ms_left"):
                return "partner-down granted by witness"
            return "partner-down"
        return "failover link down, partner silent"

    def _log_changes(self) -> None:
        summary = self.summary(self.hook.status(self.clock()))
        if summary == self._summary:
            return
        before, self._summary = self._summary, summary
        if summary.startswith(("partner alive", "fenced")):
            self._say(summary)
        elif before.startswith("fenced"):
            self._say("no longer fenced")

    def _say(self, text: str, key: str | None = None) -> None:
        said = self._last_said
        if key is not None:
            if said.get(key) == text:
                return
            said[key] = text
        self.emit([f"failover peer {self.name}: {text}"])

    def status(self) -> dict[str, object]:
        st = self.hook.status(self.clock())
        witness: dict[str, object] | None = None
        if self.witness is not None:
            asks, answers = st.get("witness_asks"), st.get("witness_answers")
            witness = {
                **self.witness.status(),
                "sent": asks,
                "answered": answers,
                "granted": bool(st.get("grant_ms_left")),
                "ticket_ms_left": st.get("ticket_ms_left"),
                "grant_ms_left": st.get("grant_ms_left"),
                "partner_holds_grant": st.get("partner_holds_grant"),
            }
        return {
            "seconds": self.seconds,
            "effective_ms": st.get("n_ms"),
            "summary": self.summary(st),
            "link_down": not st.get("linked"),
            "partner_alive": bool(st.get("partner_alive")),
            "fenced": isinstance(st.get("fenced"), str),
            "fence_reason": st.get("fenced"),
            "probe": {**self.prober.status(), "partner_probes": st.get("partner_probes")},
            "witness": witness,
            "rule": st,
        }


class AutoPd:
    """Every relationship's driver, and the one witness socket they share."""

    def __init__(self, drivers: list[AutoPdDriver], witness: WitnessClient | None) -> None:
        self.drivers = drivers
        self.witness = witness

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.witness is not None:
            await self.witness.start(loop)
        for driver in self.drivers:
            driver.start(loop)

    def close(self) -> None:
        for driver in self.drivers:
            driver.close()
        if self.witness is not None:
            self.witness.close()


def build(
    server: Callable[[], DhcpServer],
    links: FailoverLinks | None,
    *,
    probe_addresses: dict[str | None, str],
    witness: tuple[str, int] | None,
    secret: bytes | None,
    server_port: int,
    emit: Emit,
) -> AutoPd | None:
    """Drivers for the relationships with ``auto-partner-down N;`` (None: none has it).

    Opens the probe sockets now (port 68 needs root; the runtime calls this before the drop).
    """
    if links is None:
        return None
    client = WitnessClient(witness, secret) if witness is not None else None
    drivers = []
    for link in links.links.values():
        engine = link.engine
        if not isinstance(engine, FailoverEngine):
            continue
        settings = settings_for(engine, witness=client is not None)
        if settings is None:
            continue
        hook = attach(engine, settings, mono=monotonic_ms())
        peer = link.peer
        target = IPv4Address(
            probe_addresses.get(peer.name) or probe_addresses.get(None) or peer.peer_address
        )
        prober = Prober(target, lambda _sent, _now: None, server_port=server_port)
        prober.open()
        _warn_not_authoritative(server(), peer.name, prober, emit)
        driver = AutoPdDriver(
            link, engine, hook, prober=prober, witness=client, emit=emit, server=server
        )
        link.autopd = driver
        drivers.append(driver)
        effective = settings.n_eff_ms
        if effective > settings.n_ms:
            emit(
                [
                    f"failover peer {peer.name}: auto-partner-down {peer.auto_partner_down} "
                    f"acts after {effective / 1000:g} s (N must exceed max-response-delay "
                    "plus the margins; docs/auto-partner-down-io.md)"
                ]
            )
    if not drivers:
        return None
    if client is None:
        emit(
            [
                f"failover peer {d.name}: auto-partner-down {d.seconds} without a witness: "
                "covers a dead partner and a cut failover link, not peers cut from each "
                "other on every path (docs/auto-partner-down-io.md)"
                for d in drivers
            ]
        )
    return AutoPd(drivers, client)


def _warn_not_authoritative(server: DhcpServer, name: str, prober: Prober, emit: Emit) -> None:
    """The partner answers probes only where it is authoritative (dhcpd's DHCPINFORM rule);
    a one-config pair shares the statement, so our own subnet tells."""
    source = prober.source
    subnet = server.topo.subnet_of(source) if source is not None else None
    if subnet is not None and not subnet.authoritative:
        emit(
            [
                f"failover peer {name}: the subnet of {source} is not authoritative: the "
                "partner will not answer auto-partner-down's probes (DHCPINFORM); write "
                "authoritative; in it"
            ]
        )


__all__ = ["AutoPd", "AutoPdDriver", "build"]
