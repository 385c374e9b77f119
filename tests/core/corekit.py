"""Builders shared by the core tests: configs from model objects, packets, a fake client."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from tandem.config.model import (
    Block,
    Config,
    Host,
    OptionSet,
    Param,
    Permit,
    Pool,
    Range,
    Subnet,
)
from tandem.core.server import DhcpServer, Outcome, RxMeta
from tandem.wire.dhcp import Packet

A = IPv4Address
IFACE = "eth0"
SERVER_IP = IPv4Interface("192.0.2.1/24")
META = RxMeta(IFACE, (SERVER_IP,), A("0.0.0.0"), 68, unicast=False)


AUTHORITATIVE: Block = (Param("authoritative", True),)


def opt(name: str, code: int, data: bytes) -> OptionSet:
    return OptionSet("dhcp", code, name, data)


SEED_BLOCK: Block = (
    opt("routers", 3, A("192.0.2.5").packed),
    opt("subnet-mask", 1, A("255.255.255.0").packed),
    opt("ntp-servers", 42, A("192.0.2.6").packed),
    opt("time-offset", 2, (2).to_bytes(4, "big")),
    opt("broadcast-address", 28, A("192.0.2.255").packed),
)


DENY_BOOTP = Permit(allow=False, kind="dynamic-bootp-clients")


def subnet(
    net: str = "192.0.2.0/24",
    *,
    ranges: tuple[tuple[str, str], ...] = (("192.0.2.100", "192.0.2.200"),),
    block: Block = SEED_BLOCK,
    pools: tuple[Pool, ...] | None = None,
    shared: str | None = None,
    dynamic_bootp: bool = False,
) -> Subnet:
    chain = (block,)
    if pools is None:
        # Ranges written in the subnet: dhcpd's implicit pool (see config.builder)
        permit = Permit(allow=True, kind="all-clients") if dynamic_bootp else DENY_BOOTP
        rs = tuple(Range(A(lo), A(hi), dynamic_bootp) for lo, hi in ranges)
        pools = (Pool(rs, (permit,), chain=chain),)
    return Subnet(IPv4Network(net), pools, shared, chain)


def config(
    *positional: Subnet,
    subnets: tuple[Subnet, ...] = (),
    statements: Block = AUTHORITATIVE,
    hosts: tuple[Host, ...] = (),
    **kw: object,
) -> Config:
    subs = positional + subnets or (subnet(),)
    return Config(statements=statements, subnets=subs, hosts=hosts, **kw)  # type: ignore[arg-type]


def mac(n: int) -> bytes:
    return bytes([0x52, 0x54, 0, 0, n >> 8, n & 0xFF])


def packet(
    mtype: int | None,
    hw: bytes,
    *,
    xid: int = 1,
    ciaddr: str = "0.0.0.0",
    giaddr: str = "0.0.0.0",
    flags: int = 0,
    requested: str | None = None,
    server_id: str | None = None,
    client_id: bytes | None = None,
    prl: bytes | None = None,
    extra: dict[int, bytes] | None = None,
) -> Packet:
    options: dict[int, bytes] = {}
    if mtype is not None:
        options[53] = bytes([mtype])
    if requested is not None:
        options[50] = A(requested).packed
    if server_id is not None:
        options[54] = A(server_id).packed
    if client_id is not None:
        options[61] = client_id
    if prl is not None:
        options[55] = prl
    if extra:
        options.update(extra)
    return Packet(
        op=1,
        htype=1,
        hlen=len(hw),
        hops=0,
        xid=xid,
        secs=0,
        flags=flags,
        ciaddr=A(ciaddr),
        yiaddr=A("0.0.0.0"),
        siaddr=A("0.0.0.0"),
        giaddr=A(giaddr),
        chaddr=hw.ljust(16, b"\x00"),
        options=options,
    )


def no_answer(srv: DhcpServer, out: Outcome, now: int) -> Outcome:
    """ping-check (on unless a config turns it off): the ping ``out`` asks for, if any, times
    out at once, and ``out`` becomes what a server without ping-check would have returned."""
    if out.ping is not None:
        more = srv.ping_timed_out(out.ping.address, now=now)
        out.log += more.log
        out.writes += more.writes
        out.reply = more.reply
        out.ping = None
    return out


class FakeClient:
    """A DHCP client that talks to a server directly (no wire).

    Nobody answers the server's pings (``no_answer``) unless ``manual_pings``: then an
    outcome that asks for a ping is returned as it is (tests/core/test_core_ping.py).
    """

    def __init__(
        self,
        srv: DhcpServer,
        hw: bytes,
        client_id: bytes | None = None,
        meta: RxMeta = META,
        *,
        manual_pings: bool = False,
    ) -> None:
        self.srv, self.hw, self.client_id, self.meta = srv, hw, client_id, meta
        self.address: IPv4Address | None = None
        self.xid = 0
        self.manual_pings = manual_pings

    def send(self, mtype: int, now: int, meta: RxMeta | None = None, **kw: object) -> Outcome:
        self.xid += 1
        p = packet(mtype, self.hw, xid=self.xid, client_id=self.client_id, **kw)  # type: ignore[arg-type]
        out = self.srv.handle(p, meta or self.meta, now)
        return out if self.manual_pings else no_answer(self.srv, out, now)

    def dora(self, now: int, **kw: object) -> Outcome:
        off = self.send(1, now, **kw)
        assert off.reply is not None, off.log
        yi = off.reply.packet.yiaddr
        sid = str(off.reply.server_ip)
        ack = self.send(3, now, requested=str(yi), server_id=sid, **kw)
        if ack.reply is not None and ack.reply.packet.options[53] == b"\x05":
            self.address = yi
        return ack
