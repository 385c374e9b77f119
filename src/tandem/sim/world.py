"""The simulated world: virtual time, the network, the failover link, faults, invariants.

One run is a pure function of (seed, fault list, size): every random choice comes from a
``random.Random`` seeded from the run seed (the network's, each client's), time is an
integer count of virtual milliseconds, and the events are run in (time, insertion) order.

Network model. Client datagrams: a broadcast reaches both servers, a unicast the server
with that address; each copy may be lost, duplicated or delayed (and so reordered) while a
fault says so. The failover link is TCP: bytes arrive in order, once; a ``silent``
partition holds them back until it heals (they still arrive if both ends still exist, else
the sender gets a reset), a ``cut`` resets both ends at once, and no new connection is
made during a partition. A crashed process's end is closed by its kernel. Reconnection is
tried every 5 s, as dhcpd does. So failover messages are delayed, held back and cut off,
but never duplicated or reordered (re-sent updates are the protocol's own). Each server's
clock may be off by up to 30 s from the clients' time, and the two by at most 30 s.

Invariants (checked while the run goes, the first violation ends it):

* (a) no address is held by two clients at once, by what the servers told them;
* (b) every DHCPACK a client got survives a crash of the server that sent it;
* (c) once faults stop, the pair is NORMAL within ``settle`` seconds and, once quiet, both
  lease databases agree;
* (d) while both servers are NORMAL, no lease stays EXPIRED or RELEASED longer than
  ``grace`` seconds;
* (h) a planned stop (SIGTERM) in NORMAL on a healthy link hands over, and the restart after
  one that left no refused change behind never waits out the MCLT in RECOVER-WAIT;
* (x) the core never raises.

Every schedule runs with ``auto-partner-down`` on (``configs``), under Tandem's rule (probes,
a witness in three seeds of four, fencing; ``sim.apd`` has the probe path, the witness and
its links) or, for contrast, dhcpd's blind timer (``rule="blind"``). Operator rules, for the
manual ``partner-down`` command only (it promises the partner is really down): it is only
issued when the partner is down or the link is up; while a server is PARTNER-DOWN by that
command and its partner is up but unconnected, no partition starts, and a crashed partner is
not restarted while a partition is on. Automatic partner-down needs no such rule.
"""

from __future__ import annotations

import heapq
import itertools
import random
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv4Address

from tandem.core.failover.handover import unacked_changes
from tandem.core.lease import BindingState
from tandem.core.types import Reply
from tandem.core.witness import WitnessRequest
from tandem.sim.apd import ApdNet, SimWitness
from tandem.sim.client import SimClient
from tandem.sim.compare import missing_ack, same, view
from tandem.sim.configs import PRIMARY_IP, SECONDARY_IP, Variant, configs
from tandem.sim.faults import Fault
from tandem.sim.node import Conn, SimNode
from tandem.wire import dhcp

__all__ = ["Conn", "Violation", "World"]

S = 1000
RECONNECT_MS = 5 * S
WATCH_MS = 30 * S
MAX_SKEW_MS = 30 * S
_EXPIRED_OR_RELEASED = (BindingState.EXPIRED, BindingState.RELEASED)


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str  # a, b, c, d, x
    t: int  # virtual ms
    text: str

    def __str__(self) -> str:
        return f"({self.kind}) at {self.t / S:.3f}s: {self.text}"


class _Stop(Exception):
    """Raised to end the run at the first violation."""


