"""ISC DHCP failover messages (draft-ietf-dhc-failover-12 as ISC dhcpd 4.4 speaks it).

Wire layout (draft-12 §6.1, numbers in network byte order)::

    0      2    message length   whole message incl. these 2 bytes, 12..2048
    2      1    message type     MessageType
    3      1    payload offset   ISC sends 12; the draft's "8" breaks ISC (G1)
    4      4    time             sender's clock, epoch seconds
    8      4    xid
    off    ...  options          code(2) | length(2) | data, no padding, no end marker

The decoder reproduces the receive rules of ISC's ``do_a_failover_option`` because a
peer that is stricter or laxer than ISC would disagree with it about which links to drop
(reference/failover-isc.md §3): unknown option codes are skipped, options outside the
per-message "allowed" mask are skipped, an allowed option seen twice or a fixed-size option
with the wrong length is a protocol error (the link is closed), DDNS must be empty (ISC's
table gives it size 0), and message types above 12 carrying options are an error.

One deliberate strictness beyond ISC 4.4.3: the message-digest option must be the last one
(as the reference's §3 and the brief require). ISC's own option table types it as plain
bytes, so ISC actually skips a digest anywhere; nobody sends one (ISC never does), so
refusing a misplaced one costs no interoperability.

The protocol's numbers (message types, option codes, reject reasons, states) are in
``tandem.wire.failover_codes``.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from tandem.wire.errors import WireError
from tandem.wire.failover_codes import (
    BindingState,
    IPFlags,
    MessageType,
    OptionCode,
    RejectReason,
    ServerFlags,
    ServerState,
)

MIN_MESSAGE_SIZE = 12  #: draft-12 §6.1 / ISC DHCP_FAILOVER_MIN_MESSAGE_SIZE
MAX_MESSAGE_SIZE = 2048  #: draft-12 §6.1 / ISC DHCP_FAILOVER_MAX_MESSAGE_SIZE
HEADER_SIZE = 12  #: fixed header; also the payload offset we always send
HBA_SIZE = 32  #: hash-bucket-assignment: 256 buckets, one bit each

_HEADER = struct.Struct("!HBBII")
_OPT_HEADER = struct.Struct("!HH")
_U8 = struct.Struct("!B")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


class FailoverProtocolError(WireError):
    """The peer sent something that makes ISC close the link.

    ``reason`` is a stable key for counters/logs; ``reject_reason`` is set where the
    protocol has a code for the problem (ISC itself never sends a DISCONNECT for a
    decoding error: it just closes the connection).
    """

    __slots__ = ("reason", "reject_reason")

    def __init__(
        self,
        reason: str,
        message: str | None = None,
        *,
        reject_reason: RejectReason | None = None,
    ) -> None:
        super().__init__(message if message is not None else reason)
        self.reason = reason
        self.reject_reason = reject_reason


class FailoverEncodeError(WireError):
    """A message we were asked to build is invalid (our bug, not the peer's)."""


class Kind(enum.Enum):
    """How an option's data is laid out."""

    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    IPV4 = "ipv4"
    BYTES = "bytes"
    TEXT = "text"
    HBA = "hba"  # bytes; 32 expected, any length accepted like ISC (checked at CONNECT)
    DDNS = "ddns"  # ISC size 0: only an empty one is accepted, never sent


OptionValue = int | IPv4Address | bytes | str

_FIXED_SIZE = {Kind.U8: 1, Kind.U16: 2, Kind.U32: 4, Kind.IPV4: 4, Kind.DDNS: 0}


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One row of the option table (ISC server/stables.c ``ft_options``)."""

    code: OptionCode
    name: str
    kind: Kind
    enum_type: Callable[[int], int] | None = None


OPTION_SPECS: dict[int, OptionSpec] = {
    spec.code: spec
    for spec in (
        OptionSpec(OptionCode.ADDRESSES_TRANSFERRED, "addresses-transferred", Kind.U32),
        OptionSpec(OptionCode.ASSIGNED_IP_ADDRESS, "assigned-IP-address", Kind.IPV4),
        OptionSpec(OptionCode.BINDING_STATUS, "binding-status", Kind.U8, BindingState),
        OptionSpec(OptionCode.CLIENT_IDENTIFIER, "client-identifier", Kind.BYTES),
        OptionSpec(OptionCode.CLIENT_HARDWARE_ADDRESS, "client-hardware-address", Kind.BYTES),
        OptionSpec(OptionCode.CLTT, "client-last-transaction-time", Kind.U32),
        OptionSpec(OptionCode.CLIENT_REPLY_OPTIONS, "client-reply-options", Kind.BYTES),
        OptionSpec(OptionCode.CLIENT_REQUEST_OPTIONS, "client-request-options", Kind.BYTES),
        OptionSpec(OptionCode.DDNS, "DDNS", Kind.DDNS),
        OptionSpec(OptionCode.DELAYED_SERVICE, "delayed-service", Kind.U8),
        OptionSpec(OptionCode.HASH_BUCKET_ASSIGNMENT, "hash-bucket-assignment", Kind.HBA),
        OptionSpec(OptionCode.IP_FLAGS, "IP-flags", Kind.U16, IPFlags),
        OptionSpec(OptionCode.LEASE_EXPIRATION_TIME, "lease-expiration-time", Kind.U32),
        OptionSpec(OptionCode.MAX_UNACKED_BNDUPD, "max-unacked-bndupd", Kind.U32),
        OptionSpec(OptionCode.MCLT, "MCLT", Kind.U32),
        OptionSpec(OptionCode.MESSAGE, "message", Kind.TEXT),
        OptionSpec(OptionCode.MESSAGE_DIGEST, "message-digest", Kind.BYTES),
        OptionSpec(OptionCode.POTENTIAL_EXPIRATION_TIME, "potential-expiration-time", Kind.U32),
        OptionSpec(OptionCode.RECEIVE_TIMER, "receive-timer", Kind.U32),
        OptionSpec(OptionCode.PROTOCOL_VERSION, "protocol-version", Kind.U8),
        OptionSpec(OptionCode.REJECT_REASON, "reject-reason", Kind.U8, RejectReason),
        OptionSpec(OptionCode.RELATIONSHIP_NAME, "relationship-name", Kind.BYTES),
        OptionSpec(OptionCode.SERVER_FLAGS, "server-flags", Kind.U8, ServerFlags),
        OptionSpec(OptionCode.SERVER_STATE, "server-state", Kind.U8, ServerState),
        OptionSpec(OptionCode.START_TIME_OF_STATE, "start-time-of-state", Kind.U32),
        OptionSpec(OptionCode.TLS_REPLY, "TLS-reply", Kind.U8),
        OptionSpec(OptionCode.TLS_REQUEST, "TLS-request", Kind.U8),
        OptionSpec(OptionCode.VENDOR_CLASS, "vendor-class-identifier", Kind.TEXT),
        OptionSpec(OptionCode.VENDOR_OPTIONS, "vendor-specific-options", Kind.BYTES),
    )
}

_O = OptionCode
_BINDING_OPTIONS = frozenset(
    {
        _O.ASSIGNED_IP_ADDRESS,
        _O.BINDING_STATUS,
        _O.CLIENT_IDENTIFIER,
        _O.CLIENT_HARDWARE_ADDRESS,
        _O.CLTT,
        _O.CLIENT_REPLY_OPTIONS,
        _O.CLIENT_REQUEST_OPTIONS,
        _O.DDNS,
        _O.IP_FLAGS,
        _O.LEASE_EXPIRATION_TIME,
        _O.POTENTIAL_EXPIRATION_TIME,
        _O.START_TIME_OF_STATE,
    }
)

#: Options ISC looks at per message type (stables.c ``fto_allowed``); others are skipped.
ALLOWED_OPTIONS: dict[int, frozenset[OptionCode]] = {
    MessageType.POOLREQ: frozenset(),
    MessageType.POOLRESP: frozenset({_O.ADDRESSES_TRANSFERRED}),
    MessageType.BNDUPD: _BINDING_OPTIONS,
    MessageType.BNDACK: _BINDING_OPTIONS | {_O.REJECT_REASON, _O.MESSAGE},
    MessageType.CONNECT: frozenset(
        {
            _O.RELATIONSHIP_NAME,
            _O.MAX_UNACKED_BNDUPD,
            _O.RECEIVE_TIMER,
            _O.VENDOR_CLASS,
            _O.PROTOCOL_VERSION,
            _O.TLS_REQUEST,
            _O.MCLT,
            _O.HASH_BUCKET_ASSIGNMENT,
        }
    ),
    MessageType.CONNECTACK: frozenset(
        {
            _O.RELATIONSHIP_NAME,
            _O.MAX_UNACKED_BNDUPD,
            _O.RECEIVE_TIMER,
            _O.VENDOR_CLASS,
            _O.PROTOCOL_VERSION,
            _O.TLS_REPLY,
            _O.REJECT_REASON,
            _O.MESSAGE,
        }
    ),
    MessageType.UPDREQALL: frozenset(),
    MessageType.UPDDONE: frozenset(),
    MessageType.UPDREQ: frozenset(),
    MessageType.STATE: frozenset({_O.SERVER_STATE, _O.SERVER_FLAGS, _O.START_TIME_OF_STATE}),
    MessageType.CONTACT: frozenset(),
    MessageType.DISCONNECT: frozenset({_O.REJECT_REASON, _O.MESSAGE}),
}

_MAX_KNOWN_TYPE = max(MessageType)


def _as_enum(enum_type: Callable[[int], int] | None, value: int) -> int:
    """Map a number to its enum member, keeping unknown numbers as plain ints."""
    if enum_type is None:
        return value
    try:
        return enum_type(value)
    except ValueError:
        return value


def _decode_value(spec: OptionSpec, body: bytes) -> OptionValue:
    kind = spec.kind
    size = _FIXED_SIZE.get(kind)
    if size is not None and len(body) != size:
        raise FailoverProtocolError(
            "option-size",
            f"option {spec.name}: length {len(body)}, expected {size}",
        )
    if kind is Kind.U8:
        return _as_enum(spec.enum_type, body[0])
    if kind is Kind.U16:
        return _as_enum(spec.enum_type, _U16.unpack(body)[0])
    if kind is Kind.U32:
        value: int = _U32.unpack(body)[0]
        return value
    if kind is Kind.IPV4:
        return IPv4Address(body)
    if kind is Kind.TEXT:
        # surrogateescape: any byte string survives a decode/encode round trip.
        return body.decode("utf-8", "surrogateescape")
    return body  # BYTES, HBA, DDNS (empty)


def _encode_value(spec: OptionSpec, value: OptionValue) -> bytes:
    kind = spec.kind
    if kind in (Kind.U8, Kind.U16, Kind.U32):
        if not isinstance(value, int):
            raise FailoverEncodeError(f"option {spec.name}: expected an integer, got {value!r}")
        limit = {Kind.U8: 0xFF, Kind.U16: 0xFFFF, Kind.U32: 0xFFFFFFFF}[kind]
        if not 0 <= value <= limit:
            raise FailoverEncodeError(f"option {spec.name}: {value} out of range")
        packer = {Kind.U8: _U8, Kind.U16: _U16, Kind.U32: _U32}[kind]
        return packer.pack(int(value))
    if kind is Kind.IPV4:
        if not isinstance(value, IPv4Address):
            raise FailoverEncodeError(f"option {spec.name}: expected IPv4Address")
        return value.packed
    if kind is Kind.TEXT:
        if not isinstance(value, str):
            raise FailoverEncodeError(f"option {spec.name}: expected str")
        return value.encode("utf-8", "surrogateescape")
    if not isinstance(value, bytes):
        raise FailoverEncodeError(f"option {spec.name}: expected bytes")
    return value


def _check_option(msg_type: int, code: OptionCode, value: OptionValue) -> bytes:
    """Validate one option of a message we build and return its encoded body."""
    if code in (OptionCode.DDNS, OptionCode.MESSAGE_DIGEST):
        # G2/G3: ISC drops the link on a non-empty DDNS and never checks a digest.
        raise FailoverEncodeError(f"option {OPTION_SPECS[code].name} is never sent")
    if code not in ALLOWED_OPTIONS.get(msg_type, frozenset()):
        raise FailoverEncodeError(
            f"option {OPTION_SPECS[code].name} is ignored by ISC in message type {msg_type}"
        )
    body = _encode_value(OPTION_SPECS[code], value)
    if code is OptionCode.HASH_BUCKET_ASSIGNMENT and len(body) != HBA_SIZE:
        # Decoding accepts any length (ISC does too, then rejects the CONNECT with reason
        # 18), but an HBA we send must be 32 bytes.
        raise FailoverEncodeError(f"hash-bucket-assignment must be {HBA_SIZE} bytes")
    if len(body) > 0xFFFF:
        raise FailoverEncodeError(f"option {OPTION_SPECS[code].name} longer than 65535")
    return body


@dataclass(frozen=True, slots=True)
class Message:
    """One failover message: header fields plus options in wire order.

    ``type`` is a :class:`MessageType` or, for a type ISC ignores (0, or > 12 without
    options), the raw number so the caller can log and drop it. Values are validated in
    the constructor, so a ``Message`` that exists can be encoded (except that it may
    still be refused for carrying DDNS/digest or options ISC would ignore).
    """

    type: int
    time: int
    xid: int
    options: Mapping[OptionCode, OptionValue] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not 0 <= self.type <= 0xFF:
            raise FailoverEncodeError(f"message type {self.type} out of range")
        for name in ("time", "xid"):
            number = getattr(self, name)
            if not 0 <= number <= 0xFFFFFFFF:
                raise FailoverEncodeError(f"{name} {number} out of range")
        for code, value in self.options.items():
            if code not in OPTION_SPECS:
                raise FailoverEncodeError(f"unknown option code {code}")
            _encode_value(OPTION_SPECS[code], value)
        if 1 <= self.type <= _MAX_KNOWN_TYPE and not isinstance(self.type, MessageType):
            object.__setattr__(self, "type", MessageType(self.type))

    @property
    def known_type(self) -> MessageType | None:
        """The message type, or None for one ISC ignores."""
        return self.type if isinstance(self.type, MessageType) else None

    # --- typed accessors (None when the option is absent) ---

    def get(self, code: OptionCode) -> OptionValue | None:
        return self.options.get(code)

    def _int(self, code: OptionCode) -> int | None:
        value = self.options.get(code)
        return value if isinstance(value, int) else None

    def _bytes(self, code: OptionCode) -> bytes | None:
        value = self.options.get(code)
        return value if isinstance(value, bytes) else None

    def _text(self, code: OptionCode) -> str | None:
        value = self.options.get(code)
        return value if isinstance(value, str) else None

    @property
    def assigned_address(self) -> IPv4Address | None:
        value = self.options.get(OptionCode.ASSIGNED_IP_ADDRESS)
        return value if isinstance(value, IPv4Address) else None

    @property
    def binding_status(self) -> int | None:
        """BindingState, or the raw number if out of range."""
        return self._int(OptionCode.BINDING_STATUS)

    @property
    def client_identifier(self) -> bytes | None:
        return self._bytes(OptionCode.CLIENT_IDENTIFIER)

    @property
    def chaddr(self) -> bytes | None:
        """client-hardware-address: htype byte followed by the address."""
        return self._bytes(OptionCode.CLIENT_HARDWARE_ADDRESS)

    @property
    def hardware(self) -> tuple[int, bytes] | None:
        """(htype, address) as core.lease.Lease keeps it; None if absent or empty."""
        raw = self.chaddr
        if not raw:
            return None
        return raw[0], raw[1:]

    @property
    def cltt(self) -> int | None:
        return self._int(OptionCode.CLTT)

    @property
    def lease_expiration(self) -> int | None:
        return self._int(OptionCode.LEASE_EXPIRATION_TIME)

    @property
    def potential_expiration(self) -> int | None:
        return self._int(OptionCode.POTENTIAL_EXPIRATION_TIME)

    @property
    def stos(self) -> int | None:
        return self._int(OptionCode.START_TIME_OF_STATE)

    @property
    def ip_flags(self) -> int | None:
        return self._int(OptionCode.IP_FLAGS)

    @property
    def server_state(self) -> int | None:
        """ServerState, or the raw number (ISC goes SHUTDOWN on an unknown one)."""
        return self._int(OptionCode.SERVER_STATE)

    @property
    def server_flags(self) -> int | None:
        return self._int(OptionCode.SERVER_FLAGS)

    @property
    def reject_reason(self) -> int | None:
        return self._int(OptionCode.REJECT_REASON)

    @property
    def message_text(self) -> str | None:
        return self._text(OptionCode.MESSAGE)

    @property
    def relationship_name(self) -> bytes | None:
        return self._bytes(OptionCode.RELATIONSHIP_NAME)

    @property
    def mclt(self) -> int | None:
        return self._int(OptionCode.MCLT)

    @property
    def max_unacked(self) -> int | None:
        return self._int(OptionCode.MAX_UNACKED_BNDUPD)

    @property
    def receive_timer(self) -> int | None:
        return self._int(OptionCode.RECEIVE_TIMER)

    @property
    def hba(self) -> bytes | None:
        return self._bytes(OptionCode.HASH_BUCKET_ASSIGNMENT)

    @property
    def protocol_version(self) -> int | None:
        return self._int(OptionCode.PROTOCOL_VERSION)

    @property
    def vendor_class(self) -> str | None:
        return self._text(OptionCode.VENDOR_CLASS)

    @property
    def addresses_transferred(self) -> int | None:
        return self._int(OptionCode.ADDRESSES_TRANSFERRED)

    @property
    def tls_request(self) -> int | None:
        return self._int(OptionCode.TLS_REQUEST)

    @property
    def tls_reply(self) -> int | None:
        return self._int(OptionCode.TLS_REPLY)


def decode_message(data: bytes) -> Message:
    """Decode one whole message (as FrameBuffer yields it) the way ISC reads it.

    Raises only :class:`FailoverProtocolError`; every such error means "close the link".
    """
    size = len(data)
    if size < MIN_MESSAGE_SIZE:
        raise FailoverProtocolError("short-message", f"{size} bytes, need {MIN_MESSAGE_SIZE}")
    length, msg_type, payoff, msg_time, xid = _HEADER.unpack_from(data, 0)
    if not MIN_MESSAGE_SIZE <= length <= MAX_MESSAGE_SIZE:
        raise FailoverProtocolError("bad-length", f"message length {length}")
    if length != size:
        raise FailoverProtocolError("length-mismatch", f"length field {length}, got {size}")
    if payoff < HEADER_SIZE:
        # draft-12 says 8; ISC then mis-parses and drops the link (G1).
        raise FailoverProtocolError("bad-payload-offset", f"payload offset {payoff} < 12")
    if payoff > length:
        raise FailoverProtocolError("bad-payload-offset", f"payload offset {payoff} > {length}")

    pos = payoff  # extra header bytes between 12 and payoff are skipped, as ISC does
    if msg_type > _MAX_KNOWN_TYPE and pos < length:
        raise FailoverProtocolError("unknown-type", f"invalid message type {msg_type}")
    allowed = ALLOWED_OPTIONS.get(msg_type, frozenset())
    seen: set[int] = set()
    options: dict[OptionCode, OptionValue] = {}
    while pos < length:
        if pos + _OPT_HEADER.size > length:
            raise FailoverProtocolError("option-overrun", "message overflow at option header")
        code, olen = _OPT_HEADER.unpack_from(data, pos)
        pos += _OPT_HEADER.size
        end = pos + olen
        if end > length:
            raise FailoverProtocolError("option-overrun", f"option {code}: overflow at data")
        spec = OPTION_SPECS.get(code)
        if spec is None:  # code 0 or > 29: skipped, length honoured
            pos = end
            continue
        if spec.code is OptionCode.MESSAGE_DIGEST:
            if end != length:
                raise FailoverProtocolError("digest-not-last", "message-digest not at end")
            pos = end
            continue
        if code in seen:
            raise FailoverProtocolError("duplicate-option", f"duplicate option {spec.name}")
        if spec.code not in allowed:
            pos = end
            continue
        value = _decode_value(spec, data[pos:end])
        seen.add(code)
        if spec.kind is not Kind.DDNS:  # an empty DDNS carries nothing worth keeping
            options[spec.code] = value
        pos = end
    return Message(type=msg_type, time=msg_time, xid=xid, options=options)


def encode_message(msg: Message) -> bytes:
    """Encode with payload offset 12, options in the mapping's order.

    Raises :class:`FailoverEncodeError` for DDNS/digest, options ISC would skip for this
    type, a non-32-byte HBA or a message over 2048 bytes.
    """
    out = bytearray(HEADER_SIZE)
    for code, value in msg.options.items():
        body = _check_option(msg.type, code, value)
        out += _OPT_HEADER.pack(code, len(body))
        out += body
    if len(out) > MAX_MESSAGE_SIZE:
        raise FailoverEncodeError(f"message of {len(out)} bytes exceeds {MAX_MESSAGE_SIZE}")
    _HEADER.pack_into(out, 0, len(out), msg.type, HEADER_SIZE, msg.time, msg.xid)
    return bytes(out)
