"""What the live page (``GET /``, tandem.io.http_api) shows beyond the commands' facts.

* ``History``: a ring buffer of samples (time, leases in use, DHCP packets received per
  second), one every ``SAMPLE_EVERY`` seconds for the last ``HISTORY_SPAN`` seconds;
* ``Events``: a bounded list of the latest events: failover state changes, drops by reason,
  refused clients, newly abandoned addresses;
* ``PageFeed``: both, fed by ``tick()`` from the runtime's once-a-second loop (never from the
  per-packet path): it reads the counters the server already keeps and compares them with the
  previous tick's, so the page costs the DHCP path nothing;
* ``search``: the lease search by address, MAC or host name.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address
from typing import Final

from tandem import BUILD, __version__
from tandem.core.lease import BindingState
from tandem.core.server import BOUND_STATES
from tandem.io import command_views as views
from tandem.io.commands import RESULT_SUCCESS, Args, CommandError, Commands, Reply, reply

__all__ = [
    "EVENT_LIMIT",
    "HISTORY_SPAN",
    "REFUSALS",
    "SAMPLE_EVERY",
    "SEARCH_LIMIT",
    "STATUS_EVENTS",
    "Event",
    "Events",
    "History",
    "PageFeed",
    "Sample",
    "search",
]

#: Seconds between two samples of the plot, and how far back it goes.
SAMPLE_EVERY: Final = 5.0
HISTORY_SPAN: Final = 3600.0
#: How many events the page keeps (the oldest go first).
EVENT_LIMIT: Final = 200
#: How many of the latest events ``history-get`` (``tandem status``) gives.
STATUS_EVENTS: Final = 10
#: Most leases a search returns.
SEARCH_LIMIT: Final = 50
#: Drop reasons that are a refusal of the client (dhcpd's gates and limits), not a fault.
REFUSALS: Final = frozenset(
    {
        "unknown client",
        "booting",
        "bootp",
        "lease limit",
        "new-lease limit",
        "no free leases",
        "ignored",
    }
)


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    leases: int  # leases in use (active) over all pools
    pps: float  # DHCP packets received per second since the previous sample


class History:
    """The last ``span`` seconds of samples, ``every`` seconds apart (a bounded deque)."""

    def __init__(self, span: float = HISTORY_SPAN, every: float = SAMPLE_EVERY) -> None:
        self.every = every
        self.samples: deque[Sample] = deque(maxlen=int(span // every) + 1)
        self._last: tuple[float, int] | None = None  # (time, received) of the last sample

    def add(self, now: float, leases: int, received: int) -> Sample:
        """Record one sample; the rate is the received count's growth since the last one."""
        last = self._last
        pps = 0.0
        if last is not None and now > last[0] and received >= last[1]:
            pps = (received - last[1]) / (now - last[0])
        self._last = (now, received)
        sample = Sample(now, leases, round(pps, 2))
        self.samples.append(sample)
        return sample

    def due(self, now: float) -> bool:
        return self._last is None or now - self._last[0] >= self.every

    def as_json(self) -> dict[str, object]:
        return {
            "every": self.every,
            "t": [int(s.t) for s in self.samples],
            "leases": [s.leases for s in self.samples],
            "pps": [s.pps for s in self.samples],
        }


@dataclass(frozen=True, slots=True)
class Event:
    t: int
    kind: str  # state, drop, refused, abandoned
    text: str


class Events:
    """The latest ``limit`` events, oldest dropped first; ``as_json`` lists the newest first."""

    def __init__(self, limit: int = EVENT_LIMIT) -> None:
        self.items: deque[Event] = deque(maxlen=limit)
        self.total = 0  # events ever added (the page shows how many scrolled away)

    def add(self, t: float, kind: str, text: str) -> None:
        self.items.append(Event(int(t), kind, text))
        self.total += 1

    def as_json(self) -> list[dict[str, object]]:
        return [{"t": e.t, "kind": e.kind, "text": e.text} for e in reversed(self.items)]


def _states(rel: Mapping[str, object]) -> tuple[str, str]:
    return views.side_state(rel, "local"), views.side_state(rel, "partner")


