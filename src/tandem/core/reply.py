"""Building reply packets: which options go in, in what order, and where the reply goes.

Option choice follows dhcpd's cons_options: the protocol options first (message type, server
identifier, lease time, T1, T2, message), then, when the client sent a parameter request list
(option 55), exactly the options it asked for in its order, plus the subnet mask for DISCOVER
and REQUEST; without a list, the subnet mask, routers, name servers and host name, then every
other configured option. An option that does not fit in the client's maximum message size is
left out and the next one is tried. Relay agent information (option 82) is echoed unchanged
at the end (RFC 3046 §2.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from tandem.core import codes
from tandem.core.scope import Values
from tandem.wire.dhcp import Packet

BROADCAST = IPv4Address("255.255.255.255")
ZERO = IPv4Address(0)
SERVER_PORT = 67
CLIENT_PORT = 68
_FIXED_OVERHEAD = 264  # BOOTP fixed fields (236) + IP and UDP headers (28), dhcpd DHCP_FIXED_LEN
_MIN_MTU = 576
_MAX_MTU = 1500
_NO_PRL_FIRST = (
    codes.SUBNET_MASK,
    codes.ROUTERS,
    codes.DOMAIN_NAME_SERVERS,
    codes.HOST_NAME,
    codes.FQDN,
)
_PROTOCOL_FIRST = (
    codes.MESSAGE_TYPE,
    codes.SERVER_IDENTIFIER,
    codes.LEASE_TIME,
    codes.RENEWAL_TIME,
    codes.REBINDING_TIME,
    codes.MESSAGE,
    codes.REQUESTED_ADDRESS,
    codes.ASSOCIATED_IP,
)


@dataclass(frozen=True, slots=True)
class SpaceInfo:
    """How options of an option space are encapsulated (code and length widths)."""

    code_width: int = 1
    length_width: int = 1


def encapsulate(options: dict[int, bytes], info: SpaceInfo) -> bytes:
    """Encode a sub-option space as code/length/value records."""
    out = bytearray()
    for code, data in options.items():
        out += code.to_bytes(info.code_width, "big")
        out += len(data).to_bytes(info.length_width, "big")
        out += data
    return bytes(out)


def dhcp_options(
    vals: Values,
    spaces: dict[str, SpaceInfo],
    encapsulations: dict[int, str],
) -> dict[int, bytes]:
    """The configured options to send, by DHCP code, with sub-spaces encapsulated.

    ``site-option-space`` options are sent with their own codes; ``vendor-option-space``
    options, unless option 43 is set directly, become option 43; spaces named in an
    ``encapsulate`` option definition become that option.
    """
    out: dict[int, bytes] = {}
    by_space: dict[str, dict[int, bytes]] = {}
    for (space, code), data in vals.options.items():
        if space == "dhcp":
            out[code] = data
        else:
            by_space.setdefault(space, {})[code] = data
    if not by_space:
        return out
    site = vals.text("site-option-space")
    if site and site in by_space:
        for code, data in by_space[site].items():
            out.setdefault(code, data)
    vendor = vals.text("vendor-option-space")
    if vendor and vendor in by_space and codes.VENDOR_ENCAPSULATED_OPTIONS not in out:
        out[codes.VENDOR_ENCAPSULATED_OPTIONS] = encapsulate(
            by_space[vendor], spaces.get(vendor, SpaceInfo())
        )
    for code, space in encapsulations.items():
        if space in by_space and code not in out:
            out[code] = encapsulate(by_space[space], spaces.get(space, SpaceInfo()))
    return out


def _wire_size(data: bytes) -> int:
    n = len(data)
    return n + 2 * max(1, -(-n // 255))  # RFC 3396: long options split in 255-byte pieces


def option_budget(request: Packet, *, bootp: bool) -> int:
    """Bytes available for options (after cookie and END), from the client's option 57."""
    if bootp:
        return 64 - 4 - 1
    mms = 0
    raw = request.options.get(codes.MAX_MESSAGE_SIZE)
    if raw is not None and len(raw) >= 2:
        mms = int.from_bytes(raw[:2], "big")
    mms = max(mms, _MIN_MTU)
    mms = min(mms, _MAX_MTU)
    return mms - _FIXED_OVERHEAD - 4 - 1


def select_options(
    available: dict[int, bytes],
    *,
    prl: bytes | None,
    msg_type: int | None,
    budget: int,
    client_sent_fqdn: bool,
    echo_client_id: bool,
    agent: bytes | None,
) -> dict[int, bytes]:
    """Order and trim ``available`` (code -> payload) the way dhcpd's cons_options does."""
    order: list[int] = list(_PROTOCOL_FIRST)
    if prl:
        if codes.SUBNET_SELECTION in available:
            order.append(codes.SUBNET_SELECTION)
        if echo_client_id:
            order.append(codes.CLIENT_IDENTIFIER)
        order.extend(c for c in prl if c != codes.RELAY_AGENT_INFORMATION)
        if client_sent_fqdn:
            order.append(codes.FQDN)
        if msg_type in (codes.DHCPDISCOVER, codes.DHCPREQUEST):
            order.append(codes.SUBNET_MASK)
    else:
        order.extend(_NO_PRL_FIRST)
        order.extend(c for c in available if c != codes.RELAY_AGENT_INFORMATION)
        order.append(codes.VENDOR_ENCAPSULATED_OPTIONS)
    if agent is not None:
        budget -= _wire_size(agent)
    out: dict[int, bytes] = {}
    get = available.get
    for code in order:
        data = get(code)
        if data is None or code in out or code in (codes.PAD, codes.END):
            continue
        n = len(data)
        size = n + 2 if n <= 255 else _wire_size(data)
        if size > budget:
            continue
        budget -= size
        out[code] = data
    if agent is not None:
        out[codes.RELAY_AGENT_INFORMATION] = agent
    return out


def destination(
    request: Packet, reply: Packet, *, nak: bool, ack: bool, inform: bool, src_ip: IPv4Address
) -> tuple[IPv4Address, int, bytes | None]:
    """(address, port, MAC for ARP-less unicast) per RFC 2131 §4.1 and dhcpd's dhcp_reply."""
    if int(request.giaddr):
        return request.giaddr, SERVER_PORT, None
    if nak:
        return BROADCAST, CLIENT_PORT, None
    bcast = bool(reply.flags & 0x8000)
    if inform:
        if int(request.ciaddr):
            return request.ciaddr, CLIENT_PORT, None
        if int(src_ip):
            return src_ip, CLIENT_PORT, None
        return BROADCAST, CLIENT_PORT, None
    # dhcpd: a RENEWING/REBINDING client (ciaddr, no server identifier, no broadcast bit) is
    # reached through the IP stack at ciaddr.
    if ack and int(request.ciaddr) and not bcast and codes.SERVER_IDENTIFIER not in request.options:
        return request.ciaddr, CLIENT_PORT, None
    if not bcast and int(reply.yiaddr):
        return reply.yiaddr, CLIENT_PORT, request.chaddr[: min(request.hlen, 16)]
    return BROADCAST, CLIENT_PORT, None


def text_field(value: str | None, size: int) -> bytes:
    """sname/file: the string, NUL-padded, truncated to the field (dhcpd truncates too)."""
    if not value:
        return bytes(size)
    raw = value.encode("utf-8", "surrogateescape")[:size]
    return raw + bytes(size - len(raw))
