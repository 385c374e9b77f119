"""BNDUPD/BNDACK on the hot path: a flat record and precompiled encoders/decoders.

A fresh pair balancing a 60,000-address pool exchanges 30,000 BNDUPD/BNDACK pairs, so the
generic ``tandem.wire.failover`` Message (a validated mapping per message) costs more than
all the lease work together. This module produces byte-identical output for the two
binding messages (the tests compare it with ``encode_message(build_bndupd(...))``) and
decodes them into a flat :class:`Binding`. The fast decoder only accepts what it fully
understands: any other option, a duplicate, a wrong size or a payload offset other than 12
falls back to ``decode_message``, so ISC's receive rules (skips, protocol errors) are applied
by exactly one implementation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

from tandem.wire.failover import (
    HEADER_SIZE,
    MAX_MESSAGE_SIZE,
    FailoverEncodeError,
    Message,
    MessageType,
    OptionCode,
    decode_message,
)

_HDR = struct.Struct("!HBBII")
_OPT = struct.Struct("!HH")
_IP = struct.Struct("!HHI")  # code, len=4, address
_U8 = struct.Struct("!HHB")
_U16 = struct.Struct("!HHH")
_U32 = struct.Struct("!HHI")
_TIMES = struct.Struct("!HHIHHIHHI")  # 13, 18, 25 in one go
_RD_U32 = struct.Struct("!I")
_RD_U16 = struct.Struct("!H")

_BNDUPD = MessageType.BNDUPD
_BNDACK = MessageType.BNDACK
_O = OptionCode

#: code -> fixed size (0 = variable); only these codes take the fast path.
_FAST_BNDUPD = {2: 4, 3: 1, 4: 0, 5: 0, 6: 4, 12: 2, 13: 4, 18: 4, 25: 4}
_FAST_BNDACK = {**_FAST_BNDUPD, 21: 1, 16: 0}


@dataclass(slots=True)
class Binding:
    """The binding options of one BNDUPD/BNDACK; ``None`` = option absent."""

    type: int
    time: int
    xid: int
    address: int | None = None
    status: int | None = None
    uid: bytes | None = None
    chaddr: bytes | None = None  # htype byte + hardware address
    cltt: int | None = None
    flags: int | None = None
    ends: int | None = None
    potential: int | None = None
    stos: int | None = None
    reject: int | None = None
    message: str | None = None


def encode_bndupd(
    *,
    time: int,
    xid: int,
    address: int,
    status: int,
    uid: bytes | None,
    chaddr: bytes | None,
    ends: int,
    potential: int,
    stos: int,
    cltt: int | None,
    flags: int,
) -> bytes:
    """BNDUPD in ISC's option order: 2, 3, [4], [5], 13, 18, 25, [6 if cltt], [12 if flags]."""
    if xid == 0:
        raise FailoverEncodeError("ISC never uses xid 0 for a BNDUPD")
    parts = [b"", _IP.pack(2, 4, address), _U8.pack(3, 1, status)]
    if uid is not None:
        parts.append(_OPT.pack(4, len(uid)) + uid)
    if chaddr is not None:
        parts.append(_OPT.pack(5, len(chaddr)) + chaddr)
    try:
        parts.append(_TIMES.pack(13, 4, ends, 18, 4, potential, 25, 4, stos))
        if cltt:
            parts.append(_U32.pack(6, 4, cltt))
        if flags:
            parts.append(_U16.pack(12, 2, flags))
        size = HEADER_SIZE + sum(len(p) for p in parts)
        if size > MAX_MESSAGE_SIZE:
            raise FailoverEncodeError(f"BNDUPD of {size} bytes exceeds {MAX_MESSAGE_SIZE}")
        parts[0] = _HDR.pack(size, _BNDUPD, HEADER_SIZE, time, xid)
    except struct.error as exc:
        raise FailoverEncodeError(f"BNDUPD field out of range: {exc}") from None
    return b"".join(parts)


def encode_bndack(
    *, time: int, xid: int, address: int, reject: tuple[int, str] | None = None
) -> bytes:
    """Minimal BNDACK (G11): assigned-IP-address, plus reject-reason and message."""
    body = _IP.pack(2, 4, address)
    if reject is not None:
        text = reject[1].encode("utf-8", "surrogateescape")[:1024]
        body += _U8.pack(21, 1, reject[0]) + _OPT.pack(16, len(text)) + text
    return _HDR.pack(HEADER_SIZE + len(body), _BNDACK, HEADER_SIZE, time, xid) + body


def decode_binding(data: bytes) -> Binding | Message:
    """A BNDUPD/BNDACK as a Binding; any other message as a decoded Message.

    Raises only ``FailoverProtocolError`` (from the generic decoder) on a bad message.
    """
    size = len(data)
    if size >= HEADER_SIZE:
        length, mtype, payoff, mtime, xid = _HDR.unpack_from(data, 0)
        if mtype in (_BNDUPD, _BNDACK) and payoff == HEADER_SIZE and length == size:
            fast = _decode_fast(data, mtype, mtime, xid)
            if fast is not None:
                return fast
    msg = decode_message(data)
    if msg.type in (_BNDUPD, _BNDACK):
        return binding_from_message(msg)
    return msg


def _decode_fast(data: bytes, mtype: int, mtime: int, xid: int) -> Binding | None:
    sizes = _FAST_BNDUPD if mtype == _BNDUPD else _FAST_BNDACK
    b = Binding(mtype, mtime, xid)
    seen = 0
    pos = HEADER_SIZE
    end = len(data)
    while pos < end:
        if pos + 4 > end:
            return None
        code, olen = _OPT.unpack_from(data, pos)
        pos += 4
        stop = pos + olen
        fixed = sizes.get(code)
        bit = 1 << code
        if fixed is None or stop > end or seen & bit or (fixed and olen != fixed):
            return None  # let the generic decoder apply ISC's rules (or raise)
        seen |= bit
        if code == 2:
            b.address = _RD_U32.unpack_from(data, pos)[0]
        elif code == 3:
            b.status = data[pos]
        elif code == 4:
            b.uid = data[pos:stop]
        elif code == 5:
            b.chaddr = data[pos:stop]
        elif code == 6:
            b.cltt = _RD_U32.unpack_from(data, pos)[0]
        elif code == 12:
            b.flags = _RD_U16.unpack_from(data, pos)[0]
        elif code == 13:
            b.ends = _RD_U32.unpack_from(data, pos)[0]
        elif code == 18:
            b.potential = _RD_U32.unpack_from(data, pos)[0]
        elif code == 25:
            b.stos = _RD_U32.unpack_from(data, pos)[0]
        elif code == 21:
            b.reject = data[pos]
        else:  # 16
            b.message = data[pos:stop].decode("utf-8", "surrogateescape")
        pos = stop
    return b


def binding_from_message(msg: Message) -> Binding:
    """The slow path's result in the fast path's shape."""
    addr = msg.assigned_address
    return Binding(
        int(msg.type),
        msg.time,
        msg.xid,
        address=int(addr) if isinstance(addr, IPv4Address) else None,
        status=msg.binding_status,
        uid=msg.client_identifier,
        chaddr=msg.chaddr,
        cltt=msg.cltt,
        flags=msg.ip_flags,
        ends=msg.lease_expiration,
        potential=msg.potential_expiration,
        stos=msg.stos,
        reject=msg.reject_reason,
        message=msg.message_text,
    )
