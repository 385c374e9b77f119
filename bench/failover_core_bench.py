"""Microseconds per lease in the failover path (split 256), by stage, without perfdhcp.

The pair's CPU per lease is the DHCP cost (bench/core_bench.py) plus the primary's failover
cost (build and send a BNDUPD, read and apply its BNDACK) plus the secondary's whole cost (read
the BNDUPD, apply it, journal it, build and send the BNDACK). Both peers share one CPU in
bench/failover_bench.py, so the second and third terms decide the pair/standalone ratio. This
bench measures them on bench/conf/failover-perf-{primary,secondary}.conf (60,000-address pool,
max-unacked-updates 10), after a fresh pair has balanced:

* ``core``: the sans-IO engines, one window (max-unacked-updates BNDUPDs) at a time, the way
  the link drives them: primary ``take_writes`` + ``data_to_send``; secondary
  ``receive_data`` (the window's bytes in one chunk), ``take_writes``, journal formatting of
  the written leases, ``data_to_send`` (BNDACKs); primary ``receive_data`` (BNDACKs),
  ``take_writes`` and journal formatting of the ack bookkeeping. Also the extra cost of the
  DHCP REQUEST on a failover pool (the MCLT clamp, ``changed``) against a standalone server.
* ``io``: both ``FailoverLink`` objects of tandem.io.failover_link in one asyncio loop joined
  by a loopback socketpair, journals on temporary files (a GroupCommit never started: one
  write per send, fdatasync only with ``--fsync``); the primary's queue of N committed leases
  is drained through the real transports. Process CPU of both sides together, per lease.

``--profile`` runs the io pass under cProfile and prints the top functions. CPU time
(time.process_time, best of --runs); trust differences of ~5 %.

    .venv/bin/python bench/failover_core_bench.py [--clients 20000] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from core_bench import request_bytes  # bench/core_bench.py: perfdhcp-shaped requests

from tandem.config import load
from tandem.core.failover.engine import FailoverEngine, FailoverSetup
from tandem.core.server import DhcpServer, RxMeta
from tandem.io.commit import GroupCommit
from tandem.io.dhcp_socket import tune_for_serving
from tandem.io.failover_link import FailoverLink, _Conn
from tandem.lab.failover_pair import Pair
from tandem.store.journal import LeaseJournal
from tandem.wire import dhcp

HERE = Path(__file__).resolve().parent
CONF = HERE / "conf"
RELAY = "198.18.0.10"
NOW = 1_700_000_000
PRIMARY_IF = IPv4Interface("198.18.0.1/16")
SECONDARY_IF = IPv4Interface("198.18.0.2/16")


class Node:
    """One peer: server, engine, journal on a temporary file."""

    def __init__(self, conf: str, iface: IPv4Interface, tmp: Path, *, fsync: bool) -> None:
        cfg = load(str(CONF / conf))
        self.iface = iface
        setup = FailoverSetup(cfg, {}, NOW)
        self.server = DhcpServer(cfg, interfaces={"eth0": (iface,)}, failover=setup)
        (self.engine,) = setup.engines.values()
        self.peer = cfg.failover_peers[0]
        self.journal = LeaseJournal(tmp / f"{conf}.leases", fsync=fsync)
        self.journal.load()
        self.meta = RxMeta("eth0", (iface,), IPv4Address(RELAY), 67, False)

    def commit(self) -> None:
        leases, states = self.engine.take_writes()
        for lease in leases:
            self.journal.append(lease)
        for rec in states:
            self.journal.append_state(rec)
        self.journal.commit()


def balanced_pair(tmp: Path, *, fsync: bool = False) -> tuple[Node, Node, Pair]:
    """A fresh pair, NORMAL and balanced (in memory; journals get the balancing records)."""
    p = Node("failover-perf-primary.conf", PRIMARY_IF, tmp, fsync=fsync)
    s = Node("failover-perf-secondary.conf", SECONDARY_IF, tmp, fsync=fsync)

    def on_commit(eng: FailoverEngine, leases: list[object], states: list[object]) -> None:
        node = p if eng is p.engine else s
        for lease in leases:
            node.journal.append(lease)  # type: ignore[arg-type]
        for rec in states:
            node.journal.append_state(rec)  # type: ignore[arg-type]

    pair = Pair(p.engine, s.engine, NOW, on_commit=on_commit)
    pair.connect()
    for node in (p, s):
        assert node.engine.machine.state.keyword == "normal", node.engine.machine.state
        node.journal.commit()
    return p, s, pair


def dora_all(node: Node, n: int) -> float:
    """N new clients DORA on ``node``; returns CPU seconds of the N REQUESTs' handle()."""
    srv, meta = node.server, node.meta
    spent = 0.0
    for i in range(n):
        off = srv.handle(dhcp.decode(request_bytes(i, 1)), meta, NOW)
        assert off.reply is not None, "every DISCOVER must get an OFFER"
        req = dhcp.decode(request_bytes(i, 3, off.reply.packet))
        t0 = time.process_time()
        out = srv.handle(req, meta, NOW)
        spent += time.process_time() - t0
        assert out.writes, "every REQUEST must commit a lease"
        for lease in out.writes:
            node.journal.append(lease)
    node.journal.commit()
    return spent


