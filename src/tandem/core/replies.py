"""The reply builder: one server's scopes turned into BOOTREPLY packets, sans I/O.

``ReplyBuilder`` holds what replies need from the configuration (option spaces and
encapsulations, configured server identifiers, the interfaces' addresses) and builds, for a
``Client``: the parameter values in scope (``values``), the lease time (``lease_time``), the
server identifier (``server_id``), the reply (``build``) and the DHCPNAK (``nak``). The option
rules themselves (which options, in what order, where the reply goes) are the pure functions of
``core.reply``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv4Interface

from tandem.config.model import Block, Conditional, Config, OptionSet, Param
from tandem.core import codes
from tandem.core.client import Client
from tandem.core.pools import PoolState
from tandem.core.reply import ZERO, ReplyPlan, SpaceInfo, destination, plan_for, reply_options
from tandem.core.scope import Values, execute
from tandem.core.topology import SubnetState, Topology
from tandem.core.types import Reply
from tandem.wire.dhcp import Packet, ipv4

_CACHE_MAX = 1024


def chaddr16(chaddr: bytes) -> bytes:
    """The 16-octet chaddr field (decoded packets already carry exactly that)."""
    if type(chaddr) is bytes and len(chaddr) == 16:
        return chaddr
    return bytes(chaddr).ljust(16, b"\x00")[:16]


def configured_server_ids(config: Config) -> set[IPv4Address]:
    """Every ``server-identifier`` (or option 54) set anywhere in the configuration."""
    found: set[IPv4Address] = set()

    def walk(block: Iterable[object]) -> None:
        for s in block:
            if isinstance(s, Param) and s.name == "server-identifier":
                if isinstance(s.value, IPv4Address):
                    found.add(s.value)
            elif isinstance(s, OptionSet) and s.space == "dhcp" and s.code == 54:
                if s.data is not None and len(s.data) == 4:
                    found.add(IPv4Address(s.data))
            elif isinstance(s, Conditional):
                for _, body in s.branches:
                    walk(body)
                walk(s.otherwise)

    walk(config.statements)
    decls: list[tuple[Block, ...]] = [s.chain for s in config.subnets]
    decls += [p.chain for s in config.subnets for p in s.pools]
    decls += [h.chain for h in config.hosts] + [c.chain for c in config.classes]
    decls += [sn.chain for sn in config.shared_networks]
    for chain in decls:
        for b in chain:
            walk(b)
    return found


class ReplyBuilder:
    """Builds one server's replies from its configuration and topology."""

    def __init__(
        self,
        config: Config,
        topo: Topology,
        names: dict[str, tuple[str, int]],
        interfaces: Mapping[str, tuple[IPv4Interface, ...]],
        default_t1_t2: bool,
    ) -> None:
        self.topo = topo
        self.names = names
        self.interfaces = dict(interfaces)
        self.default_t1_t2 = default_t1_t2
        self.spaces = {
            s.name: SpaceInfo(s.code_width, s.length_width) for s in config.option_spaces
        }
        self.encapsulations = {
            d.code: d.format[1:].rstrip(".")
            for d in config.option_definitions
            if d.space == "dhcp" and d.format.startswith("E") and len(d.format) > 2
        }
        self._server_ids = configured_server_ids(config)
        self._sid_cache: dict[
            tuple[int, int], tuple[tuple[IPv4Interface, ...], SubnetState | None, IPv4Address]
        ] = {}
        self._ours_cache: dict[int, tuple[tuple[IPv4Interface, ...], frozenset[IPv4Address]]] = {}

    def if_addrs(self, c: Client) -> tuple[IPv4Interface, ...]:
        """The receiving interface's addresses (from the packet, else as configured)."""
        return c.meta.if_addrs or self.interfaces.get(c.meta.interface, ())

    def is_our_server_id(self, c: Client, sid: IPv4Address) -> bool:
        """Configured server identifiers, the receiving interface's and every served one's."""
        addrs = self.if_addrs(c)
        hit = self._ours_cache.get(id(addrs))
        if hit is None or hit[0] is not addrs:
            ours = set(self._server_ids)
            ours.update(ifa.ip for ifa in addrs)
            ours.update(ifa.ip for a in self.interfaces.values() for ifa in a)
            if len(self._ours_cache) > _CACHE_MAX:
                self._ours_cache.clear()
            hit = self._ours_cache[id(addrs)] = (addrs, frozenset(ours))
        return sid in hit[1]

    def values(self, c: Client, subnet: SubnetState, pool: PoolState | None) -> Values:
        """Parameters and options for a reply: global, subnet, pool, classes, host."""
        topo = self.topo
        if not c.classes and c.host is None:
            base = topo.values_for(subnet, pool)
            if base is not None:
                return base  # shared, read-only (the common case: no classes, no host)
        extra: list[Block] = []
        for _, blocks in reversed(c.classes):
            extra.extend(blocks)
        if c.host is not None:
            extra.extend(c.host.chain)
        base = topo.values_for(subnet, pool)
        if base is not None and not extra:
            return base  # shared, read-only
        ctx = c.ectx(self.names)
        vals = (
            base.copy()
            if base is not None
            else execute(topo.blocks_for(subnet, pool), Values(), ctx)
        )
        return execute(extra, vals, ctx)

    def plan(self, vals: Values) -> ReplyPlan:
        """What replies take from ``vals`` (built once for shared values)."""
        plan = vals.plan
        if isinstance(plan, ReplyPlan):
            return plan
        return plan_for(vals, self.spaces, self.encapsulations)

    def lease_time(self, c: Client, vals: Values) -> int:
        """dhcpd's rules: requested (option 51) or default, capped by max, raised to min."""
        return self.plan(vals).lease_time(c.packet.options.get(codes.LEASE_TIME))

    def server_id(self, c: Client, vals: Values | None, subnet: SubnetState | None) -> IPv4Address:
        """``server-identifier`` (or option 54) if configured, else the interface's address."""
        if vals is not None:
            sid = self.plan(vals).server_id
            if sid is not None:
                return sid
        addrs = self.if_addrs(c)
        key = (id(addrs), id(subnet))
        hit = self._sid_cache.get(key)
        if hit is not None and hit[0] is addrs and hit[1] is subnet:
            return hit[2]
        sid = addrs[0].ip if addrs else ZERO
        if subnet is not None:
            for ifa in addrs:
                if ifa.ip in subnet.network:
                    sid = ifa.ip
                    break
        sid = ipv4(int(sid))  # interned: its packed form is computed once
        if len(self._sid_cache) > _CACHE_MAX:
            self._sid_cache.clear()
        self._sid_cache[key] = (addrs, subnet, sid)
        return sid

    def build(
        self,
        c: Client,
        *,
        msg_type: int | None,
        yiaddr: IPv4Address,
        vals: Values,
        subnet: SubnetState | None,
        lease_time: int | None,
        extra: dict[int, bytes] | None = None,
    ) -> Reply:
        """A BOOTREPLY carrying ``vals``'s options, with dhcpd's field and option rules."""
        p = c.packet
        plan = self.plan(vals)
        sid = self.server_id(c, vals, subnet)
        host_name = None
        if plan.use_host_decl_names and c.host is not None:
            host_name = c.host.name.encode()
        opts = reply_options(
            plan,
            p,
            request_type=c.mtype,
            msg_type=msg_type,
            server_id=sid.packed,
            netmask=subnet.netmask if subnet is not None else None,
            lease_time=lease_time,
            default_t1_t2=self.default_t1_t2,
            host_name=host_name,
            uid=c.uid if plan.echo_client_id else None,
            extra=extra,
        )
        flags = p.flags
        if plan.always_broadcast:
            flags |= 0x8000
        inform = c.mtype == codes.DHCPINFORM
        # Positional: the generated dataclass __init__ takes 0.7 µs with 15 keywords and
        # 0.26 µs without. Order: op htype hlen hops xid secs flags ciaddr yiaddr siaddr
        # giaddr chaddr sname file options.
        reply = Packet(
            2,
            p.htype,
            p.hlen,
            p.hops,
            p.xid,
            p.secs,
            flags,
            p.ciaddr if msg_type != codes.DHCPOFFER else ZERO,
            yiaddr,
            plan.siaddr,
            p.giaddr,
            chaddr16(p.chaddr),
            plan.sname,
            plan.file,
            opts,
        )
        ip, port, mac = destination(
            p,
            reply,
            nak=False,
            ack=msg_type in (codes.DHCPACK, None),
            inform=inform,
            src_ip=c.meta.src_ip,
        )
        return Reply(reply, ip, port, mac, c.meta.interface, sid)

    def nak(self, c: Client, subnet: SubnetState | None, msg: str) -> Reply:
        """A DHCPNAK: message type, server identifier, message; broadcast unless relayed."""
        p = c.packet
        vals = self.values(c, subnet, None) if subnet is not None else None
        sid = self.server_id(c, vals, subnet)
        opts: dict[int, bytes] = {
            codes.MESSAGE_TYPE: bytes([codes.DHCPNAK]),
            codes.SERVER_IDENTIFIER: sid.packed,
            codes.MESSAGE: msg.encode(),
        }
        if vals is not None and self.plan(vals).echo_client_id and c.uid is not None:
            opts[codes.CLIENT_IDENTIFIER] = c.uid
        agent = p.options.get(codes.RELAY_AGENT_INFORMATION)
        if agent is not None:
            opts[codes.RELAY_AGENT_INFORMATION] = agent
        reply = Packet(
            op=2,
            htype=p.htype,
            hlen=p.hlen,
            hops=p.hops,
            xid=p.xid,
            secs=p.secs,
            flags=p.flags | 0x8000,
            ciaddr=ZERO,
            yiaddr=ZERO,
            siaddr=ZERO,
            giaddr=p.giaddr,
            chaddr=chaddr16(p.chaddr),
            sname=bytes(64),
            file=bytes(128),
            options=opts,
        )
        ip, port, mac = destination(
            p, reply, nak=True, ack=False, inform=False, src_ip=c.meta.src_ip
        )
        return Reply(reply, ip, port, mac, c.meta.interface, sid)
