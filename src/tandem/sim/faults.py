"""Faults: what goes wrong in a run, drawn from the seed as a plain list.

A run is a function of (seed, fault list): the simulator draws the list from the seed, and
the shrinker re-runs the same seed with sub-lists to find a small schedule that still
breaks an invariant. So every fault is self-contained data (kind, window, target, value)
and nothing else in a run depends on which faults are present, except through the
simulated world itself.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["KINDS", "Fault", "describe", "draw_apd_faults", "draw_faults", "draw_handovers"]

SECOND = 1000  # the simulator's clock counts milliseconds


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault.

    kinds and their fields:

    * ``cut``: the peers' link goes down (both TCP ends reset) during [start, end).
    * ``silent``: the peers' link silently drops everything during [start, end); TCP
      retransmits, so bytes arrive after the end if both ends still exist.
    * ``loss`` / ``dup``: client<->server datagrams lost / duplicated with probability
      ``value`` during [start, end).
    * ``delay``: client<->server datagrams delayed by up to ``value`` ms (so reordered).
    * ``peer_delay``: failover bytes delayed by up to ``value`` ms (order kept: TCP).
    * ``crash``: ``node`` dies at ``start`` and restarts at ``end`` from its journal;
      ``value`` 0 = between commits, 1 = at its next commit (the batch is lost),
      2 = at its next commit with a torn prefix of the batch written.
    * ``partner_down``: the operator runs partner-down on ``node`` at ``start``.
    * ``clock``: ``node``'s clock is off by ``value`` ms for the whole run.
    * ``handover``: ``node`` gets SIGTERM at ``start`` (a planned stop: it hands over, see
      tandem.core.failover.handover) and is started again at ``end``.
    * ``part``: the links named in ``node`` (comma-separated: ``failover``, ``client:NAME``,
      ``witness:NAME``; see tandem.sim.apd) are partitioned during [start, end).
    * ``wcrash``: the witness dies at ``start`` and restarts at ``end`` from its record.
    * ``rate``: ``node``'s (or the witness's) monotonic clock runs ``value`` ppm fast or slow.
    """

    kind: str
    start: int
    end: int = 0
    node: str = ""
    value: float = 0.0


KINDS = ("cut", "silent", "loss", "dup", "delay", "peer_delay", "crash", "partner_down", "clock")
_WEIGHTS = (3, 3, 2, 2, 2, 2, 4, 2, 2)
NODES = ("primary", "secondary")


