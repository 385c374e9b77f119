"""Run one seed, and shrink a failing fault schedule by delta debugging.

``plan(seed)`` draws the variant and the fault list from the seed alone; ``run_seed`` runs
it (or a given sub-list). ``shrink`` is Zeller's ddmin over the fault list: a sub-list is
"failing" when a re-run of the same seed with it violates the same invariant. Runs are
deterministic, so the shrunk list reproduces the violation every time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from tandem.sim.configs import VARIANTS, Variant
from tandem.sim.faults import Fault, describe, draw_apd_faults, draw_faults, draw_handovers
from tandem.sim.node import SimNode
from tandem.sim.world import Violation, World

__all__ = ["Outcome", "plan", "report", "run_seed", "shrink"]

_VARIANT_WEIGHTS = (2, 3, 2, 3, 3)
WITNESS_SHARE = 0.75
Patch = Callable[[SimNode], None]


@dataclass
class Outcome:
    seed: int
    variant: Variant
    faults: list[Fault]
    violation: Violation | None
    world: World


def plan(seed: int, duration: int) -> tuple[Variant, list[Fault]]:
    """The variant and fault schedule of ``seed`` (a fault-free seed is possible)."""
    rng = random.Random(f"{seed}:plan")
    variant = rng.choices(VARIANTS, _VARIANT_WEIGHTS)[0]
    faults = draw_faults(rng, duration * 1000)
    faults += draw_handovers(random.Random(f"{seed}:handover"), duration * 1000)
    witness = random.Random(f"{seed}:witness").random() < WITNESS_SHARE  # as World draws it
    faults += draw_apd_faults(random.Random(f"{seed}:apd"), duration * 1000, witness)
    faults.sort(key=lambda f: (f.start, f.kind, f.node))
    return variant, faults


def run_seed(
    seed: int,
    *,
    clients: int = 8,
    duration: int = 3600,
    faults: list[Fault] | None = None,
    verbose: bool = False,
    patch: Patch | None = None,
    rule: str = "tandem",
) -> Outcome:
    variant, drawn = plan(seed, duration)
    use = drawn if faults is None else faults
    world = World(
        seed, variant, use, clients=clients, duration=duration, verbose=verbose,
        server_patch=patch, rule=rule,
    )  # fmt: skip
    return Outcome(seed, variant, use, world.run(), world)


def shrink(
    seed: int,
    kind: str,
    faults: list[Fault],
    *,
    clients: int = 8,
    duration: int = 3600,
    patch: Patch | None = None,
    budget: int = 200,
    rule: str = "tandem",
) -> tuple[list[Fault], int]:
    """ddmin: a 1-minimal sub-list of ``faults`` still violating invariant ``kind``.

    Returns the list and the number of re-runs used (at most ``budget``).
    """
    runs = 0

    def fails(sub: list[Fault]) -> bool:
        nonlocal runs
        runs += 1
        out = run_seed(
            seed, clients=clients, duration=duration, faults=sub, patch=patch, rule=rule
        ).violation
        return out is not None and out.kind == kind

    if fails([]):
        return [], runs
    current = list(faults)
    n = 2
    while len(current) >= 2 and runs < budget:
        size = len(current) // n
        chunks = [current[i : i + size] for i in range(0, len(current), size)]
        reduced = False
        for i, chunk in enumerate(chunks):
            if runs >= budget:
                break
            if fails(chunk):
                current, n, reduced = chunk, 2, True
                break
            rest = [f for j, c in enumerate(chunks) if j != i for f in c]
            if n > 2 and fails(rest):
                current, n, reduced = rest, max(n - 1, 2), True
                break
        if not reduced:
            if n >= len(current):
                break
            n = min(len(current), 2 * n)
    return current, runs


def report(out: Outcome, shrunk: list[Fault] | None, runs: int) -> list[str]:
    """What to print for a violation: the seed, the violation and the shrunk schedule."""
    assert out.violation is not None
    lines = [
        f"VIOLATION seed {out.seed} (variant {out.variant.name}): {out.violation}",
        f"  fault schedule ({len(out.faults)} faults):",
    ]
    lines += [f"    {describe(f)}" for f in out.faults] or ["    (none)"]
    if shrunk is not None:
        lines.append(f"  shrunk to {len(shrunk)} faults after {runs} re-runs:")
        lines += [f"    {describe(f)}" for f in shrunk] or ["    (none: fails without faults)"]
    lines.append(f"  reproduce: python -m tandem.sim --seed {out.seed} -v")
    return lines
