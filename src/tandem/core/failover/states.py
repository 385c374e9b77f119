"""The failover server-state machine, as one table, modelled on what ISC dhcpd 4.4 does.

Source of the rules: reference/failover-isc.md §7 (start-up §7.3, link loss §7.4, reaction
to the peer's STATE §7.5, entry actions §7.6, service states §7.2), checked against
``dhcp_failover_peer_state_changed``, ``dhcp_failover_state_transition``,
``dhcp_failover_set_state`` and ``dhcp_failover_process_update_done`` in ISC's
server/failover.c. The draft's figure differs in many places; ISC wins for interop.

Shape (h2-style): ``TABLE[(state, input)]`` is a tuple of :class:`Branch`; the first branch
whose guards all hold is taken. A branch names actions (what the caller must do) and a
target: a server state (a transition, which also runs that state's entry rules from
``ENTRY_RULES``), ``STAY``, ``SAVED`` (leave STARTUP for the saved state) or ``AS_SAVED``
(STARTUP only: evaluate the saved state's cell, then leave STARTUP for the saved state if
that cell did not move us - ISC's "act as if in the saved state"). Guards are named
conditions on role, timers and the recorded peer state, so the table stays plain data that
``scripts/render_tables.py`` turns into docs/failover-states.md.

The machine does no I/O and reads no clock: every input carries ``now``; timers are
deadlines the caller reads with :meth:`FailoverStateMachine.get_timer`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from tandem.wire.failover_codes import ServerFlags, ServerState

S = ServerState
Role = Literal["primary", "secondary"]
STARTUP_SECONDS = 15  #: ISC leaves STARTUP after 15 s without a peer STATE (§7.3)


class FailoverStateError(Exception):
    """A (state, input) pair with no table entry: a bug in the table, never peer input."""


class Input(enum.Enum):
    """Everything that can drive the machine."""

    PEER_UNKNOWN = "peer unknown-state"
    PEER_STARTUP = "peer startup"
    PEER_NORMAL = "peer normal"
    PEER_COMMUNICATIONS_INTERRUPTED = "peer communications-interrupted"
    PEER_PARTNER_DOWN = "peer partner-down"
    PEER_POTENTIAL_CONFLICT = "peer potential-conflict"
    PEER_RECOVER = "peer recover"
    PEER_PAUSED = "peer paused"
    PEER_SHUTDOWN = "peer shutdown"
    PEER_RECOVER_DONE = "peer recover-done"
    PEER_RESOLUTION_INTERRUPTED = "peer resolution-interrupted"
    PEER_CONFLICT_DONE = "peer conflict-done"
    PEER_RECOVER_WAIT = "peer recover-wait"
    PEER_INVALID = "peer state not in the known set"
    LINK_UP = "link established (CONNECT/CONNECTACK accepted)"
    LINK_DOWN = "link lost, tReceive expired or connect failed"
    STARTUP_TIMEOUT = "15 s in STARTUP without a peer STATE"
    UPDDONE = "UPDDONE received"
    MCLT_EXPIRED = "STOS + MCLT reached (RECOVER-WAIT timer)"
    AUTO_PARTNER_DOWN = "auto-partner-down timer fired"
    ADMIN_PARTNER_DOWN = "operator sets partner-down"
    ADMIN_SHUTDOWN = "operator shuts the relationship down"


PEER_INPUTS: dict[ServerState, Input] = {state: Input["PEER_" + state.name] for state in S}


class Action(enum.Enum):
    """What the caller has to do; deadlines for START_* are read via get_timer()."""

    RECORD_STATE = "persist my state + STOS (lease file)"
    RECORD_PEER_STATE = "persist the partner state"
    SEND_STATE = "send STATE (reported_state, reported_flags, stos)"
    UPDATE_SERVICE_STATE = "recompute what we may do with clients"
    RESCIND_UPDATES = "move un-acked BNDUPDs back to the send queue"
    SEND_UPDATES = "flush the update queue"
    QUEUE_PENDING_UPDATES = "queue leases with tstp > atsfp and EXPIRED/RELEASED/RESET ones"
    BALANCE_POOLS = "run pool balancing (FREE <-> BACKUP)"
    SCHEDULE_POOL_CHECK = "schedule a pool balance check"
    SEND_UPDREQ = "send UPDREQ"
    SEND_UPDREQALL = "send UPDREQALL"
    SCHEDULE_EXPIRED_TO_FREE = "EXPIRED/RELEASED/RESET leases: tsfp = STOS + MCLT"
    START_STARTUP_TIMER = "arm the 15 s STARTUP timer"
    CANCEL_STARTUP_TIMER = "cancel the STARTUP timer"
    START_MCLT_TIMER = "arm the RECOVER-WAIT timer at STOS + MCLT"
    START_AUTO_PARTNER_DOWN_TIMER = "arm auto-partner-down"
    CANCEL_AUTO_PARTNER_DOWN_TIMER = "cancel auto-partner-down"
    LOG_INVALID_TRANSITION = "log: invalid peer transition"
    LOG_UNEXPECTED = "log: unexpected / spurious message"
    LOG_BOTH_RECOVER_DONE = "log: both servers have entered recover-done"
    FATAL = "ISC exits here (log_fatal); the caller decides how to stop"


class Guard(enum.Enum):
    """Named conditions a branch may require (all of a branch's guards must hold)."""

    IN_STARTUP = "in STARTUP"
    NOT_IN_STARTUP = "not in STARTUP"
    PRIMARY = "we are primary"
    SECONDARY = "we are secondary"
    CONNECTED = "link up"
    PEER_STATE_REPEATED = "peer state equals the recorded one"
    SAVED_IS_RESOLUTION_INTERRUPTED = "saved state is RESOLUTION-INTERRUPTED"
    PEER_WAS_POTENTIAL_CONFLICT = "previous peer state was POTENTIAL-CONFLICT"
    PEER_IS_CONFLICT_DONE = "peer is CONFLICT-DONE"
    PEER_STARTUP_FLAG = "STATE carried the STARTUP flag"
    MUST_WAIT_MCLT = "STOS + MCLT > now and peer not RECOVER/RECOVER-DONE"
    MCLT_PASSED = "STOS + MCLT <= now"
    AUTO_PARTNER_DOWN_ON = "auto-partner-down configured"


class Target(enum.Enum):
    STAY = "stay"
    SAVED = "saved state"
    AS_SAVED = "as in saved state, then saved state"


@dataclass(frozen=True, slots=True)
class Branch:
    guards: tuple[Guard, ...]
    actions: tuple[Action, ...]
    target: ServerState | Target


class ServiceState(enum.Enum):
    """What a server may do with DHCP clients (ISC ``service_state``, §7.2)."""

    COOPERATING = "cooperating"  # load-balanced, own free leases only
    NOT_COOPERATING = "not cooperating"  # answers everybody, own free leases only
    PARTNER_DOWN = "partner down"  # answers everybody, may take peer's leases after MCLT
    STARTUP = "startup"  # answers nobody
    NOT_RESPONDING = "not responding"


SERVICE_STATES: dict[ServerState, ServiceState] = {
    state: ServiceState.NOT_RESPONDING for state in S
} | {
    S.NORMAL: ServiceState.COOPERATING,
    S.COMMUNICATIONS_INTERRUPTED: ServiceState.NOT_COOPERATING,
    S.PARTNER_DOWN: ServiceState.PARTNER_DOWN,
    S.STARTUP: ServiceState.STARTUP,
}

#: Peer states that silence us whatever our own state ("peer demands", §7.2).
PEER_DEMANDS_SILENCE = frozenset(
    {S.PARTNER_DOWN, S.POTENTIAL_CONFLICT, S.CONFLICT_DONE, S.RESOLUTION_INTERRUPTED}
)

#: States that ignore a STATE repeating the recorded peer state (§7.5 first rule). ISC's
#: code also lists unknown-state, but its guard (``me.state != 0``) never lets 0 reach it.
IGNORES_REPEATED_PEER_STATE = frozenset(
    {S.NORMAL, S.POTENTIAL_CONFLICT, S.RECOVER_DONE, S.SHUTDOWN, S.PAUSED, S.RECOVER_WAIT}
)

A = Action
G = Guard
STAY = Target.STAY


def _b(target: ServerState | Target, *actions: Action, when: tuple[Guard, ...] = ()) -> Branch:
    return Branch(when, actions, target)


# --- §7.5: reaction to the peer's new state; unlisted peer states: stay -------------------
_PEER_RULES: dict[ServerState, dict[ServerState, tuple[Branch, ...]]] = {
    S.NORMAL: {
        S.NORMAL: (_b(STAY, A.SCHEDULE_POOL_CHECK),),
        S.PARTNER_DOWN: (
            _b(S.RECOVER, when=(G.IN_STARTUP,)),
            _b(S.POTENTIAL_CONFLICT),
        ),
        S.POTENTIAL_CONFLICT: (_b(S.SHUTDOWN, A.LOG_INVALID_TRANSITION),),
        S.RESOLUTION_INTERRUPTED: (_b(S.SHUTDOWN, A.LOG_INVALID_TRANSITION),),
        S.CONFLICT_DONE: (_b(S.SHUTDOWN, A.LOG_INVALID_TRANSITION),),
        S.RECOVER: (_b(S.PARTNER_DOWN),),
        S.SHUTDOWN: (_b(S.PARTNER_DOWN),),
        S.PAUSED: (_b(S.COMMUNICATIONS_INTERRUPTED),),
    },
    S.RECOVER: {
        **{
            peer: (_b(STAY, A.SEND_UPDREQALL, when=(G.NOT_IN_STARTUP,)), _b(STAY))
            for peer in (S.RECOVER, S.PARTNER_DOWN, S.COMMUNICATIONS_INTERRUPTED)
        },
        **{
            peer: (_b(S.POTENTIAL_CONFLICT),)
            for peer in (
                S.POTENTIAL_CONFLICT,
                S.RESOLUTION_INTERRUPTED,
                S.CONFLICT_DONE,
                S.NORMAL,
            )
        },
        S.SHUTDOWN: (_b(S.PARTNER_DOWN),),
    },
    S.POTENTIAL_CONFLICT: {
        S.NORMAL: (_b(S.SHUTDOWN, A.LOG_INVALID_TRANSITION),),
        S.CONFLICT_DONE: (
            _b(STAY, A.SEND_UPDREQ, when=(G.PEER_WAS_POTENTIAL_CONFLICT,)),
            _b(STAY, A.LOG_UNEXPECTED),
        ),
        S.RECOVER: (_b(S.RECOVER),),
        S.SHUTDOWN: (_b(S.PARTNER_DOWN),),
    },
    S.CONFLICT_DONE: {
        **{
            peer: (_b(STAY, A.FATAL),)
            for peer in S
            if peer not in (S.NORMAL, S.SHUTDOWN, S.POTENTIAL_CONFLICT, S.RESOLUTION_INTERRUPTED)
        },
        S.NORMAL: (_b(S.NORMAL),),
        S.SHUTDOWN: (_b(S.SHUTDOWN),),
    },
    S.PARTNER_DOWN: {
        peer: (_b(STAY, when=(G.PEER_STARTUP_FLAG,)), _b(target))
        for peer, target in {
            S.RECOVER_DONE: S.NORMAL,
            S.NORMAL: S.POTENTIAL_CONFLICT,
            S.POTENTIAL_CONFLICT: S.POTENTIAL_CONFLICT,
            S.PARTNER_DOWN: S.POTENTIAL_CONFLICT,
            S.COMMUNICATIONS_INTERRUPTED: S.POTENTIAL_CONFLICT,
            S.RESOLUTION_INTERRUPTED: S.POTENTIAL_CONFLICT,
            S.CONFLICT_DONE: S.POTENTIAL_CONFLICT,
        }.items()
    },
    S.COMMUNICATIONS_INTERRUPTED: {
        S.RECOVER: (_b(S.PARTNER_DOWN),),
        **{
            peer: (_b(S.NORMAL, A.SEND_UPDATES),)
            for peer in (
                S.NORMAL,
                S.COMMUNICATIONS_INTERRUPTED,
                S.RECOVER_DONE,
                S.RECOVER_WAIT,
            )
        },
        **{
            peer: (_b(S.POTENTIAL_CONFLICT),)
            for peer in (
                S.POTENTIAL_CONFLICT,
                S.PARTNER_DOWN,
                S.RESOLUTION_INTERRUPTED,
                S.CONFLICT_DONE,
            )
        },
        S.SHUTDOWN: (_b(S.PARTNER_DOWN),),
    },
    S.RESOLUTION_INTERRUPTED: {
        **{
            peer: (_b(S.POTENTIAL_CONFLICT),)
            for peer in S
            if peer not in (S.SHUTDOWN, S.PAUSED, S.UNKNOWN, S.STARTUP)
        },
        S.SHUTDOWN: (_b(S.PARTNER_DOWN),),
    },
    S.RECOVER_WAIT: {},
    S.RECOVER_DONE: {
        S.RECOVER_DONE: (_b(S.NORMAL, A.LOG_BOTH_RECOVER_DONE),),
        S.NORMAL: (_b(S.NORMAL),),
        S.SHUTDOWN: (_b(S.PARTNER_DOWN),),
    },
    S.SHUTDOWN: {},
    S.PAUSED: {},
    S.UNKNOWN: {},
}

# --- §7.4: loss of the link ("disconnect"); unlisted states stay ---------------------------
_LINK_DOWN: dict[ServerState, tuple[Branch, ...]] = {
    S.NORMAL: (_b(S.COMMUNICATIONS_INTERRUPTED),),
    S.POTENTIAL_CONFLICT: (_b(S.RESOLUTION_INTERRUPTED),),
    S.UNKNOWN: (_b(S.RESOLUTION_INTERRUPTED),),
    S.CONFLICT_DONE: (_b(STAY, A.RESCIND_UPDATES),),
}

# --- UPDDONE (§7.6, §11); unlisted states ignore it ----------------------------------------
_UPDDONE: dict[ServerState, tuple[Branch, ...]] = {
    S.RECOVER: (_b(S.RECOVER_WAIT, when=(G.MUST_WAIT_MCLT,)), _b(S.RECOVER_DONE)),
    S.POTENTIAL_CONFLICT: (
        _b(S.NORMAL, when=(G.PEER_IS_CONFLICT_DONE, G.SECONDARY)),
        _b(S.SHUTDOWN, A.LOG_INVALID_TRANSITION, when=(G.PEER_IS_CONFLICT_DONE,)),
        _b(S.CONFLICT_DONE, when=(G.PRIMARY,)),
        _b(STAY, A.LOG_UNEXPECTED),
    ),
    S.CONFLICT_DONE: (_b(STAY, A.LOG_UNEXPECTED),),
}

# --- §7.6: entry rules, run after every transition into the state --------------------------
ENTRY_RULES: dict[ServerState, tuple[Branch, ...]] = {
    S.STARTUP: (_b(STAY, A.START_STARTUP_TIMER),),
    S.NORMAL: (_b(STAY, A.BALANCE_POOLS, A.QUEUE_PENDING_UPDATES, A.SEND_UPDATES),),
    S.COMMUNICATIONS_INTERRUPTED: (
        _b(STAY, A.START_AUTO_PARTNER_DOWN_TIMER, when=(G.AUTO_PARTNER_DOWN_ON,)),
    ),
    S.POTENTIAL_CONFLICT: (
        _b(STAY, A.SEND_UPDREQ, when=(G.PRIMARY,)),
        _b(STAY, A.SEND_UPDREQ, when=(G.SECONDARY, G.PEER_IS_CONFLICT_DONE)),
    ),
    S.RECOVER: (_b(STAY, A.SEND_UPDREQALL, when=(G.CONNECTED,)),),
    S.RECOVER_WAIT: (
        _b(S.RECOVER_DONE, when=(G.MCLT_PASSED,)),
        _b(STAY, A.START_MCLT_TIMER),
    ),
    S.PARTNER_DOWN: (_b(STAY, A.SCHEDULE_EXPIRED_TO_FREE),),
}

#: Leaving these states returns un-acked updates to the send queue (ISC set_state).
RESCIND_ON_LEAVE = frozenset({S.NORMAL, S.POTENTIAL_CONFLICT, S.PARTNER_DOWN})


def _peer_cell(state: ServerState, peer: ServerState | None) -> tuple[Branch, ...]:
    """One §7.5 cell (``peer`` None = invalid value); every processed branch records it."""
    if peer is None:
        body: tuple[Branch, ...] = (_b(S.SHUTDOWN, A.LOG_INVALID_TRANSITION),)
    else:
        body = _PEER_RULES[state].get(peer, (_b(STAY),))
    recorded = tuple(
        Branch(br.guards, (A.RECORD_PEER_STATE, A.UPDATE_SERVICE_STATE, *br.actions), br.target)
        for br in body
    )
    if state in IGNORES_REPEATED_PEER_STATE:
        return (_b(STAY, when=(G.PEER_STATE_REPEATED,)), *recorded)
    return recorded


_REPEATED_AND_SAVED_RI = (G.PEER_STATE_REPEATED, G.SAVED_IS_RESOLUTION_INTERRUPTED)


def _build_table() -> dict[tuple[ServerState, Input], tuple[Branch, ...]]:
    table: dict[tuple[ServerState, Input], tuple[Branch, ...]] = {}
    for state in S:
        if state is S.STARTUP:
            peer_cell = (
                _b(S.POTENTIAL_CONFLICT, when=_REPEATED_AND_SAVED_RI),
                _b(Target.SAVED, when=(G.PEER_STATE_REPEATED,)),
                _b(Target.AS_SAVED),
            )  # fmt: skip
            for inp in (*PEER_INPUTS.values(), Input.PEER_INVALID):
                table[state, inp] = peer_cell
            table[state, Input.LINK_DOWN] = (_b(Target.AS_SAVED),)
            table[state, Input.STARTUP_TIMEOUT] = (_b(Target.AS_SAVED),)
            table[state, Input.UPDDONE] = (_b(STAY),)
            table[state, Input.MCLT_EXPIRED] = (_b(STAY),)
            table[state, Input.AUTO_PARTNER_DOWN] = (_b(STAY),)
        else:
            for peer, inp in PEER_INPUTS.items():
                table[state, inp] = _peer_cell(state, peer)
            table[state, Input.PEER_INVALID] = _peer_cell(state, None)
            link_down = _LINK_DOWN.get(state, (_b(STAY),))
            table[state, Input.LINK_DOWN] = link_down
            # The startup timer is ISC's "disconnect" applied to the saved state; outside a
            # STARTUP delegation it is stale (ISC cancels it on leaving STARTUP).
            table[state, Input.STARTUP_TIMEOUT] = (
                *(Branch((G.IN_STARTUP, *br.guards), br.actions, br.target) for br in link_down),
                _b(STAY),
            )
            table[state, Input.UPDDONE] = _UPDDONE.get(state, (_b(STAY),))
            table[state, Input.MCLT_EXPIRED] = (
                (_b(S.RECOVER_DONE),) if state is S.RECOVER_WAIT else (_b(STAY),)
            )
            table[state, Input.AUTO_PARTNER_DOWN] = (
                (_b(S.PARTNER_DOWN),) if state is S.COMMUNICATIONS_INTERRUPTED else (_b(STAY),)
            )
        table[state, Input.LINK_UP] = (_b(STAY, A.SEND_STATE),)
        table[state, Input.ADMIN_PARTNER_DOWN] = (_b(S.PARTNER_DOWN),)
        table[state, Input.ADMIN_SHUTDOWN] = (_b(S.SHUTDOWN),)
    return table


TABLE: dict[tuple[ServerState, Input], tuple[Branch, ...]] = _build_table()


def lookup(state: ServerState, inp: Input) -> tuple[Branch, ...]:
    """The table cell, or FailoverStateError (never KeyError) if the pair is missing."""
    try:
        return TABLE[state, inp]
    except KeyError:
        raise FailoverStateError(f"no transition for ({state.name}, {inp.name})") from None


class FailoverStateMachine:
    """One relationship's server state, driven only through :data:`TABLE`.

    Construct with what the lease file recorded (``saved_state`` None = no record, which
    ISC treats as RECOVER with STOS = now), then call :meth:`start`.
    """

    def __init__(
        self,
        *,
        role: Role,
        mclt: int,
        now: int,
        saved_state: ServerState | None = None,
        saved_stos: int | None = None,
        peer_state: ServerState | None = None,
        auto_partner_down: int = 0,
    ) -> None:
        self.role: Role = role
        self.mclt = mclt
        self.auto_partner_down = auto_partner_down
        self.state: ServerState = S.RECOVER if saved_state is None else saved_state
        self.stos = now if saved_state is None or saved_stos is None else saved_stos
        self.saved_state: ServerState = self.state
        self.peer_state: int | None = peer_state  # raw wire value; may be out of range
        self.connected = False
        self.startup_deadline: int | None = None
        self.mclt_deadline: int | None = None
        self.auto_partner_down_deadline: int | None = None
        self.fence: str | None = None  # set by Tandem's auto-partner-down rule: answer nobody
        # Context of the input being processed (guards read it).
        self._now = now
        self._prev_peer: int | None = None
        self._new_peer: int | None = None
        self._startup_flag = False

    # --- what the caller reads ---

    @property
    def reported_state(self) -> ServerState:
        """server-state for STATE messages and the lease file (the saved one in STARTUP)."""
        return self.saved_state if self.state is S.STARTUP else self.state

    @property
    def reported_flags(self) -> ServerFlags:
        return ServerFlags.STARTUP if self.state is S.STARTUP else ServerFlags.NONE

    @property
    def service_state(self) -> ServiceState:
        service = SERVICE_STATES[self.state]
        if self.fence is not None:
            return ServiceState.NOT_RESPONDING
        if service is not ServiceState.NOT_RESPONDING and self.peer_state in PEER_DEMANDS_SILENCE:
            return ServiceState.NOT_RESPONDING
        return service

    def get_timer(self) -> int | None:
        """Earliest pending deadline, for the caller to call handle_timer() at."""
        deadlines = [
            d
            for d in (self.startup_deadline, self.mclt_deadline, self.auto_partner_down_deadline)
            if d is not None
        ]
        return min(deadlines) if deadlines else None

    # --- inputs ---

    def start(self, now: int) -> list[Action]:
        """Enter STARTUP remembering the restored state (ISC ``"startup"`` transition)."""
        self._now = now
        actions: list[Action] = []
        self._transition(S.STARTUP, actions)
        return actions

    def on_peer_state(self, value: int, flags: int, now: int) -> list[Action]:
        """A STATE message arrived: map its server-state value to the matching input."""
        try:
            inp = PEER_INPUTS[ServerState(value)]
        except ValueError:
            inp = Input.PEER_INVALID
        return self.on_input(inp, now, peer_value=value, startup_flag=bool(flags & 1))

    def handle_timer(self, now: int) -> list[Action]:
        """Fire every deadline that is due."""
        actions: list[Action] = []
        for attr, inp in (
            ("startup_deadline", Input.STARTUP_TIMEOUT),
            ("mclt_deadline", Input.MCLT_EXPIRED),
            ("auto_partner_down_deadline", Input.AUTO_PARTNER_DOWN),
        ):
            deadline = getattr(self, attr)
            if deadline is not None and deadline <= now:
                setattr(self, attr, None)
                actions += self.on_input(inp, now)
        return actions

    def on_input(
        self,
        inp: Input,
        now: int,
        *,
        peer_value: int | None = None,
        startup_flag: bool = False,
    ) -> list[Action]:
        """Apply one input; returns the actions to perform, in order."""
        self._now = now
        self._startup_flag = startup_flag
        self._prev_peer = self.peer_state
        self._new_peer = None
        if inp.name.startswith("PEER_"):
            if peer_value is None:
                if inp is Input.PEER_INVALID:
                    raise FailoverStateError("PEER_INVALID needs peer_value")
                peer_value = ServerState[inp.name.removeprefix("PEER_")].value
            self._new_peer = peer_value
        if inp is Input.LINK_UP:
            self.connected = True
        elif inp is Input.LINK_DOWN:
            self.connected = False
        actions: list[Action] = []
        self._apply(self.state, inp, actions)
        return actions

    # --- internals ---

    def _guard(self, guard: Guard) -> bool:
        now = self._now
        peer = self._new_peer if self._new_peer is not None else self.peer_state
        if guard is G.IN_STARTUP:
            return self.state is S.STARTUP
        if guard is G.NOT_IN_STARTUP:
            return self.state is not S.STARTUP
        if guard is G.PRIMARY:
            return self.role == "primary"
        if guard is G.SECONDARY:
            return self.role == "secondary"
        if guard is G.CONNECTED:
            return self.connected
        if guard is G.PEER_STATE_REPEATED:
            return self._new_peer is not None and self._new_peer == self._prev_peer
        if guard is G.SAVED_IS_RESOLUTION_INTERRUPTED:
            return self.saved_state is S.RESOLUTION_INTERRUPTED
        if guard is G.PEER_WAS_POTENTIAL_CONFLICT:
            return self._prev_peer == S.POTENTIAL_CONFLICT
        if guard is G.PEER_IS_CONFLICT_DONE:
            return peer == S.CONFLICT_DONE
        if guard is G.PEER_STARTUP_FLAG:
            return self._startup_flag
        if guard is G.MUST_WAIT_MCLT:
            return self.stos + self.mclt > now and peer not in (S.RECOVER, S.RECOVER_DONE)
        if guard is G.MCLT_PASSED:
            return self.stos + self.mclt <= now
        if guard is G.AUTO_PARTNER_DOWN_ON:
            return self.auto_partner_down > 0
        raise FailoverStateError(f"unhandled guard {guard}")  # pragma: no cover

    def _select(self, cell: tuple[Branch, ...]) -> Branch:
        for branch in cell:
            if all(self._guard(g) for g in branch.guards):
                return branch
        raise FailoverStateError("no branch matched")  # tables end with an unguarded branch

    def _apply(self, row: ServerState, inp: Input, actions: list[Action]) -> None:
        branch = self._select(lookup(row, inp))
        if A.RECORD_PEER_STATE in branch.actions:
            self.peer_state = self._new_peer
        actions.extend(branch.actions)
        target = branch.target
        if target is Target.AS_SAVED:
            self._apply(self.saved_state, inp, actions)
            if self.state is S.STARTUP:
                self._transition(self.saved_state, actions)
        elif target is Target.SAVED:
            self._transition(self.saved_state, actions)
        elif isinstance(target, ServerState):
            self._transition(target, actions)

    def _transition(self, new: ServerState, actions: list[Action]) -> None:
        """ISC ``dhcp_failover_set_state``: bookkeeping, then the entry rules of ``new``."""
        old = self.state
        if old in RESCIND_ON_LEAVE:
            actions.append(A.RESCIND_UPDATES)
        if new is not S.RECOVER_WAIT and new is not S.STARTUP and old is not S.STARTUP:
            self.stos = self._now
        if new is S.STARTUP and old is not S.STARTUP:
            self.saved_state = old
        self.state = new
        actions.append(A.RECORD_STATE)
        if old is S.STARTUP and new is not S.STARTUP:
            self.startup_deadline = None
            actions.append(A.CANCEL_STARTUP_TIMER)
        if self.auto_partner_down_deadline is not None:
            self.auto_partner_down_deadline = None
            actions.append(A.CANCEL_AUTO_PARTNER_DOWN_TIMER)
        self.mclt_deadline = None
        actions.append(A.UPDATE_SERVICE_STATE)
        if self.connected:
            actions.append(A.SEND_STATE)
        for branch in ENTRY_RULES.get(new, ()):
            if not all(self._guard(g) for g in branch.guards):
                continue
            actions.extend(branch.actions)
            self._arm(branch.actions)
            if isinstance(branch.target, ServerState):
                self._transition(branch.target, actions)
            break

    def _arm(self, actions: tuple[Action, ...]) -> None:
        if A.START_STARTUP_TIMER in actions:
            self.startup_deadline = self._now + STARTUP_SECONDS
        if A.START_MCLT_TIMER in actions:
            self.mclt_deadline = self.stos + self.mclt
        if A.START_AUTO_PARTNER_DOWN_TIMER in actions:
            self.auto_partner_down_deadline = self._now + self.auto_partner_down
