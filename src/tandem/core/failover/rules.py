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
from ipaddress import IPv4Address
from typing import Literal

from tandem.core.lease import BindingState, Lease
from tandem.wire.failover_codes import RejectReason
from tandem.wire.failover_fast import Binding

B = BindingState
Role = Literal["primary", "secondary"]

#: ISC's fudge in expiry checks: an EXPIRED update is believed 65 s before our own ``ends``.
#: ISC's source calls it "the clock skew between the peers plus a fudge factor" (it corrects
#: no skew, and CONNECT allows 60 s of it, reference §14 G7). It stays for interoperability:
#: an ISC peer whose clock runs ahead expires the lease *we both know* early by its skew.
EXPIRY_FUDGE = 65

#: How far two servers' records of the *same* lease end may differ: both convert times with
#: an estimated clock offset (whole seconds, 0 within 2 s), so a round trip can be off by a
#: few seconds (tandem.sim: 0 or 1 s in seeds 0-299; stale ends differ by 15 s and more).
END_SLACK = 3

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
    IF_EXPIRED = "accept only if our ends - 65 <= now (the peer names our end) or ends <= now"
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
    peer_ends: int | None = None,
) -> bool:
    """Whether ``current -> received`` is accepted (else reject reason 2).

    ISC's decision, except that an EXPIRED naming an earlier end than ours gets no expiry
    fudge (see ``expiry_believed``). ``peer_ends`` is the update's lease-expiration-time.
    """
    check = transition_check(role, normal, current, received)
    if check is Check.ACCEPT:
        return True
    if check is Check.REJECT:
        return False
    if check is Check.IF_EXPIRED:
        return expiry_believed(ends, peer_ends, now)
    return (potential or 0) <= now


def stale_end(ours: int | None, theirs: int | None) -> bool:
    """Does the peer's lease-expiration-time name an earlier end than the one we hold?

    ``None`` for ours is "never"; a missing ``theirs`` is no evidence either way.
    """
    if theirs is None:
        return False
    return ours is None or theirs < ours - END_SLACK


def expiry_believed(ours: int | None, theirs: int | None, now: int) -> bool:
    """May the peer's EXPIRED end our ACTIVE lease (ends ``ours``) at ``now``?

    ISC believes it once ``ours - 65 <= now``: the 65 s allow for the peer's clock, which
    judged the same end (an infinite lease, ISC's MAX_TIME, never qualifies). When the
    peer's update names an *earlier* end than ours, it expired a binding it knew, not the
    later one we gave (a restart from an older lease file, a renewal made while the link
    was down): the client holds ``ours``, and no clock of the peer can say that end has
    passed. Then only our own clock counts: no fudge. (tandem.sim seed 5152: a restarted
    secondary expired client5's old end; the primary, COMMUNICATIONS-INTERRUPTED, believed
    it 23 s before the end it had given, and handed the address to client6.)
    """
    if ours is None:
        return False
    if stale_end(ours, theirs):
        return ours <= now
    return ours - EXPIRY_FUDGE <= now


def later_end(a: int | None, b: int | None) -> bool:
    """Is lease end ``a`` later than ``b`` (``None``: never ends)?"""
    if a is None:
        return b is not None
    return b is not None and a > b


def incoming_wins(
    role: Role,
    ours: BindingState,
    ours_cltt: int | None,
    theirs: BindingState,
    theirs_cltt: int | None,
) -> bool:
    """Dueling updates (§8.3 step 3): does the peer's update beat our un-acked one?

    ACTIVE vs ACTIVE: the later cltt wins, a tie goes to the primary; a received ACTIVE
    beats anything else; a received EXPIRED beats our ACTIVE; our ACTIVE beats a received
    RELEASED or ABANDONED on either side; any other pair: the primary wins.

    The last-but-one rule departs from ISC's failover_lease_is_better, which lets the
    primary's RELEASED overwrite a secondary's un-acked ACTIVE. A secondary that ACKed its
    client during a partition (the client had released to the primary, then came back)
    then drops its update, and the primary frees an address the client holds (tandem.sim
    seeds 144 and 210, 30 clients). Keeping the ACTIVE only ever keeps an address bound.
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
    if ours is B.ACTIVE and theirs in (B.RELEASED, B.ABANDONED):
        return False
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


def potential_expiry(lease: Lease) -> int:
    """The potential expiration a BNDUPD for ``lease`` carries: ``tstp``, as in ISC, except
    that an ACTIVE binding with no un-acked change of ours (an UPDREQALL re-send) carries at
    least what the peer gave or acked (``atsfp``).

    A binding the peer made leaves our ``tstp`` at our own older ACK's. ISC sends that back,
    the peer takes it as its ``tsfp`` and cuts its next renewal of the client to the MCLT,
    below the end the client already holds (tandem.sim seed 71489: a RECOVER after a
    handover, then that shorter ACK lost; the lease expired and went to BACKUP while the
    client held it 90 s more). ISC 4.4 always sends ``tstp``; this only ever sends more.
    """
    tstp = lease.tstp or 0
    if lease.binding_state is B.ACTIVE and lease.atsfp is not None and lease.atsfp > tstp:
        return lease.atsfp
    return tstp


def may_take_peers(tsfp: int | None, stos: int, mclt: int, now: int) -> bool:
    """PARTNER-DOWN: a lease the peer owned is ours once max(STOS, tsfp) + MCLT has passed."""
    since = stos if (tsfp or 0) < stos else (tsfp or 0)
    return since + mclt < now


def same_client(lease: Lease, b: Binding) -> bool:
    """Does the update name the client our lease is bound to (hardware and identifier)?"""
    chaddr = b.chaddr
    if not chaddr or lease.hardware is None:
        return False
    return lease.hardware == (chaddr[0], bytes(chaddr[1:])) and lease.uid == b.uid


def reject_text(reason: int) -> str:
    """A reject reason for a log line (``misc reject``), or its number."""
    try:
        return RejectReason(reason).name.lower().replace("_", " ")
    except ValueError:
        return f"reason {reason}"


class LogIp:
    """An address for a log line, formatted only if the line is written (most never are)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        return format(IPv4Address(self.value), spec)

    def __str__(self) -> str:
        return str(IPv4Address(self.value))
