"""The Tandem extension envelope: what two Tandem peers say beyond ISC's failover protocol.

It travels on the failover connection itself, as one failover message of type
``EXT_MESSAGE_TYPE`` (200, outside ISC's 1-12) with ISC's framing and header (payload offset
12) and one option, vendor-specific-options (29), holding the envelope::

    0   1   version          ENVELOPE_VERSION (1)
    1   1   flags            bit 0: a MAC follows the body
    2   8   sequence         the sender's counter on this connection, strictly increasing
    10  1   kind length      1..MAX_KIND
    11  k   kind             ASCII [a-z0-9-], e.g. "hello", "drift-digest"
    ..  2   body length      0..MAX_BODY
    ..  n   body             a JSON object, UTF-8
    ..  32  MAC              HMAC-SHA256 over every byte before it, with the session key

A whole message fits one failover frame (2048 bytes), so a body is at most ``MAX_BODY``
bytes; features chunk bigger data. A dhcpd peer never receives one: ISC drops a connection
on an unknown message type with options. Pure codec, no state; the session (hello, nonces,
keys, sequence numbers) is ``tandem.core.failover.ext``'s.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from tandem.wire.errors import WireError

__all__ = [
    "ENVELOPE_VERSION",
    "EXT_MESSAGE_TYPE",
    "MAX_BODY",
    "Envelope",
    "ExtDecodeError",
    "ExtEncodeError",
    "decode_body",
    "decode_envelope",
    "derive_key",
    "encode_body",
    "encode_ext",
    "is_ext_frame",
    "mac_ok",
]

EXT_MESSAGE_TYPE = 200
ENVELOPE_VERSION = 1
FLAG_MAC = 0x01
MAC_SIZE = 32
MAX_KIND = 32
VENDOR_OPTIONS = 29  #: failover option vendor-specific-options
_FRAME_MAX = 2048
_HEADER = struct.Struct("!HBBII")  # length, type, payload offset, time, xid
_OPT = struct.Struct("!HH")
_FIXED = struct.Struct("!BBQB")  # version, flags, sequence, kind length
_U16 = struct.Struct("!H")
#: Body bytes that always fit: 2048 - failover header - option header - envelope overhead.
MAX_BODY = _FRAME_MAX - _HEADER.size - _OPT.size - _FIXED.size - MAX_KIND - _U16.size - MAC_SIZE
_KIND = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
_KEY_LABEL = b"tandem-ext-1"


class ExtDecodeError(WireError):
    """An extension message that cannot be read; ``reason`` is a stable counter key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ExtEncodeError(ValueError):
    """A message we were asked to send is invalid (bad kind, body too big: chunk it)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """One decoded envelope; ``body`` is still bytes (decode it after the MAC check)."""

    seq: int
    kind: str
    body: bytes
    mac: bytes | None
    signed: bytes  #: the bytes the MAC covers


def is_ext_frame(frame: bytes) -> bool:
    """Is this whole failover frame (as ``FrameBuffer`` yields it) an extension message?"""
    return len(frame) > 2 and frame[2] == EXT_MESSAGE_TYPE


def derive_key(
    secret: bytes, sender_role: str, primary_nonce: bytes, secondary_nonce: bytes
) -> bytes:
    """The key for one direction of one connection: the secret, who sends, both nonces."""
    data = _KEY_LABEL + sender_role.encode("ascii") + b"\0" + primary_nonce + secondary_nonce
    return hmac.new(secret, data, hashlib.sha256).digest()


def encode_body(body: Mapping[str, object]) -> bytes:
    """A JSON object, compact and with sorted keys (so a digest of it is stable)."""
    try:
        text = json.dumps(dict(body), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ExtEncodeError(f"body is not plain JSON: {exc}") from None
    return text.encode("utf-8")


def decode_body(data: bytes) -> dict[str, object]:
    """The body's JSON object; raises ExtDecodeError("json"/"not-object")."""
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ExtDecodeError("json", f"body is not JSON: {str(exc)[:80]}") from None
    if not isinstance(value, dict):
        raise ExtDecodeError("not-object", "body is not a JSON object")
    return value


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def encode_ext(
    kind: str,
    seq: int,
    body: Mapping[str, object],
    *,
    time: int,
    key: bytes | None,
) -> bytes:
    """One whole failover frame carrying the envelope; raises ExtEncodeError."""
    if not 0 < len(kind) <= MAX_KIND or not _KIND.match(kind):
        raise ExtEncodeError(f"bad kind {kind!r}: 1-{MAX_KIND} of a-z, 0-9, -")
    if not 0 <= seq < 1 << 64:
        raise ExtEncodeError(f"sequence {seq} out of range")
    data = encode_body(body)
    if len(data) > MAX_BODY:
        raise ExtEncodeError(f"body of {len(data)} bytes exceeds {MAX_BODY}: chunk it")
    kb = kind.encode("ascii")
    env = bytearray(_FIXED.pack(ENVELOPE_VERSION, FLAG_MAC if key else 0, seq, len(kb)))
    env += kb
    env += _U16.pack(len(data))
    env += data
    if key:
        env += hmac.new(key, bytes(env), hashlib.sha256).digest()
    size = _HEADER.size + _OPT.size + len(env)
    out = bytearray(
        _HEADER.pack(size, EXT_MESSAGE_TYPE, _HEADER.size, time & 0xFFFFFFFF, seq & 0xFFFFFFFF)
    )
    out += _OPT.pack(VENDOR_OPTIONS, len(env))
    out += env
    return bytes(out)


