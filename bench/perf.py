"""Leases per second of ISC dhcpd, Kea and Tandem, measured the way anchors.md did (``make bench``).

Lab: namespaces srv (198.18.0.1/16) and perf (198.18.0.10/16) on one bridge; veth offload and IPv6
off. Pool 198.18.1.0-198.18.235.95 (60000 addresses), lease time 86400 s. Load: ``perfdhcp -4 -l
eth0 -r RATE -R 60000 -p SECS -g single -s 1 -x e`` with SECS = min(20, 55000/RATE), so every
exchange is a new lease. perfdhcp is pinned to CPU 0 and the server to CPU 1 (on 2+ CPUs). Every
trial starts the server fresh with an empty lease database. Rows: ISC dhcpd, Kea, Tandem as
``make deps`` built it (hot path compiled with mypyc, scripts/build_native.py) and Tandem pure
(``TANDEM_PURE=1``: the same source, interpreted). The "-ping" rows run ISC dhcpd and Tandem with
ping-check on (``ping-check true; ping-timeout-ms 500;``, the rest of the config the same): every
OFFER waits for a ping to an address nobody holds, so it leaves one timeout late; 500 ms stays
inside perfdhcp's drop time (``-d``, 1 s by default), after which it counts an exchange lost.
The "offer delay" column is perfdhcp's average DISCOVER-OFFER delay over the repeats. Two things
differ for those rows: the exchanges started in the last ping timeout of a trial cannot end inside
it, so ``rate * 0.5`` of them are not counted as lost; and each ping to an unheld address leaves
a neighbour entry INCOMPLETE while ARP fails (3 s by default), and the kernel's table of them is
shared by every namespace and full at 1024 entries (gc_thresh3, not settable per namespace), after
which sends fail with ENOBUFS in every namespace, perfdhcp's included (its DISCOVERs then never
leave). So for those rows the server's eth0 gives up ARP after one probe and 200 ms
(``mcast_solicit``, ``retrans_time_ms``, per-namespace settings), for dhcpd and Tandem alike.

"Max sustained rate" is the highest offered rate at which at most 1 % of the started exchanges did
not end in an ACK: ramp up by doubling until a trial fails, bisect between the last good and the
first bad rate, then repeat the best rate and report the median; if that median loses more than
1 %, the rate counts as failed and the search goes on below it. CPU per lease comes from
/proc/PID/stat over the perfdhcp run (so it includes idle and timer work). fsync per lease comes
from a separate low-rate trial under ``strace -c -f`` (ptrace would distort the throughput
trials).

The Tandem rows run as Tandem is installed: the HTTP listener on (127.0.0.1:8067, the command
API and /metrics) and scraped once a second from the server's namespace (``--no-scrape`` turns
the scraper off); the scraper shares perfdhcp's CPU.

Never run from pytest: these are timings on a shared machine. Trust differences of about 2x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tandem
from tandem.lab.netns import Host, Lab, LabError
from tandem.lab.perf import PerfResult, SyscallCounter, cpu_seconds, run_perfdhcp
from tandem.lab.servers import Server, run_dhcpd, run_kea, run_tandem

HERE = Path(__file__).resolve().parent
CONF = HERE / "conf"
SERVERS = ("dhcpd", "kea", "tandem", "tandem-pure", "dhcpd-ping", "tandem-ping")
START_RATE = {"dhcpd": 200, "kea": 4000, "tandem": 1000, "tandem-pure": 1000}
START_RATE |= {"dhcpd-ping": 200, "tandem-ping": 1000}
PING_TIMEOUT_MS = 500  # the "-ping" rows: below perfdhcp's 1 s drop time
MAX_RATE = 64000
LOSS_LIMIT = 1.0  # percent
EXCHANGE_CAP = 55000  # < pool size: no client repeats within one trial
HTTP_PORT = 8067  # Tandem's default --http listener (the command API and /metrics)
#: The Tandem rows run with the HTTP listener on (its default) and /metrics scraped once a
#: second from the server's namespace, as a Prometheus would (issue 10: the API and the
#: metrics cost nothing on the per-packet path). Prints "scrapes N" after each good scrape
#: (the last line counts: a background run may ignore SIGINT, and the stop may be a SIGKILL).
SCRAPER = """
import sys, time, urllib.request
n = 0
while True:
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
            if b"tandem_dhcp_received_total" in r.read():
                n += 1
                print("scrapes", n, flush=True)
    except OSError as exc:
        print("scrape failed:", exc, flush=True)
    time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
