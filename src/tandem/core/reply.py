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

from dataclasses import dataclass, field
from ipaddress import IPv4Address

from tandem.core import codes
from tandem.core.scope import Values
from tandem.wire.dhcp import Packet, ipv4

BROADCAST = ipv4(0xFFFFFFFF)
ZERO = ipv4(0)
DEFAULT_LEASE_TIME = 43200  # dhcpd DEFAULT_DEFAULT_LEASE_TIME
MAX_LEASE_TIME = 86400  # dhcpd DEFAULT_MAX_LEASE_TIME
MIN_LEASE_TIME = 300  # dhcpd DEFAULT_MIN_LEASE_TIME: the floor without min-lease-time
SERVER_PORT = 67
CLIENT_PORT = 68
_FIXED_OVERHEAD = 264  # BOOTP fixed fields (236) + IP and UDP headers (28), dhcpd DHCP_FIXED_LEN
INFINITE_LEASE = 0xFFFFFFFF
_MIN_MTU = 576
_MAX_MTU = 1500
_NO_PRL_FIRST = (
    codes.SUBNET_MASK,
    codes.ROUTERS,
    codes.DOMAIN_NAME_SERVERS,
    codes.HOST_NAME,
    codes.FQDN,
)
_ADMISSION = ("unknown-clients", "bootp", "booting")
_LEASE_TIMES = (codes.LEASE_TIME, codes.RENEWAL_TIME, codes.REBINDING_TIME)
_MEMO_MAX = 512
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


# --- reply plans -----------------------------------------------------------------------------

MemoKey = tuple[object, ...]


@dataclass(eq=False, slots=True)
class ReplyPlan:
    """Everything a reply takes from its scope's ``Values``, looked up once.

    For shared (precomputed, read-only) values the plan is built once and kept on the
    ``Values``, so the per-packet work is the per-client part only; the chosen option set
    of the common reply (no host name, no echoed client id, no extra options) is memoised
    by everything it depends on. For per-packet values a plan is built per packet: the same
    lookups the reply needs anyway.
    """

    options: dict[int, bytes]  # configured options by DHCP code, sub-spaces encapsulated
    server_id: IPv4Address | None  # server-identifier / option 54 if configured
    default_lease_time: int
    max_lease_time: int | None
    min_lease_time: int
    use_host_decl_names: bool
    echo_client_id: bool
    always_broadcast: bool
    siaddr: IPv4Address
    sname: bytes
    file: bytes
    prl: bytes | None  # option 55 set in the configuration (overrides the client's)
    shared: bool
    admits_all: bool  # unknown-clients, bootp and booting all allowed (dhcpd's defaults)
    one_lease_per_client: bool
    memo: dict[MemoKey, dict[int, bytes]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, vals: Values, spaces: dict[str, SpaceInfo], encapsulations: dict[int, str]
    ) -> ReplyPlan:
        sid = vals.address("server-identifier")
        if sid is None:
            raw = vals.options.get(("dhcp", codes.SERVER_IDENTIFIER))
            if raw is not None and len(raw) == 4:
                sid = ipv4(raw)
        default = vals.integer("default-lease-time", DEFAULT_LEASE_TIME)
        maximum = vals.integer("max-lease-time", MAX_LEASE_TIME)
        # ack_lease: the floor is DEFAULT_MIN_LEASE_TIME, lowered to max-lease-time when that is
        # smaller, unless min-lease-time is set (then as set, even above the maximum).
        minimum = vals.integer("min-lease-time")
        if minimum is None:
            minimum = MIN_LEASE_TIME if maximum is None else min(MIN_LEASE_TIME, maximum)
        return cls(
            options=dhcp_options(vals, spaces, encapsulations),
            server_id=sid,
            default_lease_time=DEFAULT_LEASE_TIME if default is None else default,
            max_lease_time=maximum,
            min_lease_time=minimum,
            use_host_decl_names=vals.flag("use-host-decl-names", False),
            echo_client_id=vals.flag("echo-client-id", False),
            always_broadcast=vals.flag("always-broadcast", False),
            siaddr=vals.address("next-server") or ZERO,
            sname=text_field(vals.text("server-name"), 64),
            file=text_field(vals.text("filename"), 128),
            prl=vals.options.get(("dhcp", codes.PARAMETER_REQUEST_LIST)),
            shared=vals.shared,
            admits_all=all(vals.flag(name, True) for name in _ADMISSION),
            one_lease_per_client=vals.flag("one-lease-per-client", False),
        )

    def lease_time(self, requested: bytes | None) -> int:
        """dhcpd's ack_lease: requested (option 51) or default, capped by max, raised to the
        floor (``min_lease_time``; dhcpd's "else default" branch cannot apply to a floor of 0)."""
        t = (
            int.from_bytes(requested, "big")
            if requested is not None and len(requested) == 4
            else self.default_lease_time
        )
        maximum = self.max_lease_time
        if maximum is not None and t > maximum:
            t = maximum
        return max(t, self.min_lease_time)


