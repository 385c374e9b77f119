"""Lease-level failover rules as data: BNDUPD acceptance, dueling updates, MCLT clamp.

These are the decisions ISC dhcpd 4.4 takes per binding (reference/failover-isc.md §8), kept
apart from the engine so they can be tested as tables: what a server in NORMAL (or any other
state) accepts when the peer reports a new binding state (§8.3a/§8.3b), which of two crossing
updates wins (§8.3 step 3), whether a lease may be (re)allocated by this server
(``lease_mine_to_reallocate``, §7.2) and the lease time a client may get (``ack_lease``, §8.6).
Everything is pure: times come in as arguments.
"""

from __future__ import annotations

import enum
from typing import Literal

from tandem.core.lease import BindingState

B = BindingState
Role = Literal["primary", "secondary"]

#: ISC's fudge in expiry checks: an EXPIRED update is believed 65 s before our own ``ends``.
EXPIRY_FUDGE = 65

#: States that "return" a lease: the receiver stores FREE, the sender moves to FREE on ack.
RETURNING = frozenset({B.EXPIRED, B.RELEASED, B.RESET})


def own_free_state(role: Role) -> BindingState:
    """The free state a server allocates from (FREE: primary, BACKUP: secondary)."""
    return B.FREE if role == "primary" else B.BACKUP


def peer_free_state(role: Role) -> BindingState:
    return B.BACKUP if role == "primary" else B.FREE


class Check(enum.Enum):
    """How one (current, received) pair is judged."""

    ACCEPT = "accept"
    REJECT = "reject"
    IF_EXPIRED = "accept only if our ends - 65 <= now"
    IF_POTENTIAL_PAST = "accept only if the received potential-expiration <= now"


_A, _R, _E, _P = Check.ACCEPT, Check.REJECT, Check.IF_EXPIRED, Check.IF_POTENTIAL_PAST

#: §8.3a, ISC in NORMAL. Key: (we are, current state, received state); missing: ACCEPT.
#: "=" (same state, e.g. a renewal) is always accepted and not listed.
NORMAL_TABLE: dict[tuple[Role, BindingState, BindingState], Check] = {
    # ACTIVE on our side
    **{("secondary", B.ACTIVE, rx): _P for rx in (B.FREE, B.BACKUP)},
    ("secondary", B.ACTIVE, B.EXPIRED): _E,
    **{("primary", B.ACTIVE, rx): _R for rx in (B.FREE, B.BACKUP, B.EXPIRED, B.RESET)},
    # EXPIRED and RESET wait for the potential expiration before becoming free again
    **{
        (role, cur, rx): _P
        for role in ("primary", "secondary")
        for cur in (B.EXPIRED, B.RESET)
        for rx in (B.FREE, B.BACKUP)
    },
}

#: §8.3b, ISC in any state but NORMAL: only an ACTIVE lease is protected.
OTHER_TABLE: dict[tuple[BindingState, BindingState], Check] = {
    (B.ACTIVE, B.FREE): _R,
    (B.ACTIVE, B.BACKUP): _R,
    (B.ACTIVE, B.EXPIRED): _E,
}


def transition_check(
    role: Role, normal: bool, current: BindingState, received: BindingState
) -> Check:
    """The table cell for a received binding state (``current`` of a fresh lease: FREE)."""
    if current is received:
        return Check.ACCEPT
    if normal:
        return NORMAL_TABLE.get((role, current, received), Check.ACCEPT)
    return OTHER_TABLE.get((current, received), Check.ACCEPT)


def transition_ok(
    role: Role,
    normal: bool,
    current: BindingState,
    received: BindingState,
    *,
    ends: int | None,
    potential: int | None,
    now: int,
) -> bool:
    """Whether ISC would accept ``current -> received`` (else reject reason 2)."""
    check = transition_check(role, normal, current, received)
    if check is Check.ACCEPT:
        return True
    if check is Check.REJECT:
        return False
    if check is Check.IF_EXPIRED:
        return (ends or 0) - EXPIRY_FUDGE <= now
    return (potential or 0) <= now


def incoming_wins(
    role: Role,
    ours: BindingState,
    ours_cltt: int | None,
    theirs: BindingState,
    theirs_cltt: int | None,
) -> bool:
    """Dueling updates (§8.3 step 3): does the peer's update beat our un-acked one?

    ACTIVE vs ACTIVE: the later cltt wins, a tie goes to the primary; a received ACTIVE
    beats anything else; a received EXPIRED beats our ACTIVE; any other pair: the primary
    wins.
    """
    if ours is B.ACTIVE and theirs is B.ACTIVE:
        mine, peer = ours_cltt or 0, theirs_cltt or 0
        if mine != peer:
            return peer > mine
        return role == "secondary"
    if theirs is B.ACTIVE:
        return True
    if ours is B.ACTIVE and theirs is B.EXPIRED:
        return True
    return role == "secondary"


def mclt_lease_time(desired: int, mclt: int, tsfp: int | None, now: int) -> int:
    """ISC ack_lease's clamp (§8.6): the lease time a client may get.

    ``desired`` is what the scope would give, ``tsfp`` the potential expiration the peer
    last acknowledged (None: never).
    """
    if desired <= mclt:
        return desired
    peer_knows = tsfp or 0
    if peer_knows <= now:
        return mclt
    if now + desired > peer_knows + mclt:
        return peer_knows - now + mclt
    return desired


def may_take_peers(tsfp: int | None, stos: int, mclt: int, now: int) -> bool:
    """PARTNER-DOWN: a lease the peer owned is ours once max(STOS, tsfp) + MCLT has passed."""
    since = stos if (tsfp or 0) < stos else (tsfp or 0)
    return since + mclt < now
