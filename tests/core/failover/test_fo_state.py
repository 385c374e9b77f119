"""The failover state table: exhaustive over (state, input), ISC's sequences, doc freshness."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.core.failover.states import (
    TABLE,
    Action,
    FailoverStateError,
    FailoverStateMachine,
    Input,
    ServiceState,
    Target,
    lookup,
)
from tandem.wire.failover_codes import ServerFlags, ServerState

S = ServerState
A = Action
NOW = 1_700_000_000
MCLT = 300
NON_STARTUP = [s for s in S if s is not S.STARTUP]


def machine_in(
    state: ServerState,
    *,
    role: str = "primary",
    peer: ServerState | None = S.NORMAL,
    connected: bool = True,
    saved: ServerState = S.NORMAL,
) -> FailoverStateMachine:
    m = FailoverStateMachine(role=role, mclt=MCLT, now=NOW, auto_partner_down=60)  # type: ignore[arg-type]
    m.state = state
    m.saved_state = saved
    m.peer_state = peer
    m.connected = connected
    m.stos = NOW - 10
    return m


def test_table_is_complete_and_every_cell_has_a_fallback() -> None:
    assert set(TABLE) == {(s, i) for s in S for i in Input}
    for cell in TABLE.values():
        assert cell and cell[-1].guards == (), "last branch must be unguarded"
        for branch in cell[:-1]:
            assert branch.guards
    startup_only = {Target.AS_SAVED, Target.SAVED}
    for (state, _), cell in TABLE.items():
        if state is not S.STARTUP:
            assert not any(b.target in startup_only for b in cell)


def test_missing_pair_is_an_explicit_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(TABLE, (S.NORMAL, Input.UPDDONE))
    with pytest.raises(FailoverStateError):
        lookup(S.NORMAL, Input.UPDDONE)
    with pytest.raises(FailoverStateError):
        machine_in(S.NORMAL).on_input(Input.UPDDONE, NOW)


@pytest.mark.parametrize("role", ["primary", "secondary"])
@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("inp", list(Input))
def test_every_pair_runs(role: str, state: ServerState, inp: Input) -> None:
    m = machine_in(state, role=role)
    kwargs = {"peer_value": 77} if inp is Input.PEER_INVALID else {}
    actions = m.on_input(inp, NOW, **kwargs)  # type: ignore[arg-type]
    assert isinstance(m.state, ServerState)
    assert all(isinstance(a, Action) for a in actions)
    if m.state is not S.STARTUP:
        assert m.startup_deadline is None
    if m.state is not state or A.RECORD_STATE in actions:
        assert A.RECORD_STATE in actions
    # An unconditional cell leads exactly where the table says.
    cell = TABLE[state, inp]
    if len(cell) == 1 and isinstance(cell[0].target, ServerState):
        assert m.state is cell[0].target
    elif len(cell) == 1 and cell[0].target is Target.STAY:
        assert m.state is state
    if inp is Input.ADMIN_SHUTDOWN:
        assert m.state is S.SHUTDOWN
    if inp is Input.ADMIN_PARTNER_DOWN:
        assert m.state is S.PARTNER_DOWN
    if inp is Input.PEER_INVALID:
        assert m.state is S.SHUTDOWN


def test_peer_invalid_needs_a_value() -> None:
    with pytest.raises(FailoverStateError):
        machine_in(S.NORMAL).on_input(Input.PEER_INVALID, NOW)


# --- ISC's observed sequences (reference §11) ---


def test_sequence_a_fresh_pair_both_recover() -> None:
    m = FailoverStateMachine(role="secondary", mclt=MCLT, now=NOW)
    actions = m.start(NOW)
    assert m.state is S.STARTUP and m.saved_state is S.RECOVER and m.stos == NOW
    assert A.START_STARTUP_TIMER in actions and m.get_timer() == NOW + 15
    assert m.on_input(Input.LINK_UP, NOW) == [A.SEND_STATE]
    assert (m.reported_state, m.reported_flags) == (S.RECOVER, ServerFlags.STARTUP)
    actions = m.on_peer_state(S.RECOVER, ServerFlags.STARTUP, NOW + 1)
    assert m.state is S.RECOVER and m.get_timer() is None
    assert actions.count(A.SEND_UPDREQALL) == 1  # from RECOVER's entry rule, not twice
    assert m.reported_flags == ServerFlags.NONE
    # ISC re-sends recover without the flag: processed again in RECOVER -> UPDREQALL.
    assert A.SEND_UPDREQALL in m.on_peer_state(S.RECOVER, 0, NOW + 2)
    m.on_input(Input.UPDDONE, NOW + 3)  # peer RECOVER: no MCLT wait
    assert m.state is S.RECOVER_DONE and m.service_state is ServiceState.NOT_RESPONDING
    actions = m.on_peer_state(S.NORMAL, 0, NOW + 4)
    assert m.state is S.NORMAL
    assert actions[-3:] == [A.BALANCE_POOLS, A.QUEUE_PENDING_UPDATES, A.SEND_UPDATES]
    assert m.service_state is ServiceState.COOPERATING


def test_sequence_b_link_lost_in_normal_and_back() -> None:
    m = machine_in(S.NORMAL, peer=S.NORMAL)
    actions = m.on_input(Input.LINK_DOWN, NOW)
    assert m.state is S.COMMUNICATIONS_INTERRUPTED and A.RESCIND_UPDATES in actions
    assert A.SEND_STATE not in actions  # link is down
    assert m.auto_partner_down_deadline == NOW + 60
    assert m.service_state is ServiceState.NOT_COOPERATING
    m.on_input(Input.LINK_UP, NOW + 5)
    actions = m.on_peer_state(S.COMMUNICATIONS_INTERRUPTED, 0, NOW + 5)
    assert m.state is S.NORMAL
    assert actions.index(A.SEND_UPDATES) < actions.index(A.RECORD_STATE)
    assert A.CANCEL_AUTO_PARTNER_DOWN_TIMER in actions and m.get_timer() is None


def test_sequence_c_peer_restarts_without_state() -> None:
    m = machine_in(S.COMMUNICATIONS_INTERRUPTED, peer=S.COMMUNICATIONS_INTERRUPTED)
    m.on_peer_state(S.RECOVER, 0, NOW)
    assert m.state is S.PARTNER_DOWN and m.service_state is ServiceState.PARTNER_DOWN
    actions = m.on_peer_state(S.RECOVER_WAIT, 0, NOW + 1)  # expected: stay
    assert m.state is S.PARTNER_DOWN and A.RECORD_STATE not in actions
    actions = m.on_peer_state(S.RECOVER_DONE, 0, NOW + 301)
    assert m.state is S.NORMAL and A.RESCIND_UPDATES in actions


def test_sequence_d_recover_meets_comm_interrupted_peer_waits_mclt() -> None:
    m = FailoverStateMachine(role="primary", mclt=MCLT, now=NOW)
    m.start(NOW)
    m.on_input(Input.LINK_UP, NOW)
    m.on_peer_state(S.COMMUNICATIONS_INTERRUPTED, 0, NOW + 1)
    assert m.state is S.RECOVER and m.stos == NOW  # STOS kept through STARTUP
    actions = m.on_input(Input.UPDDONE, NOW + 2)
    assert m.state is S.RECOVER_WAIT and A.START_MCLT_TIMER in actions
    assert m.get_timer() == NOW + MCLT and m.stos == NOW
    assert m.on_peer_state(S.NORMAL, 0, NOW + 3) == [
        A.RECORD_PEER_STATE,
        A.UPDATE_SERVICE_STATE,
    ]  # RECOVER-WAIT makes no transitions
    assert m.handle_timer(NOW + MCLT - 1) == []
    m.handle_timer(NOW + MCLT)
    assert m.state is S.RECOVER_DONE and m.get_timer() is None


def test_recover_wait_entered_after_mclt_goes_straight_to_recover_done() -> None:
    m = machine_in(S.RECOVER, peer=S.PARTNER_DOWN)
    m.stos = NOW - MCLT
    m.on_input(Input.UPDDONE, NOW)
    assert m.state is S.RECOVER_DONE


# --- individual cells worth pinning (reference §7.4-§7.6) ---


def test_repeated_peer_state_ignored_only_in_some_states() -> None:
    m = machine_in(S.NORMAL, peer=S.NORMAL)
    assert m.on_peer_state(S.NORMAL, 0, NOW) == []
    m = machine_in(S.RECOVER, peer=S.RECOVER)
    assert A.SEND_UPDREQALL in m.on_peer_state(S.RECOVER, 0, NOW)


def test_startup_with_unchanged_peer_state_resumes_saved_state() -> None:
    m = FailoverStateMachine(
        role="primary",
        mclt=MCLT,
        now=NOW,
        saved_state=S.RESOLUTION_INTERRUPTED,
        saved_stos=NOW - 50,
        peer_state=S.POTENTIAL_CONFLICT,
    )
    m.start(NOW)
    m.on_input(Input.LINK_UP, NOW)
    actions = m.on_peer_state(S.POTENTIAL_CONFLICT, 0, NOW + 1)
    assert m.state is S.POTENTIAL_CONFLICT
    assert A.RECORD_PEER_STATE not in actions and A.SEND_UPDREQ in actions


def test_startup_normal_meets_partner_down_goes_recover() -> None:
    m = FailoverStateMachine(
        role="secondary", mclt=MCLT, now=NOW, saved_state=S.NORMAL, saved_stos=NOW - 99
    )
    m.start(NOW)
    m.on_input(Input.LINK_UP, NOW)
    m.on_peer_state(S.PARTNER_DOWN, 0, NOW + 1)
    assert m.state is S.RECOVER


def test_startup_timeout_applies_link_down_rule_to_saved_state() -> None:
    m = FailoverStateMachine(
        role="primary", mclt=MCLT, now=NOW, saved_state=S.NORMAL, saved_stos=NOW - 99
    )
    m.start(NOW)
    assert m.handle_timer(NOW + 14) == []
    m.handle_timer(NOW + 15)
    assert m.state is S.COMMUNICATIONS_INTERRUPTED and m.stos == NOW - 99
    # A stale startup timeout outside STARTUP does nothing.
    assert m.on_input(Input.STARTUP_TIMEOUT, NOW + 20) == []


def test_potential_conflict_entry_depends_on_role() -> None:
    primary = machine_in(S.NORMAL, peer=S.NORMAL)
    assert A.SEND_UPDREQ in primary.on_peer_state(S.PARTNER_DOWN, 0, NOW)
    secondary = machine_in(S.NORMAL, role="secondary", peer=S.NORMAL)
    assert A.SEND_UPDREQ not in secondary.on_peer_state(S.PARTNER_DOWN, 0, NOW)
    assert secondary.state is S.POTENTIAL_CONFLICT
    assert secondary.service_state is ServiceState.NOT_RESPONDING
    # CONFLICT-DONE straight after PARTNER-DOWN: ISC only logs it.
    probe = machine_in(S.POTENTIAL_CONFLICT, role="secondary", peer=S.PARTNER_DOWN)
    assert A.LOG_UNEXPECTED in probe.on_peer_state(S.CONFLICT_DONE, 0, NOW)
    # Sequence E: secondary sees the primary go POTENTIAL-CONFLICT then CONFLICT-DONE ->
    # UPDREQ, then UPDDONE -> NORMAL.
    assert secondary.on_peer_state(S.POTENTIAL_CONFLICT, 0, NOW + 1)[-1] is not A.SEND_UPDREQ
    assert A.SEND_UPDREQ in secondary.on_peer_state(S.CONFLICT_DONE, 0, NOW + 1)
    secondary.on_input(Input.UPDDONE, NOW + 2)
    assert secondary.state is S.NORMAL
    primary.on_input(Input.UPDDONE, NOW + 1)
    assert primary.state is S.CONFLICT_DONE
    primary.on_peer_state(S.NORMAL, 0, NOW + 3)
    assert primary.state is S.NORMAL


def test_conflict_done_peer_in_unexpected_state_is_fatal() -> None:
    m = machine_in(S.CONFLICT_DONE, peer=S.POTENTIAL_CONFLICT)
    assert A.FATAL in m.on_peer_state(S.RECOVER, 0, NOW)
    assert m.state is S.CONFLICT_DONE
    assert A.RESCIND_UPDATES in m.on_input(Input.LINK_DOWN, NOW)


def test_partner_down_ignores_a_starting_peer() -> None:
    m = machine_in(S.PARTNER_DOWN, peer=S.COMMUNICATIONS_INTERRUPTED)
    m.on_peer_state(S.NORMAL, ServerFlags.STARTUP, NOW)
    assert m.state is S.PARTNER_DOWN
    m.on_peer_state(S.POTENTIAL_CONFLICT, 0, NOW)
    assert m.state is S.POTENTIAL_CONFLICT


def test_invalid_and_silencing_peer_states() -> None:
    m = machine_in(S.NORMAL, peer=S.NORMAL)
    m.on_peer_state(200, 0, NOW)
    assert m.state is S.SHUTDOWN and m.peer_state == 200
    m = machine_in(S.COMMUNICATIONS_INTERRUPTED, peer=None)
    m.peer_state = S.PARTNER_DOWN
    assert m.service_state is ServiceState.NOT_RESPONDING


def test_auto_partner_down_timer() -> None:
    m = machine_in(S.NORMAL, peer=S.NORMAL)
    m.on_input(Input.LINK_DOWN, NOW)
    assert m.get_timer() == NOW + 60
    m.handle_timer(NOW + 60)
    assert m.state is S.PARTNER_DOWN
    assert A.SCHEDULE_EXPIRED_TO_FREE in m.on_input(Input.ADMIN_PARTNER_DOWN, NOW + 61)


@settings(max_examples=300)
@given(
    role=st.sampled_from(["primary", "secondary"]),
    saved=st.sampled_from([None, *NON_STARTUP]),
    steps=st.lists(
        st.tuples(st.sampled_from(list(Input)), st.integers(0, 600), st.booleans()),
        max_size=40,
    ),
)
def test_random_input_sequences_keep_invariants(
    role: str, saved: ServerState | None, steps: list[tuple[Input, int, bool]]
) -> None:
    now = NOW
    m = FailoverStateMachine(role=role, mclt=MCLT, now=now, saved_state=saved)  # type: ignore[arg-type]
    m.start(now)
    for inp, dt, flag in steps:
        now += dt
        if inp is Input.PEER_INVALID:
            m.on_input(inp, now, peer_value=99)
        else:
            m.on_input(inp, now, startup_flag=flag)
        m.handle_timer(now)
        assert m.saved_state is not S.STARTUP
        assert m.reported_state is not S.STARTUP
        assert (m.startup_deadline is None) == (m.state is not S.STARTUP) or m.state is S.STARTUP
        if m.state is not S.RECOVER_WAIT:
            assert m.mclt_deadline is None
        if m.state is not S.COMMUNICATIONS_INTERRUPTED:
            assert m.auto_partner_down_deadline is None
        timer = m.get_timer()
        assert timer is None or timer > now


def test_doc_is_up_to_date() -> None:
    path = Path(__file__).resolve().parents[3] / "scripts" / "render_tables.py"
    spec = importlib.util.spec_from_file_location("render_tables", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    current = module.DOC.read_text(encoding="utf-8")
    assert module.updated(current) == current, "run scripts/render_tables.py"
    assert module.main(["--check"]) == 0
