"""The witness's decision table (``tandem witness``): tickets, partner-down grants, restarts.

A witness is a third party both peers of a failover relationship can reach. Each peer, while
it cannot prove its partner alive, asks it every T/3 seconds with (relationship, role,
want_partner_down, mclt). The witness keeps, per relationship:

* an *alive ticket* per role: a peer that asks holds one for T (whatever it asks);
* at most one *partner-down grant*: role R gets it only when the other role's ticket has
  expired, the other role holds no grant, the other role's last grant ended at least MCLT
  ago (its clients may hold leases it gave in PARTNER-DOWN until then: the *cool-down*) and
  the witness is not in its restart hold. The holder renews it by asking again;
* a record on disk: which role holds (or last held) a grant, and the MCLT; the caller writes
  it (fsync) *before* sending an answer that ``handle`` says changed it.

Durations are sent as durations; the asker counts from when it sent the request, shortened
by the rate margin, the witness from when it received it, lengthened by the rate margin and
``SKEW_MARGIN_MS`` (``core/failover/autopd.py``: ``shorten``/``lengthen``), so the asker's
view always ends first. Restart rule: after a restart the witness grants nothing new until
every ticket it may have given could have expired (one lengthened ticket/grant length); a
role the record names as holder keeps its grant (valid for one lengthened grant length, then
the cool-down), so a holder can renew across the restart and the other role cannot get one.
If the record is lost, ``Witness.lost`` holds grants back for a grant length plus the
longest MCLT the caller names. Times are milliseconds of a clock that never steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from tandem.core.failover.autopd import lengthen

__all__ = ["MAX_RELATIONSHIPS", "RecordError", "Witness", "WitnessAnswer", "WitnessRequest"]

Role = Literal["primary", "secondary"]
ROLES: tuple[Role, Role] = ("primary", "secondary")
MAX_RELATIONSHIPS = 1024  #: more names than this in the table: refused (memory bound)
RECORD_VERSION = 1


def _other(role: Role) -> Role:
    return "secondary" if role == "primary" else "primary"


@dataclass(frozen=True, slots=True)
class WitnessRequest:
    relationship: str
    role: Role
    want_partner_down: bool
    mclt_s: int = 0  #: the relationship's MCLT, seconds (for the cool-down)


@dataclass(frozen=True, slots=True)
class WitnessAnswer:
    """What the witness tells the asker; ``reason`` is for logs ("granted", "renewed",
    "partner alive", "partner holds the grant", "cool-down", "restart hold", "ticket")."""

    ticket_ms: int  #: alive ticket length (0: refused, the table is full)
    grant_ms: int  #: partner-down grant length (0: none)
    partner_grant: bool  #: the other role holds a valid grant
    reason: str


@dataclass(slots=True)
class _Rel:
    tickets: dict[str, int] = field(default_factory=dict)  # role -> valid until (witness view)
    holder: Role | None = None  # grant holder, or the role whose grant ended last
    grant_until: int | None = None  # holder's grant valid until; None: none valid/ended
    cool_until: int | None = None  # after the holder's grant ended: others wait until this
    mclt_ms: int = 0


class Witness:
    """The table. ``handle`` per request; ``to_record``/``from_record`` for the disk."""

    def __init__(
        self,
        *,
        now: int,
        ticket_ms: int = 12_000,
        grant_ms: int = 12_000,
        record: Mapping[str, object] | None = None,
        restarted: bool = False,
    ) -> None:
        self.ticket_ms = ticket_ms
        self.grant_ms = grant_ms
        self.rels: dict[str, _Rel] = {}
        restarted = restarted or record is not None  # a record means it ran before
        self.hold_until = now + lengthen(max(ticket_ms, grant_ms)) if restarted else now
        self.counts = {"requests": 0, "grants": 0, "renewals": 0, "refusals": 0}
        if record is not None:
            for name, mclt_ms, holder in _parse_record(record):
                rel = _Rel(holder=holder, mclt_ms=mclt_ms)
                if holder is not None:
                    rel.grant_until = now + lengthen(grant_ms)
                    rel.cool_until = rel.grant_until + lengthen(mclt_ms)
                self.rels[name] = rel

    @classmethod
    def lost(
        cls, *, now: int, max_mclt_s: int, ticket_ms: int = 12_000, grant_ms: int = 12_000
    ) -> Witness:
        """A restart without its record: nothing is granted for a grant length plus the
        longest MCLT any relationship may have (the caller's ``max_mclt_s``)."""
        w = cls(now=now, ticket_ms=ticket_ms, grant_ms=grant_ms, restarted=True)
        w.hold_until = now + lengthen(max(ticket_ms, grant_ms)) + lengthen(max_mclt_s * 1000)
        return w

    # --- the table ----------------------------------------------------------------------

    def _expire(self, rel: _Rel, now: int) -> bool:
        """Grant -> cool-down -> nothing; True when the record changes."""
        if rel.grant_until is not None and rel.grant_until <= now:
            cool = rel.grant_until + lengthen(rel.mclt_ms)
            rel.grant_until = None
            rel.cool_until = max(rel.cool_until or cool, cool)
        if rel.grant_until is None and rel.cool_until is not None and rel.cool_until <= now:
            rel.cool_until = None
            if rel.holder is not None:
                rel.holder = None
                return True
        return False

    def handle(self, req: WitnessRequest, *, now: int) -> tuple[WitnessAnswer, bool]:
        """Answer one request. The bool: the record changed; persist it before answering."""
        self.counts["requests"] += 1
        rel = self.rels.get(req.relationship)
        changed = False
        if rel is None:
            if len(self.rels) >= MAX_RELATIONSHIPS:
                self.counts["refusals"] += 1
                return WitnessAnswer(0, 0, False, "table full"), False
            rel = self.rels[req.relationship] = _Rel()
            changed = True
        mclt_ms = max(0, req.mclt_s) * 1000
        if mclt_ms > rel.mclt_ms:
            rel.mclt_ms = mclt_ms
            changed = True
        changed |= self._expire(rel, now)
        role, other = req.role, _other(req.role)
        rel.tickets[role] = now + lengthen(self.ticket_ms)
        partner_grant = rel.holder == other and rel.grant_until is not None
        grant, reason = 0, "ticket"
        if req.want_partner_down:
            if rel.holder == role and rel.grant_until is not None:
                grant, reason = self.grant_ms, "renewed"
                self.counts["renewals"] += 1
            elif partner_grant:
                reason = "partner holds the grant"
            elif rel.tickets.get(other, now) > now:
                reason = "partner alive"
            elif rel.holder == other and rel.cool_until is not None:
                reason = "cool-down"
            elif now < self.hold_until:
                reason = "restart hold"
            else:
                grant, reason = self.grant_ms, "granted"
                self.counts["grants"] += 1
                if rel.holder != role:
                    changed = True
                rel.holder = role
                rel.cool_until = None
            if grant:
                rel.grant_until = now + lengthen(self.grant_ms)
            else:
                self.counts["refusals"] += 1
        return WitnessAnswer(self.ticket_ms, grant, partner_grant, reason), changed

    def next_deadline(self, now: int) -> int | None:
        """When a cool-down ends and the record may shrink (optional housekeeping)."""
        times = [
            t
            for rel in self.rels.values()
            for t in (rel.grant_until, rel.cool_until)
            if t is not None and t > now
        ]
        return min(times) if times else None

    def tick(self, now: int) -> bool:
        """Expire grants and cool-downs; True when the record changed."""
        changed = False
        for rel in self.rels.values():
            changed |= self._expire(rel, now)
        return changed

    # --- persistence --------------------------------------------------------------------

    def to_record(self) -> dict[str, object]:
        """JSON-able: who holds (or last held, cool-down pending) a grant, and the MCLT."""
        return {
            "version": RECORD_VERSION,
            "relationships": {
                name: {"mclt_ms": rel.mclt_ms, "holder": rel.holder}
                for name, rel in sorted(self.rels.items())
            },
        }

    def status(self, now: int) -> dict[str, object]:
        def left(t: int | None) -> int | None:
            return None if t is None or t <= now else t - now

        return {
            "hold_ms_left": left(self.hold_until),
            "relationships": {
                name: {
                    "tickets_ms_left": {r: left(rel.tickets.get(r)) for r in ROLES},
                    "holder": rel.holder,
                    "grant_ms_left": left(rel.grant_until),
                    "cool_down_ms_left": left(rel.cool_until),
                    "mclt_ms": rel.mclt_ms,
                }
                for name, rel in sorted(self.rels.items())
            },
            **self.counts,
        }


class RecordError(ValueError):
    """The witness's record is not one this version wrote (refuse to start: say so)."""


def _parse_record(record: Mapping[str, object]) -> list[tuple[str, int, Role | None]]:
    if record.get("version") != RECORD_VERSION:
        raise RecordError(f"unknown witness record version {record.get('version')!r}")
    rels = record.get("relationships")
    if not isinstance(rels, Mapping):
        raise RecordError("witness record: 'relationships' is not an object")
    out: list[tuple[str, int, Role | None]] = []
    for name, body in rels.items():
        if not isinstance(name, str) or not isinstance(body, Mapping):
            raise RecordError("witness record: a relationship is not an object")
        mclt = body.get("mclt_ms")
        holder = body.get("holder")
        if not isinstance(mclt, int) or isinstance(mclt, bool) or mclt < 0:
            raise RecordError(f"witness record: bad mclt_ms for {name!r}")
        if holder is None:
            out.append((name, mclt, None))
        elif holder == "primary":
            out.append((name, mclt, "primary"))
        elif holder == "secondary":
            out.append((name, mclt, "secondary"))
        else:
            raise RecordError(f"witness record: bad holder for {name!r}")
    return out