def secondary_sees(node: Node, primary: Node, n: int) -> float:
    """CPU seconds for the secondary to handle the broadcast DISCOVER and REQUEST of n
    clients the primary serves (perfdhcp broadcasts: both peers see every packet; split
    256 leaves every DISCOVER to the primary, and the REQUEST names the primary)."""
    srv, meta = node.server, node.meta
    pid = primary.iface.ip.packed
    spent = 0.0
    for i in range(n, 2 * n):
        disc = request_bytes(i, 1)
        fake = dhcp.decode(request_bytes(i, 3))  # only yiaddr and option 54 are read
        fake.yiaddr = IPv4Address(int(PRIMARY_IF.network.network_address) + 256 + i)
        fake.options[54] = pid
        req = request_bytes(i, 3, fake)
        t0 = time.process_time()
        out = srv.handle(dhcp.decode(disc), meta, NOW)
        out2 = srv.handle(dhcp.decode(req), meta, NOW)
        spent += time.process_time() - t0
        assert out.reply is None and out2.reply is None and not out2.writes
    return spent


def standalone_requests(n: int) -> float:
    srv = DhcpServer(load(str(CONF / "dhcpd-perf.conf")), interfaces={"eth0": (PRIMARY_IF,)})
    meta = RxMeta("eth0", (PRIMARY_IF,), IPv4Address(RELAY), 67, False)
    spent = 0.0
    for i in range(n):
        off = srv.handle(dhcp.decode(request_bytes(i, 1)), meta, NOW)
        assert off.reply is not None
        req = dhcp.decode(request_bytes(i, 3, off.reply.packet))
        t0 = time.process_time()
        srv.handle(req, meta, NOW)
        spent += time.process_time() - t0
    return spent


STAGES = (
    "P: take_writes + BNDUPD out",
    "S: receive BNDUPDs (apply)",
    "S: take_writes",
    "S: journal format",
    "S: BNDACKs out",
    "P: receive BNDACKs (apply)",
    "P: take_writes",
    "P: journal format (ack)",
)


def core_stages(n: int) -> dict[str, float]:
    """Seconds per stage over n leases (GC off as in core_bench's core pass)."""
    tmp = Path(tempfile.mkdtemp())
    p, s, _pair = balanced_pair(tmp)
    t: dict[str, float] = {name: 0.0 for name in STAGES}
    t["REQUEST on a failover pool"] = dora_all(p, n)
    t["REQUEST standalone"] = standalone_requests(n)
    t["S: sees DISCOVER+REQUEST"] = secondary_sees(s, p, n)
    pe, se = p.engine, s.engine
    pj, sj = p.journal, s.journal
    clock = time.process_time
    gc.collect()
    gc.disable()
    sent = 0
    try:
        while True:
            t0 = clock()
            pe.take_writes()
            upd = pe.data_to_send()
            t1 = clock()
            if not upd:
                break
            sent += upd.count(b"\x00\x02\x00\x04")  # rough: one address option each
            se.receive_data(upd, NOW)
            t2 = clock()
            leases, _states = se.take_writes()
            t3 = clock()
            for lease in leases:
                sj.append(lease)
            t4 = clock()
            ack = se.data_to_send()
            t5 = clock()
            pe.receive_data(ack, NOW)
            t6 = clock()
            pleases, _ = pe.take_writes()
            t7 = clock()
            for lease in pleases:
                pj.append(lease)
            t8 = clock()
            for name, dt in zip(
                STAGES,
                (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6, t8 - t7),
                strict=True,
            ):
                t[name] += dt
            if len(sj._pending) > 5000:  # keep memory flat; commit is not timed
                sj.commit()
                pj.commit()
    finally:
        gc.enable()
    st = se.status()
    assert pe.status()["unacked_updates"] == 0 and not pe.leases.queue
    assert int(str(st["pools"][0]["free"])) == 30000 - n, st  # type: ignore[index]
    return t


# --- io pass -------------------------------------------------------------------------------