"""


@dataclass
class Trial:
    rate: int
    seconds: float
    acks_per_s: float
    lost_pct: float
    cpu_ms_per_lease: float | None
    exit_code: int
    offer_delay_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.lost_pct <= LOSS_LIMIT


@dataclass
class Verdict:
    server: str
    max_rate: int | None = None
    acks_per_s: float | None = None
    lost_pct: float | None = None
    cpu_ms_per_lease: float | None = None
    fsync_per_lease: float | None = None
    offer_delay_ms: float | None = None
    error: str | None = None
    trials: list[Trial] = field(default_factory=list)


class Bench:
    def __init__(self, lab: Lab, args: argparse.Namespace) -> None:
        self.lab = lab
        self.args = args
        self.srv = lab.add_host("srv", "198.18.0.1/16")
        self.perf = lab.add_host("perf", "198.18.0.10/16")
        for host in (self.srv, self.perf):
            _raise_neigh_limits(host)
        two = (os.cpu_count() or 1) >= 2
        self.cpu_perf = 0 if two else None
        self.cpu_srv = 1 if two else None
        self.seq = 0
        self.scrapes: list[int | None] = []  # /metrics scrapes per Tandem trial

    def start(self, kind: str) -> Server:
        """A fresh server with an empty lease database."""
        self.seq += 1
        leases = self.srv.workdir / f"{kind}-{self.seq}.leases"
        if kind in ("dhcpd", "dhcpd-ping"):
            conf = _ping_conf() if kind == "dhcpd-ping" else _conf("dhcpd-perf.conf")
            return run_dhcpd(self.srv, conf, leases, cpu=self.cpu_srv)
        if kind in ("tandem", "tandem-pure", "tandem-ping"):
            conf = _ping_conf() if kind == "tandem-ping" else _conf("dhcpd-perf.conf")
            pure = kind == "tandem-pure"
            return run_tandem(self.srv, conf, leases, cpu=self.cpu_srv, pure=pure)
        if kind == "kea":
            text = _conf("kea-dhcp4-perf.json").replace("__LEASEFILE__", str(leases))
            return run_kea(self.srv, text, cpu=self.cpu_srv)
        raise LabError(f"unknown server {kind!r}")

    def trial(self, kind: str, rate: int) -> Trial:
        secs = min(self.args.seconds, EXCHANGE_CAP / rate)
        pings = kind.endswith("-ping")
        _arp_for_pings(self.srv, pings)
        server = self.start(kind)
        scraper = None
        try:
            if kind.startswith("tandem") and not self.args.no_scrape:
                scraper = self.srv.spawn(
                    [sys.executable, "-c", SCRAPER, f"http://127.0.0.1:{HTTP_PORT}/metrics"],
                    self.srv.workdir / f"scrape-{self.seq}.log",
                    name="scraper",
                    cpu=self.cpu_perf,
                )
            before = cpu_seconds(server.proc.pid)
            res: PerfResult = run_perfdhcp(self.perf, rate, secs, cpu=self.cpu_perf)
            used = cpu_seconds(server.proc.pid) - before
            if not server.proc.running():
                raise LabError(f"{kind} died during the trial:\n{server.log()[-1500:]}")
        finally:
            if scraper is not None:
                scraper.stop()
            server.stop()
        if scraper is not None:
            self.scrapes.append(_scrape_count(scraper.log()))
        cpu_ms = 1000.0 * used / res.acks if res.acks else None
        do = res.stats.get("DISCOVER-OFFER")
        delay = do.avg_delay_ms if do is not None else None
        lost = res.lost_pct
        if pings and res.discovers:  # still waiting for their ping when the period ended
            open_at_end = rate * PING_TIMEOUT_MS / 1000.0
            lost = max(0.0, 100.0 * (res.discovers - res.acks - open_at_end) / res.discovers)
        t = Trial(rate, res.seconds, res.acks_per_s, lost, cpu_ms, res.exit_code, delay)
        mark = "ok" if t.ok else "LOSS"
        cpu_txt = f"{cpu_ms:.3f} ms/lease" if cpu_ms is not None else "-"
        delay_txt = f", offer delay {delay:.1f} ms" if delay is not None else ""
        print(
            f"  {kind:7} rate {rate:6}/s for {res.seconds:4.0f} s: {t.acks_per_s:9.1f} ACK/s, "
            f"lost {t.lost_pct:6.2f} %, {cpu_txt}{delay_txt} [{mark}]",
            flush=True,
        )
        return t

    def fsync_per_lease(self, kind: str) -> float:
        """fsync+fdatasync calls per ACK at a low rate, counted with strace on every thread."""
        server = self.start(kind)
        try:
            with SyscallCounter(server.proc.pid) as counter:
                res = run_perfdhcp(self.perf, 100, 3, cpu=self.cpu_perf)
                time.sleep(1.0)  # let a timed or batched commit land inside the window
                counts = counter.counts()
        finally:
            server.stop()
        if res.acks == 0:
            raise LabError("no ACKs in the fsync trial")
        return sum(counts.values()) / res.acks

    def find_max(self, kind: str) -> Verdict:
        v = Verdict(kind)
        good: int | None = None
        bad: int | None = None
        rate = START_RATE.get(kind, 200)
        # Below the start rate if even that fails, then up by doubling.
        while True:
            t = self.trial(kind, rate)
            v.trials.append(t)
            if t.ok:
                good = rate
                if bad is not None or rate >= MAX_RATE:
                    break
                rate *= 2
            else:
                bad = rate
                if good is not None or rate <= 25:
                    break
                rate //= 2
        if good is None:
            v.error = f"over {LOSS_LIMIT} % lost even at {bad}/s"
            return v
        if bad is not None:
            for _ in range(self.args.bisect):
                mid = _round2((good + bad) // 2)
                if mid in (good, bad):
                    break
                t = self.trial(kind, mid)
                v.trials.append(t)
                if t.ok:
                    good = mid
                else:
                    bad = mid
        # The repeats must confirm it: a rate whose median over the repeats loses more than the
        # limit counts as failed, and the search goes on below it (one lucky trial at the edge
        # once reported a max rate whose median lost 5 %).
        while True:
            reps = [t for t in v.trials if t.rate == good]
            while len(reps) < self.args.repeats:
                t = self.trial(kind, good)
                v.trials.append(t)
                reps.append(t)
            if statistics.median(t.lost_pct for t in reps) <= LOSS_LIMIT:
                break
            bad = good
            below = [t.rate for t in v.trials if t.ok and t.rate < bad]
            if not below:
                v.error = f"over {LOSS_LIMIT} % lost (median of repeats) even at {bad}/s"
                return v
            good = max(below)
            mid = _round2((good + bad) // 2)
            if mid not in (good, bad):
                t = self.trial(kind, mid)
                v.trials.append(t)
                if t.ok:
                    good = mid
        v.max_rate = good
        v.acks_per_s = statistics.median(t.acks_per_s for t in reps)
        v.lost_pct = statistics.median(t.lost_pct for t in reps)
        cpus = [t.cpu_ms_per_lease for t in reps if t.cpu_ms_per_lease is not None]
        v.cpu_ms_per_lease = statistics.median(cpus) if cpus else None
        delays = [t.offer_delay_ms for t in reps if t.offer_delay_ms is not None]
        v.offer_delay_ms = statistics.median(delays) if delays else None
        return v


def _conf(name: str) -> str:
    return (CONF / name).read_text(encoding="utf-8")


def _ping_conf() -> str:
    """The bench config with ping-check on and a timeout perfdhcp's drop time tolerates."""
    text = _conf("dhcpd-perf.conf")
    off = "ping-check false;"
    if off not in text:
        raise LabError(f"bench/conf/dhcpd-perf.conf has no {off!r} line to turn on")
    on = f"ping-check true;\nping-timeout-ms {PING_TIMEOUT_MS};"
    return text.replace(off, on, 1)


