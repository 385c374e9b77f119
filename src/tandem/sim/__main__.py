"""``python -m tandem.sim``: run seeds through the deterministic simulator.

    python -m tandem.sim --seeds 300                 # seeds 0..299
    python -m tandem.sim --seeds 1000 --start 5000 --jobs 2
    python -m tandem.sim --seed 1234 -v              # one seed with its event trace
    python -m tandem.sim --blind-auto-partner-down   # dhcpd's timer rule, for contrast

The last line is always ``N seeds, V violations`` (the line before it counts them by
invariant); the exit status is 1 when V > 0.
Each violation prints the seed, the invariant broken, the fault schedule and a shrunk
schedule that still reproduces it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

from tandem.sim.runner import report, run_seed, shrink

__all__ = ["main"]


def _one(args: tuple[int, int, int, bool, str]) -> tuple[int, list[str], str]:
    seed, clients, duration, do_shrink, rule = args
    out = run_seed(seed, clients=clients, duration=duration, rule=rule)
    if out.violation is None:
        return seed, [], out.world.summary()
    shrunk, runs = (None, 0)
    if do_shrink:
        shrunk, runs = shrink(
            seed, out.violation.kind, out.faults, clients=clients, duration=duration, rule=rule
        )
    return seed, report(out, shrunk, runs), out.world.summary()


def _results(
    seeds: list[int], clients: int, duration: int, jobs: int, do_shrink: bool, *, rule: str
) -> Iterator[tuple[int, list[str], str]]:
    work = [(s, clients, duration, do_shrink, rule) for s in seeds]
    if jobs <= 1:
        yield from map(_one, work)
        return
    with ProcessPoolExecutor(jobs) as pool:
        yield from pool.map(_one, work, chunksize=16)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tandem.sim", description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--seed", type=int, default=None, help="run this one seed only")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=int, default=3600, help="seconds of faults")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--no-shrink", action="store_true", help="do not shrink violations")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the event trace")
    ap.add_argument(
        "--blind-auto-partner-down",
        action="store_true",
        help="dhcpd's auto-partner-down (a timer) instead of Tandem's rule, for contrast",
    )
    opts = ap.parse_args(argv)
    rule = "blind" if opts.blind_auto_partner_down else "tandem"

    if opts.seed is not None:
        out = run_seed(
            opts.seed, clients=opts.clients, duration=opts.duration, verbose=True, rule=rule
        )
        if opts.verbose:
            print("\n".join(out.world.trace))
        print(out.world.summary())
        bad = 0
        if out.violation is not None:
            bad = 1
            shrunk, runs = (None, 0)
            if not opts.no_shrink:
                shrunk, runs = shrink(
                    opts.seed,
                    out.violation.kind,
                    out.faults,
                    clients=opts.clients,
                    duration=opts.duration,
                    rule=rule,
                )
            print("\n".join(report(out, shrunk, runs)))
        print(f"1 seeds, {bad} violations")
        return 1 if bad else 0

    seeds = list(range(opts.start, opts.start + opts.seeds))
    bad = 0
    kinds: dict[str, int] = {}
    for _seed, lines, summary in _results(
        seeds, opts.clients, opts.duration, opts.jobs, not opts.no_shrink, rule=rule
    ):
        if lines:
            bad += 1
            kind = lines[0].split("): ", 1)[1][1] if "): (" in lines[0] else "?"
            kinds[kind] = kinds.get(kind, 0) + 1
            print("\n".join(lines), flush=True)
        elif opts.verbose:
            print(summary, flush=True)
    if kinds:
        print("by invariant: " + ", ".join(f"({k}) {n}" for k, n in sorted(kinds.items())))
    print(f"{len(seeds)} seeds, {bad} violations")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