def decode_envelope(frame: bytes) -> Envelope:
    """The envelope of one whole extension frame; raises ExtDecodeError only."""
    size = len(frame)
    if size < _HEADER.size:
        raise ExtDecodeError("short", f"{size} bytes")
    length, mtype, payoff, _time, _xid = _HEADER.unpack_from(frame, 0)
    if mtype != EXT_MESSAGE_TYPE:
        raise ExtDecodeError("not-ext", f"message type {mtype}")
    if length != size or not _HEADER.size <= payoff <= size:
        raise ExtDecodeError("length", f"length {length}, offset {payoff}, got {size}")
    env: bytes | None = None
    pos = payoff
    while pos < size:
        if pos + _OPT.size > size:
            raise ExtDecodeError("length", "option header overruns the message")
        code, olen = _OPT.unpack_from(frame, pos)
        pos += _OPT.size
        if pos + olen > size:
            raise ExtDecodeError("length", f"option {code} overruns the message")
        if code == VENDOR_OPTIONS:
            if env is not None:
                raise ExtDecodeError("duplicate", "two envelopes in one message")
            env = frame[pos : pos + olen]
        pos += olen
    if env is None:
        raise ExtDecodeError("no-envelope", "no vendor-specific-options option")
    return _envelope(env)


def _envelope(env: bytes) -> Envelope:
    if len(env) < _FIXED.size:
        raise ExtDecodeError("short", f"envelope of {len(env)} bytes")
    version, flags, seq, klen = _FIXED.unpack_from(env, 0)
    if version != ENVELOPE_VERSION:
        raise ExtDecodeError("version", f"envelope version {version}, expected {ENVELOPE_VERSION}")
    if flags & ~FLAG_MAC:
        raise ExtDecodeError("flags", f"unknown flags 0x{flags:02x}")
    pos = _FIXED.size
    if not 0 < klen <= MAX_KIND or pos + klen + _U16.size > len(env):
        raise ExtDecodeError("kind", f"kind length {klen}")
    kind_bytes = env[pos : pos + klen]
    kind = kind_bytes.decode("ascii", "replace")
    if not _KIND.match(kind):
        raise ExtDecodeError("kind", f"bad kind {kind_bytes!r}")
    pos += klen
    (blen,) = _U16.unpack_from(env, pos)
    pos += _U16.size
    if blen > MAX_BODY:
        raise ExtDecodeError("oversize", f"body of {blen} bytes exceeds {MAX_BODY}")
    end = pos + blen
    mac_size = MAC_SIZE if flags & FLAG_MAC else 0
    if end + mac_size != len(env):
        raise ExtDecodeError("length", f"body {blen} + MAC {mac_size} != {len(env) - pos}")
    return Envelope(
        seq=seq,
        kind=kind,
        body=env[pos:end],
        mac=env[end:] if mac_size else None,
        signed=env[:end],
    )


def mac_ok(envelope: Envelope, key: bytes) -> bool:
    """Does the envelope carry the right MAC for ``key`` (constant-time compare)?"""
    if envelope.mac is None:
        return False
    want = hmac.new(key, envelope.signed, hashlib.sha256).digest()
    return hmac.compare_digest(want, envelope.mac)