def io_pass(n: int, *, fsync: bool, profile: cProfile.Profile | None = None) -> float:
    """CPU seconds (both peers, one process) to drain N committed leases over the links."""
    tmp = Path(tempfile.mkdtemp())
    p, s, pair = balanced_pair(tmp, fsync=fsync)
    # Hand the engines over from the in-memory pair to real links: drop and reconnect, the
    # way a restart of the link would (the pair goes through COMMUNICATIONS-INTERRUPTED).
    pair.disconnect()
    p.commit()
    s.commit()
    dora_all(p, n)
    emit: Callable[[list[str]], None] = lambda lines: None  # noqa: E731
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_io_drain(loop, p=p, s=s, emit=emit, n=n, profile=profile))
    finally:
        loop.close()


async def _io_drain(
    loop: asyncio.AbstractEventLoop,
    *,
    p: Node,
    s: Node,
    emit: Callable[[list[str]], None],
    n: int,
    profile: cProfile.Profile | None,
) -> float:
    # Commits never started: each send syncs inline, before it leaves.
    plink = FailoverLink(p.engine, p.peer, GroupCommit(p.journal), emit, clock=lambda: float(NOW))
    slink = FailoverLink(s.engine, s.peer, GroupCommit(s.journal), emit, clock=lambda: float(NOW))
    for link in (plink, slink):
        link._loop = loop  # no dialling or listening: the socketpair below is the link
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    await loop.connect_accepted_socket(lambda: _Conn(plink, True), a)
    await loop.connect_accepted_socket(lambda: _Conn(slink, False), b)
    # Reconnected: wait until both are NORMAL again (the queue holds the N leases).
    for _ in range(10000):
        if p.engine.machine.state.keyword == s.engine.machine.state.keyword == "normal":
            break
        await asyncio.sleep(0)
    else:
        raise RuntimeError("the pair did not return to NORMAL over the socketpair")
    leases = p.engine.leases
    gc.collect()
    t0 = time.process_time()
    if profile is not None:
        profile.enable()
    plink.service()
    while leases.queue or leases.inflight or leases.staged:
        await asyncio.sleep(0)
    if profile is not None:
        profile.disable()
    spent = time.process_time() - t0
    st = s.engine.status()
    assert int(str(st["pools"][0]["free"])) == 30000 - n, st  # type: ignore[index]
    plink.close()
    slink.close()
    return spent


def _us(seconds: float, n: int) -> str:
    return f"{seconds / n * 1e6:8.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clients", type=int, default=20000, help="new leases per run")
    ap.add_argument("--runs", type=int, default=3, help="repeat, report the best")
    ap.add_argument("--fsync", action="store_true", help="io pass: real fdatasync per send")
    ap.add_argument("--profile", action="store_true", help="cProfile the io pass (top 40)")
    ap.add_argument("--sort", default="tottime", help="pstats sort key for --profile")
    ap.add_argument("--skip-core", action="store_true", help="only the io pass")
    args = ap.parse_args(argv)
    tune_for_serving()
    n = args.clients
    if not 0 < n <= 29000:
        ap.error("--clients must be 1..29000 (the primary owns 30000 free addresses)")
    if args.profile:
        prof = cProfile.Profile()
        io_pass(n, fsync=args.fsync, profile=prof)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats(args.sort).print_stats(40)
        print(buf.getvalue())
        return 0
    if not args.skip_core:
        runs = [core_stages(n) for _ in range(args.runs)]
        print(f"failover core stages, µs per lease ({n} leases, best of {args.runs}):")
        prim = sec = 0.0
        for name in STAGES:
            best = min(r[name] for r in runs)
            if name.startswith("P"):
                prim += best
            else:
                sec += best
            print(f"  {name:<30} {_us(best, n)}")
        print(f"  {'primary failover sum':<30} {_us(prim, n)}")
        print(f"  {'secondary sum':<30} {_us(sec, n)}")
        fo = min(r["REQUEST on a failover pool"] for r in runs)
        alone = min(r["REQUEST standalone"] for r in runs)
        print(f"  {'REQUEST handle, failover pool':<30} {_us(fo, n)}")
        print(f"  {'REQUEST handle, standalone':<30} {_us(alone, n)}")
        print(f"  {'core total failover cost':<30} {_us(prim + sec + fo - alone, n)}")
        seen = min(r["S: sees DISCOVER+REQUEST"] for r in runs)
        print(f"  {'S: decode+handle DISCOVER+REQ':<30} {_us(seen, n)}  (perfdhcp broadcasts)")
    ios = [io_pass(n, fsync=args.fsync) for _ in range(args.runs)]
    what = "with fdatasync" if args.fsync else "no fsync"
    print(
        f"io pass (both links, socketpair, inline commits, {what}): {_us(min(ios), n)} µs per "
        f"lease (both peers)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
