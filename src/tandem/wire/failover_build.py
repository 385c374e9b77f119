"""ISC failover messages as ISC dhcpd 4.4 builds them, and its CONNECT/CONNECTACK checks.

The codec (message layout, option table, decode and encode) is ``tandem.wire.failover``; this
module holds what is built on it: one builder per message Tandem sends, with the options in
the order ISC sends them (reference/failover-isc.md §4, §15), and the acceptance checks of a
received CONNECT or CONNECTACK in ISC's order (§5.1, §5.2).
"""

from __future__ import annotations

from ipaddress import IPv4Address

from tandem.wire.failover import (
    ALLOWED_OPTIONS,
    HBA_SIZE,
    FailoverEncodeError,
    FailoverProtocolError,
    Message,
    OptionValue,
)
from tandem.wire.failover_codes import (
    BindingState,
    IPFlags,
    MessageType,
    OptionCode,
    RejectReason,
    ServerFlags,
    ServerState,
)

_O = OptionCode


# --- builders for the messages ISC expects (reference §4, §15) ---


def build_connect(
    *,
    time: int,
    xid: int,
    relationship_name: bytes,
    max_unacked: int,
    receive_timer: int,
    vendor_class: str,
    mclt: int,
    hba: bytes,
) -> Message:
    """CONNECT in ISC's option order: 22, 14, 19, 28, 20, 27(=0), 15, 11."""
    return Message(
        MessageType.CONNECT,
        time,
        xid,
        {
            _O.RELATIONSHIP_NAME: relationship_name,
            _O.MAX_UNACKED_BNDUPD: max_unacked,
            _O.RECEIVE_TIMER: receive_timer,
            _O.VENDOR_CLASS: vendor_class,
            _O.PROTOCOL_VERSION: 1,
            _O.TLS_REQUEST: 0,
            _O.MCLT: mclt,
            _O.HASH_BUCKET_ASSIGNMENT: hba,
        },
    )


def build_connectack(
    *,
    time: int,
    xid: int,
    relationship_name: bytes,
    vendor_class: str,
    max_unacked: int | None,
    receive_timer: int | None,
    tls_reply: bool,
    reject: tuple[RejectReason, str] | None = None,
) -> Message:
    """CONNECTACK as ISC sends it: 22, [14, 19], 28, 20, [26], [21, 16].

    ``xid`` must echo the CONNECT's; ``tls_reply`` iff the CONNECT carried TLS-request.
    """
    options: dict[OptionCode, OptionValue] = {_O.RELATIONSHIP_NAME: relationship_name}
    if max_unacked is not None:
        options[_O.MAX_UNACKED_BNDUPD] = max_unacked
    if receive_timer is not None:
        options[_O.RECEIVE_TIMER] = receive_timer
    options[_O.VENDOR_CLASS] = vendor_class
    options[_O.PROTOCOL_VERSION] = 1
    if tls_reply:
        options[_O.TLS_REPLY] = 0
    if reject is not None:
        options[_O.REJECT_REASON] = reject[0]
        options[_O.MESSAGE] = reject[1]
    return Message(MessageType.CONNECTACK, time, xid, options)


def build_state(
    *, time: int, xid: int, state: ServerState, flags: ServerFlags, stos: int
) -> Message:
    """STATE: 24, 23, 25 (ISC's order)."""
    return Message(
        MessageType.STATE,
        time,
        xid,
        {_O.SERVER_STATE: state, _O.SERVER_FLAGS: flags, _O.START_TIME_OF_STATE: stos},
    )


def build_bndack(
    *,
    time: int,
    xid: int,
    address: IPv4Address,
    reject: tuple[RejectReason, str] | None = None,
) -> Message:
    """Minimal BNDACK (G11): assigned-IP-address only, plus 21/16 when refusing."""
    options: dict[OptionCode, OptionValue] = {_O.ASSIGNED_IP_ADDRESS: address}
    if reject is not None:
        options[_O.REJECT_REASON] = reject[0]
        options[_O.MESSAGE] = reject[1]
    return Message(MessageType.BNDACK, time, xid, options)


