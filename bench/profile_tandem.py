"""Profile a running Tandem under perfdhcp load (cProfile) and print the top functions.

Builds the bench/perf.py lab (namespaces srv 198.18.0.1/16 and perf 198.18.0.10/16), starts
Tandem under ``python -m cProfile`` pinned to CPU 1, offers RATE DORA/s from perfdhcp pinned to
CPU 0 for SECONDS, stops Tandem with SIGTERM (cProfile writes its file on a clean exit) and
prints perfdhcp's verdict and the top functions. cProfile slows Python code down (roughly 2x),
so profile at a rate below the unprofiled maximum, and read shares, not absolute times.

    sudo .venv/bin/python bench/profile_tandem.py [--rate 3000] [--seconds 8] [--top 35]
        [--sort tottime|cumtime] [--save FILE.prof]

Needs root (network namespaces) and perfdhcp. Never run from pytest.
"""

from __future__ import annotations

import argparse
import pstats
import shutil
import sys
import time
from pathlib import Path

from tandem.lab.netns import Lab, require_root_and_tools
from tandem.lab.perf import run_perfdhcp
from tandem.lab.servers import READY_DHCPD, repo_root

HERE = Path(__file__).resolve().parent
CONF = HERE / "conf" / "dhcpd-perf.conf"
_NEIGH = (
    "net.ipv4.neigh.default.gc_thresh3=131072",
    "net.ipv4.neigh.default.gc_thresh2=65536",
    "net.ipv4.neigh.default.gc_thresh1=32768",
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rate", type=int, default=3000, help="offered DORA/s")
    ap.add_argument("--seconds", type=float, default=8.0, help="perfdhcp test period")
    ap.add_argument("--top", type=int, default=35, help="functions to print")
    ap.add_argument("--sort", default="tottime", help="pstats sort key")
    ap.add_argument("--save", type=Path, help="keep the raw profile here")
    args = ap.parse_args(argv)
    require_root_and_tools((*("ip", "ethtool", "sysctl"), "perfdhcp", "taskset"))
    with Lab() as lab:
        srv = lab.add_host("srv", "198.18.0.1/16")
        perf = lab.add_host("perf", "198.18.0.10/16")
        for host in (srv, perf):
            host.run(["sysctl", "-qw", *_NEIGH], check=False)
        conf = srv.workdir / "tandem.conf"
        conf.write_text(CONF.read_text())
        leases = srv.workdir / "tandem.leases"
        leases.touch()
        prof = srv.workdir / "tandem.prof"
        py = str(repo_root() / ".venv" / "bin" / "python")
        cmd = [py, "-m", "cProfile", "-o", str(prof), "-m", "tandem.cli", "-4", "-f", "-d"]
        cmd += ["-cf", str(conf), "-lf", str(leases), "--no-pid", "eth0"]
        proc = srv.spawn(cmd, srv.workdir / "tandem.log", name="tandem", cpu=1)
        proc.wait_for_log(READY_DHCPD, 20.0)
        result = run_perfdhcp(perf, args.rate, args.seconds, cpu=0)
        proc.stop(grace=10.0)
        deadline = time.monotonic() + 10.0
        while not prof.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not prof.exists():
            print("no profile written (Tandem did not exit cleanly):", file=sys.stderr)
            print(proc.log()[-2000:], file=sys.stderr)
            return 1
        print(
            f"offered {args.rate}/s for {args.seconds:.0f} s: {result.acks_per_s:,.0f} ACK/s, "
            f"lost {result.lost_pct:.2f} % (profiled: expect about half the unprofiled rate)"
        )
        if args.save is not None:
            shutil.copyfile(prof, args.save)
        stats = pstats.Stats(str(prof))
        stats.sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
