"""BOOTP/DHCPv4 packets: decode and encode (RFC 951, 2131, 2132, 3046, 3396).

Options stay raw (``dict[int, bytes]``): the server interprets the few it
needs through the properties below or :mod:`tandem.wire.optformat`, and every
option it does not know, or must echo (82), survives byte for byte.

Decoding rules (each failure is a :class:`MalformedPacket` with a stable
``reason``):

* fewer than 236 octets: "short-header". 237-239 octets: "bad-cookie" (a
  truncated cookie). Exactly 236, or no DHCP magic cookie: a BOOTP packet
  without options (valid, ``options`` empty; the vendor area is ignored).
* hlen > 16: "hlen-too-big" (dhcpd discards those too).
* every option length is checked against the end of its area:
  "option-overrun". Options repeated in one packet are concatenated in wire
  order (RFC 3396); PAD is skipped, END stops an area, a missing END is
  tolerated.
* option 52 must be one octet of value 1-3 ("bad-overload"); it is followed
  once, into ``file`` then ``sname`` (RFC 3396 order). A 52 inside
  file/sname is "overload-loop". The consumed area reads back as zeros in
  ``file``/``sname`` and 52 itself is removed from ``options``: it describes
  this packet's layout, and :func:`encode` recomputes it.
* option 61 of length 0: "zero-length-client-id" (CVE-2012-3571).
* option 57 must be two octets ("bad-max-message-size"); a value below 576 is
  accepted and :attr:`Packet.max_message_size` clamps it to 576
  (CVE-2007-5365: never let it shrink a buffer below the IP minimum).
* an empty option 12 (host-name) is dropped, as dhcpd does.
* option 82 is kept raw, so the reply can echo it unchanged.

Encoding (:func:`encode`): 53 first, then 54, then the other options in dict
order, 82 last (RFC 3046 2.1). Values over 255 octets become several
instances (RFC 3396). The budget is ``max_size`` minus 28 octets of IP+UDP
(548 DHCP octets at 576); option 82 does not count against it, because the
relay strips it before the client sees the packet (dhcpd does the same, so
echoing 82 never costs the client an option). What does not fit goes into
``file`` then ``sname`` through option 52 (only if that field is empty);
what still does not fit is dropped, lowest priority (latest) first. The
result is zero-padded to 300 octets (the BOOTP minimum, as dhcpd does).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from mypy_extensions import mypyc_attr

from tandem.wire.errors import FormatError, MalformedPacket
from tandem.wire.ipudp import build_ethernet, build_ip_udp, decode_ip_udp
from tandem.wire.options import OVERLOAD as _OVERLOAD
from tandem.wire.options import RELAY_AGENT_INFO as _AGENT

__all__ = [
    "BOOTP_MIN_LEN",
    "MAGIC_COOKIE",
    "Packet",
    "build_ethernet",
    "build_ip_udp",
    "decode",
    "decode_ip_udp",
    "encode",
    "ipv4",
]

_HEADER = struct.Struct("!BBBBIHHIIII16s64s128s")
HEADER_LEN = _HEADER.size  # 236
MAGIC_COOKIE = b"\x63\x82\x53\x63"
BOOTP_MIN_LEN = 300
MIN_MESSAGE_SIZE = 576
IP_UDP_OVERHEAD = 28
MAX_OPTION_AREA = 1500 - IP_UDP_OVERHEAD - HEADER_LEN  # dhcpd's DHCP_MAX_OPTION_LEN
BROADCAST_FLAG = 0x8000

_ADDR_CACHE_MAX = 1 << 16
_MAX_IPV4 = 0xFFFFFFFF


@mypyc_attr(native_class=False)
class _Address(IPv4Address):
    """An IPv4Address that remembers its dotted-quad text.

    The hot path prints the same few addresses again and again (log lines, ``sendto``
    destinations, lease records) and ``IPv4Address.__str__`` rebuilds the text every time
    (about 0.5 µs); the interned instances from :func:`ipv4` pay for it once. Equal to,
    hashed like and usable wherever an ``IPv4Address`` is.
    """

    # A Python class even where mypyc compiles this module (scripts/build_native.py): it
    # extends one. Hence no __slots__ either, which mypyc refuses there; the instances are
    # interned and bounded (_ADDR_CACHE_MAX).

    def __init__(self, address: int) -> None:
        super().__init__(address)
        self._text: str | None = None
        self._packed: bytes | None = None

    @property
    def packed(self) -> bytes:
        packed = self._packed
        if packed is None:
            packed = self._packed = super().packed
        return packed

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = self._text = super().__str__()
        return text

    def __format__(self, fmt: str) -> str:
        if fmt:
            return super().__format__(fmt)
        text = self._text
        return text if text is not None else self.__str__()

    def __repr__(self) -> str:
        return f"IPv4Address('{self.__str__()}')"


_addr_cache: dict[int, IPv4Address] = {}


def ipv4(value: int | bytes) -> IPv4Address:
    """The interned IPv4Address for an int or 4 packed octets (ValueError otherwise).

    Memoised (bounded): packets and leases keep naming the same addresses, and an interned
    instance formats itself once (see ``_Address``).
    """
    if type(value) is not int:
        if not isinstance(value, bytes | bytearray) or len(value) != 4:
            raise ValueError(f"not an IPv4 address: {value!r}")
        value = int.from_bytes(value, "big")
    a = _addr_cache.get(value)
    if a is None:
        if not 0 <= value <= _MAX_IPV4:
            raise ValueError(f"not an IPv4 address: {value!r}")
        if len(_addr_cache) >= _ADDR_CACHE_MAX:
            _addr_cache.clear()
        a = _addr_cache[value] = _Address(value)
    return a


_ZERO = ipv4(0)
_ZERO_FILE = bytes(128)
_ZERO_SNAME = bytes(64)


def _addr(value: int) -> IPv4Address:
    """IPv4Address for an unpacked header field (always in range)."""
    a = _addr_cache.get(value)
    return a if a is not None else ipv4(value)


@dataclass(slots=True)
class Packet:
    """One BOOTP/DHCP message. See the module docstring for the decode rules."""

    op: int
    htype: int
    hlen: int
    hops: int
    xid: int
    secs: int
    flags: int
    ciaddr: IPv4Address
    yiaddr: IPv4Address
    siaddr: IPv4Address
    giaddr: IPv4Address
    chaddr: bytes  # the whole 16-octet field as received
    sname: bytes = _ZERO_SNAME  # 64 octets; zeros where option overload used it
    file: bytes = _ZERO_FILE  # 128 octets; zeros where option overload used it
    options: dict[int, bytes] = field(default_factory=dict)  # wire order, parts joined

    @property
    def message_type(self) -> int | None:
        v = self.options.get(53)
        return v[0] if v is not None and len(v) == 1 else None

    @property
    def hwaddr(self) -> bytes:
        return self.chaddr[: self.hlen]

    @property
    def broadcast(self) -> bool:
        return bool(self.flags & BROADCAST_FLAG)

    @property
    def client_id(self) -> bytes | None:
        return self.options.get(61)

    @property
    def requested_address(self) -> IPv4Address | None:
        v = self.options.get(50)
        return IPv4Address(v) if v is not None and len(v) == 4 else None

    @property
    def server_identifier(self) -> IPv4Address | None:
        v = self.options.get(54)
        return IPv4Address(v) if v is not None and len(v) == 4 else None

    @property
    def max_message_size(self) -> int:
        """Option 57, clamped to at least 576 (RFC 2132 9.10); 576 when absent."""
        v = self.options.get(57)
        if v is None or len(v) != 2:
            return MIN_MESSAGE_SIZE
        return max(MIN_MESSAGE_SIZE, (v[0] << 8) | v[1])

    @property
    def parameter_request_list(self) -> bytes:
        return self.options.get(55, b"")

    @property
    def is_bootp(self) -> bool:
        """No option 53: a BOOTP client (RFC 1534), possibly without a cookie."""
        return 53 not in self.options


def _walk(data: bytes, pos: int, end: int, opts: dict[int, bytes], area: str) -> None:
    """Collect the options of one area into ``opts`` (RFC 3396 concatenation)."""
    while pos < end:
        code = data[pos]
        if code == 0:
            pos += 1
            continue
        if code == 255:
            return
        if pos + 1 >= end:
            raise MalformedPacket("option-overrun", f"option {code} has no length in {area}")
        nxt = pos + 2 + data[pos + 1]
        if nxt > end:
            raise MalformedPacket(
                "option-overrun", f"option {code} runs {nxt - end} octets past the {area} end"
            )
        old = opts.get(code)
        opts[code] = data[pos + 2 : nxt] if old is None else old + data[pos + 2 : nxt]
        pos = nxt


def decode(data: bytes) -> Packet:
    """Parse a UDP payload into a :class:`Packet`; raises only :class:`MalformedPacket`."""
    if type(data) is not bytes:
        data = bytes(data)
    n = len(data)
    if n < HEADER_LEN:
        raise MalformedPacket("short-header", f"{n} octets, a BOOTP header needs 236")
    (op, htype, hlen, hops, xid, secs, flags, ci, yi, si, gi, chaddr, sname, file) = (
        _HEADER.unpack_from(data, 0)
    )
    if hlen > 16:
        raise MalformedPacket("hlen-too-big", f"hlen {hlen} exceeds the 16-octet chaddr")
    opts: dict[int, bytes] = {}
    if n > HEADER_LEN:
        if n < HEADER_LEN + 4:
            raise MalformedPacket("bad-cookie", "truncated magic cookie")
        if data[HEADER_LEN : HEADER_LEN + 4] == MAGIC_COOKIE:
            _walk(data, HEADER_LEN + 4, n, opts, "options")
            overload = opts.pop(_OVERLOAD, None)
            if overload is not None:
                if len(overload) != 1 or not 1 <= overload[0] <= 3:
                    raise MalformedPacket("bad-overload", f"option 52 value {overload.hex()}")
                if overload[0] & 1:
                    _walk(file, 0, 128, opts, "file")
                    file = _ZERO_FILE
                if overload[0] & 2:
                    _walk(sname, 0, 64, opts, "sname")
                    sname = _ZERO_SNAME
                if _OVERLOAD in opts:
                    raise MalformedPacket("overload-loop", "option 52 inside file/sname")
            if opts:
                _check(opts)
    return Packet(
        op,
        htype,
        hlen,
        hops,
        xid,
        secs,
        flags,
        _addr(ci),
        _addr(yi),
        _addr(si),
        _addr(gi),
        chaddr,
        sname,
        file,
        opts,
    )


def _check(opts: dict[int, bytes]) -> None:
    cid = opts.get(61)
    if cid is not None and not cid:
        raise MalformedPacket("zero-length-client-id", "option 61 with length 0")
    mms = opts.get(57)
    if mms is not None and len(mms) != 2:
        raise MalformedPacket("bad-max-message-size", f"option 57 of length {len(mms)}")
    host = opts.get(12)
    if host is not None and not host:
        del opts[12]


def _tlv(code: int, value: bytes) -> bytes:
    """One option, split into 255-octet instances if longer (RFC 3396)."""
    n = len(value)
    if n <= 255:
        return bytes((code, n)) + value
    parts = []
    for i in range(0, n, 255):
        chunk = value[i : i + 255]
        parts.append(bytes((code, len(chunk))) + chunk)
    return b"".join(parts)


def _ordered(options: dict[int, bytes]) -> list[bytes]:
    out: list[bytes] = []
    v = options.get(53)
    if v is not None:
        out.append(_tlv(53, v))
    v = options.get(54)
    if v is not None:
        out.append(_tlv(54, v))
    for code, value in options.items():
        if code in (53, 54, _OVERLOAD, _AGENT):
            continue
        if not 1 <= code <= 254:
            raise FormatError(f"option code {code} cannot be encoded")
        out.append(_tlv(code, value))
    return out


_Body = tuple[list[bytes], bytes, int]
_BODY_MEMO_MAX = 1024
_body_memo: dict[tuple[tuple[int, bytes], ...], _Body] = {}


def _encoded(options: dict[int, bytes]) -> _Body:
    """(TLVs in priority order, their concatenation, its length), option 82 left out.

    Memoised by the options themselves: a server's replies repeat a few option sets
    (the same scope, lease time and server identifier for every client), so most
    replies skip the per-option work. A set that cannot be a key (an unhashable value)
    is encoded every time.
    """
    if _AGENT in options:
        key = tuple([kv for kv in options.items() if kv[0] != _AGENT])
    else:
        key = tuple(options.items())
    try:
        hit = _body_memo.get(key)
    except TypeError:
        items = _ordered(options)
        body = b"".join(items)
        return items, body, len(body)
    if hit is not None:
        return hit
    items = _ordered(options)
    body = b"".join(items)
    if len(_body_memo) >= _BODY_MEMO_MAX:
        _body_memo.clear()
    hit = _body_memo[key] = (items, body, len(body))
    return hit


def _fill(items: list[bytes], rooms: list[int]) -> list[list[bytes]]:
    """First fit in priority order; an option that fits nowhere is dropped."""
    areas: list[list[bytes]] = [[] for _ in rooms]
    left = list(rooms)
    for item in items:
        size = len(item)
        for k, room in enumerate(left):
            if size <= room:
                areas[k].append(item)
                left[k] = room - size
                break
    return areas


def _field(value: bytes, size: int, name: str) -> bytes:
    n = len(value)
    if n == size:
        return value
    if n > size:
        raise FormatError(f"{name} is {n} octets, the field holds {size}")
    return value + bytes(size - n)


def encode(p: Packet, *, max_size: int = MIN_MESSAGE_SIZE) -> bytes:
    """Serialise ``p`` as a UDP payload that fits in an IP datagram of ``max_size``.

    ``max_size`` below 576 is raised to 576. Raises :class:`FormatError` for
    fields that cannot be represented (oversized chaddr/sname/file, option
    codes outside 1-254).
    """
    chaddr = p.chaddr
    if len(chaddr) != 16:
        chaddr = _field(chaddr, 16, "chaddr")
    sname = p.sname
    if len(sname) != 64:
        sname = _field(sname, 64, "sname")
    file = p.file
    if len(file) != 128:
        file = _field(file, 128, "file")
    try:
        header = _HEADER.pack(
            p.op,
            p.htype,
            p.hlen,
            p.hops,
            p.xid,
            p.secs,
            p.flags,
            int(p.ciaddr),
            int(p.yiaddr),
            int(p.siaddr),
            int(p.giaddr),
            chaddr,
            sname,
            file,
        )
    except struct.error as exc:
        raise FormatError(f"header field out of range: {exc}") from exc
    options = p.options
    if not options:
        # BOOTP reply with an empty vendor area: cookie and END, as dhcpd sends.
        out = header + MAGIC_COOKIE + b"\xff"
        return out + bytes(BOOTP_MIN_LEN - len(out))

    area = max(max_size, MIN_MESSAGE_SIZE) - IP_UDP_OVERHEAD - HEADER_LEN
    # Option 82 may grow the options field up to a 1500-octet datagram (or up
    # to max_size when that is larger); beyond that it eats the client's room.
    limit = max(area, MAX_OPTION_AREA)
    items, joined, total = _encoded(options)
    agent_value = options.get(_AGENT)
    agent = _tlv(_AGENT, agent_value) if agent_value is not None else b""
    if len(agent) > limit - 4 - 1 - 3:
        agent = b""  # cannot be echoed at all; dhcpd logs and drops it too
    room = min(area, limit - len(agent)) - 4 - 1  # cookie, END
    if total <= room:
        body = joined
    else:
        file_free = file == _ZERO_FILE
        sname_free = sname == _ZERO_SNAME
        body = b""
        overload = 0
        if file_free or sname_free:
            rooms = [room - 3, 127 if file_free else 0, 63 if sname_free else 0]
            main, in_file, in_sname = _fill(items, rooms)
            if in_file or in_sname:
                if in_file:
                    overload |= 1
                    blob = b"".join(in_file) + b"\xff"
                    file = blob + bytes(128 - len(blob))
                if in_sname:
                    overload |= 2
                    blob = b"".join(in_sname) + b"\xff"
                    sname = blob + bytes(64 - len(blob))
                body = b"".join(main) + bytes((_OVERLOAD, 1, overload))
                header = header[:44] + sname + file
        if not overload:
            body = b"".join(_fill(items, [room])[0])
    out = header + MAGIC_COOKIE + body + agent + b"\xff"
    if len(out) < BOOTP_MIN_LEN:
        out += bytes(BOOTP_MIN_LEN - len(out))
    return out
