"""Microseconds per DORA in Tandem's hot path, split by stage, without sockets or perfdhcp.

Drives the same code the server runs for every packet with perfdhcp-shaped traffic (a relay at
198.18.0.10 with giaddr set, option 61 = 01 + MAC, PRL 1,28,2,3,15,6,12; what ``perfdhcp -l``
sends, checked with tshark) for N new clients on bench/conf/dhcpd-perf.conf (60,000-address
pool):

* ``core``: each stage over all clients in bulk (decode DISCOVER, handle, encode OFFER, decode
  REQUEST, handle, format the ACKed lease for the journal, encode ACK);
* ``edge``: ``DhcpEndpoint.process_batch`` on batches of DISCOVERs then REQUESTs, the way the
  event loop calls it (RxMeta, outcome bookkeeping, log lines, journal detach/write, send),
  with a socket that only counts and the journal on a temporary file (``--fsync`` to include
  one real fdatasync per batch).

``--profile`` runs the edge pass under cProfile and prints the top functions. Timings (CPU time,
best of --runs) on a shared machine: trust differences of ~5 %.

    .venv/bin/python bench/core_bench.py [--clients 20000] [--batch 64] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from tandem.config import load
from tandem.core.server import DhcpServer, RxMeta
from tandem.io.commit import GroupCommit
from tandem.io.dhcp_socket import DhcpEndpoint, _Port, tune_for_serving
from tandem.io.netif import Interface
from tandem.store.journal import LeaseJournal
from tandem.wire import dhcp

HERE = Path(__file__).resolve().parent
CONF = HERE / "conf" / "dhcpd-perf.conf"
IFACE = Interface("eth0", 2, bytes.fromhex("0242c6120001"), (IPv4Interface("198.18.0.1/16"),))
RELAY = "198.18.0.10"
NOW = 1_700_000_000
_HEAD = struct.Struct("!BBBBIHHIIII16s64s128s")
_PRL = bytes([1, 28, 2, 3, 15, 6, 12])


def _mac(i: int) -> bytes:
    return bytes([0x00, 0x0C]) + i.to_bytes(4, "big")


def request_bytes(i: int, mtype: int, offer: dhcp.Packet | None = None) -> bytes:
    """A perfdhcp-style relayed DISCOVER (mtype 1) or REQUEST for the OFFER (mtype 3)."""
    mac = _mac(i)
    head = _HEAD.pack(
        1, 1, 6, 0, 0x1000 + i, 0, 0, 0, 0, 0, int(IPv4Address(RELAY)), mac, bytes(64), bytes(128)
    )
    opts = bytearray(dhcp.MAGIC_COOKIE)
    opts += bytes([53, 1, mtype])
    if offer is not None:
        opts += bytes([50, 4]) + offer.yiaddr.packed
        opts += bytes([54, 4]) + offer.options[54]
    opts += bytes([55, len(_PRL)]) + _PRL
    opts += bytes([61, 7, 1]) + mac
    opts += b"\xff"
    return head + bytes(opts)


def new_server() -> DhcpServer:
    return DhcpServer(load(str(CONF)), interfaces={IFACE.name: IFACE.addrs})


def _meta() -> RxMeta:
    return RxMeta(IFACE.name, IFACE.addrs, IPv4Address(RELAY), 67, False)


def core_stages(n: int) -> dict[str, float]:
    """Seconds per stage over n clients (each stage in bulk, cyclic GC off: the bench holds
    every packet and outcome alive, which would make collections far costlier than in the
    server; the edge pass keeps GC on)."""
    gc.collect()
    gc.disable()
    try:
        return _core_stages(n)
    finally:
        gc.enable()


def _core_stages(n: int) -> dict[str, float]:
    srv = new_server()
    journal = LeaseJournal(Path(tempfile.mkdtemp()) / "core.leases", fsync=False)
    journal.load()
    t: dict[str, float] = {}
    discovers = [request_bytes(i, 1) for i in range(n)]
    clock = time.process_time  # CPU time: the machine is shared, wall time is noisy

    t0 = clock()
    dpk = [dhcp.decode(b) for b in discovers]
    t["decode DISCOVER"] = clock() - t0

    t0 = clock()
    outs = [srv.handle(p, _meta(), NOW) for p in dpk]
    t["handle DISCOVER"] = clock() - t0

    replies = [o.reply for o in outs]
    assert all(r is not None for r in replies), "every DISCOVER must get an OFFER"
    t0 = clock()
    for r, p in zip(replies, dpk, strict=True):
        assert r is not None
        dhcp.encode(r.packet, max_size=p.max_message_size)
    t["encode OFFER"] = clock() - t0

    requests = [request_bytes(i, 3, r.packet) for i, r in enumerate(replies) if r is not None]
    t0 = clock()
    rpk = [dhcp.decode(b) for b in requests]
    t["decode REQUEST"] = clock() - t0

    t0 = clock()
    outs = [srv.handle(p, _meta(), NOW) for p in rpk]
    t["handle REQUEST"] = clock() - t0

    acks = [o.reply for o in outs]
    assert all(o.writes for o in outs), "every REQUEST must commit a lease"
    t0 = clock()
    for o in outs:
        for lease in o.writes:
            journal.append(lease)
    t["journal format"] = clock() - t0

    t0 = clock()
    for r, p in zip(acks, rpk, strict=True):
        assert r is not None
        dhcp.encode(r.packet, max_size=p.max_message_size)
    t["encode ACK"] = clock() - t0
    journal.close()
    return t


class _CountingSocket:
    """Stands in for the UDP socket: replies are counted, nothing is sent."""

    def __init__(self) -> None:
        self.sent = 0
        self.bytes = 0

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        self.sent += 1
        self.bytes += len(data)
        return len(data)


def edge_pass(n: int, batch: int, *, fsync: bool) -> tuple[float, int]:
    """Seconds for n DORAs through DhcpEndpoint.process_batch; also the replies sent."""
    srv = new_server()
    journal = LeaseJournal(Path(tempfile.mkdtemp()) / "edge.leases", fsync=fsync)
    journal.load()
    sink = open("/dev/null", "w")  # noqa: SIM115 - closed below
    emit: Callable[[list[str]], None] = lambda lines: sink.write("\n".join(lines) + "\n")  # noqa: E731
    # No interfaces: the endpoint opens no socket; the fake one below gets the replies.
    commit = GroupCommit(journal)  # never started: every sync inline, as on a fast disk
    ep = DhcpEndpoint(srv, commit, [], emit=emit, clock=lambda: float(NOW))
    fake = _CountingSocket()
    port = _Port(IFACE, fake)  # type: ignore[arg-type]
    addr = (RELAY, 67)
    discovers = [(request_bytes(i, 1), False, addr) for i in range(n)]
    elapsed = 0.0
    clock = time.process_time  # CPU time: the machine is shared, wall time is noisy
    for lo in range(0, n, batch):
        chunk = discovers[lo : lo + batch]
        t0 = clock()
        ep.process_batch(port, chunk)
        elapsed += clock() - t0
        # The OFFERs of this batch are the last replies handed to the fake socket; rebuild
        # them from the server's holds to make the REQUESTs (outside the timing).
        reqs = []
        for i in range(lo, min(lo + batch, n)):
            off = srv.db.held_for(b"\x01" + _mac(i), (1, _mac(i)))
            assert off is not None, "OFFER not held"
            fake_offer = dhcp.Packet(
                2, 1, 6, 0, 0, 0, 0, dhcp._ZERO, IPv4Address(off.address), dhcp._ZERO,
                dhcp._ZERO, _mac(i), options={54: IFACE.addrs[0].ip.packed},
            )  # fmt: skip
            reqs.append((request_bytes(i, 3, fake_offer), False, addr))
        t0 = clock()
        ep.process_batch(port, reqs)
        elapsed += clock() - t0
    commit.close()
    journal.close()
    sink.close()
    return elapsed, fake.sent


def _us(seconds: float, n: int) -> str:
    return f"{seconds / n * 1e6:8.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clients", type=int, default=20000, help="new clients (DORAs) per run")
    ap.add_argument("--batch", type=int, default=64, help="packets per process_batch call")
    ap.add_argument("--runs", type=int, default=3, help="repeat and report the median")
    ap.add_argument("--fsync", action="store_true", help="edge pass: real fdatasync per batch")
    ap.add_argument("--profile", action="store_true", help="cProfile the edge pass (top 35)")
    ap.add_argument("--sort", default="tottime", help="pstats sort key for --profile")
    ap.add_argument(
        "--no-tune", action="store_true", help="keep CPython's GC/GIL defaults (the server tunes)"
    )
    args = ap.parse_args(argv)
    if not args.no_tune:
        tune_for_serving()  # what DhcpEndpoint.start does in the server
    n = args.clients
    if not 0 < n <= 55000:
        ap.error("--clients must be 1..55000 (the pool has 60000 addresses)")
    gc.collect()
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        edge_pass(n, args.batch, fsync=args.fsync)
        prof.disable()
        buf = io.StringIO()
        st = pstats.Stats(prof, stream=buf)
        st.sort_stats(args.sort).print_stats(35)
        print(buf.getvalue())
        return 0
    stage_runs: list[dict[str, float]] = [core_stages(n) for _ in range(args.runs)]
    print(f"core stages, µs per DORA ({n} new clients, best of {args.runs}):")
    total = 0.0
    for name in stage_runs[0]:
        med = min(r[name] for r in stage_runs)  # least disturbed run (shared machine)
        total += med
        print(f"  {name:<16} {_us(med, n)}")
    print(f"  {'sum':<16} {_us(total, n)}")
    edges = [edge_pass(n, args.batch, fsync=args.fsync) for _ in range(args.runs)]
    sent = edges[0][1]
    if sent != 2 * n:
        print(f"edge pass sent {sent} replies, expected {2 * n}", file=sys.stderr)
        return 1
    med = min(e[0] for e in edges)
    what = "with fdatasync" if args.fsync else "no fsync"
    print(
        f"edge process_batch (batch {args.batch}, {what}): {_us(med, n)} µs per DORA "
        f"= {n / med:,.0f} DORA/s on one core"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