def build_bndupd(
    *,
    time: int,
    xid: int,
    address: IPv4Address,
    status: BindingState,
    ends: int,
    potential_expiration: int,
    stos: int,
    client_identifier: bytes | None = None,
    chaddr: bytes | None = None,
    cltt: int | None = None,
    ip_flags: IPFlags = IPFlags.NONE,
) -> Message:
    """BNDUPD in ISC's order: 2, 3, [4], [5], 13, 18, 25, [6 if cltt], [12 if flags]."""
    if xid == 0:
        raise FailoverEncodeError("ISC never uses xid 0 for a BNDUPD")
    options: dict[OptionCode, OptionValue] = {
        _O.ASSIGNED_IP_ADDRESS: address,
        _O.BINDING_STATUS: status,
    }
    if client_identifier is not None:
        options[_O.CLIENT_IDENTIFIER] = client_identifier
    if chaddr is not None:
        options[_O.CLIENT_HARDWARE_ADDRESS] = chaddr
    options[_O.LEASE_EXPIRATION_TIME] = ends
    options[_O.POTENTIAL_EXPIRATION_TIME] = potential_expiration
    options[_O.START_TIME_OF_STATE] = stos
    if cltt:
        options[_O.CLTT] = cltt
    if ip_flags:
        options[_O.IP_FLAGS] = ip_flags
    return Message(MessageType.BNDUPD, time, xid, options)


def build_disconnect(*, time: int, xid: int, reason: RejectReason, text: str) -> Message:
    """DISCONNECT: 21, 16."""
    return Message(MessageType.DISCONNECT, time, xid, {_O.REJECT_REASON: reason, _O.MESSAGE: text})


def build_empty(msg_type: MessageType, *, time: int, xid: int) -> Message:
    """POOLREQ, UPDREQALL, UPDREQ, UPDDONE (xid = request's), CONTACT: no options."""
    if ALLOWED_OPTIONS[msg_type]:
        raise FailoverEncodeError(f"{msg_type.name} carries options; use its builder")
    return Message(msg_type, time, xid)


def build_poolresp(*, time: int, xid: int, addresses_transferred: int) -> Message:
    """POOLRESP (xid = the POOLREQ's): 1."""
    return Message(
        MessageType.POOLRESP, time, xid, {_O.ADDRESSES_TRANSFERRED: addresses_transferred}
    )


# --- CONNECT / CONNECTACK acceptance, in ISC's order of checks (reference §5.1, §5.2) ---

CLOCK_SKEW_LIMIT = 60  #: |header time - now| allowed on CONNECT/CONNECTACK


def check_connect(
    msg: Message, *, relationship_name: bytes, now: int, already_connected: bool
) -> FailoverProtocolError | None:
    """Why a secondary must refuse this CONNECT (send CONNECTACK with the reason), or None."""
    name = msg.relationship_name
    if name is None:
        problem = (RejectReason.INVALID_PARTNER, "missing relationship-name")
    elif name != relationship_name:
        problem = (RejectReason.INVALID_PARTNER, "unknown failover relationship name")
    elif abs(msg.time - now) > CLOCK_SKEW_LIMIT:
        problem = (RejectReason.TIMEMISMATCH, "time offset too large")
    elif msg.hba is None or len(msg.hba) != HBA_SIZE:
        problem = (RejectReason.HBA_CONFLICT, "invalid HBA")
    elif already_connected:
        problem = (RejectReason.DUP_CONNECTION, "already connected")
    elif msg.mclt is None:
        problem = (RejectReason.INVALID_MCLT, "no MCLT provided")
    else:
        return None
    return FailoverProtocolError("connect-refused", problem[1], reject_reason=problem[0])


def check_connectack(
    msg: Message, *, relationship_name: bytes, now: int, already_connected: bool
) -> FailoverProtocolError | None:
    """Why a primary must drop the link after this CONNECTACK, or None to accept it.

    ``reject_reason`` set: send DISCONNECT with it first. None with an error: the peer
    refused us (its reason is in the message); just close.
    """
    name = msg.relationship_name
    if name is None:
        problem = (RejectReason.INVALID_PARTNER, "missing relationship-name")
    elif msg.reject_reason is not None:
        return FailoverProtocolError("connect-rejected", f"peer rejected: {msg.message_text}")
    elif name != relationship_name:
        problem = (RejectReason.INVALID_PARTNER, "relationship name does not match")
    elif already_connected:
        problem = (RejectReason.DUP_CONNECTION, "already connected")
    elif abs(msg.time - now) > CLOCK_SKEW_LIMIT:
        problem = (RejectReason.TIMEMISMATCH, "time offset too large")
    else:
        return None
    return FailoverProtocolError("connectack-refused", problem[1], reject_reason=problem[0])
