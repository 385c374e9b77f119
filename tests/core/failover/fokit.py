"""Two DhcpServers with FailoverEngines on an in-memory link (tandem.lab.failover_pair)."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface

from tandem.config import parse_text
from tandem.config.seed import SEED_PRIMARY, SEED_SECONDARY
from tandem.core.failover.engine import FailoverEngine, FailoverSetup
from tandem.core.lease import BindingState, FailoverStateRecord, Lease
from tandem.core.server import DhcpServer
from tandem.core.types import Outcome, RxMeta
from tandem.lab.failover_pair import Pair
from tandem.wire.dhcp import Packet

A = IPv4Address
T0 = 1_700_000_000
B = BindingState

# The seed blog post's two halves, verbatim (failover block + subnet with its pool).
PRIMARY_CONF = SEED_PRIMARY
SECONDARY_CONF = SEED_SECONDARY


def seed_conf(
    role: str, *, split: int = 256, pool: tuple[str, str] | None = None, extra: str = ""
) -> str:
    """The seed config with another split / range / extra peer statements."""
    text = PRIMARY_CONF if role == "primary" else SECONDARY_CONF
    if role == "primary":
        text = text.replace("split 256;", f"split {split};")
    if pool is not None:
        text = text.replace(
            "range 192.0.2.100 192.0.2.200;\n        }", f"range {pool[0]} {pool[1]};\n        }}"
        )
        text = text.replace("subnet 192.0.2.0 netmask 255.255.255.0", _subnet_for(pool[0]))
    if extra:
        text = text.replace("load balance max seconds 3;", f"load balance max seconds 3;\n{extra}")
    return text


def _subnet_for(low: str) -> str:
    a = A(low)
    if a in IPv4Interface("192.0.2.0/24").network:
        return "subnet 192.0.2.0 netmask 255.255.255.0"
    return "subnet 10.0.0.0 netmask 255.0.0.0"


@dataclass
class Node:
    """One server: DHCP core + engine + what was "committed" (the journal stand-in)."""

    name: str
    text: str
    server: DhcpServer
    engine: FailoverEngine
    ip: IPv4Interface
    journal: dict[int, Lease] = field(default_factory=dict)
    records: list[FailoverStateRecord] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    @property
    def meta(self) -> RxMeta:
        return RxMeta("eth0", (self.ip,), A("0.0.0.0"), 68, unicast=False)

    def commit_dhcp(self, out: Outcome) -> None:
        for lease in out.writes:
            self.journal[int(lease.address)] = lease.copy()
        self.log += out.log

    def handle(self, p: Packet, now: int) -> Outcome:
        out = self.server.handle(p, self.meta, now)
        if out.ping is not None:  # ping-check (the seed leaves it on): nobody answers, at once
            more = self.server.ping_timed_out(out.ping.address, now=now)
            out.log += more.log
            out.writes += more.writes
            out.reply = more.reply
            out.ping = None
        self.commit_dhcp(out)
        return out

    def tick(self, now: int) -> None:
        for lease in self.server.tick(now):
            self.journal[int(lease.address)] = lease.copy()

    def state(self) -> str:
        return self.engine.machine.state.keyword

    def lease(self, addr: str) -> Lease | None:
        return self.server.db.by_addr.get(int(A(addr)))

    def restart(self, now: int, *, keep_leases: bool = True) -> Node:
        """A new process with this node's journal (or none) and last state record."""
        saved = {self.records[-1].name: self.records[-1]} if keep_leases and self.records else {}
        leases = [x.copy() for x in self.journal.values()] if keep_leases else []
        return make_node(self.name, self.text, now, leases=leases, saved=saved)


