"""Crash soak: kill -9 the servers of a Tandem failover pair under perfdhcp load, many times,
and check from a packet capture that no ACKed lease was lost (``make soak`` runs 100 kills).

Every DHCPACK captured on the client side must be in its server's lease file as the kill left
it, every binding still running must survive in later files and in the final ones, and no
address may be ACKed to two MACs at once. The logic lives in ``tandem.lab.crash``; the lab
test tests/lab/test_crash_durability.py runs the same thing with 20 kills.

Exit status: 0 when nothing was lost and no address overlapped, 1 otherwise (the lab's work
directory, with every post-kill lease file, the capture and every server log, is kept then).
"""

from __future__ import annotations

import argparse
import sys

from tandem.lab.crash import SoakOptions, soak


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=100, help="kill -9 this many times (100)")
    ap.add_argument("--seed", type=int, default=1, help="RNG seed for kill times and pauses")
    ap.add_argument("--rate", type=int, default=400, help="perfdhcp exchanges per second")
    ap.add_argument("--clients", type=int, default=20000, help="perfdhcp client MACs")
    ap.add_argument("--pool", type=int, default=40000, help="addresses in the failover pool")
    ap.add_argument("--min-interval", type=float, default=3.0, help="seconds between kills, min")
    ap.add_argument("--max-interval", type=float, default=5.0, help="seconds between kills, max")
    ap.add_argument("--mclt", type=int, default=300, help="MCLT (also the first lease time)")
    ap.add_argument("--split", type=int, default=128, help="load balancing split (128)")
    args = ap.parse_args(argv)
    opts = SoakOptions(
        kills=args.kills,
        seed=args.seed,
        rate=args.rate,
        clients=args.clients,
        pool=args.pool,
        interval=(args.min_interval, args.max_interval),
        mclt=args.mclt,
        split=args.split,
    )
    result = soak(opts)
    print(result.summary())
    if result.verdict.findings:
        print(f"work directory kept: {result.workdir}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
