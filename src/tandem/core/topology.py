"""Subnets, shared networks and pools at run time, and finding the client's network.

dhcpd treats a subnet outside any ``shared-network`` as a shared network of its own; so does
this module. ``locate`` follows dhcpd's locate_network: the relay agent link-selection
sub-option (82.5) wins over the subnet-selection option (118), which wins over giaddr, which
wins over the receiving interface's addresses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from tandem.config.model import Block, Config, Pool, Subnet
from tandem.core import codes
from tandem.core.expr import parse_suboptions
from tandem.core.pools import FreeList, LeaseDB, PoolState
from tandem.core.scope import Values, chain_blocks, execute, is_static
from tandem.wire.dhcp import Packet


@dataclass(eq=False, slots=True)
class SubnetState:
    model: Subnet
    network: IPv4Network
    share: NetState
    blocks: tuple[Block, ...]  # global + subnet chain
    static: Values | None  # the blocks' values when they have no conditionals
    authoritative: bool
    netmask: bytes = b""  # option 1's value, packed once (every reply carries it)

    def __post_init__(self) -> None:
        self.netmask = self.network.netmask.packed


@dataclass(eq=False, slots=True)
class NetState:
    name: str
    subnets: list[SubnetState] = field(default_factory=list)
    pools: list[PoolState] = field(default_factory=list)
    pool_chains: dict[int, tuple[Block, ...]] = field(default_factory=dict)  # id(pool) -> chain


_SUBNET_MEMO_MAX = 1 << 16


class Topology:
    """Every subnet and pool, with fast address-to-subnet lookup."""

    def __init__(self, config: Config, db: LeaseDB) -> None:
        self.global_block: tuple[Block, ...] = (config.statements,) if config.statements else ()
        self.subnets: list[SubnetState] = []
        self.shares: list[NetState] = []
        self._by_prefix: dict[int, dict[int, SubnetState]] = {}
        self._values_cache: dict[tuple[int, int], Values | None] = {}
        self._if_cache: dict[int, tuple[tuple[IPv4Interface, ...], NetState | None]] = {}
        self._subnet_memo: dict[int, SubnetState | None] = {}
        shared = {sn.name: sn for sn in config.shared_networks}
        made: dict[str, NetState] = {}
        for sub in config.subnets:
            if sub.shared_network is not None:
                share = made.get(sub.shared_network)
                if share is None:
                    share = made[sub.shared_network] = NetState(sub.shared_network)
                    self.shares.append(share)
            else:
                share = NetState(str(sub.network.network_address))
                self.shares.append(share)
            blocks = chain_blocks(self.global_block, sub.chain)
            static = execute(blocks, Values(), None) if is_static(blocks) else None
            auth_vals = execute(blocks, Values(), None)
            st = SubnetState(
                sub, sub.network, share, blocks, static, auth_vals.flag("authoritative", False)
            )
            share.subnets.append(st)
            self.subnets.append(st)
            self._by_prefix.setdefault(sub.network.prefixlen, {})[
                int(sub.network.network_address)
            ] = st
        self._prefixes = sorted(self._by_prefix, reverse=True)
        for st in self.subnets:
            for pool in st.model.pools:
                self._add_pool(pool, st.share, db)
        for name, share in made.items():
            model = shared.get(name)
            if model is not None:
                for pool in model.pools:
                    self._add_pool(pool, share, db)
        for st in self.subnets:
            n = st.network
            if n.prefixlen < 31:
                db.excluded.add(int(n.network_address))
                db.excluded.add(int(n.broadcast_address))
        db.finish_ranges()

    def _add_pool(self, pool: Pool, share: NetState, db: LeaseDB) -> None:
        ps = PoolState(pool, pool.permits, FreeList(), FreeList(), share)
        share.pools.append(ps)
        share.pool_chains[id(ps)] = pool.chain
        for r in pool.ranges:
            lo, hi = int(r.low), int(r.high)
            if hi < lo:
                lo, hi = hi, lo
            sub = self.subnet_of(r.low)
            db.add_range(lo, hi, ps, ps.bootp if r.dynamic_bootp else ps.dhcp, sub)

    def subnet_of(self, addr: IPv4Address | int) -> SubnetState | None:
        """The most specific configured subnet containing an address (memoised: the
        topology never changes, and a packet asks about the same few addresses)."""
        a = addr if type(addr) is int else int(addr)
        memo = self._subnet_memo
        if a in memo:
            return memo[a]
        found = None
        for plen in self._prefixes:
            mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
            st = self._by_prefix[plen].get(a & mask)
            if st is not None:
                found = st
                break
        if len(memo) >= _SUBNET_MEMO_MAX:
            memo.clear()
        memo[a] = found
        return found

    def values_for(self, subnet: SubnetState, pool: PoolState | None) -> Values | None:
        """Precomputed values for global + subnet (+ pool) when static, else None."""
        key = (id(subnet), id(pool))
        try:
            return self._values_cache[key]
        except KeyError:
            pass  # first packet for this subnet and pool
        blocks = self.blocks_for(subnet, pool)
        vals = execute(blocks, Values(shared=True), None) if is_static(blocks) else None
        self._values_cache[key] = vals
        return vals

    def blocks_for(self, subnet: SubnetState, pool: PoolState | None) -> tuple[Block, ...]:
        if pool is None:
            return subnet.blocks
        return chain_blocks(subnet.blocks, pool.model.chain)

    def interface_share(self, addrs: tuple[IPv4Interface, ...]) -> NetState | None:
        """The shared network an interface is attached to (first address that matches)."""
        hit = self._if_cache.get(id(addrs))
        if hit is not None and hit[0] is addrs:
            return hit[1]
        share = None
        for ifa in addrs:
            st = self.subnet_of(ifa.ip)
            if st is not None:
                share = st.share
                break
        if len(self._if_cache) > 1024:
            self._if_cache.clear()
        self._if_cache[id(addrs)] = (addrs, share)
        return share

    def locate(
        self, packet: Packet, if_addrs: tuple[IPv4Interface, ...]
    ) -> tuple[NetState | None, str | None]:
        """(shared network, error) for a packet, as dhcpd's locate_network."""
        sel: bytes | None = None
        agent = packet.options.get(codes.RELAY_AGENT_INFORMATION)
        if agent is not None:
            sel = parse_suboptions(agent).get(codes.AGENT_LINK_SELECTION)
        if sel is None:
            sel = packet.options.get(codes.SUBNET_SELECTION)
        if sel is None and not int(packet.giaddr):
            share = self.interface_share(if_addrs)
            return share, (None if share else "unknown network segment")
        if sel is not None:
            if len(sel) != 4:
                return None, "invalid subnet selection option"
            where = IPv4Address(sel)
        else:
            where = packet.giaddr
        st = self.subnet_of(where)
        if st is None:
            return None, "unknown network segment"
        return st.share, None
