"""Failover pairs, Tandem and ISC dhcpd: start-up time and leases per second (``make bench``).

Lab: namespaces srv (198.18.0.1/16, the primary, also the standalone server), srv2
(198.18.0.2/16, the secondary) and perf (198.18.0.10/16) on one bridge, built by bench/perf.py's
Bench. Configs: bench/conf/failover-perf-{primary,secondary}.conf, the reference pair's failover
block with the 60000-address perf pool (198.18.1.0-198.18.235.95). Both peers share CPU 1 and
perfdhcp runs on CPU 0, as in anchors.md.

1. Start-up. A fresh pair (empty lease files), Tandem then dhcpd: seconds until both peers are
   NORMAL (Tandem: ``status`` on both control sockets; dhcpd: its "I move ... to normal" and
   "peer moves ... to normal" lines on both sides), and seconds until pool balancing is done,
   meaning the secondary holds every lease the primary moved to BACKUP (Tandem: the secondary's
   ``status`` counts equal the primary's and no update is queued or unacked; dhcpd: the primary's
   "balanced pool ... backup B" line, and B leases in state backup in the secondary's lease file).
   The times at which each side's own counts first fall within max-lease-misbalance (15 %) are
   printed as details. Past ``--startup-timeout`` (150 s) the table says ">150 s"; the bench still
   waits (up to ``--seed-timeout``) because the balanced lease files are the next step's seeds.
2. Throughput. perfdhcp (a pool of 60000 client MACs, at most PAIR_EXCHANGE_CAP = 27000 new
   clients per pair trial: what one balanced peer holds) and bench/perf.py's ramp (max rate
   with <= 1 % lost, then the median of the repeats), against each pair with split 256 and
   split 128 (both servers answer: perfdhcp counts any ACK), every trial restarted from copies
   of the seeds; and
   Tandem standalone (bench/conf/dhcpd-perf.conf, fresh lease file) for the pair/standalone ratio.
3. One table, and the ratios Tandem pair / dhcpd pair and Tandem pair / Tandem standalone.

A server that does not start or never reaches NORMAL becomes a row that says so. Never run from
pytest: these are timings on a shared machine. Trust differences of about 2x.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import perf  # bench/perf.py: the lab, the ramp, the trial bookkeeping and table helpers
from perf import LOSS_LIMIT, Bench, Trial, Verdict, _fmt, _raise_neigh_limits, _ratio

from tandem.lab.netns import Lab, LabError
from tandem.lab.pair import PairNode, PairWatch, PoolView, Snapshot, set_split
from tandem.lab.perf import cpu_seconds, run_perfdhcp

HERE = Path(__file__).resolve().parent
CONF = HERE / "conf"
POOL_SIZE = 60000
MISBALANCE = 15  # percent: max-lease-misbalance's default, which the configs keep
#: New clients per pair trial. A balanced pair holds half the pool each (30,000 FREE on the
#: primary, 30,000 BACKUP on the secondary), and at split 256 the primary answers everyone: past
#: 30,000 it has nothing left to give (less Tandem's 5 % new-lease reserve). perf.py's 55,000
#: (for one server with the whole pool) made every pair trial above ~5,700/s x 5 s fail on the
#: pool, not on speed. Split 128 gives each peer about half of the clients.
PAIR_EXCHANGE_CAP = 27000

#: Table rows: key -> (implementation, split); None is the standalone server.
ROWS: dict[str, tuple[str, int] | None] = {
    "tandem-pair-256": ("tandem", 256),
    "tandem-pair-128": ("tandem", 128),
    "dhcpd-pair-256": ("dhcpd", 256),
    "dhcpd-pair-128": ("dhcpd", 128),
    "tandem": None,
}
LABELS = {
    "tandem-pair-256": "Tandem pair, split 256",
    "tandem-pair-128": "Tandem pair, split 128",
    "dhcpd-pair-256": "dhcpd pair, split 256",
    "dhcpd-pair-128": "dhcpd pair, split 128",
    "tandem": "Tandem standalone",
}
# Where each ramp starts (perf.find_max doubles from there); dhcpd's pair holds about 500/s.
for _key, _rate in (("tandem-pair-256", 400), ("tandem-pair-128", 400)):
    perf.START_RATE.setdefault(_key, _rate)
for _key in ("dhcpd-pair-256", "dhcpd-pair-128"):
    perf.START_RATE.setdefault(_key, 200)


@dataclass
class Startup:
    """Start-up of a fresh pair; times in seconds from starting the secondary."""

    kind: str
    timeout: float
    normal_s: float | None = None
    balanced_s: float | None = None  # every BACKUP move is on the secondary
    primary_within_s: float | None = None  # the primary's own counts within misbalance
    secondary_within_s: float | None = None  # the secondary's counts within misbalance
    primary_pool: PoolView | None = None
    secondary_pool: PoolView | None = None
    error: str | None = None
    seeded: bool = False

    ended_s: float | None = None  # when watching stopped (done, error or gave up)

    def cell(self, value: float | None) -> str:
        """A table cell: seconds, ">150 s" past the timeout, "failed" for an early failure."""
        if value is not None and value <= self.timeout:
            return f"{value:.1f}"
        if value is not None or (self.ended_s is not None and self.ended_s > self.timeout):
            return f">{self.timeout:.0f} s"
        return "failed"


def _conf(name: str) -> str:
    return (CONF / name).read_text(encoding="utf-8")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


class PairBench(Bench):
    """perf.Bench plus a secondary host, the start-up measurement and pair trials."""

    def __init__(self, lab: Lab, args: argparse.Namespace) -> None:
        super().__init__(lab, args)
        self.srv2 = lab.add_host("srv2", "198.18.0.2/16")
        _raise_neigh_limits(self.srv2)
        self.seeds: dict[str, tuple[Path, Path]] = {}
        self.seed_dir = lab.workdir / "seeds"
        self.seed_dir.mkdir(exist_ok=True)
        self.pair_seq = 0
        self.shares: dict[str, list[float]] = {}  # row -> the secondary's share of the ACKs

    def nodes(self, kind: str, split: int, tag: str) -> tuple[PairNode, PairNode]:
        primary_conf = _conf("failover-perf-primary.conf")
        if split != 256:
            primary_conf = set_split(primary_conf, split)
        primary = PairNode(
            kind,
            "primary",
            self.srv,
            primary_conf,
            self.srv.workdir / f"{kind}-{tag}-primary.leases",
            cpu=self.cpu_srv,
        )
        secondary = PairNode(
            kind,
            "secondary",
            self.srv2,
            _conf("failover-perf-secondary.conf"),
            self.srv2.workdir / f"{kind}-{tag}-secondary.leases",
            cpu=self.cpu_srv,
        )
        return primary, secondary

    # --- step 1 -------------------------------------------------------------------------

    def startup(self, kind: str) -> Startup:
        res = Startup(kind, self.args.startup_timeout)
        primary, secondary = self.nodes(kind, 256, "startup")
        for node in (primary, secondary):
            node.leases_path.unlink(missing_ok=True)  # fresh: run_* creates an empty one
        t0 = time.monotonic()
        try:
            try:
                secondary.start()
                primary.start()
            except LabError as exc:
                res.error = f"failed to start: {_first_line(exc)}"
                return res
            watch = PairWatch(primary, secondary, POOL_SIZE)
            self._watch(res, watch, t0)
            res.ended_s = time.monotonic() - t0
            if res.balanced_s is not None:
                time.sleep(2.0)  # let the last commits land before the files become seeds
        finally:
            for node in (primary, secondary):
                node.send_stop()  # both at once: neither records the other's departure first
            for node in (primary, secondary):
                node.stop()
        if res.balanced_s is not None:
            seeds = (
                self.seed_dir / f"{kind}-primary.leases",
                self.seed_dir / f"{kind}-secondary.leases",
            )
            primary.leases_path.replace(seeds[0])
            secondary.leases_path.replace(seeds[1])
        for node in (primary, secondary):
            node.leases_path.unlink(missing_ok=True)
            Path(str(node.leases_path) + "~").unlink(missing_ok=True)
            self.seeds[kind] = seeds
            res.seeded = True
        return res

    def _watch(self, res: Startup, watch: PairWatch, t0: float) -> None:
        limit = max(self.args.startup_timeout, self.args.seed_timeout)
        last_leases = 0.0
        reported = False
        while True:
            now = time.monotonic()
            t = now - t0
            read_leases = now - last_leases >= 1.0
            if read_leases:
                last_leases = now
            snap = watch.snapshot(read_leases=read_leases)
            self._record(res, snap, t)
            if res.balanced_s is not None:
                return
            for node in (watch.primary, watch.secondary):
                if not node.running():
                    res.error = f"{node.role} exited: {node.log_tail(300).strip()[-160:]}"
                    return
            if t > res.timeout and not reported:
                reported = True
                what = "NORMAL" if res.normal_s is None else "balanced"
                print(f"  not {what} after {res.timeout:.0f} s; waiting on for the seed files")
            if t > limit:
                what = "NORMAL" if res.normal_s is None else "balanced"
                res.error = f"not {what} after {limit:.0f} s"
                return
            time.sleep(0.2)

    def _record(self, res: Startup, snap: Snapshot, t: float) -> None:
        if res.normal_s is None:
            if not snap.both_normal:
                return
            res.normal_s = t
            print(f"  both NORMAL after {t:.1f} s", flush=True)
        p, s = snap.primary_pool, snap.secondary_pool
        if p is not None:
            res.primary_pool = p
            if res.primary_within_s is None and p.within(MISBALANCE):
                res.primary_within_s = t
        if s is not None:
            res.secondary_pool = s
            if res.secondary_within_s is None and s.within(MISBALANCE):
                res.secondary_within_s = t
        if p is None or s is None or not p.within(MISBALANCE):
            return
        if snap.pending_updates not in (None, 0):
            return
        if s.backup == p.backup and s.free == p.free:
            res.balanced_s = t
            print(
                f"  balanced after {t:.1f} s (primary free {p.free} backup {p.backup}, "
                f"secondary free {s.free} backup {s.backup})",
                flush=True,
            )

    # --- step 2 -------------------------------------------------------------------------

    def start_pair(self, kind: str, split: int) -> tuple[PairNode, PairNode, float]:
        """Both peers from copies of the seeds, NORMAL and quiet; LabError otherwise.

        Also returns the seconds from starting the secondary until both were NORMAL.
        """
        seeds = self.seeds.get(kind)
        if seeds is None:
            raise LabError(f"no balanced seed lease files for the {kind} pair")
        self.pair_seq += 1
        primary, secondary = self.nodes(kind, split, f"t{self.pair_seq}")
        for node, seed in zip((primary, secondary), seeds, strict=True):
            node.leases_path.write_bytes(seed.read_bytes())
        t0 = time.monotonic()
        try:
            secondary.start()
            primary.start()
            watch = PairWatch(primary, secondary, POOL_SIZE)
            deadline = time.monotonic() + self.args.normal_timeout
            while True:
                snap = watch.snapshot(read_leases=False)
                if snap.both_normal and snap.pending_updates in (None, 0):
                    break
                for node in (primary, secondary):
                    if not node.running():
                        raise LabError(f"{kind} {node.role} exited: {node.log_tail(300)}")
                if time.monotonic() > deadline:
                    raise LabError(
                        f"{kind} pair not NORMAL {self.args.normal_timeout:.0f} s after a "
                        f"restart from the seeds (states {snap.primary_state}/"
                        f"{snap.secondary_state})"
                    )
                time.sleep(0.1)
            took = time.monotonic() - t0
            time.sleep(1.0)  # the pool check after NORMAL, before the load
        except BaseException:
            self.stop_pair(primary, secondary)
            raise
        return primary, secondary, took

    def stop_pair(self, primary: PairNode, secondary: PairNode) -> None:
        for node in (primary, secondary):
            node.send_stop()
        for node in (primary, secondary):
            node.stop()
            node.leases_path.unlink(missing_ok=True)
            Path(str(node.leases_path) + "~").unlink(missing_ok=True)

    def trial(self, kind: str, rate: int) -> Trial:
        row = ROWS.get(kind)
        if row is None:
            return super().trial(kind, rate)
        impl, split = row
        secs = min(self.args.seconds, PAIR_EXCHANGE_CAP / rate)
        primary, secondary, took = self.start_pair(impl, split)
        try:
            before = cpu_seconds(primary.pid) + cpu_seconds(secondary.pid)
            res = run_perfdhcp(self.perf, rate, secs, cpu=self.cpu_perf)
            used = cpu_seconds(primary.pid) + cpu_seconds(secondary.pid) - before
            for node in (primary, secondary):
                if not node.running():
                    raise LabError(f"{impl} {node.role} died during the trial: {node.log_tail()}")
            # Both implementations log "DHCPACK on A to M via I": who really answered.
            acks = [_count_acks(node) for node in (primary, secondary)]
        finally:
            self.stop_pair(primary, secondary)
        cpu_ms = 1000.0 * used / res.acks if res.acks else None
        t = Trial(rate, res.seconds, res.acks_per_s, res.lost_pct, cpu_ms, res.exit_code)
        cpu_txt = f"{cpu_ms:.3f} ms/lease (both)" if cpu_ms is not None else "-"
        share = 100.0 * acks[1] / sum(acks) if sum(acks) else 0.0
        self.shares.setdefault(kind, []).append(share)
        print(
            f"  {kind:15} rate {rate:6}/s for {res.seconds:4.0f} s: {t.acks_per_s:9.1f} ACK/s, "
            f"lost {t.lost_pct:6.2f} %, {cpu_txt} [{'ok' if t.ok else 'LOSS'}] "
            f"(secondary sent {share:.0f} % of the ACKs; restart to NORMAL {took:.1f} s)",
            flush=True,
        )
        return t


def _count_acks(node: PairNode) -> int:
    if node.server is None:
        return 0
    return len(re.findall(r"^DHCPACK on ", node.server.log(), re.M))


# --- the table ---------------------------------------------------------------------------


def print_table(
    startups: dict[str, Startup], verdicts: dict[str, Verdict], shares: dict[str, list[float]]
) -> None:
    print()
    print(
        f"Failover pairs vs standalone Tandem. Pool {POOL_SIZE} addresses "
        "(198.18.1.0-198.18.235.95), new clients, lease time 86400 s; both peers on one CPU."
    )
    print("| server | NORMAL after s | balanced after s | max rate (<=1 % lost) | ACK/s | lost % |")
    print("|---|---|---|---|---|---|")
    for key, v in verdicts.items():
        row = ROWS[key]
        normal = balanced = "-"
        if row is not None:
            st = startups.get(row[0])
            if st is not None:
                normal, balanced = st.cell(st.normal_s), st.cell(st.balanced_s)
        if v.max_rate is None:
            print(f"| {LABELS[key]} | {normal} | {balanced} | {v.error or 'no result'} | - | - |")
            continue
        print(  # perf.find_max: the repeats' median at max_rate is within the loss limit
            f"| {LABELS[key]} | {normal} | {balanced} | {v.max_rate} | "
            f"{_fmt(v.acks_per_s, '.1f')} | {_fmt(v.lost_pct, '.2f')} |"
        )
    print(
        "Start-up is measured once per implementation (fresh pair, split 256; the split does not"
        " matter without clients)."
    )
    for st in startups.values():
        print(
            f"{st.kind} start-up: NORMAL {_fmt(st.normal_s, '.1f')} s, primary's counts within "
            f"misbalance {_fmt(st.primary_within_s, '.1f')} s, secondary's "
            f"{_fmt(st.secondary_within_s, '.1f')} s, all moves on the secondary "
            f"{_fmt(st.balanced_s, '.1f')} s; final primary {st.primary_pool}, secondary "
            f"{st.secondary_pool}" + (f"; {st.error}" if st.error else "")
        )
    for key, vals in shares.items():
        print(
            f"{LABELS[key]}: the secondary sent {statistics.median(vals):.0f} % of the ACKs "
            f"(median of {len(vals)} trials; split 256 should be 0, split 128 about 50)"
        )
    alone = verdicts.get("tandem")
    for split in (256, 128):
        t = verdicts.get(f"tandem-pair-{split}")
        d = verdicts.get(f"dhcpd-pair-{split}")
        if t is None:
            continue
        if d is not None:
            print(
                f"split {split}: Tandem pair / dhcpd pair: max rate "
                f"{_ratio(t.max_rate, d.max_rate)}, ACK/s {_ratio(t.acks_per_s, d.acks_per_s)}"
            )
        if alone is not None:
            ratio = (
                t.acks_per_s / alone.acks_per_s
                if t.acks_per_s is not None and alone.acks_per_s
                else None
            )
            verdict = "n/a" if ratio is None else ("met" if ratio >= 0.5 else "NOT met")
            print(
                f"split {split}: Tandem pair / Tandem standalone: max rate "
                f"{_ratio(t.max_rate, alone.max_rate)}, ACK/s "
                f"{_ratio(t.acks_per_s, alone.acks_per_s)} (target >= 0.5: {verdict})"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="short trials, 1 bisect step, 1 repeat")
    ap.add_argument("--rows", default=",".join(ROWS), help="comma list of " + ", ".join(ROWS))
    ap.add_argument("--startup-timeout", type=float, default=150.0, help="seconds (table)")
    ap.add_argument(
        "--seed-timeout", type=float, default=900.0, help="seconds to wait for balanced seeds"
    )
    ap.add_argument("--normal-timeout", type=float, default=90.0, help="per trial restart")
    ap.add_argument("--json", type=Path, help="also write start-ups, verdicts and trials here")
    ap.add_argument("--keep", action="store_true", help="keep the lab's work dir (logs, seeds)")
    args = ap.parse_args(argv)
    args.seconds = 5.0 if args.quick else 20.0
    args.bisect = 1 if args.quick else 3
    args.repeats = 1 if args.quick else 3
    keys = [k.strip() for k in args.rows.split(",") if k.strip()]
    unknown = [k for k in keys if k not in ROWS]
    if unknown:
        ap.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    if (os.cpu_count() or 1) < 2:
        print("note: one CPU only, nothing is pinned", flush=True)

    startups: dict[str, Startup] = {}
    verdicts: dict[str, Verdict] = {}
    with Lab(keep_workdir=args.keep) as lab:
        if args.keep:
            print(f"work dir: {lab.workdir}")
        bench = PairBench(lab, args)
        for impl in ("tandem", "dhcpd"):
            if not any((ROWS[k] or ("",))[0] == impl for k in keys):
                continue
            print(f"{impl} pair start-up (fresh lease files):", flush=True)
            try:
                startups[impl] = bench.startup(impl)
            except LabError as exc:
                startups[impl] = Startup(impl, args.startup_timeout, error=_first_line(exc))
            if startups[impl].error:
                print(f"  {impl} pair: {startups[impl].error}", flush=True)
        for key in keys:
            print(f"{LABELS[key]}:", flush=True)
            row = ROWS[key]
            if row is not None and row[0] not in bench.seeds:
                st = startups.get(row[0])
                why = st.error if st is not None and st.error else "no balanced seed"
                verdicts[key] = Verdict(key, error=f"skipped: {why}"[:160])
                print(f"  skipped: {why}", flush=True)
                continue
            try:
                verdicts[key] = bench.find_max(key)
            except LabError as exc:
                verdicts[key] = Verdict(key, error=f"failed: {_first_line(exc)}"[:160])
                print(f"  {key} FAILED: {exc}", flush=True)
    print_table(startups, verdicts, bench.shares)
    if args.json is not None:
        out = {
            "startups": {k: asdict(v) for k, v in startups.items()},
            "verdicts": {k: asdict(v) for k, v in verdicts.items()},
            "secondary_ack_share_pct": bench.shares,
            "loss_limit_pct": LOSS_LIMIT,
        }
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