class PageFeed:
    """The page's memory: the history and the events, fed once a second by ``tick``."""

    def __init__(
        self,
        commands: Commands,
        *,
        history: History | None = None,
        events: Events | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.commands = commands
        self.history = history if history is not None else History()
        self.events = events if events is not None else Events()
        self.clock = clock
        self._states: dict[str, tuple[str, str]] = {}
        self._apd: dict[str, str] = {}  # relationship -> auto-partner-down summary
        self._drops: dict[str, int] = {}
        self._abandoned: set[int] | None = None

    def tick(self, now: float | None = None) -> None:
        """Compare the counters with the last tick's (cheap), and sample the plot when due."""
        now = self.clock() if now is None else now
        self._check_states(now)
        self._check_drops(now)
        if self.history.due(now):
            pools = self.commands.pools()
            leases = sum(p.states.get(BindingState.ACTIVE.keyword, 0) for p in pools)
            received = self.commands.counters.received if self.commands.counters else 0
            self.history.add(now, leases, received)
            abandoned = sum(p.states.get(BindingState.ABANDONED.keyword, 0) for p in pools)
            self._check_abandoned(now, abandoned)

    def _check_states(self, now: float) -> None:
        for rel in self.commands.relationships():
            name = str(rel.get("name"))
            local, partner = _states(rel)
            self._check_apd(now, name, rel.get("auto-partner-down"))
            before = self._states.get(name)
            self._states[name] = (local, partner)
            if before is None:
                text = f"failover peer {name}: me {local}, partner {partner}"
                self.events.add(now, "state", text)
                continue
            if before[0] != local:
                self.events.add(
                    now, "state", f"failover peer {name}: I move from {before[0]} to {local}"
                )
            if before[1] != partner:
                self.events.add(
                    now, "state", f"failover peer {name}: peer moves from {before[1]} to {partner}"
                )

    def _check_apd(self, now: float, name: str, apd: object) -> None:
        """auto-partner-down's summary ("partner alive, failover link down", "fenced: ...")
        as an event when it changes (io/autopd.py)."""
        summary = apd.get("summary") if isinstance(apd, dict) else None
        if not isinstance(summary, str):
            return
        if self._apd.get(name) not in (None, summary):
            self.events.add(now, "state", f"failover peer {name}: {summary}")
        self._apd[name] = summary

    def _check_drops(self, now: float) -> None:
        counters = self.commands.counters
        if counters is None:
            return
        for reason, count in counters.drops.items():
            grew = count - self._drops.get(reason, 0)
            if grew > 0:
                self._drops[reason] = count
                kind = "refused" if reason in REFUSALS else "drop"
                what = "refused" if kind == "refused" else "dropped"
                self.events.add(now, kind, f"{grew} packet(s) {what}: {reason} ({count} so far)")

    def _check_abandoned(self, now: float, count: int) -> None:
        """A new abandoned address is named (the lease scan runs only when the count grew)."""
        known = self._abandoned
        if known is not None and count <= len(known):
            if count < len(known):
                self._abandoned = None  # some were reclaimed: rescan next time it grows
            return
        found = {
            a
            for a, lease in self.commands.server.db.by_addr.items()
            if lease.binding_state is BindingState.ABANDONED
        }
        if known is not None:
            for addr in sorted(found - known):
                self.events.add(now, "abandoned", f"Abandoning IP address {IPv4Address(addr)}")
        self._abandoned = found

    def history_get(self, args: Args) -> Reply:
        """The ``history-get`` command (``tandem status``): the plot summed up, and the latest
        events, the same facts the page shows beside the commands' own."""
        if args:
            raise CommandError(
                f"history-get: unknown argument {sorted(args)[0]!r} (accepted: none)"
            )
        samples = list(self.history.samples)
        summary: dict[str, object] = {"samples": len(samples), "every": self.history.every}
        if samples:
            summary.update(
                {
                    "since": int(samples[0].t),
                    "leases-in-use": samples[-1].leases,
                    "leases-in-use-max": max(x.leases for x in samples),
                    "pps": samples[-1].pps,
                    "pps-max": max(x.pps for x in samples),
                }
            )
        return reply(
            RESULT_SUCCESS,
            f"{len(samples)} sample(s), {self.events.total} event(s)",
            {"history": summary, "events": self.events.as_json()[:STATUS_EVENTS]},
        )

    def snapshot(self) -> dict[str, object]:
        """``GET /page.json``: everything the page shows, in one answer."""
        cmds = self.commands
        now = cmds.clock()
        return {
            "now": int(now),
            "server": {
                "version": __version__,
                "build": BUILD,
                "uptime": int(now - cmds.started),
                "config-file": cmds.config_path,
            },
            "relationships": cmds.relationships(),
            "pools": [p.as_json() for p in cmds.pools()],
            "dhcp": cmds.dhcp_counters(),
            "history": self.history.as_json(),
            "events": self.events.as_json(),
            "events-total": self.events.total,
        }


def _mac(text: str) -> bytes | None:
    digits = text.replace(":", "").replace("-", "").replace(".", "")
    if len(digits) != 12:
        return None
    try:
        return bytes.fromhex(digits)
    except ValueError:
        return None


def search(commands: Commands, query: str, limit: int = SEARCH_LIMIT) -> dict[str, object]:
    """Bound leases whose address, MAC or host name matches ``query``.

    A whole IPv4 address or MAC finds its lease(s) by index; anything else is a
    case-insensitive substring of the address, the MAC (``aa:bb:...``) or the host name.
    """
    q = query.strip()
    db = commands.server.db
    if not q:
        return {"query": q, "leases": [], "more": False}
    found: list[int]
    try:
        found = [int(IPv4Address(q))]
    except AddressValueError:
        mac = _mac(q)
        if mac is not None:
            found = [a for (_ht, hw), lst in db.by_hw.items() if hw == mac for a in lst]
        else:
            needle = q.lower()
            found = []
            for a, each in db.by_addr.items():
                hw = each.hardware[1].hex(":") if each.hardware is not None else ""
                name = (each.client_hostname or "").lower()
                if needle in name or needle in hw or needle in str(IPv4Address(a)):
                    found.append(a)
    leases = [
        lease
        for a in sorted(set(found))
        if (lease := db.by_addr.get(a)) is not None and lease.binding_state in BOUND_STATES
    ]
    return {
        "query": q,
        "leases": [views.lease_json(x, commands.subnets) for x in leases[:limit]],
        "more": len(leases) > limit,
    }