class World:
    """One run. Build it, call ``run()``, read ``violation``."""

    def __init__(
        self,
        seed: int,
        variant: Variant,
        faults: list[Fault],
        *,
        clients: int = 8,
        duration: int = 3600,
        verbose: bool = False,
        server_patch: Callable[[SimNode], None] | None = None,
        rule: str = "tandem",
    ) -> None:
        self.seed = seed
        self.variant = variant
        self.faults = list(faults)
        self.duration = duration * S
        self.verbose = verbose
        self.t = 0
        self._queue: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.net = random.Random(f"{seed}:net")
        self.trace: deque[str] = deque(maxlen=400 if not verbose else None)
        self.violation: Violation | None = None
        self.events = 0
        mclt, mrd = variant.mclt, variant.mrd
        self.settle = (2 * mclt + 10 * mrd + 300) * S
        self.grace = (4 * mrd + 120) * S
        offsets = {"primary": 0, "secondary": 0}
        for f in faults:
            if f.kind == "clock":
                offsets[f.node] = int(f.value)
        # The peers' clocks differ by at most MAX_SKEW_MS (each may be off from the clients').
        d = offsets["secondary"] - offsets["primary"]
        if abs(d) > MAX_SKEW_MS:
            offsets["secondary"] = offsets["primary"] + (MAX_SKEW_MS if d > 0 else -MAX_SKEW_MS)
        pcfg, scfg = configs(variant)
        self.primary = SimNode(self, "primary", pcfg, PRIMARY_IP, offsets["primary"])
        self.secondary = SimNode(self, "secondary", scfg, SECONDARY_IP, offsets["secondary"])
        self.nodes = (self.primary, self.secondary)
        self.rule = rule
        self.has_witness = random.Random(f"{seed}:witness").random() < 0.75  # runner too
        rates = {f.node: int(f.value) for f in faults if f.kind == "rate"}
        for node in self.nodes:
            node.rule, node.witness = rule, self.has_witness
            node.rate_ppm = rates.get(node.name, 0)
        self.witness = SimWitness(self, rates.get("witness", 0)) if self.has_witness else None
        self.apd = ApdNet(self, self.witness, random.Random(f"{seed}:apd-net"))
        self.cuts: dict[str, int] = {}  # link name -> partitions on it (sim.apd)
        self.forced: set[str] = set()  # PARTNER-DOWN by the operator's command
        self.server_patch = server_patch
        self.clients = [
            SimClient(self, i, random.Random(f"{seed}:client:{i}")) for i in range(clients)
        ]
        self.by_hw = {c.hw: c for c in self.clients}
        self.holders: dict[IPv4Address, dict[int, int]] = {}
        # (server, client) -> (address, lease end on that server, client's end, commit number)
        self.acks_from: dict[tuple[str, int], tuple[IPv4Address, int | None, int, int]] = {}
        self._rx_from: tuple[str, int | None, int] = ("", None, 0)
        self.partitions: list[Fault] = []
        self.conn_ids = itertools.count(1)
        self.dial_pending = False
        self.faults_over = False
        self.restart_at: dict[str, int] = {}
        self.normal_seen: int | None = None
        self.stuck: dict[tuple[str, int], int] = {}
        self.stats = {"acks": 0, "crashes": 0, "links": 0, "skipped": 0, "handovers": 0}
        self.visited: set[str] = set()  # failover states either server entered
        self.clean: set[str] = set()  # (h): restarted after a completed handover, not yet NORMAL

    # --- the event loop -----------------------------------------------------------------------

    def at(self, t: int, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (max(t, self.t), next(self._seq), action))

    def note(self, text: str) -> None:
        line = f"{self.t / S:10.3f} {text}"
        self.trace.append(line)

    def fail(self, kind: str, text: str) -> None:
        if self.violation is None:
            self.violation = Violation(kind, self.t, text)
            self.note(f"VIOLATION {self.violation}")
        raise _Stop

    def run(self) -> Violation | None:
        for node in self.nodes:
            self._start(node)
        for c in self.clients:
            self.at(c.rng.randrange(0, 30 * S), c.boot)
        for f in self.faults:
            self._schedule_fault(f)
        self.at(self.duration, self._faults_stop)
        self.at(WATCH_MS, self._watch)
        self.at(self.duration + self.settle, self._final)
        queue = self._queue
        try:
            while queue:
                t, _, action = heapq.heappop(queue)
                self.t = t
                self.events += 1
                action()
        except _Stop:
            pass
        except Exception as exc:  # a bug anywhere must become a reported violation
            tb = traceback.format_exception(exc)
            self.violation = Violation("x", self.t, "".join(tb[-6:]).rstrip())
            self.note(f"VIOLATION {self.violation}")
        return self.violation

    # --- servers ------------------------------------------------------------------------------

    def _start(self, node: SimNode) -> None:
        node.start()
        if self.server_patch is not None:
            self.server_patch(node)
        self.note(f"{node.name}: started ({node.state()}), clock offset {node.offset_ms} ms")
        self._check_acks_survived(node)
        self.want_link()

    def node_crashed(self, node: SimNode) -> None:
        self.stats["crashes"] += 1
        due = self.restart_at.pop(node.name, self.t + S)
        self.at(max(due, self.t + 1), partial(self._restart, node))

    def _restart(self, node: SimNode) -> None:
        if node.up:
            return
        other = self._other(node)
        parted = self.partitions or any(self.cuts.values())
        if parted and other.state() == "partner-down" and other.name in self.forced:
            until = max([f.end for f in self.partitions], default=self.t + RECONNECT_MS) + 1
            self.note(f"{node.name}: restart held back until the partition heals")
            self.at(until, partial(self._restart, node))
            return
        self._start(node)

    def _other(self, node: SimNode) -> SimNode:
        return self.secondary if node is self.primary else self.primary

    def connected(self) -> bool:
        p, s = self.nodes
        return p.conn is not None and p.conn is s.conn

    # --- faults -------------------------------------------------------------------------------

    def _schedule_fault(self, f: Fault) -> None:
        if f.kind in ("cut", "silent"):
            self.at(f.start, partial(self._partition_begin, f))
        elif f.kind == "crash":
            self.at(f.start, partial(self._crash, f))
        elif f.kind == "partner_down":
            self.at(f.start, partial(self._partner_down, f))
        elif f.kind == "handover":
            self.at(f.start, partial(self._sigterm, f))
        elif f.kind == "part":
            self.at(f.start, partial(self._part_begin, f))
        elif f.kind == "wcrash":
            self.at(f.start, partial(self.apd.witness_crash, f.end, self))

    # --- the links of auto-partner-down (sim.apd) ------------------------------------------

    def link_cut(self, name: str) -> bool:
        return self.cuts.get(name, 0) > 0

    def loss_now(self) -> float:
        return self._active("loss")

    def apd_probe(self, node: SimNode) -> None:
        self.apd.probe(node)

    def apd_ask(self, node: SimNode, req: WitnessRequest) -> None:
        self.apd.ask(node, req)

    def _part_begin(self, f: Fault) -> None:
        if self.faults_over:
            return
        links = f.node.split(",")
        if "failover" in links:
            self._partition_begin(Fault("cut", f.start, f.end))
        self.note(f"partition of {f.node} begins")
        for link in links:
            self.cuts[link] = self.cuts.get(link, 0) + 1
        self.at(f.end, partial(self._part_end, f, links))

    def _part_end(self, f: Fault, links: list[str]) -> None:
        if self.faults_over:
            return
        for link in links:
            self.cuts[link] = max(0, self.cuts.get(link, 0) - 1)
        self.note(f"partition of {f.node} ends")
        for node in self.nodes:
            node.service()

    def _partition_begin(self, f: Fault) -> None:
        if self.faults_over:
            return
        for node in self.nodes:
            other = self._other(node)
            forced = node.name in self.forced
            if forced and node.state() == "partner-down" and other.up and not self.connected():
                self.stats["skipped"] += 1
                self.note(f"{f.kind} partition skipped: {node.name} is partner-down")
                return
        self.note(f"{f.kind} partition begins")
        self.partitions.append(f)
        self.at(f.end, partial(self._partition_end, f))
        if f.kind == "cut":
            for node in self.nodes:
                if node.conn is not None:
                    node.link_lost(node.conn)

    def _partition_end(self, f: Fault) -> None:
        if f in self.partitions:
            self.partitions.remove(f)
            self.note(f"{f.kind} partition ends")
        self.want_link()

    def _silent_until(self) -> int | None:
        silent = [f.end for f in self.partitions if f.kind == "silent"]
        return max(silent) if silent else None

    def _crash(self, f: Fault) -> None:
        node = self.primary if f.node == "primary" else self.secondary
        if not node.up or self.faults_over:
            return
        self.restart_at[node.name] = self.t + (f.end - f.start)
        if f.value == 0:
            self.note(f"{node.name}: crash ({len(node.journal.pending)} records not committed)")
            node.crash()
            self.node_crashed(node)
        else:
            node.crash_at_commit = -1.0 if f.value == 1 else self.net.uniform(0.05, 0.95)

    def _sigterm(self, f: Fault) -> None:
        node = self.primary if f.node == "primary" else self.secondary
        if not node.up or node.stopping or self.faults_over:
            return
        self.restart_at[node.name] = self.t + (f.end - f.start)
        healthy = self.both_normal() and not self.partitions and not self._active("peer_delay")
        self.note(f"{node.name}: SIGTERM ({node.state()})")
        node.terminate(partial(self._exited, node, healthy, self._other(node).starts))

    def _exited(self, node: SimNode, healthy: bool, starts: int, done: bool) -> None:
        self.note(f"{node.name}: exits, {'handed over' if done else 'no handover'}")
        other = self._other(node)
        if healthy and not done and other.up and other.starts == starts and not self.partitions:
            self.fail("h", f"{node.name} did not hand over on a healthy link")
        self.stats["handovers"] += done
        if done and node.engine is not None and not unacked_changes(node.engine.leases):
            self.clean.add(node.name)
        node.crash()  # the process exits: its journal is durable, the peer sees a FIN
        due = self.restart_at.pop(node.name, self.t + S)
        self.at(max(due, self.t + 1), partial(self._restart, node))

    def entered(self, node: SimNode, state: str) -> None:
        self.visited.add(state)
        if state != "partner-down":
            self.forced.discard(node.name)
        if node.name in self.clean:
            if state == "recover-wait":
                self.fail("h", f"{node.name} waits out the MCLT after a clean handover")
            if state in ("normal", "partner-down", "potential-conflict"):
                self.clean.discard(node.name)

    def _partner_down(self, f: Fault) -> None:
        node = self.primary if f.node == "primary" else self.secondary
        other = self._other(node)
        if not node.up or self.faults_over:
            return
        if other.up and not self.connected():
            self.stats["skipped"] += 1
            self.note(f"partner-down on {node.name} skipped: the partner is up")
            return
        self.note(f"operator: partner-down on {node.name} (state {node.state()})")
        node.partner_down()
        if node.state() == "partner-down":
            self.forced.add(node.name)

    def _active(self, kind: str) -> float:
        best = 0.0
        if self.faults_over:
            return best
        for f in self.faults:
            if f.kind == kind and f.start <= self.t < f.end:
                best = max(best, f.value)
        return best

    def _faults_stop(self) -> None:
        self.note("faults stop")
        self.faults_over = True
        self.partitions.clear()
        self.cuts.clear()
        if self.witness is not None:
            self.witness.restart()
        for node in self.nodes:
            node.crash_at_commit = None
            if not node.up:
                self._start(node)
        self.want_link()

    # --- the failover link ----------------------------------------------------------------

    def want_link(self) -> None:
        if not self.dial_pending:
            self.dial_pending = True
            self.at(self.t + RECONNECT_MS, self._dial)

    def _dial(self) -> None:
        self.dial_pending = False
        p, s = self.nodes
        if not (p.up and s.up) or self.connected():
            return
        if self.partitions or p.conn is not None or s.conn is not None:
            self.want_link()
            return
        conn = Conn(next(self.conn_ids))
        self.stats["links"] += 1
        self.note(f"link {conn.ident} up")
        s.link_made(conn)
        p.link_made(conn)

    def _arrival(self, conn: Conn, dst: SimNode) -> int:
        delay = 1 + int(self.net.random() * self._active("peer_delay"))
        t = self.t + delay
        silent = self._silent_until()
        if silent is not None:
            t = max(t, silent + delay)
        t = max(t, conn.last_arrival.get(dst.name, 0))
        conn.last_arrival[dst.name] = t
        return t

    def link_send(self, src: SimNode, conn: Conn, data: bytes) -> None:
        dst = self._other(src)
        self.at(self._arrival(conn, dst), partial(self._arrive, conn, src, dst, data))

    def link_gone(self, src: SimNode, conn: Conn) -> None:
        """``src`` closed its end (or died): the FIN reaches the other end in order."""
        dst = self._other(src)
        self.at(self._arrival(conn, dst), partial(self._arrive, conn, src, dst, None))
        self.want_link()

    def _arrive(self, conn: Conn, src: SimNode, dst: SimNode, data: bytes | None) -> None:
        silent = self._silent_until()
        if silent is not None:  # a partition began after the send: TCP retransmits later
            self.at(silent + 1, partial(self._arrive, conn, src, dst, data))
            return
        if dst.up and dst.conn is conn:
            if data is None:
                dst.link_lost(conn)
            else:
                dst.link_data(conn, data)
        elif data is not None and src.conn is conn:
            src.link_lost(conn)  # the other end is gone: reset

    # --- the client network ---------------------------------------------------------------

    def _copies(self) -> int:
        net = self.net
        if net.random() < self._active("loss"):
            return 0
        return 2 if net.random() < self._active("dup") else 1

    def _delay(self) -> int:
        return 1 + int(self.net.random() * self._active("delay"))

    def client_send(
        self, client: SimClient, data: bytes, to: IPv4Address | None, src: IPv4Address
    ) -> None:
        for node in self.nodes:
            if (to is not None and node.ip != to) or self.link_cut(f"client:{node.name}"):
                continue
            for _ in range(self._copies()):
                self.at(
                    self.t + self._delay(),
                    partial(node.receive_dhcp, data, src, to is not None),
                )

    def reply_to_client(self, node: SimNode, reply: Reply, ends: int | None, commit: int) -> None:
        packet = reply.packet
        client = self.by_hw.get(bytes(packet.chaddr[:6]))
        if client is None or self.link_cut(f"client:{node.name}"):
            return
        data = dhcp.encode(packet)
        for _ in range(self._copies()):
            self.at(
                self.t + self._delay(),
                partial(self._client_rx, client, data, (node.name, ends, commit)),
            )

    def _client_rx(
        self, client: SimClient, data: bytes, sender: tuple[str, int | None, int]
    ) -> None:
        self._rx_from = sender
        client.receive(data)

    # --- invariants (a) and (b) -------------------------------------------------------------

    def client_acked(self, client: SimClient, addr: IPv4Address, end: int, p: dhcp.Packet) -> None:
        self.stats["acks"] += 1
        holders = self.holders.setdefault(addr, {})
        for idx, their_end in holders.items():
            if idx != client.index and their_end > self.t:
                other = self.clients[idx]
                self.fail(
                    "a",
                    f"{addr} ACKed by {self._rx_from[0]} to {client.label()} until "
                    f"{end / S:.3f}s while {other.label()} holds it until {their_end / S:.3f}s",
                )
        holders[client.index] = end
        sender, ends, commit = self._rx_from
        self.acks_from[(sender, client.index)] = (addr, ends, end, commit)
        self.note(f"{client.label()} ACK {addr} from {sender} until {end / S:.3f}s")

    def client_dropped(self, client: SimClient, addr: IPv4Address, why: str) -> None:
        holders = self.holders.get(addr)
        if holders is not None:
            holders.pop(client.index, None)
        for node in self.nodes:  # a later binding (released, declined, ...) supersedes them
            key = (node.name, client.index)
            got = self.acks_from.get(key)
            if got is not None and got[0] == addr:
                del self.acks_from[key]
        self.note(f"{client.label()} lets go of {addr}: {why}")

    def _check_acks_survived(self, node: SimNode) -> None:
        """(b): after a restart, every ACK this server gave a still-bound client is there."""
        text = missing_ack(node, self.clients, self.acks_from, self.t)
        if text is not None:
            self.fail("b", text)

    # --- invariants (c) and (d) ---------------------------------------------------------------

    def both_normal(self) -> bool:
        p, s = self.nodes
        return (
            self.connected()
            and p.state() == "normal"
            and s.state() == "normal"
            and p.partner_state() == "normal"
            and s.partner_state() == "normal"
        )

    def _watch(self) -> None:
        if self.both_normal():
            seen = set()
            for node in self.nodes:
                assert node.server is not None
                for lease in node.server.leases():
                    if lease.binding_state in _EXPIRED_OR_RELEASED:
                        key = (node.name, int(lease.address))
                        seen.add(key)
                        since = self.stuck.setdefault(key, self.t)
                        if self.t - since > self.grace:
                            self.fail(
                                "d",
                                f"{lease.address} {lease.binding_state.keyword} on {node.name} "
                                f"for {(self.t - since) / S:.0f}s while both are normal",
                            )
            self.stuck = {k: v for k, v in self.stuck.items() if k in seen}
        else:
            self.stuck.clear()
        self.at(self.t + WATCH_MS, self._watch)

    def _final(self) -> None:
        if not self.both_normal():
            p, s = self.nodes
            self.fail(
                "c",
                f"not NORMAL {self.settle / S:.0f}s after the faults stopped: "
                f"primary {p.state()}/{p.partner_state()}, "
                f"secondary {s.state()}/{s.partner_state()}, linked={self.connected()}",
            )
        for c in self.clients:
            c.stop()
        self.at(self.t + 3 * self.variant.mrd * S, partial(self._compare, 60))

    def _quiet(self) -> bool:
        for node in self.nodes:
            if node.engine is None or node.journal.pending or node.commit_due:
                return False
            st = node.engine.status()
            if st["unacked_updates"] or st["queued_updates"]:
                return False
        return self.both_normal()

    def _compare(self, tries: int) -> None:
        if not self._quiet():
            if tries <= 0:
                self.fail("c", "the pair never became quiet after the faults stopped")
            self.at(self.t + S, partial(self._compare, tries - 1))
            return
        p, s = self.nodes
        assert p.server is not None and s.server is not None
        pdb, sdb = p.server.db.by_addr, s.server.db.by_addr
        for octet in range(100, self.variant.pool_last + 1):
            a = int(IPv4Address(f"192.0.2.{octet}"))
            pv, sv = view(pdb.get(a), p.offset_ms), view(sdb.get(a), s.offset_ms)
            if not same(pv, sv):
                self.fail(
                    "c",
                    f"lease databases disagree on {IPv4Address(a)}: primary {pv}, secondary {sv}",
                )
        self._queue.clear()  # done: nothing after the final comparison matters

    def summary(self) -> str:
        p, s = self.nodes
        return (
            f"seed {self.seed} variant {self.variant.name}: {self.events} events, "
            f"{self.stats['acks']} acks, {self.stats['crashes']} crashes, "
            f"{self.stats['links']} links, end {p.state()}/{s.state()} "
            f"at {(self.t / S):.0f}s"
        )
