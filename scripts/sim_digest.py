"""One line per simulator seed: verdict, event count and a digest of the whole trace.

For refactors that must not change behaviour: run it on the old and the new tree and diff the
outputs. Equal lines mean the two trees made the same decisions, packet for packet, in every
seed (the verbose trace records every DHCP exchange, failover message, state change, crash and
restart), not only the same verdicts.

    PYTHONPATH=src TANDEM_PURE=1 python scripts/sim_digest.py [--seeds 0:300] > digest.txt
"""

from __future__ import annotations

import argparse
import hashlib

from tandem.sim.runner import run_seed


def digest_line(seed: int) -> str:
    out = run_seed(seed, verbose=True)
    verdict = "ok" if out.violation is None else f"VIOLATION {out.violation}"
    trace = hashlib.sha256("\n".join(out.world.trace).encode()).hexdigest()[:16]
    stats = " ".join(f"{k}={v}" for k, v in sorted(out.world.stats.items()))
    return f"{seed} {out.variant.name} {verdict} events={out.world.events} trace={trace} {stats}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0:300", help="FIRST:END (END excluded)")
    args = ap.parse_args()
    first, end = (int(x) for x in args.seeds.split(":"))
    for seed in range(first, end):
        print(digest_line(seed), flush=True)


if __name__ == "__main__":
    main()
