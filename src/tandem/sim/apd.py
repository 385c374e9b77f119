"""Auto-partner-down in the simulated world: the witness process, probes, the extra links.

Links (each may be partitioned by a ``part`` fault, alone or with others): the failover link
(``failover``, a partition of it is a ``cut``), each server's client side (``client:NAME``:
its DHCP traffic with the clients, and its probes) and each server's link to the witness
(``witness:NAME``). A probe (a DHCPINFORM to the partner's DHCP service) reaches the partner
only when neither server's client side is partitioned; the partner's process answers it
whatever its state (it costs no lease), and counts it as hearing from its partner. Probes and
witness datagrams are lost while a ``loss`` fault says so, like client datagrams, and take
1-50 ms each way. The witness runs ``core/witness.py`` with its record on its own disk
(written before an answer that changed it leaves: the fsync), crashes and restarts
(``wcrash``), and reads its own monotonic clock, whose rate, like each server's, may be off
by up to 0.9 % (``rate`` faults; the design assumes 1 %). The servers' wall clocks keep only
their offsets: the lease times and the failover protocol's MCLT arithmetic are dhcpd's and
assume wall clocks that run at the right rate.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Protocol

from tandem.core.witness import Witness, WitnessRequest

if TYPE_CHECKING:
    from tandem.sim.node import SimNode

__all__ = ["ApdNet", "ApdWorld", "SimWitness"]


class ApdWorld(Protocol):
    t: int
    nodes: tuple[SimNode, SimNode]

    def at(self, t: int, action: Callable[[], None]) -> None: ...

    def note(self, text: str) -> None: ...

    def link_cut(self, name: str) -> bool: ...

    def loss_now(self) -> float: ...


class SimWitness:
    """The witness process: the pure table, its durable record, a (rate-skewed) clock."""

    def __init__(self, world: ApdWorld, rate_ppm: int = 0) -> None:
        self.world = world
        self.rate_ppm = rate_ppm
        self.disk: str | None = None  # the record file (JSON), durable once written
        self.core: Witness | None = Witness(now=self.mono())
        self.restarts = 0
        self.log: list[str] = []

    def mono(self) -> int:
        return self.world.t * (1_000_000 + self.rate_ppm) // 1_000_000

    @property
    def up(self) -> bool:
        return self.core is not None

    def crash(self) -> None:
        self.core = None
        self.world.note("witness: crash")

    def restart(self) -> None:
        if self.core is not None:
            return
        record = None if self.disk is None else json.loads(self.disk)
        self.core = Witness(now=self.mono(), record=record)
        self.restarts += 1
        self.world.note(f"witness: restart (record {self.disk})")

    def handle(self, req: WitnessRequest) -> tuple[int, int, bool] | None:
        if self.core is None:
            return None
        ans, changed = self.core.handle(req, now=self.mono())
        if changed:
            self.disk = json.dumps(self.core.to_record(), sort_keys=True)
        if ans.grant_ms and ans.reason == "granted":
            self.world.note(f"witness: grants partner-down to {req.role}")
        return ans.ticket_ms, ans.grant_ms, ans.partner_grant


class ApdNet:
    """Probes between the servers and requests to the witness, over the simulated links."""

    def __init__(self, world: ApdWorld, witness: SimWitness | None, rng: random.Random) -> None:
        self.world = world
        self.rng = rng  # its own stream: the rest of the network draws as without it
        self.witness = witness
        self.stats = {"probes": 0, "answers": 0, "asks": 0, "grants": 0}

    def witness_crash(self, end: int, world: ApdWorld) -> None:
        w = self.witness
        if w is None or not w.up or getattr(world, "faults_over", False):
            return
        w.crash()
        world.at(max(end, world.t + 1), w.restart)

    def _delay(self) -> int:
        return 1 + int(self.rng.random() * 50)

    def lossy(self) -> bool:
        return self.rng.random() < self.world.loss_now()

    def _probe_path(self) -> bool:
        w = self.world
        return not (w.link_cut("client:primary") or w.link_cut("client:secondary"))

    def _other(self, node: SimNode) -> SimNode:
        p, s = self.world.nodes
        return s if node is p else p

    def probe(self, src: SimNode) -> None:
        """``src`` sends a probe now; the answer (if any) comes back through the network."""
        w = self.world
        self.stats["probes"] += 1
        sent = src.mono()
        if not self._probe_path() or self.lossy():
            return
        w.at(w.t + self._delay(), partial(self._probe_arrives, src, src.epoch, sent))

    def _probe_arrives(self, src: SimNode, epoch: int, sent: int) -> None:
        dst = self._other(src)
        if not dst.up or not self._probe_path():
            return
        dst.partner_probed()
        if self.lossy():
            return
        self.world.at(self.world.t + self._delay(), partial(self._answer_arrives, src, epoch, sent))

    def _answer_arrives(self, src: SimNode, epoch: int, sent: int) -> None:
        if src.epoch != epoch or not src.up or not self._probe_path():
            return
        self.stats["answers"] += 1
        src.probe_answered(sent)

    def ask(self, src: SimNode, req: WitnessRequest) -> None:
        w = self.world
        self.stats["asks"] += 1
        sent = src.mono()
        link = f"witness:{src.name}"
        if self.witness is None or w.link_cut(link) or self.lossy():
            return
        w.at(w.t + self._delay(), partial(self._ask_arrives, src, src.epoch, sent, req))

    def _ask_arrives(self, src: SimNode, epoch: int, sent: int, req: WitnessRequest) -> None:
        w = self.world
        link = f"witness:{src.name}"
        if self.witness is None or w.link_cut(link):
            return
        got = self.witness.handle(req)
        if got is None or self.lossy():
            return
        w.at(w.t + self._delay(), partial(self._reply_arrives, src, epoch, sent, got, link))

    def _reply_arrives(
        self, src: SimNode, epoch: int, sent: int, got: tuple[int, int, bool], link: str
    ) -> None:
        if src.epoch != epoch or not src.up or self.world.link_cut(link):
            return
        ticket, grant, partner = got
        if grant:
            self.stats["grants"] += 1
        src.witness_answered(sent, ticket, grant, partner)
