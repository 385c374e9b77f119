"""The witness datagrams: a failover peer asks ``tandem witness`` for its alive ticket and,
while its failover link is down, for the right to be in PARTNER-DOWN (auto-partner-down).

Tandem's own format over UDP, version 1, one request and one answer per datagram, network
byte order::

     0               1               2               3
    +---------------+---------------+---------------+---------------+
    |                      magic "TDWT" (4 bytes)                   |
    +---------------+---------------+---------------+---------------+
    | version = 1   | kind          | role          | flags         |
    +---------------+---------------+---------------+---------------+
    |                  request id (64 bits, unsigned)               |
    +---------------+---------------+---------------+---------------+
    | name length   | relationship name (1..255 bytes of UTF-8) ... |
    +---------------+---------------+---------------+---------------+
    | requests only: the relationship's MCLT, seconds (32)          |
    | answers only: ticket ms (32) | grant ms (32) | hold ms (32)   |
    +---------------+---------------+---------------+---------------+
    | HMAC-SHA256 of every byte before it (32 bytes; flags & MAC)   |
    +---------------+---------------+---------------+---------------+

* kind: 1 request (peer -> witness), 2 answer (witness -> peer).
* role: 1 primary, 2 secondary: which side of the relationship asks (an answer repeats it).
* flags: a request's WANT_PARTNER_DOWN; an answer's PARTNER_ALIVE (the other role's ticket is
  valid in the witness's view) and PARTNER_GRANTED (the other role holds a valid grant); MAC
  on both when the datagram carries its HMAC.
* MCLT (requests): the relationship's, so the witness can hold a grant back for MCLT after
  the other role's grant ended (core/witness.py's cool-down).
* request id: chosen by the asker, increasing; an answer repeats the id of its request, so
  the asker knows when it sent what is answered (the durations count from that send time).
* durations, never absolute times: ``ticket_ms`` how long the asker's alive ticket lasts,
  ``grant_ms`` how long its partner-down grant lasts (0: none), ``hold_ms`` how long the
  witness still grants nothing after its own restart (0: not holding). Each side applies
  its clock margins (core/witness.py, core/failover/autopd.py).

Authentication: with ``--witness-secret FILE`` on witness and peers, every datagram carries
HMAC-SHA256 keyed with the file's bytes; a datagram with a wrong MAC, without one when a secret
is configured, or with one when none is, is refused (``WitnessDropped``, a stable ``reason``
for counters). The decoder is bounded: every length is checked against the datagram's end.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from tandem.wire.errors import WireError

MAGIC = b"TDWT"
VERSION = 1
KIND_REQUEST = 1
KIND_ANSWER = 2
ROLES = {1: "primary", 2: "secondary"}
ROLE_CODES = {name: code for code, name in ROLES.items()}

FLAG_WANT_PARTNER_DOWN = 0x01  #: request: the asker wants (to keep) a partner-down grant
FLAG_PARTNER_ALIVE = 0x02  #: answer: the other role's ticket is valid at the witness
FLAG_PARTNER_GRANTED = 0x04  #: answer: the other role holds a valid partner-down grant
FLAG_MAC = 0x80  #: the datagram ends with its HMAC-SHA256
_KNOWN_FLAGS = {
    KIND_REQUEST: FLAG_WANT_PARTNER_DOWN | FLAG_MAC,
    KIND_ANSWER: FLAG_PARTNER_ALIVE | FLAG_PARTNER_GRANTED | FLAG_MAC,
}

_HEADER = struct.Struct("!4sBBBBQB")  # magic, version, kind, role, flags, id, name length
_DURATIONS = struct.Struct("!III")
_MCLT = struct.Struct("!I")
MAC_SIZE = 32
MAX_ID = (1 << 64) - 1
MAX_MS = (1 << 32) - 1
#: Largest datagram either side sends or reads: header, a 255-byte name, durations, MAC.
MAX_DATAGRAM = _HEADER.size + 255 + _DURATIONS.size + MAC_SIZE


class WitnessDropped(WireError):
    """A datagram to drop and count; ``reason`` is a short stable key, never packet data."""

    __slots__ = ("reason",)

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message if message is not None else reason)
        self.reason = reason

    def __reduce__(self) -> tuple[type[WitnessDropped], tuple[str, str]]:
        return (type(self), (self.reason, str(self)))


@dataclass(frozen=True, slots=True)
class WitnessRequest:
    """A peer's question: renew my ticket (and my grant, or grant me partner-down)."""

    relationship: str
    role: str  # "primary" | "secondary"
    request_id: int
    want_partner_down: bool = False
    mclt_s: int = 0

    def __post_init__(self) -> None:
        _check_common(self.relationship, self.role, self.request_id)
        if not 0 <= self.mclt_s <= MAX_MS:
            raise ValueError(f"mclt_s {self.mclt_s} outside 0..{MAX_MS}")


