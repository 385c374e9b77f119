"""auto-partner-down's I/O, per relationship with ``auto-partner-down N;``: probes and witness
requests while the failover link is down, their answers into the core's rule, the rule's
decisions into the engine, and the log lines and status an admin reads.

The rule itself (when to probe and ask, when PARTNER-DOWN is allowed, when this server is
fenced) is ``core/failover/autopd.py``; the witness's table is ``core/witness.py``. This module
only moves facts: ``AutoPdDriver.tick`` runs every ``TICK`` seconds on the event loop (never on
the per-packet path), feeds the rule the link's state, sends what is due, and, when the rule
says so, gives the engine its AUTO_PARTNER_DOWN input through the link (persisted, then sent,
as every engine input). Relationships without the statement get no driver and pay nothing.

Log lines, once per change::

    failover peer NAME: partner alive, failover link down
    failover peer NAME: partner-down granted by witness ADDR:PORT for 12 s
    failover peer NAME: fenced: no valid witness ticket and no probe answer (answering no client)
    failover peer NAME: no longer fenced
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from ipaddress import IPv4Address

from tandem.config.model import FailoverPeer
from tandem.core.failover.autopd import AutoPartnerDown
from tandem.core.server import DhcpServer
from tandem.io.failover_link import FailoverLink
from tandem.io.failover_listen import FailoverLinks
from tandem.io.probe import PROBE_INTERVAL, Prober
from tandem.io.witness_client import WitnessClient, monotonic_ms
from tandem.wire.witness import WitnessAnswer

log = logging.getLogger("tandem")

TICK = 0.5  # seconds between two looks at the rule

Emit = Callable[[list[str]], None]


class AutoPdDriver:
    """One relationship's probes and witness requests around its core rule."""

    def __init__(
        self,
        link: FailoverLink,
        rule: AutoPartnerDown,
        prober: Prober,
        witness: WitnessClient | None,
        emit: Emit,
        *,
        clock: Callable[[], int] = monotonic_ms,
    ) -> None:
        self.link = link
        self.name = link.name
        self.role = link.peer.role
        self.seconds = link.peer.auto_partner_down
        self.rule = rule
        self.prober = prober
        self.witness = witness
        self.emit = emit
        self.clock = clock
        self.witness_sent = 0
        self.witness_answered = 0
        self._summary = "failover link up"
        self._last_said: dict[str, str] = {}
        self._next_probe = 0
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        prober.on_answer = self._probe_answered

    # --- the loop -------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.prober.start(loop)
        self._timer = loop.call_later(TICK, self._tick)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.prober.close()

    def _tick(self) -> None:
        try:
            self.tick()
        except Exception:  # a bug here must not stop the server's loop
            log.exception("failover peer %s: auto-partner-down", self.name)
        if self._loop is not None and not self._loop.is_closed():
            self._timer = self._loop.call_later(TICK, self._tick)

    def link_up(self) -> bool:
        status = self.link.engine.status()
        return status.get("my_state") not in ("communications-interrupted", "partner-down")

    def tick(self) -> None:
        now = self.clock()
        rule = self.rule
        rule.link_state(up=self.link_up(), now=now)
        if rule.probing(now=now) and now >= self._next_probe:
            self._next_probe = now + int(PROBE_INTERVAL * 1000)
            self.prober.send()
        if self.witness is not None and rule.witness_due(now=now):
            want = rule.want_partner_down(now=now)
            if self.witness.ask(self.name, self.role, want, self._witness_answered) is not None:
                self.witness_sent += 1
                rule.witness_asked(now=now)
        if rule.go_partner_down(now=now):
            self.link.auto_partner_down()
        self._log_changes(now)

    def _probe_answered(self, _wall: int) -> None:
        self.rule.probe_answered(now=self.clock())

    def _witness_answered(self, answer: WitnessAnswer, sent_ms: int) -> None:
        self.witness_answered += 1
        now = self.clock()
        self.rule.witness_answer(
            ticket_ms=answer.ticket_ms,
            grant_ms=answer.grant_ms,
            hold_ms=answer.hold_ms,
            partner_alive=answer.partner_alive,
            partner_granted=answer.partner_granted,
            sent=sent_ms,
            now=now,
        )
        if not answer.grant_ms:
            self._last_said.pop("grant", None)  # a later grant is logged again
        elif self.witness is not None:
            host, port = self.witness.address
            self._say(
                f"partner-down granted by witness {host}:{port} for {answer.grant_ms / 1000:g} s",
                key="grant",
            )

    # --- what an admin reads ----------------------------------------------------------------

    def summary(self, now: int) -> str:
        rule = self.rule
        if rule.fenced(now=now):
            return f"fenced: {rule.fence_reason(now=now)} (answering no client)"
        if self.link_up():
            return "failover link up"
        if rule.partner_alive(now=now):
            return "partner alive, failover link down"
        if rule.granted(now=now):
            return "partner-down granted by witness"
        return "failover link down, partner silent"

    def _log_changes(self, now: int) -> None:
        summary = self.summary(now)
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
        now = self.clock()
        rule = self.rule
        witness: dict[str, object] | None = None
        if self.witness is not None:
            witness = {
                **self.witness.status(),
                "sent": self.witness_sent,
                "answered": self.witness_answered,
                "granted": rule.granted(now=now),
            }
        return {
            "seconds": self.seconds,
            "summary": self.summary(now),
            "link_down": not self.link_up(),
            "partner_alive": rule.partner_alive(now=now),
            "fenced": rule.fenced(now=now),
            "probe": self.prober.status(),
            "witness": witness,
            "rule": rule.status(now=now),
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
    server: DhcpServer,
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
    chosen = [link for link in links.links.values() if link.peer.auto_partner_down > 0]
    if not chosen:
        return None
    client = WitnessClient(witness, secret) if witness is not None else None
    drivers = []
    for link in chosen:
        peer = link.peer
        target = IPv4Address(
            probe_addresses.get(peer.name) or probe_addresses.get(None) or peer.peer_address
        )
        prober = Prober(target, lambda _now: None, server_port=server_port)
        prober.open()
        _warn_not_authoritative(server, peer, prober, emit)
        rule = new_rule(peer, witness=client is not None, now=monotonic_ms())
        driver = AutoPdDriver(link, rule, prober, client, emit)
        link.autopd = driver
        drivers.append(driver)
    if client is None:
        emit(
            [
                f"failover peer {d.name}: auto-partner-down {d.seconds} without a witness: "
                "covers a dead partner and a cut failover link, not peers cut from each "
                "other on every path (docs/auto-partner-down.md)"
                for d in drivers
            ]
        )
    return AutoPd(drivers, client)


def new_rule(peer: FailoverPeer, *, witness: bool, now: int) -> AutoPartnerDown:
    return AutoPartnerDown(peer.auto_partner_down, witness=witness, now=now)


def _warn_not_authoritative(
    server: DhcpServer, peer: FailoverPeer, prober: Prober, emit: Emit
) -> None:
    """The partner answers probes only where it is authoritative (dhcpd's DHCPINFORM rule);
    a one-config pair shares the statement, so our own subnet tells."""
    source = prober.source
    subnet = server.topo.subnet_of(source) if source is not None else None
    if subnet is not None and not subnet.authoritative:
        emit(
            [
                f"failover peer {peer.name}: the subnet of {source} is not authoritative: the "
                "partner will not answer auto-partner-down's probes (DHCPINFORM); write "
                "authoritative; in it"
            ]
        )


__all__ = ["TICK", "AutoPd", "AutoPdDriver", "build"]