def _scrape_count(log: str) -> int | None:
    """The scraper's last "scrapes N" line (None: no scrape succeeded)."""
    for line in reversed(log.splitlines()):
        if line.startswith("scrapes "):
            return int(line.split()[1])
    return None


def _round2(n: int) -> int:
    """Round to two significant digits, so ramp steps read like 350, 1300, 18000."""
    if n < 100:
        return n
    mag = int(10 ** (len(str(n)) - 2))
    return max(mag, round(n / mag) * mag)


def _arp_for_pings(host: Host, pings: bool) -> None:
    """The "-ping" rows: eth0 gives up ARP after one probe and 200 ms (else the default: 3
    probes, 1 s apart), so failed resolutions do not fill the kernel's neighbour table."""
    solicit, retrans = ("1", "200") if pings else ("3", "1000")
    for name, val in (("mcast_solicit", solicit), ("retrans_time_ms", retrans)):
        host.run(["sysctl", "-q", "-w", f"net.ipv4.neigh.eth0.{name}={val}"])


def _raise_neigh_limits(host: Host) -> None:
    """Per-namespace ARP table limits for tens of thousands of clients (unicast replies)."""
    for i, val in ((1, 65536), (2, 98304), (3, 131072)):
        host.run(["sysctl", "-q", "-w", f"net.ipv4.neigh.default.gc_thresh{i}={val}"], check=False)