@dataclass(frozen=True, slots=True)
class WitnessAnswer:
    """The witness's answer to the request with ``request_id``: durations from its receipt."""

    relationship: str
    role: str
    request_id: int
    ticket_ms: int
    grant_ms: int = 0
    hold_ms: int = 0
    partner_alive: bool = False
    partner_granted: bool = False

    def __post_init__(self) -> None:
        _check_common(self.relationship, self.role, self.request_id)
        for name in ("ticket_ms", "grant_ms", "hold_ms"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_MS:
                raise ValueError(f"{name} {value} outside 0..{MAX_MS}")


def _check_common(relationship: str, role: str, request_id: int) -> None:
    if role not in ROLE_CODES:
        raise ValueError(f"role {role!r}: primary or secondary")
    if not 0 <= request_id <= MAX_ID:
        raise ValueError(f"request id {request_id} outside 0..2**64-1")
    size = len(relationship.encode("utf-8"))
    if not 1 <= size <= 255:
        raise ValueError(f"relationship name of {size} bytes (1..255)")


def read_secret(data: bytes) -> bytes:
    """The key in a ``--witness-secret`` file's bytes: surrounding whitespace (a trailing
    newline from ``echo``) stripped; ValueError when nothing is left."""
    key = data.strip()
    if not key:
        raise ValueError("the witness secret file is empty")
    return key


def encode(message: WitnessRequest | WitnessAnswer, secret: bytes | None = None) -> bytes:
    """The datagram of ``message``, with its MAC when ``secret`` is given."""
    name = message.relationship.encode("utf-8")
    if isinstance(message, WitnessRequest):
        kind = KIND_REQUEST
        flags = FLAG_WANT_PARTNER_DOWN if message.want_partner_down else 0
        tail = _MCLT.pack(message.mclt_s)
    else:
        kind = KIND_ANSWER
        flags = (FLAG_PARTNER_ALIVE if message.partner_alive else 0) | (
            FLAG_PARTNER_GRANTED if message.partner_granted else 0
        )
        tail = _DURATIONS.pack(message.ticket_ms, message.grant_ms, message.hold_ms)
    if secret is not None:
        flags |= FLAG_MAC
    head = _HEADER.pack(
        MAGIC, VERSION, kind, ROLE_CODES[message.role], flags, message.request_id, len(name)
    )
    body = head + name + tail
    if secret is not None:
        body += hmac.new(secret, body, hashlib.sha256).digest()
    return body


def decode(data: bytes, secret: bytes | None = None) -> WitnessRequest | WitnessAnswer:
    """One datagram -> its message; ``WitnessDropped`` for anything else.

    The MAC is checked (constant time) before any field is trusted beyond the header's shape.
    """
    if len(data) > MAX_DATAGRAM:
        raise WitnessDropped("too-long", f"{len(data)} bytes (at most {MAX_DATAGRAM})")
    if len(data) < _HEADER.size:
        raise WitnessDropped("short", f"{len(data)} bytes, header needs {_HEADER.size}")
    magic, version, kind, role_code, flags, request_id, name_len = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WitnessDropped("bad-magic")
    if version != VERSION:
        raise WitnessDropped("bad-version", f"version {version} (this side speaks {VERSION})")
    if kind not in _KNOWN_FLAGS:
        raise WitnessDropped("bad-kind", f"kind {kind}")
    if flags & ~_KNOWN_FLAGS[kind]:
        raise WitnessDropped("bad-flags", f"flags 0x{flags:02x}")
    role = ROLES.get(role_code)
    if role is None:
        raise WitnessDropped("bad-role", f"role {role_code}")
    end = len(data)
    if flags & FLAG_MAC:
        if secret is None:
            raise WitnessDropped("mac-unexpected", "a MAC, but no --witness-secret here")
        end -= MAC_SIZE
        if end < _HEADER.size:
            raise WitnessDropped("short", "no room for the MAC")
        want = hmac.new(secret, data[:end], hashlib.sha256).digest()
        if not hmac.compare_digest(want, data[end:]):
            raise WitnessDropped("bad-mac")
    elif secret is not None:
        raise WitnessDropped("mac-missing", "no MAC, but --witness-secret is set")
    name_end = _HEADER.size + name_len
    tail = _DURATIONS.size if kind == KIND_ANSWER else _MCLT.size
    if name_len == 0 or name_end + tail != end:
        raise WitnessDropped("bad-length", f"name of {name_len} bytes in {end} bytes")
    try:
        name = data[_HEADER.size : name_end].decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessDropped("bad-name", "relationship name is not UTF-8") from None
    if kind == KIND_REQUEST:
        (mclt_s,) = _MCLT.unpack_from(data, name_end)
        return WitnessRequest(name, role, request_id, bool(flags & FLAG_WANT_PARTNER_DOWN), mclt_s)
    ticket_ms, grant_ms, hold_ms = _DURATIONS.unpack_from(data, name_end)
    return WitnessAnswer(
        name,
        role,
        request_id,
        ticket_ms,
        grant_ms,
        hold_ms,
        bool(flags & FLAG_PARTNER_ALIVE),
        bool(flags & FLAG_PARTNER_GRANTED),
    )


__all__ = [
    "MAX_DATAGRAM",
    "ROLES",
    "VERSION",
    "WitnessAnswer",
    "WitnessDropped",
    "WitnessRequest",
    "decode",
    "encode",
    "read_secret",
]
