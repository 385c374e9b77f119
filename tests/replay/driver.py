"""Replay golden for issue 8: thousands of scripted clients through the DHCP core, hashed.

The refactor of issue 8 must not change a byte: replies, log lines, lease records and failover
messages. This driver plays ``CLIENTS`` deterministic clients (one seeded ``random.Random``, a
virtual clock advanced by the driver, no sockets) against two in-process servers: a primary
(``primary.conf``: a failover pool plus standalone subnets, classes, permits, hosts, a shared
network) and a secondary (``secondary.conf``) whose failover engines talk over an in-memory link.
Each client's transcript (request bytes, encoded reply and destination, drop reason, log lines,
every written lease as a dhcpd.leases record, lease expiries, failover bytes and failover
writes/records during that client) is hashed; so are the final lease databases, ``stats()``
and the whole failover byte streams. ``golden.txt`` holds the hashes made on the old main
(00e476d); ``test_replay.py`` compares.

    PYTHONPATH=src TANDEM_PURE=1 python -m tests.replay.driver --write   # regenerate golden.txt
    PYTHONPATH=src TANDEM_PURE=1 python -m tests.replay.driver --dump 17 # client 17's transcript
    PYTHONPATH=src TANDEM_PURE=1 python -m tests.replay.driver --dump final
    PYTHONPATH=src TANDEM_PURE=1 python -m tests.replay.driver --summary # coverage counts

Regenerate the golden only from a tree whose behaviour is the reference (the old main). To
find what changed, dump the same client from both trees and diff::

    git worktree add /tmp/old 00e476d
    cp -r tests/replay /tmp/old/tests/          # if the old commit lacks the driver
    (cd /tmp/old && PYTHONPATH=src TANDEM_PURE=1 python -m tests.replay.driver --dump N) > old
    PYTHONPATH=src TANDEM_PURE=1 python -m tests.replay.driver --dump N > new; diff old new
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

# --- adapter: every internal API the replay touches (import paths move in issue 8) ----------
from tandem.config import parse_text
from tandem.core.failover.engine import FailoverSetup
from tandem.core.server import DhcpServer
from tandem.core.types import Outcome, RxMeta
from tandem.store.leasefile import format_failover_state, format_lease
from tandem.wire.dhcp import Packet, decode, encode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from corekit import packet as _corekit_packet  # the core tests' packet builder

Engine = Any  # FailoverEngine: only its sans-IO API is used (see Link)
# --- end of adapter ----------------------------------------------------------------------------

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden.txt"
CLIENTS = 3200
SEED = 8  # issue 8
T0 = 1_700_000_000
A = IPv4Address
ZERO = "0.0.0.0"
PRIMARY_IFS = {
    "eth0": (IPv4Interface("192.0.2.1/24"),),
    "eth1": (IPv4Interface("198.51.100.1/24"),),
    "eth2": (IPv4Interface("203.0.113.1/24"),),  # where relayed clients' unicasts arrive
}
SECONDARY_IFS = {"eth0": (IPv4Interface("192.0.2.2/24"),)}
KNOWN_HOSTS = 40  # host known-N { hardware ethernet 02:00:00:00:02:NN; } appended to primary
RELAYS = ("10.1.0.1", "10.9.0.1", "100.64.10.1", "10.3.0.1")
CIRCUITS = (b"sw1-ge-0/0/1", b"sw1-ge-0/0/2", bytes.fromhex("0004000a0003"))
VENDORS = (b"MSFT 5.0", b"android-dhcp-13", b"udhcp 1.36.1", b"aruba-ap-515", b"ubnt", b"dhcpcd")
PRLS = (b"\x01\x03\x06\x0f", b"\x01\x1c\x02\x03\x0f\x06\x0c", b"\x03\x01\x2a\x0c\x2c\x2e\x2b")
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = 1, 2, 3, 4, 5, 6, 7, 8
NAMES = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK"}
NAMES |= {7: "RELEASE", 8: "INFORM"}


def primary_text() -> str:
    hosts = "".join(
        f"host known-{n} {{ hardware ethernet 02:00:00:00:02:{n:02x}; }}\n"
        for n in range(KNOWN_HOSTS)
    )
    return (HERE / "primary.conf").read_text() + hosts


def packet(mtype: int | None, hw: bytes, *, secs: int = 0, **kw: Any) -> Packet:
    # corekit's builder has no secs field; set it here rather than widen corekit
    p: Packet = _corekit_packet(mtype, hw, **kw)
    p.secs = secs
    return p


@dataclass
class Node:
    name: str
    server: DhcpServer
    engine: Engine
    ifs: dict[str, tuple[IPv4Interface, ...]]


@dataclass
class Client:
    """What the driver remembers of a client between its visits."""

    hw: bytes
    cid: bytes | None
    kind: str
    relay: str | None = None
    extra: dict[int, bytes] = field(default_factory=dict)
    address: str | None = None
    server: Node | None = None  # who ACKed
    server_ip: str | None = None
    xid: int = 0


class Replay:
    """One deterministic run; ``transcripts`` holds one text per client, then ``final``."""

    def __init__(self, clients: int = CLIENTS, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.now = T0
        self.count = clients
        self.lines: list[str] = []
        self.transcripts: list[str] = []
        self.streams: dict[str, bytearray] = {"primary": bytearray(), "secondary": bytearray()}
        self.coverage: Counter[str] = Counter()
        self.primary = self._node("primary", primary_text(), PRIMARY_IFS)
        self.secondary = self._node(
            "secondary", (HERE / "secondary.conf").read_text(), SECONDARY_IFS
        )
        self.up = False
        self.known: list[Client] = []
        self.serial = 0

    def _node(self, name: str, text: str, ifs: dict[str, tuple[IPv4Interface, ...]]) -> Node:
        cfg = parse_text(text, f"{name}.conf")
        setup = FailoverSetup(cfg, {}, self.now)
        srv = DhcpServer(cfg, leases=[], interfaces=ifs, failover=setup)
        (engine,) = setup.engines.values()
        return Node(name, srv, engine, ifs)

    # --- the failover link (the engines' sans-IO API only) ----------------------------------

    def nodes(self) -> tuple[Node, Node]:
        return self.primary, self.secondary

    def commit(self) -> None:
        for node in self.nodes():
            writes, records = node.engine.take_writes()
            for lease in writes:
                self.lines.append(f"fo-write {node.name}:\n{format_lease(lease)}")
            for rec in records:
                self.lines.append(f"fo-record {node.name}:\n{format_failover_state(rec)}")
                self.coverage["fo state record"] += 1

    def pump(self) -> None:
        """Commit, then move bytes both ways until quiet (the I/O layer's contract)."""
        for _ in range(100_000):
            self.commit()
            moved = False
            for src, dst in ((self.primary, self.secondary), (self.secondary, self.primary)):
                data = src.engine.data_to_send()
                if data:
                    self.lines.append(f"fo {src.name}->{dst.name} {data.hex()}")
                    self.streams[src.name] += data
                    self.coverage[f"fo bytes {src.name}"] += len(data)
                    if self.up:
                        moved = True
                        dst.engine.receive_data(data, self.now)
            for node in self.nodes():
                reason = node.engine.close_reason()
                if reason is not None and self.up:
                    self.lines.append(f"fo-close {node.name}: {reason}")
                    other = self.secondary if node is self.primary else self.primary
                    rest = node.engine.data_to_send()
                    if rest:
                        self.lines.append(f"fo {node.name}->{other.name} {rest.hex()}")
                        self.streams[node.name] += rest
                        other.engine.receive_data(rest, self.now)
                    self.link(False)
                    moved = True
            if not moved:
                break
        else:
            raise RuntimeError("failover link did not settle")
        for node in self.nodes():
            for line in node.engine.take_log():
                self.lines.append(f"fo-log {node.name}: {line}")

    def link(self, up: bool) -> None:
        if up == self.up:
            return
        self.up = up
        self.lines.append(f"link {'up' if up else 'down'} at {self.now}")
        self.coverage["link " + ("up" if up else "down")] += 1
        for node in self.nodes():
            if up:
                node.engine.connection_made(self.now)
            else:
                node.engine.connection_lost(self.now)
        self.pump()

    def advance(self, seconds: int) -> None:
        """Let time pass, firing engine timers and lease expiry on the way."""
        target = self.now + seconds
        while True:
            due = [t for n in self.nodes() if (t := n.engine.get_timer()) is not None]
            if not due or min(due) > target:
                break
            self.now = max(self.now, min(due))
            self._fire()
        self.now = target
        self._fire()

    def _fire(self) -> None:
        for node in self.nodes():
            for lease in node.server.tick(self.now):
                self.lines.append(f"tick {node.name} {self.now}:\n{format_lease(lease)}")
                self.coverage["tick write"] += 1
        for node in self.nodes():
            t = node.engine.get_timer()
            if t is not None and t <= self.now:
                node.engine.handle_timer(self.now)
        self.pump()

    # --- DHCP traffic --------------------------------------------------------------------

    def send(self, node: Node, p: Packet, meta: RxMeta) -> Outcome:
        """Encode, decode (as the I/O layer receives it), handle, record, pump the link."""
        raw = encode(p)
        rx = decode(raw)
        cast = "unicast" if meta.unicast else "broadcast"
        self.lines.append(
            f"> {node.name} {meta.interface} {meta.src_ip}:{meta.src_port} {cast} {raw.hex()}"
        )
        out = node.server.handle(rx, meta, self.now)
        if out.ping is not None:
            # ping-check (on: the configs do not turn it off): nobody answers, at once, so
            # the transcript is the one a server without ping-check writes.
            more = node.server.ping_timed_out(out.ping.address, now=self.now)
            out.log += more.log
            out.writes += more.writes
            out.reply = more.reply
        mt = rx.options.get(53)
        self.coverage["rx " + NAMES.get(mt[0], str(mt[0])) if mt else "rx BOOTP"] += 1
        if out.drop is not None:
            self.lines.append(f"< drop: {out.drop}")
            self.coverage["drop " + out.drop] += 1
        if out.reply is not None:
            r = out.reply
            data = encode(r.packet, max_size=rx.max_message_size)
            mac = r.dest_mac.hex() if r.dest_mac is not None else "-"
            self.lines.append(
                f"< reply {r.interface} {r.dest_ip}:{r.dest_port} mac={mac} "
                f"from={r.server_ip} {data.hex()}"
            )
            rt = r.packet.options.get(53)
            self.coverage[f"tx {node.name} " + (NAMES[rt[0]] if rt else "BOOTREPLY")] += 1
        elif out.drop is None:
            self.coverage["no reply, no drop"] += 1
        for line in out.log:
            self.lines.append(f"log: {line}")
        for lease in out.writes:
            self.lines.append(f"write:\n{format_lease(lease)}")
            self.coverage["lease write"] += 1
        self.pump()
        return out

    def meta(self, node: Node, iface: str, src: str = ZERO, unicast: bool = False) -> RxMeta:
        port = 67 if iface == "relay" else 68
        iface = "eth2" if iface == "relay" else iface
        return RxMeta(iface, node.ifs[iface], A(src), port, unicast)

    def pkt(self, c: Client, mtype: int | None, **kw: Any) -> Packet:
        c.xid += 1
        extra = dict(c.extra)
        extra.update(kw.pop("extra", {}))
        giaddr = kw.pop("giaddr", c.relay or ZERO)
        return packet(
            mtype, c.hw, xid=c.xid, client_id=c.cid, giaddr=giaddr, extra=extra or None, **kw
        )

    def targets(self, c: Client) -> tuple[Node, ...]:
        """Broadcasts on eth0 reach both servers; everything else only the primary."""
        return self.nodes() if c.kind == "fo" else (self.primary,)

    def bmeta(self, c: Client, node: Node) -> RxMeta:
        if c.relay is not None:
            return self.meta(node, "relay", c.relay, unicast=True)
        return self.meta(node, "eth0" if c.kind == "fo" else "eth1")

    def broadcast(self, c: Client, mtype: int | None, **kw: Any) -> list[tuple[Node, Outcome]]:
        p = self.pkt(c, mtype, **kw)
        return [(n, self.send(n, p, self.bmeta(c, n))) for n in self.targets(c)]

    def unicast(self, c: Client, mtype: int, **kw: Any) -> Outcome | None:
        if c.server is None or c.address is None:
            return None
        iface = "eth0" if c.kind == "fo" else ("eth1" if c.relay is None else "relay")
        meta = self.meta(c.server, iface, c.address, unicast=True)
        if iface == "relay":  # a relayed client's unicast comes straight, not via the relay
            meta = RxMeta("eth2", c.server.ifs["eth2"], A(c.address), 68, True)
        p = self.pkt(c, mtype, ciaddr=c.address, giaddr=ZERO, **kw)
        return self.send(c.server, p, meta)

    def dora(self, c: Client, secs: int = 0, **kw: Any) -> bool:
        offers = [(n, o) for n, o in self.broadcast(c, DISCOVER, secs=secs, **kw) if o.reply]
        if not offers:
            return False
        _node, off = offers[0] if len(offers) == 1 or self.rng.random() < 0.5 else offers[1]
        assert off.reply is not None
        yi, sid = str(off.reply.packet.yiaddr), str(off.reply.server_ip)
        if off.reply.packet.options.get(53) != bytes([OFFER]):
            return False
        c.xid -= 1  # the REQUEST answers the OFFER: same transaction
        acked = False
        for n, out in self.broadcast(c, REQUEST, secs=secs, requested=yi, server_id=sid, **kw):
            if out.reply is not None and out.reply.packet.options.get(53) == bytes([ACK]):
                c.address, c.server, c.server_ip, acked = yi, n, sid, True
        return acked

    # --- the client scripts ----------------------------------------------------------------

    def new_client(self, kind: str) -> Client:
        self.serial += 1
        n = self.serial
        hw = bytes([0x52, 0x54, 0x00, n >> 16 & 0xFF, n >> 8 & 0xFF, n & 0xFF])
        r = self.rng
        cid = bytes([1]) + hw if r.random() < 0.5 else None
        extra: dict[int, bytes] = {}
        if r.random() < 0.6:
            extra[55] = r.choice(PRLS)
        if r.random() < 0.2:
            extra[12] = f"host-{n}".encode()
        if r.random() < 0.1:
            extra[51] = r.choice((30, 600, 100_000)).to_bytes(4, "big")
        c = Client(hw, cid, kind, extra=extra)
        if kind == "local" and r.random() < 0.2:
            c.extra[77] = b"staff"
        if kind == "relayed":
            c.relay = r.choice(RELAYS)
            if c.relay == "100.64.10.1":
                sub = b""
                if r.random() < 0.8:
                    circuit = r.choice(CIRCUITS) if r.random() < 0.6 else f"port-{n}".encode()
                    sub += bytes([1, len(circuit)]) + circuit
                if r.random() < 0.7:
                    remote = hw
                    sub += bytes([2, len(remote)]) + remote
                if sub:
                    c.extra[82] = sub
            if c.relay == "10.9.0.1" and r.random() < 0.8:
                c.extra[60] = r.choice(VENDORS)
        if kind == "known":
            c.hw = bytes([2, 0, 0, 0, 2, r.randrange(KNOWN_HOSTS)])
            c.relay = "10.1.0.1"
        return c

    def follow_up(self, c: Client) -> None:
        """What a bound client does next."""
        r = self.rng
        step = r.choice(
            (
                "renew",
                "renew",
                "rebind",
                "release",
                "decline",
                "inform",
                "reboot",
                "reboot-wrong",
                "rediscover",
                "none",
                "none",
            )
        )
        self.coverage["step " + step] += 1
        if step == "renew":
            self.advance(r.randint(1, 30))
            self.unicast(c, REQUEST)
        elif step == "rebind":
            self.advance(r.randint(1, 30))
            assert c.address is not None
            self.broadcast(c, REQUEST, ciaddr=c.address, giaddr=ZERO)
        elif step == "release":
            self.unicast(c, RELEASE, server_id=c.server_ip)
            c.address = None
        elif step == "decline":
            assert c.address is not None
            self.broadcast(c, DECLINE, requested=c.address, server_id=c.server_ip)
            c.address = None
        elif step == "inform":
            self.unicast(c, INFORM)
        elif step == "reboot":
            self.broadcast(c, REQUEST, requested=c.address)
        elif step == "reboot-wrong":  # moved to another network: NAK
            self.broadcast(c, REQUEST, requested=r.choice(("10.77.0.5", "192.0.2.250", "10.1.9.9")))
            c.address = None
        elif step == "rediscover":
            self.dora(c)

    def junk(self) -> None:
        r = self.rng
        c = self.new_client(r.choice(("local", "relayed", "fo")))
        what = r.choice(
            (
                "bootreply",
                "type99",
                "badtype",
                "other-server",
                "wrong-subnet",
                "release-unknown",
                "decline-unknown",
                "foreign-relay",
                "inform-zero",
                "renew-unknown",
                "request-nothing",
            )
        )
        self.coverage["junk " + what] += 1
        if what == "bootreply":
            p = self.pkt(c, DISCOVER)
            p.op = 2
            self.send(self.primary, p, self.bmeta(c, self.primary))
        elif what == "type99":
            self.broadcast(c, 99)
        elif what == "badtype":
            self.broadcast(c, None, extra={53: b"\x01\x03"})
        elif what == "other-server":
            self.broadcast(c, REQUEST, requested="192.0.2.120", server_id="192.0.2.99")
        elif what == "wrong-subnet":
            self.broadcast(c, REQUEST, requested="172.31.0.9")
        elif what == "release-unknown":
            p = self.pkt(c, RELEASE, ciaddr="10.1.2.77", giaddr=ZERO, server_id="10.1.0.1")
            self.send(
                self.primary, p, RxMeta("eth2", PRIMARY_IFS["eth2"], A("10.1.2.77"), 68, True)
            )
        elif what == "decline-unknown":
            self.broadcast(c, DECLINE, requested="198.51.100.239", server_id="198.51.100.1")
        elif what == "foreign-relay":
            p = self.pkt(c, DISCOVER, giaddr="172.16.0.1")
            self.send(self.primary, p, self.meta(self.primary, "relay", "172.16.0.1", True))
        elif what == "inform-zero":
            self.broadcast(c, INFORM)
        elif what == "renew-unknown":
            p = self.pkt(c, REQUEST, ciaddr="198.51.100.230", giaddr=ZERO)
            self.send(self.primary, p, self.meta(self.primary, "eth1", "198.51.100.230", True))
        elif what == "request-nothing":
            self.broadcast(c, REQUEST)

    def fixed(self) -> None:
        r = self.rng
        which = r.randrange(3)
        self.coverage[f"fixed host {which}"] += 1
        if which == 0:
            c = Client(bytes.fromhex("020000000101"), None, "relayed", relay="10.1.0.1")
        elif which == 1:
            c = Client(bytes.fromhex("020000000102"), None, "local")
        else:
            c = Client(bytes.fromhex("020000000999"), b"cid-host", "relayed", relay="10.1.0.1")
        if self.dora(c) and r.random() < 0.5:
            self.follow_up(c)

    def bootp(self) -> None:
        c = self.new_client("relayed")
        c.relay, c.extra = "10.2.0.1", {}
        c.cid = None
        self.broadcast(c, None, extra={55: b"\x01\x03\x06"} if self.rng.random() < 0.5 else {})
        if self.rng.random() < 0.3:  # boots again
            self.broadcast(c, None)

    def fresh(self, kind: str) -> None:
        c = self.new_client(kind)
        secs = self.rng.choice((0, 0, 0, 1, 5)) if kind == "fo" else 0
        flags = 0x8000 if self.rng.random() < 0.2 else 0
        if self.dora(c, secs=secs, flags=flags):
            self.known.append(c)
            if self.rng.random() < 0.4:
                self.follow_up(c)

    def returning(self) -> None:
        if not self.known:
            return self.fresh("local")
        c = self.rng.choice(self.known)
        self.coverage["returning"] += 1
        if c.address is None:
            self.dora(c)
        else:
            self.follow_up(c)
        return None

    def client(self, i: int) -> None:
        if i == self.count * 55 // 100:
            self.link(False)
        if i == self.count * 70 // 100:
            self.link(True)
        self.advance(self.rng.randint(0, 4))
        kinds: dict[str, Callable[[], None]] = {
            "fo": lambda: self.fresh("fo"),
            "local": lambda: self.fresh("local"),
            "relayed": lambda: self.fresh("relayed"),
            "known": lambda: self.fresh("known"),
            "returning": self.returning,
            "bootp": self.bootp,
            "fixed": self.fixed,
            "junk": self.junk,
        }
        weights = (22, 18, 25, 4, 15, 5, 3, 8)
        (kind,) = self.rng.choices(list(kinds), weights)
        self.coverage["client " + kind] += 1
        self.lines.append(f"client {i} {kind} at {self.now}")
        kinds[kind]()

    def run(self) -> Iterator[str]:
        """Yield each client's transcript, then the final one (databases, stats, streams)."""
        self.link(True)
        self.lines.append("startup")
        for i in range(self.count):
            self.client(i)
            yield "\n".join(self.lines)
            self.lines = []
        self.advance(4000)  # let most leases run out
        final = ["final", *self.lines]
        for node in self.nodes():
            final.append(f"database {node.name}")
            for lease in sorted(node.server.leases(), key=lambda x: int(x.address)):
                final.append(format_lease(lease))
            final.append(f"stats {node.name} {sorted(node.server.stats().items())}")
        for name, data in self.streams.items():
            final.append(f"stream {name} {hashlib.sha256(data).hexdigest()} {len(data)}")
        yield "\n".join(final)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def hashes(replay: Replay | None = None) -> list[str]:
    """One hash per client transcript, the last one over the final state."""
    return [digest(t) for t in (replay or Replay()).run()]


def read_golden(path: Path = GOLDEN) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            out.append(line.split()[1])
    return out


def write_golden(path: Path = GOLDEN) -> None:
    hs = hashes()
    with path.open("w") as f:
        f.write("# tests/replay golden: sha256[:16] per client transcript, then 'final'.\n")
        f.write("# Made on the old main (00e476d) by: python -m tests.replay.driver --write;\n")
        f.write("# remade for each deliberate behaviour change since: see git log of this file.\n")
        for i, h in enumerate(hs[:-1]):
            f.write(f"{i} {h}\n")
        f.write(f"final {hs[-1]}\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="regenerate golden.txt")
    ap.add_argument("--dump", metavar="N", help="print client N's transcript (or 'final')")
    ap.add_argument("--summary", action="store_true", help="print coverage counts")
    args = ap.parse_args(argv)
    if args.write:
        write_golden()
        return 0
    replay = Replay()
    texts = list(replay.run())
    if args.dump is not None:
        idx = len(texts) - 1 if args.dump == "final" else int(args.dump)
        print(texts[idx])
    if args.summary:
        for key, n in sorted(replay.coverage.items()):
            print(f"{n:8d}  {key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
