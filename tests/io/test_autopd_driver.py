"""io/autopd.py: the driver between the engine hook and the sockets: probes when the rule
says, their answers and the partner's own probes into the rule, witness requests with the
MCLT, the operator's partner-down through the rule, and the status the views read."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "failover"))

from fokit import T0, fresh_pair, seed_conf

from tandem.core.failover.autopd_hook import attach, settings_for
from tandem.io.autopd import AutoPdDriver
from tandem.wire.witness import WitnessAnswer

APD = "auto-partner-down 5;"


class Clock:
    ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


class FakeProber:
    def __init__(self) -> None:
        self.sent = 0
        self.on_answer = None

    def start(self, loop: object) -> None: ...
    def close(self) -> None: ...

    def send(self) -> bool:
        self.sent += 1
        return True

    def status(self) -> dict[str, object]:
        return {"sent": self.sent}


class FakeWitness:
    address = ("192.0.2.60", 5419)

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, bool, int]] = []
        self.callback = None

    def ask(self, rel: str, role: str, want: bool, cb: object, mclt: int = 0) -> int:
        self.asked.append((rel, role, want, mclt))
        self.callback = cb
        return len(self.asked)

    def status(self) -> dict[str, object]:
        return {"address": "192.0.2.60:5419"}


class FakeLink:
    def __init__(self, engine: object, peer: object) -> None:
        self.engine, self.peer = engine, peer
        self.name = peer.name  # type: ignore[attr-defined]
        self.driver: AutoPdDriver | None = None

    def service(self) -> None:
        assert self.driver is not None
        self.driver.engine_called()


def _setup(witness: bool) -> tuple[object, object, object, AutoPdDriver, Clock, FakeProber]:
    _p, s, pair = fresh_pair(T0, seed_conf("primary", extra=APD), seed_conf("secondary", extra=APD))
    pair.connect()
    pair.pump()
    pair.advance(30)
    assert s.state() == "normal"
    clock = Clock()
    settings = settings_for(s.engine, witness=witness)
    assert settings is not None
    hook = attach(s.engine, settings, mono=clock())
    link = FakeLink(s.engine, s.engine.cfg)
    prober = FakeProber()
    driver = AutoPdDriver(
        link,  # type: ignore[arg-type]
        s.engine,
        hook,
        prober=prober,  # type: ignore[arg-type]
        witness=FakeWitness() if witness else None,  # type: ignore[arg-type]
        emit=said.extend,
        server=lambda: s.server,
        clock=clock,
        wall=lambda: float(pair.now),
    )
    link.driver = driver
    hook.rule.synced(clock())
    return s, pair, hook, driver, clock, prober


said: list[str] = []


def test_probes_start_when_the_link_goes_down_and_answers_keep_the_partner_alive() -> None:
    said.clear()
    s, pair, hook, driver, clock, prober = _setup(witness=False)
    driver.tick()
    assert prober.sent == 0  # linked and the partner talks: no probe
    pair.disconnect()  # type: ignore[attr-defined]
    driver.engine_called()
    clock.ms += 100
    driver.tick()
    assert prober.sent == 1
    driver._probe_answered(clock.ms - 100, clock.ms)
    status = driver.status()
    assert status["partner_alive"] is True and status["link_down"] is True
    assert status["summary"] == "partner alive, failover link down"
    assert "failover peer failover-example: partner alive, failover link down" in said
    # The partner's own probes (DHCPINFORMs from its address) are reported to the rule.
    driver._count_partner_probes()
    ctx = s.server.ctx  # type: ignore[attr-defined]
    assert int(s.engine.cfg.peer_address) in ctx.probe_sources  # type: ignore[attr-defined]
    ctx.probed_by[driver.partner] = 3
    driver._count_partner_probes()
    assert hook.rule.counts["partner_probes"] == 1  # type: ignore[attr-defined]


def test_witness_requests_carry_the_mclt_and_a_grant_is_logged() -> None:
    said.clear()
    s, pair, _hook, driver, clock, _prober = _setup(witness=True)
    pair.disconnect()  # type: ignore[attr-defined]
    driver.engine_called()
    driver.tick()
    wit = driver.witness
    assert wit is not None
    assert wit.asked and wit.asked[-1][:2] == ("failover-example", "secondary")  # type: ignore[attr-defined]
    assert wit.asked[-1][3] == s.engine.machine.mclt  # type: ignore[attr-defined]
    answer = WitnessAnswer("failover-example", "secondary", 1, 12_000, 12_000)
    wit.callback(answer, clock.ms)  # type: ignore[attr-defined]
    assert any("partner-down granted by witness 192.0.2.60:5419 for 12 s" in x for x in said)
    witness_view = driver.status()["witness"]
    assert isinstance(witness_view, dict) and witness_view["granted"] is True


def test_operator_partner_down_goes_through_the_rule() -> None:
    s, pair, _hook, driver, _clock, _prober = _setup(witness=True)
    pair.disconnect()  # type: ignore[attr-defined]
    driver.engine_called()
    driver.operator_partner_down()
    assert s.state() == "partner-down"  # type: ignore[attr-defined]
    assert driver.status()["fenced"] is False  # the operator overrides the fence


def test_a_reloaded_engine_gets_the_rule_too() -> None:
    _s, _pair, hook, driver, _clock, _prober = _setup(witness=True)
    _p2, s2, _pair2 = fresh_pair(
        T0, seed_conf("primary", extra=APD), seed_conf("secondary", extra=APD)
    )
    driver.link.engine = s2.engine  # what FailoverLinks.replace does on a reload
    driver.engine_called()
    assert driver.engine is s2.engine and driver.hook is not hook
    assert s2.engine.machine.auto_partner_down == 0  # dhcpd's blind timer is off for it too