def _fmt(x: float | int | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _ratio(a: float | int | None, b: float | int | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def print_table(verdicts: list[Verdict]) -> None:
    head = (
        "| server | max rate (<=1 % lost) | ACK/s (median) | lost % | CPU ms/lease | fsync/lease "
        "| offer delay ms |"
    )
    print()
    print("Pool 198.18.1.0-198.18.235.95 (60000 addresses), new clients, lease time 86400 s.")
    print(head)
    print("|---|---|---|---|---|---|---|")
    for v in verdicts:
        if v.max_rate is None:
            print(f"| {v.server} | {v.error or 'no result'} | - | - | - | - | - |")
            continue
        fs = _fmt(v.fsync_per_lease, ".2f")
        if v.error:
            fs = f"{fs} ({v.error})"
        print(
            f"| {v.server} | {v.max_rate} | {_fmt(v.acks_per_s, '.1f')} | "
            f"{_fmt(v.lost_pct, '.2f')} | {_fmt(v.cpu_ms_per_lease, '.3f')} | {fs} | "
            f"{_fmt(v.offer_delay_ms, '.1f')} |"
        )
    by = {v.server: v for v in verdicts}
    for mine, others in (
        ("tandem", ("kea", "dhcpd")),
        ("tandem-pure", ("kea", "dhcpd")),
        ("tandem-ping", ("dhcpd-ping",)),
    ):
        t = by.get(mine)
        if t is None:
            continue
        for other in others:
            o = by.get(other)
            if o is None:
                continue
            print(
                f"{mine}/{other}: max rate {_ratio(t.max_rate, o.max_rate)}, "
                f"ACK/s {_ratio(t.acks_per_s, o.acks_per_s)}, "
                f"CPU per lease {_ratio(t.cpu_ms_per_lease, o.cpu_ms_per_lease)}"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="short trials, 1 bisect step, 1 repeat")
    ap.add_argument("--servers", default=",".join(SERVERS), help="comma list of " + str(SERVERS))
    ap.add_argument("--json", type=Path, help="also write the verdicts and trials here")
    ap.add_argument("--keep", action="store_true", help="keep the lab's work dir (server logs)")
    ap.add_argument(
        "--no-scrape", action="store_true", help="Tandem rows: do not scrape /metrics each second"
    )
    args = ap.parse_args(argv)
    args.seconds = 5.0 if args.quick else 20.0
    args.bisect = 1 if args.quick else 3
    args.repeats = 1 if args.quick else 3
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in SERVERS]
    if unknown:
        ap.error(f"unknown servers {unknown}; choose from {SERVERS}")

    # "tandem" runs the build `make deps` made: compiled with mypyc unless that failed or is
    # stale (tandem.BUILD says why); "tandem-pure" always runs the .py files.
    print(f"tandem build: {tandem.BUILD}")
    verdicts: list[Verdict] = []
    with Lab(keep_workdir=args.keep) as lab:
        if args.keep:
            print(f"work dir: {lab.workdir}")
        bench = Bench(lab, args)
        for kind in kinds:
            print(f"{kind}:", flush=True)
            try:
                v = bench.find_max(kind)
            except LabError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else "error"
                v = Verdict(kind, error=f"failed: {first}"[:160])
                print(f"  {kind} FAILED: {exc}", flush=True)
            if v.max_rate is not None:
                try:
                    v.fsync_per_lease = bench.fsync_per_lease(kind)
                except LabError as exc:
                    v.error = f"fsync trial failed: {str(exc).splitlines()[0]}"[:160]
            verdicts.append(v)
    print_table(verdicts)
    if bench.scrapes:
        ok = [n for n in bench.scrapes if n is not None]
        print(
            f"Tandem rows: /metrics scraped once a second during every trial "
            f"({sum(ok)} scrapes in {len(bench.scrapes)} trials"
            + ("" if len(ok) == len(bench.scrapes) else "; in some trials no scrape succeeded")
            + ")"
        )
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(v) for v in verdicts], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