def make_node(
    name: str,
    text: str,
    now: int,
    *,
    leases: list[Lease] | None = None,
    saved: dict[str, FailoverStateRecord] | None = None,
) -> Node:
    cfg = parse_text(text)
    ip = IPv4Interface("192.0.2.1/24" if name == "primary" else "192.0.2.2/24")
    if "10.0.0.0" in text:
        ip = IPv4Interface("10.0.0.1/8" if name == "primary" else "10.0.0.2/8")
    setup = FailoverSetup(cfg, saved or {}, now)
    srv = DhcpServer(cfg, leases=leases or [], interfaces={"eth0": (ip,)}, failover=setup)
    (engine,) = setup.engines.values()
    node = Node(name, text, srv, engine, ip)
    if leases:
        node.journal = {int(x.address): x.copy() for x in leases}
    return node


def link(p: Node, s: Node, now: int) -> Pair:
    def commit(
        eng: FailoverEngine, writes: list[Lease], records: list[FailoverStateRecord]
    ) -> None:
        node = p if eng is p.engine else s
        for lease in writes:
            node.journal[int(lease.address)] = lease.copy()
        node.records += records

    pair = Pair(p.engine, s.engine, now, on_commit=commit)
    pair.tickers.append(p.tick)
    pair.tickers.append(s.tick)
    return pair


def fresh_pair(
    now: int = T0, primary: str = PRIMARY_CONF, secondary: str = SECONDARY_CONF
) -> tuple[Node, Node, Pair]:
    p = make_node("primary", primary, now)
    s = make_node("secondary", secondary, now)
    return p, s, link(p, s, now)


def mac(n: int) -> bytes:
    return bytes([0x52, 0x54, 0, 0x10, n >> 8, n & 0xFF])


def packet(
    mtype: int,
    hw: bytes,
    *,
    xid: int = 1,
    secs: int = 0,
    ciaddr: str = "0.0.0.0",
    requested: str | None = None,
    server_id: str | None = None,
    client_id: bytes | None = None,
) -> Packet:
    options: dict[int, bytes] = {53: bytes([mtype])}
    if requested is not None:
        options[50] = A(requested).packed
    if server_id is not None:
        options[54] = A(server_id).packed
    if client_id is not None:
        options[61] = client_id
    return Packet(
        op=1,
        htype=1,
        hlen=len(hw),
        hops=0,
        xid=xid,
        secs=secs,
        flags=0,
        ciaddr=A(ciaddr),
        yiaddr=A("0.0.0.0"),
        siaddr=A("0.0.0.0"),
        giaddr=A("0.0.0.0"),
        chaddr=hw.ljust(16, b"\x00"),
        options=options,
    )


def lease_time(out: Outcome) -> int:
    assert out.reply is not None
    return int.from_bytes(out.reply.packet.options[51], "big")


def msg_type(out: Outcome) -> int | None:
    if out.reply is None:
        return None
    return out.reply.packet.options[53][0]


def dora(
    node: Node, hw: bytes, now: int, *, secs: int = 0, client_id: bytes | None = None
) -> tuple[Outcome, Outcome | None]:
    """DISCOVER then (if offered) REQUEST(selecting) to the same server."""
    off = node.handle(packet(1, hw, secs=secs, client_id=client_id), now)
    if off.reply is None:
        return off, None
    yi = str(off.reply.packet.yiaddr)
    ack = node.handle(
        packet(3, hw, xid=2, requested=yi, server_id=str(off.reply.server_ip), client_id=client_id),
        now,
    )
    return off, ack


def renew(node: Node, hw: bytes, addr: str, now: int) -> Outcome:
    """RENEWING: unicast REQUEST with ciaddr (no server id, no requested address)."""
    return node.handle(packet(3, hw, xid=3, ciaddr=addr), now)


def binding_table(node: Node) -> dict[int, tuple[BindingState, bytes | None]]:
    """address -> (state, client hw) of every materialized lease (never-used ones are FREE)."""
    return {
        a: (x.binding_state, x.hardware[1] if x.hardware else None)
        for a, x in node.server.db.by_addr.items()
    }


def active_clients(node: Node) -> dict[int, bytes]:
    return {
        a: x.hardware[1]
        for a, x in node.server.db.by_addr.items()
        if x.binding_state is B.ACTIVE and x.hardware is not None
    }
