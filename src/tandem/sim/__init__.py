"""A deterministic discrete-event simulator for a Tandem failover pair (``python -m tandem.sim``).

Two production cores (DhcpServer + FailoverEngine) and simulated RFC 2131 clients run in
virtual time over a simulated network, with faults drawn from one seed, while invariants
are checked; see ``tandem.sim.world`` for the model and the invariants and
``tandem.sim.runner`` for seeds and shrinking. Pure like the core: no sockets, no wall
clock; randomness only from ``random.Random`` instances seeded from the run seed.
"""

from __future__ import annotations

from tandem.sim.runner import Outcome, plan, run_seed, shrink
from tandem.sim.world import Violation, World

__all__ = ["Outcome", "Violation", "World", "plan", "run_seed", "shrink"]