def draw_faults(rng: random.Random, duration: int, max_faults: int = 8) -> list[Fault]:
    """A fault schedule inside [0, duration) ms, sorted by start time."""
    out: list[Fault] = []
    for _ in range(rng.randint(0, max_faults)):
        kind = rng.choices(KINDS, _WEIGHTS)[0]
        start = rng.randrange(0, duration)
        length = rng.randrange(SECOND, max(2 * SECOND, duration // 3))
        end = min(duration, start + length)
        node = rng.choice(NODES)
        if kind in ("cut", "silent"):
            out.append(Fault(kind, start, end))
        elif kind in ("loss", "dup"):
            out.append(Fault(kind, start, end, value=round(rng.uniform(0.05, 0.6), 3)))
        elif kind == "delay":
            out.append(Fault(kind, start, end, value=rng.randrange(50, 8 * SECOND)))
        elif kind == "peer_delay":
            out.append(Fault(kind, start, end, value=rng.randrange(10, 3 * SECOND)))
        elif kind == "crash":
            down = rng.choice((0, rng.randrange(SECOND, 20 * SECOND), length))
            out.append(Fault(kind, start, min(duration, start + down), node, rng.randrange(3)))
        elif kind == "partner_down":
            out.append(Fault(kind, start, start, node))
        else:
            out.append(Fault("clock", 0, 0, node, rng.randrange(-30 * SECOND, 30 * SECOND + 1)))
    out.sort(key=lambda f: (f.start, f.kind, f.node))
    return out


def draw_handovers(rng: random.Random, duration: int, max_stops: int = 3) -> list[Fault]:
    """Planned stops (SIGTERM, then a restart), from their own random stream so adding them
    left every seed's other faults as they were drawn before."""
    out = []
    for _ in range(rng.choice((0, rng.randint(1, max_stops)))):
        start = rng.randrange(0, duration)
        brief, long = rng.randrange(SECOND, 30 * SECOND), rng.randrange(SECOND, duration // 3)
        down = rng.choice((brief, long))
        out.append(Fault("handover", start, min(duration, start + down), rng.choice(NODES)))
    return out


_P, _S = "client:primary", "client:secondary"
_WP, _WS = "witness:primary", "witness:secondary"
#: Link sets a ``part`` fault cuts. Without a witness only the failover link: a client side
#: cut while the failover link is down (even by another fault) is what no timer tells apart
#: from a dead partner (docs/AUTO-PARTNER-DOWN.md, "without a witness").
LINK_SETS = (
    ("failover",),
    (_P,),
    (_S,),
    (_WP,),
    (_WS,),
    ("failover", _P),
    ("failover", _S),
    ("failover", _WP),
    ("failover", _WS),
    ("failover", _P, _WP),  # the primary cut off from everything
    ("failover", _S, _WS),
    ("failover", _P, _WS),
    ("failover", _WP, _WS),
    (_P, _S),
    ("failover", _P, _S, _WP, _WS),  # everything
)
NO_WITNESS_SETS = (("failover",),)


def draw_apd_faults(
    rng: random.Random, duration: int, witness: bool, max_faults: int = 5
) -> list[Fault]:
    """Partitions of link sets, witness crashes and clock rates (their own random stream, so
    every seed's other faults stay as they were drawn before)."""
    out: list[Fault] = []
    sets = LINK_SETS if witness else NO_WITNESS_SETS
    for _ in range(rng.randint(0, max_faults)):
        start = rng.randrange(0, duration)
        length = rng.choice(
            (
                rng.randrange(SECOND, 60 * SECOND),
                rng.randrange(SECOND, max(2 * SECOND, duration // 3)),
            )
        )
        end = min(duration, start + length)
        what = rng.random()
        if what < 0.6:
            out.append(Fault("part", start, end, ",".join(rng.choice(sets))))
        elif what < 0.8 and witness:
            out.append(Fault("wcrash", start, end))
        else:
            node = rng.choice((*NODES, "witness") if witness else NODES)
            out.append(Fault("rate", 0, 0, node, rng.randrange(-9000, 9001)))
    return out


def describe(f: Fault) -> str:
    """One line, with times in seconds."""
    s, e = f.start / SECOND, f.end / SECOND
    if f.kind in ("cut", "silent"):
        return f"{f.kind:12} {s:9.3f}s .. {e:9.3f}s"
    if f.kind in ("loss", "dup"):
        return f"{f.kind:12} {s:9.3f}s .. {e:9.3f}s  p={f.value}"
    if f.kind in ("delay", "peer_delay"):
        return f"{f.kind:12} {s:9.3f}s .. {e:9.3f}s  up to {int(f.value)} ms"
    if f.kind == "crash":
        how = ("between commits", "at next commit", "torn at next commit")[int(f.value)]
        return f"{f.kind:12} {s:9.3f}s .. {e:9.3f}s  {f.node} ({how})"
    if f.kind == "handover":
        return f"{f.kind:12} {s:9.3f}s .. {e:9.3f}s  {f.node} (SIGTERM, then a restart)"
    if f.kind == "part":
        return f"{f.kind:12} {s:9.3f}s .. {e:9.3f}s  {f.node}"
    if f.kind == "wcrash":
        return f"{f.kind:12} {s:9.3f}s .. {e:9.3f}s  the witness"
    if f.kind == "rate":
        return f"{f.kind:12} {f.node} monotonic clock {int(f.value):+d} ppm"
    if f.kind == "partner_down":
        return f"{f.kind:12} {s:9.3f}s               on {f.node}"
    return f"{f.kind:12} {f.node} off by {int(f.value)} ms"