def plan_for(
    vals: Values, spaces: dict[str, SpaceInfo], encapsulations: dict[int, str]
) -> ReplyPlan:
    """The reply plan of ``vals``, built on first use and kept on it.

    Safe because nothing changes a ``Values`` once the server hands it out: shared ones are
    read-only by contract and a per-packet one is complete when ``DhcpServer.values``
    returns it (``Values.copy`` does not carry the plan over).
    """
    plan = vals.plan
    if isinstance(plan, ReplyPlan):
        return plan
    plan = vals.plan = ReplyPlan.build(vals, spaces, encapsulations)
    return plan


def lease_time_options(avail: dict[int, bytes], lease_time: int, *, default_t1_t2: bool) -> None:
    """Set option 51 and make 58/59 consistent with it (dropped when not below it)."""
    avail[codes.LEASE_TIME] = lease_time.to_bytes(4, "big")
    if lease_time == INFINITE_LEASE:
        avail.pop(codes.RENEWAL_TIME, None)
        avail.pop(codes.REBINDING_TIME, None)
        return
    t2 = avail.get(codes.REBINDING_TIME)
    limit = lease_time
    if t2 is not None:
        if len(t2) != 4 or int.from_bytes(t2, "big") >= lease_time:
            del avail[codes.REBINDING_TIME]
        else:
            limit = int.from_bytes(t2, "big")
    t1 = avail.get(codes.RENEWAL_TIME)
    if t1 is not None and (len(t1) != 4 or int.from_bytes(t1, "big") >= limit):
        del avail[codes.RENEWAL_TIME]
    if default_t1_t2:
        avail.setdefault(codes.RENEWAL_TIME, (lease_time // 2).to_bytes(4, "big"))
        avail.setdefault(codes.REBINDING_TIME, (lease_time * 7 // 8).to_bytes(4, "big"))


def reply_options(
    plan: ReplyPlan,
    request: Packet,
    *,
    request_type: int | None,
    msg_type: int | None,
    server_id: bytes,
    netmask: bytes | None,
    lease_time: int | None,
    default_t1_t2: bool,
    host_name: bytes | None,
    uid: bytes | None,
    extra: dict[int, bytes] | None,
) -> dict[int, bytes]:
    """The options of one reply to ``request``, in order (see ``select_options``), as a
    fresh dict.

    ``host_name`` is the host declaration's name when use-host-decl-names applies, ``uid``
    the client identifier to echo (echo-client-id).
    """
    ropts = request.options
    prl = plan.prl if plan.prl is not None else ropts.get(codes.PARAMETER_REQUEST_LIST)
    budget = option_budget(request, bootp=msg_type is None)
    client_sent_fqdn = codes.FQDN in ropts
    agent = ropts.get(codes.RELAY_AGENT_INFORMATION)
    if agent is not None:
        budget -= _wire_size(agent)
    key: MemoKey | None = None
    if plan.shared and host_name is None and uid is None and not extra:
        key = (msg_type, server_id, netmask, lease_time, request_type, prl, budget)
        key += (client_sent_fqdn, default_t1_t2)
        hit = plan.memo.get(key)
        if hit is not None:
            out = dict(hit)
            if agent is not None:
                out[codes.RELAY_AGENT_INFORMATION] = agent
            return out
    avail = dict(plan.options)
    if msg_type is not None:
        avail[codes.MESSAGE_TYPE] = bytes((msg_type,))
        avail[codes.SERVER_IDENTIFIER] = server_id
    else:
        avail.pop(codes.MESSAGE_TYPE, None)
    if netmask is not None and codes.SUBNET_MASK not in avail:
        avail[codes.SUBNET_MASK] = netmask
    if msg_type == codes.DHCPACK and lease_time is None:  # DHCPINFORM: no lease times
        for code in _LEASE_TIMES:
            avail.pop(code, None)
    elif lease_time is not None and msg_type is not None:
        lease_time_options(avail, lease_time, default_t1_t2=default_t1_t2)
    if host_name is not None:
        avail.setdefault(codes.HOST_NAME, host_name)
    if uid is not None:
        avail[codes.CLIENT_IDENTIFIER] = uid
    if extra:
        avail.update(extra)
    out = select_options(
        avail,
        prl=prl if msg_type is not None else None,
        msg_type=request_type,
        budget=budget,
        client_sent_fqdn=client_sent_fqdn,
        # echo_client_id (dhcp.c): with the option on, cons_options puts 61 right after the
        # protocol options whatever the PRL says; it carries the client's own identifier, or,
        # when it sent none, one the scope configures (a host's dhcp-client-identifier).
        echo_client_id=plan.echo_client_id,
        agent=None,
    )
    if key is not None:
        if len(plan.memo) >= _MEMO_MAX:
            plan.memo.clear()
        plan.memo[key] = dict(out)
    if agent is not None:
        out[codes.RELAY_AGENT_INFORMATION] = agent
    return out
