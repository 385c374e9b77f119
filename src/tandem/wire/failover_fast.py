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
    decode_message,
)
from tandem.wire.failover_codes import MessageType, OptionCode

_HDR = struct.Struct("!HBBII")
_OPT = struct.Struct("!HH")
_IP = struct.Struct("!HHI")  # code, len=4, address
_U8 = struct.Struct("!HHB")
_U16 = struct.Struct("!HHH")
_U32 = struct.Struct("!HHI")
_TIMES = struct.Struct("!HHIHHIHHI")  # 13, 18, 25 in one go
_RD_U32 = struct.Struct("!I")
_RD_U16 = struct.Struct("!H")
_UPD_HEAD = struct.Struct("!HBBIIHHIHHB")  # header, option 2 (address), option 3 (status)
_ACK = struct.Struct("!HBBIIHHI")  # header, option 2: an accepted BNDACK whole
_FIXED_BNDUPD = _UPD_HEAD.size + _TIMES.size  # header, options 2, 3, 13, 18, 25
_ACK_SIZE = _ACK.size

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
    """BNDUPD in ISC's option order: 2, 3, [4], [5], 13, 18, 25, [6 if cltt], [12 if flags].

    One BNDUPD per lease the primary hands out: the header and options 2 and 3 are one
    precompiled pack, the three times another, and the size is added up, not measured.
    """
    if xid == 0:
        raise FailoverEncodeError("ISC never uses xid 0 for a BNDUPD")
    size = _FIXED_BNDUPD
    if uid is not None:
        size += 4 + len(uid)
    if chaddr is not None:
        size += 4 + len(chaddr)
    if cltt:
        size += 8
    if flags:
        size += 6
    if size > MAX_MESSAGE_SIZE:
        raise FailoverEncodeError(f"BNDUPD of {size} bytes exceeds {MAX_MESSAGE_SIZE}")
    try:
        out = _UPD_HEAD.pack(size, _BNDUPD, HEADER_SIZE, time, xid, 2, 4, address, 3, 1, status)
        if uid is not None:
            out += _OPT.pack(4, len(uid)) + uid
        if chaddr is not None:
            out += _OPT.pack(5, len(chaddr)) + chaddr
        out += _TIMES.pack(13, 4, ends, 18, 4, potential, 25, 4, stos)
        if cltt:
            out += _U32.pack(6, 4, cltt)
        if flags:
            out += _U16.pack(12, 2, flags)
    except struct.error as exc:
        raise FailoverEncodeError(f"BNDUPD field out of range: {exc}") from None
    return out


def encode_bndack(
    *, time: int, xid: int, address: int, reject: tuple[int, str] | None = None
) -> bytes:
    """Minimal BNDACK (G11): assigned-IP-address, plus reject-reason and message."""
    if reject is None:
        return _ACK.pack(_ACK_SIZE, _BNDACK, HEADER_SIZE, time, xid, 2, 4, address)
    body = _IP.pack(2, 4, address)
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
        if payoff == HEADER_SIZE and length == size:
            if mtype == _BNDUPD:
                fast = _decode_fast(data, mtype, mtime, xid, _SIZES_BNDUPD)
            elif mtype == _BNDACK:
                fast = _decode_fast(data, mtype, mtime, xid, _SIZES_BNDACK)
            else:
                fast = None
            if fast is not None:
                return fast
    msg = decode_message(data)
    if msg.type in (_BNDUPD, _BNDACK):
        return binding_from_message(msg)
    return msg


def _table(sizes: dict[int, int]) -> tuple[int, ...]:
    """code -> fixed size (0: variable, -1: not on the fast path), as a tuple by code."""
    return tuple(sizes.get(code, -1) for code in range(_CODES))


_CODES = 32
_OPT2_TAG = b"\x00\x02\x00\x04"  # assigned-IP-address, 4 bytes
_OPT2_END = HEADER_SIZE + 4
_OPT3 = struct.Struct("!HHB")
_PREFIX_END = _OPT2_END + 4 + _OPT3.size  # header, option 2, option 3 (25)
_SEEN_2_3 = (1 << 2) | (1 << 3)
_SIZES_BNDUPD = _table(_FAST_BNDUPD)
_SIZES_BNDACK = _table(_FAST_BNDACK)


def _decode_fast(
    data: bytes, mtype: int, mtime: int, xid: int, sizes: tuple[int, ...]
) -> Binding | None:
    """Options into a Binding, or None for anything the generic decoder must judge.

    What Tandem and ISC send first (option 2, then option 3 in a BNDUPD) is read with one
    unpack; an accepted BNDACK is nothing else. The loop handles the rest, and anything
    unexpected (order, sizes) simply takes the loop from the start.
    """
    end = len(data)
    if end >= _ACK_SIZE and data[HEADER_SIZE:_OPT2_END] == _OPT2_TAG:
        address = _RD_U32.unpack_from(data, _OPT2_END)[0]
        if end == _ACK_SIZE:  # option 2 alone: an accepted BNDACK
            return Binding(mtype, mtime, xid, address)
        if end >= _PREFIX_END:
            code3, len3, status = _OPT3.unpack_from(data, _ACK_SIZE)
            if code3 == 3 and len3 == 1:
                b = Binding(mtype, mtime, xid, address, status)
                return _decode_options(b, data, _PREFIX_END, sizes, _SEEN_2_3)
    return _decode_options(Binding(mtype, mtime, xid), data, HEADER_SIZE, sizes, 0)


def _decode_options(
    b: Binding, data: bytes, pos: int, sizes: tuple[int, ...], seen: int
) -> Binding | None:
    opt = _OPT.unpack_from
    u32 = _RD_U32.unpack_from
    end = len(data)
    while pos < end:
        if pos + 4 > end:
            return None
        code, olen = opt(data, pos)
        pos += 4
        stop = pos + olen
        if code >= _CODES or stop > end:
            return None
        fixed = sizes[code]
        bit = 1 << code
        if fixed < 0 or seen & bit or (fixed and olen != fixed):
            return None  # let the generic decoder apply ISC's rules (or raise)
        seen |= bit
        if code == 2:
            b.address = u32(data, pos)[0]
        elif code == 3:
            b.status = data[pos]
        elif code == 13:
            b.ends = u32(data, pos)[0]
        elif code == 18:
            b.potential = u32(data, pos)[0]
        elif code == 25:
            b.stos = u32(data, pos)[0]
        elif code == 5:
            b.chaddr = data[pos:stop]
        elif code == 4:
            b.uid = data[pos:stop]
        elif code == 6:
            b.cltt = u32(data, pos)[0]
        elif code == 12:
            b.flags = _RD_U16.unpack_from(data, pos)[0]
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
