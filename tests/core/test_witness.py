"""The witness's table (core/witness.py): tickets, one grant, cool-down, restarts."""

from __future__ import annotations

import json

import pytest

from tandem.core.failover.autopd import lengthen
from tandem.core.witness import RecordError, Witness, WitnessRequest

REL = "dhcp-failover"
T = 12_000
MCLT = 30


def ask(w: Witness, role: str, want: bool, now: int) -> tuple[int, bool, str]:
    ans, _changed = w.handle(WitnessRequest(REL, role, want, MCLT), now=now)  # type: ignore[arg-type]
    return ans.grant_ms, ans.partner_grant, ans.reason


def test_grant_only_when_the_other_ticket_expired() -> None:
    w = Witness(now=0)
    assert ask(w, "secondary", False, 0) == (0, False, "ticket")
    assert ask(w, "primary", True, 1_000)[2] == "partner alive"
    expiry = lengthen(T)
    assert ask(w, "primary", True, expiry - 1)[2] == "partner alive"
    assert ask(w, "primary", True, expiry)[:2] == (T, False)


def test_at_most_one_grant_and_the_holder_renews() -> None:
    w = Witness(now=0)
    assert ask(w, "primary", True, 0)[2] == "granted"
    assert ask(w, "secondary", True, 1_000)[2] == "partner holds the grant"
    assert ask(w, "secondary", True, 30_000)[2] == "cool-down"  # not renewed: MCLT more
    # the primary renews every 4 s; the secondary, asking too, never gets one
    w = Witness(now=0)
    ask(w, "primary", True, 0)
    for t in range(4_000, 200_000, 4_000):
        assert ask(w, "primary", True, t)[2] == "renewed"
        g, partner, reason = ask(w, "secondary", True, t + 1)
        assert g == 0 and partner and reason == "partner holds the grant"


def test_cool_down_of_one_mclt_after_a_grant_ends() -> None:
    w = Witness(now=0)
    ask(w, "primary", True, 0)
    end = lengthen(T)  # the primary stops renewing
    cool_end = end + lengthen(MCLT * 1000)
    later = max(end, lengthen(T) + 1)
    g, partner, reason = ask(w, "secondary", True, later)
    assert (g, partner, reason) == (0, False, "cool-down")
    # the secondary keeps asking; the primary is silent
    t = later
    while t < cool_end:
        assert ask(w, "secondary", True, t)[0] == 0
        t += 4_000
    assert ask(w, "secondary", True, cool_end)[2] == "granted"


def test_former_holder_may_be_granted_again_during_its_cool_down() -> None:
    w = Witness(now=0)
    ask(w, "primary", True, 0)
    assert ask(w, "primary", True, lengthen(T) + 5)[2] == "granted"


def test_grant_changes_the_record_renewal_does_not() -> None:
    w = Witness(now=0)
    _a, changed = w.handle(WitnessRequest(REL, "primary", True, MCLT), now=0)
    assert changed
    _a, changed = w.handle(WitnessRequest(REL, "primary", True, MCLT), now=4_000)
    assert not changed
    rec = w.to_record()
    assert json.loads(json.dumps(rec)) == rec
    assert rec["relationships"] == {REL: {"mclt_ms": MCLT * 1000, "holder": "primary"}}


def test_restart_keeps_the_holder_and_holds_everything_else() -> None:
    w = Witness(now=0)
    ask(w, "primary", True, 0)
    rec = json.loads(json.dumps(w.to_record()))
    w2 = Witness(now=50_000, record=rec)  # restarted: monotonic time starts anew
    g, partner, reason = ask(w2, "secondary", True, 50_001)
    assert (g, partner, reason) == (0, True, "partner holds the grant")
    assert ask(w2, "primary", True, 50_002)[2] == "renewed"
    # a relationship never granted: nothing new during the hold (tickets were forgotten)
    w3 = Witness(now=0, record={"version": 1, "relationships": {}})
    assert ask(w3, "primary", True, 1)[2] == "restart hold"
    assert ask(w3, "primary", True, lengthen(T))[2] == "granted"


def test_restart_with_holder_never_grants_the_other_before_grant_plus_mclt() -> None:
    w = Witness(now=0)
    ask(w, "secondary", True, 0)
    w2 = Witness(now=0, record=w.to_record())
    bound = lengthen(T) + lengthen(MCLT * 1000)
    t = 1
    while t < bound:
        assert ask(w2, "primary", True, t)[0] == 0
        t += 1_000
    assert ask(w2, "primary", True, bound + 1)[2] == "granted"


def test_lost_record_holds_for_grant_plus_max_mclt() -> None:
    w = Witness.lost(now=0, max_mclt_s=MCLT)
    hold = lengthen(T) + lengthen(MCLT * 1000)
    assert ask(w, "primary", True, hold - 1)[2] == "restart hold"
    assert ask(w, "primary", True, hold)[2] == "granted"


def test_bad_records_are_refused() -> None:
    for bad in (
        {"version": 2, "relationships": {}},
        {"version": 1},
        {"version": 1, "relationships": {"x": {"mclt_ms": -1, "holder": None}}},
        {"version": 1, "relationships": {"x": {"mclt_ms": 1, "holder": "third"}}},
    ):
        with pytest.raises(RecordError):
            Witness(now=0, record=bad)


def test_status() -> None:
    w = Witness(now=0)
    ask(w, "primary", True, 0)
    st = w.status(1)
    rels = st["relationships"]
    assert isinstance(rels, dict) and rels[REL]["holder"] == "primary"
    assert w.next_deadline(1) == lengthen(T)
    assert not w.tick(lengthen(T))
    assert w.tick(lengthen(T) + lengthen(MCLT * 1000))  # cool-down over: the record shrinks
