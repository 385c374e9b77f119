"""Tandem's auto-partner-down rule (core/failover/autopd.py) and its engine hook."""

from __future__ import annotations

from fokit import T0, dora, fresh_pair, mac, seed_conf

from tandem.core.failover.autopd import (
    FENCE_EARLY_MS,
    AutoPartnerDown,
    AutoPDSettings,
    lengthen,
    rate_margin,
    shorten,
)
from tandem.core.failover.autopd_hook import attach, settings_for

CI = "communications-interrupted"
PD = "partner-down"
SET = AutoPDSettings(n_ms=60_000, mrd_ms=10_000)


def linked(settings: AutoPDSettings = SET, now: int = 0) -> AutoPartnerDown:
    r = AutoPartnerDown(settings, now=now)
    r.synced(now)
    r.set_state("normal", now)
    return r


def test_margins_make_the_askers_view_end_first() -> None:
    """1 % per clock, both ways: the asker's view x 1.01 < the witness's view x 0.99."""
    for ms in (1, 999, 12_000, 60_000, 3_600_000):
        assert rate_margin(ms) >= ms * 0.02
        assert shorten(ms) * 1.01 <= lengthen(ms) * 0.99 + 1e-9
        assert shorten(ms) < ms < lengthen(ms)


def test_effective_n_leaves_room_for_the_chain() -> None:
    s = AutoPDSettings(n_ms=5_000, mrd_ms=10_000)
    r = AutoPartnerDown(s, now=0)
    assert r.n == s.n_eff_ms > 5_000
    assert r.chain > s.staleness_ms + 2 * s.probe_every_ms
    big = AutoPDSettings(n_ms=600_000, mrd_ms=10_000)
    assert big.n_eff_ms == 600_000


def test_fenced_after_a_restart_until_synced() -> None:
    r = AutoPartnerDown(SET, now=0)
    r.set_state(CI, 0)
    assert r.fence(0) is not None  # nothing known of what the partner did meanwhile
    r.probe_answered(0, 10)  # answers do not revive a broken chain
    assert r.fence(20) is not None
    r.synced(30)
    assert r.fence(31) is None


def test_answered_probes_keep_serving_and_block_partner_down() -> None:
    """The firewall case: link down, probes answered: serve, never PARTNER-DOWN."""
    r = linked()
    r.link_down(1_000)
    r.set_state(CI, 1_000)
    t = 1_000
    while t < 1_000 + 10 * r.n:
        assert r.probe_due(t) or t < r.next_probe
        if r.probe_due(t):
            r.probe_sent(t)
            r.probe_answered(t, t + 5)
            r.partner_probed(t + 7)
        assert r.fence(t) is None, t
        assert not r.partner_down_due(t) and not r.want_partner_down(t)
        t += 500


def test_silent_partner_fences_before_partner_down_and_then_goes_down() -> None:
    r = linked()
    r.link_down(1_000)
    r.set_state(CI, 1_000)
    # the chain from the link runs out before N after the link went down
    lapse = r.covered_until
    assert lapse < 1_000 + r.n
    assert r.fence(lapse - FENCE_EARLY_MS - 1) is None
    assert r.fence(lapse - FENCE_EARLY_MS) is not None
    assert not r.partner_down_due(1_000 + r.n - 1)
    assert r.partner_down_due(1_000 + r.n)  # no witness: N of silence is enough
    r.set_state(PD, 1_000 + r.n)
    assert r.fence(1_000 + r.n) is None


def test_a_gap_in_the_chain_is_not_bridged_by_later_probes() -> None:
    r = linked()
    r.link_down(1_000)
    r.set_state(CI, 1_000)
    late = r.covered_until + 1
    r.probe_answered(late, late + 3)  # sent after the chain ran out
    assert r.fence(late + 4) is not None
    # but a probe sent while the chain held, answered late, does extend it
    r2 = linked()
    r2.link_down(1_000)
    r2.set_state(CI, 1_000)
    inside = r2.covered_until - 1
    r2.probe_answered(inside, r2.covered_until + 3_000)
    assert r2.fence(r2.covered_until - 10_000) is None


def test_witness_grant_needed_and_renewed() -> None:
    s = AutoPDSettings(n_ms=60_000, mrd_ms=10_000, witness=True)
    r = linked(s)
    r.link_down(0)
    r.set_state(CI, 0)
    t = r.n
    assert r.want_partner_down(t) and not r.partner_down_due(t)
    r.witness_answer(t, t + 20, ticket_ms=12_000, grant_ms=0, partner_grant=False)
    assert not r.partner_down_due(t + 20)
    r.witness_answer(t + 100, t + 120, ticket_ms=12_000, grant_ms=12_000, partner_grant=False)
    assert r.partner_down_due(t + 120)
    r.set_state(PD, t + 120)
    assert r.fence(t + 121) is None
    end = t + 100 + shorten(12_000)
    assert r.fence(end - FENCE_EARLY_MS - 1) is None
    assert r.fence(end - FENCE_EARLY_MS) == "no partner-down grant from the witness"
    assert r.counts["grants"] == 1


def test_ticket_covers_only_while_the_partner_holds_no_grant() -> None:
    s = AutoPDSettings(n_ms=60_000, mrd_ms=10_000, witness=True)
    r = linked(s)
    r.link_down(0)
    r.set_state(CI, 0)
    t = 0
    while t < 5 * r.n:  # tickets every 4 s keep us serving with no probe answered
        r.witness_answer(t, t + 10, ticket_ms=12_000, grant_ms=0, partner_grant=False)
        assert r.fence(t + 10) is None
        t += 4_000
    r.witness_answer(t, t + 10, ticket_ms=12_000, grant_ms=0, partner_grant=True)
    lapse = r.covered_until
    assert r.fence(lapse) is not None
    r.witness_answer(lapse + 1, lapse + 10, ticket_ms=12_000, grant_ms=0, partner_grant=False)
    assert r.fence(lapse + 11) is not None  # the gap stays: only a sync restores the chain


def test_operator_partner_down_overrides_the_witness() -> None:
    s = AutoPDSettings(n_ms=60_000, mrd_ms=10_000, witness=True)
    r = linked(s)
    r.link_down(0)
    r.set_state(PD, 0)
    assert r.fence(1) is not None
    r.operator_partner_down()
    assert r.fence(2) is None
    r.set_state("potential-conflict", 3)
    r.set_state(PD, 4)
    assert r.fence(5) is not None  # the override ends when the state leaves PARTNER-DOWN


def test_status_and_deadlines() -> None:
    r = linked()
    r.link_down(0)
    r.set_state(CI, 0)
    st = r.status(1)
    assert st["rule"] == "tandem" and st["linked"] is False and st["fenced"] is None
    nd = r.next_deadline(1)
    assert nd is not None and nd > 1
    r.probe_sent(1)
    assert r.next_deadline(2) == r.next_probe


# --- the engine hook on two real engines ------------------------------------------------


def _ms(now: int) -> int:
    return (now - T0) * 1000


def test_hook_link_cut_with_answered_probes_never_partner_down() -> None:
    extra = "        auto-partner-down 30;"
    p, s, pair = fresh_pair(
        primary=seed_conf("primary", extra=extra), secondary=seed_conf("secondary", extra=extra)
    )
    hooks = []
    for node in (p, s):
        settings = settings_for(node.engine, witness=False)
        assert settings is not None
        hooks.append(attach(node.engine, settings, mono=_ms(pair.now)))
    pair.connect()
    for h in hooks:
        h.service(now=pair.now, mono=_ms(pair.now))
    assert (p.state(), s.state()) == ("normal", "normal")
    pair.disconnect()
    for _ in range(600):  # ten minutes, probes answered both ways every 2 s
        pair.advance(1)
        mono = _ms(pair.now)
        for h in hooks:
            h.service(now=pair.now, mono=mono)
            if h.rule.probe_due(mono):
                h.rule.probe_sent(mono)
                h.rule.probe_answered(mono, mono + 2)
                (hooks[1] if h is hooks[0] else hooks[0]).rule.partner_probed(mono + 1)
            h.service(now=pair.now, mono=mono)
    assert (p.state(), s.state()) == (CI, CI)
    assert p.engine.machine.fence is None and s.engine.machine.fence is None
    _off, ack = dora(s, mac(1), pair.now)
    assert ack is not None and ack.reply is not None  # the secondary still serves


def test_hook_dead_partner_fence_then_partner_down() -> None:
    extra = "        auto-partner-down 30;"
    _p, s, pair = fresh_pair(secondary=seed_conf("secondary", extra=extra))
    settings = settings_for(s.engine, witness=False)
    assert settings is not None
    hook = attach(s.engine, settings, mono=_ms(pair.now))
    pair.connect()
    hook.service(now=pair.now, mono=_ms(pair.now))
    pair.disconnect()  # the primary is gone: nothing answers
    down_at = pair.now
    fenced_seen = False
    while s.state() == CI:
        pair.advance(1)
        hook.service(now=pair.now, mono=_ms(pair.now))
        if s.engine.machine.fence is not None:
            fenced_seen = True
            off, _ = dora(s, mac(2), pair.now)
            assert off.reply is None and "fenced" in " ".join(off.log)
        assert pair.now - down_at < 200
    assert fenced_seen and s.state() == PD
    assert (pair.now - down_at) * 1000 >= hook.rule.n
    assert s.engine.machine.fence is None
    off, ack = dora(s, mac(3), pair.now)
    assert ack is not None and ack.reply is not None


def test_without_the_hook_the_engine_keeps_dhcpds_timer() -> None:
    extra = "        auto-partner-down 30;"
    _p, s, pair = fresh_pair(secondary=seed_conf("secondary", extra=extra))
    pair.connect()
    pair.disconnect()
    pair.advance(31)
    assert s.state() == PD  # blind: the probes or the witness are never asked
