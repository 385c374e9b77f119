"""Tandem's auto-partner-down rule for one relationship, peer side (docs/AUTO-PARTNER-DOWN.md).

dhcpd's ``auto-partner-down N;`` is a blind timer: N seconds in COMMUNICATIONS-INTERRUPTED,
then PARTNER-DOWN. Cut only the failover link and both servers take the whole pool. This
rule goes to PARTNER-DOWN only when

* the partner has not been heard from for N seconds: no failover message, no answer to our
  probes (a DHCPINFORM to its DHCP service over the client network), no probe from it;
* and, with a witness configured, the witness granted it (``core/witness.py``);

and it *fences* the server (it answers no client) whenever it can no longer prove that the
partner is not in PARTNER-DOWN. The proof is a chain of evidence that must be unbroken since
the last time the failover protocol itself showed the partner's state (a STATE message on a
live link, ``synced``). Each piece of evidence covers an interval of our clock during which
the partner cannot *enter* PARTNER-DOWN:

* a failover message received at r: the partner's link was up when it sent it, at most
  ``staleness`` earlier (TCP may hold bytes back while a partition lasts, but not longer
  than our own max-response-delay, or our link would have timed out); it then waits N after
  its link went down: covered [r - staleness, r - staleness + N - margin);
* an answer to our probe sent at s: the partner received that probe at s or later and counts
  it as hearing from us: covered [s, s + N - margin);
* (witness) an alive ticket of length L asked for at s, answered at r with "the partner holds
  no grant": the witness grants the partner nothing while our ticket is valid in its view,
  which outlasts ours: covered [r, s + shorten(L)).

Pieces join when one starts before the previous one ends; once the chain has a gap only a
new ``synced`` restores it (the partner may have been in PARTNER-DOWN during the gap). A
server in PARTNER-DOWN serves, while the link is down, only with a valid grant (witness
configured) or when an operator ordered it (``forced``).

Durations are shortened on the asker's side and lengthened on the witness's by the clock rate
bound ``RATE_BOUND_PPM`` (2 x 1 %, so each view, measured by a clock whose rate is within 1 %
of true time, lasts at most resp. at least the nominal length in true time). All times are
milliseconds of a clock that never steps (io: ``time.monotonic()``); nothing here reads one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FENCE_EARLY_MS",
    "LINK_DELAY_MS",
    "RATE_BOUND_PPM",
    "SKEW_MARGIN_MS",
    "AutoPDSettings",
    "AutoPartnerDown",
    "lengthen",
    "rate_margin",
    "shorten",
]

#: The clock rate bound the design assumes: every clock (peers' and witness's) runs within
#: 1 % (10,000 ppm) of true time. Real oscillators are within 100 ppm.
RATE_BOUND_PPM = 10_000
#: Added to every duration the witness keeps (processing, and the receive/send asymmetry).
SKEW_MARGIN_MS = 1000
#: A failover message that no partition holds back arrives within this (design assumption).
LINK_DELAY_MS = 3000
#: Fixed part of the margin N - margin; also covers the caller's timer running late.
FIXED_MARGIN_MS = 1000
#: The fence and the grant end are applied this much early, for a caller whose timer fires late.
FENCE_EARLY_MS = 500

COMMUNICATIONS_INTERRUPTED = "communications-interrupted"
PARTNER_DOWN = "partner-down"
NORMAL = "normal"
_FAR = 1 << 62


def rate_margin(ms: int) -> int:
    """ceil(2 x rate bound x ms): what a duration may shrink or grow by across two clocks."""
    return -(-ms * 2 * RATE_BOUND_PPM // 1_000_000)


def shorten(ms: int) -> int:
    """The asker's view of a duration the witness gave (ends first in true time)."""
    return max(0, ms - rate_margin(ms))


def lengthen(ms: int) -> int:
    """The witness's view of a duration it gives (ends last in true time)."""
    return ms + rate_margin(ms) + SKEW_MARGIN_MS


@dataclass(frozen=True, slots=True)
class AutoPDSettings:
    """The rule's parameters (milliseconds). ``n_ms`` is ``auto-partner-down N;``."""

    n_ms: int
    witness: bool = False  #: a witness is configured (``--witness``)
    mrd_ms: int = 60_000  #: our max-response-delay (the link's receive timer)
    probe_every_ms: int = 2_000
    ask_every_ms: int = 4_000  #: until the witness's answers say its ticket length (T/3)
    link_delay_ms: int = LINK_DELAY_MS

    @property
    def staleness_ms(self) -> int:
        """How old a failover message may be when it arrives on a link that is still up."""
        base = self.mrd_ms + 2 * FIXED_MARGIN_MS + 3 * self.link_delay_ms
        return base + 2 * rate_margin(base)

    @property
    def n_eff_ms(self) -> int:
        """N, raised when needed so that the evidence can chain (documented as "effective N":
        N - margin must exceed the staleness plus two probe intervals)."""
        floor = self.staleness_ms + 2 * self.probe_every_ms + FIXED_MARGIN_MS
        n = max(self.n_ms, floor + rate_margin(floor) + FIXED_MARGIN_MS + 1)
        while n - self.margin_for(n) <= floor:
            n += 1000
        return n

    @staticmethod
    def margin_for(n: int) -> int:
        return rate_margin(n) + FIXED_MARGIN_MS


class AutoPartnerDown:
    """The peer-side rule and the fence for one relationship (pure; ``now`` in ms)."""

    def __init__(self, settings: AutoPDSettings, *, now: int) -> None:
        self.settings = settings
        self.n = settings.n_eff_ms
        self.chain = self.n - settings.margin_for(self.n)
        self.staleness = settings.staleness_ms
        self.state = "startup"
        self.linked = False  # a live link on which the partner's STATE was seen
        self.forced = False  # PARTNER-DOWN by the operator's command
        # After a (re)start nothing is known of what the partner did: the chain is broken.
        self.covered_until = now - 1
        self.last_heard = now  # any sign of life; the start counts (conservative for us)
        self.last_rx = now  # last failover message
        self.grant_until: int | None = None
        self.ticket_until: int | None = None
        self.partner_grant = False
        self.ask_every = settings.ask_every_ms
        self.next_probe = now
        self.next_ask = now
        self.last_probe_answer: int | None = None
        self.last_witness_answer: int | None = None
        self.counts = {
            "probes_sent": 0,
            "probe_answers": 0,
            "partner_probes": 0,
            "witness_asks": 0,
            "witness_answers": 0,
            "grants": 0,
            "fences": 0,
        }
        self._fenced: str | None = None

    # --- inputs -------------------------------------------------------------------------

    def _extend(self, start: int, end: int) -> None:
        if start <= self.covered_until and end > self.covered_until:
            self.covered_until = end

    def _heard(self, now: int) -> None:
        self.last_heard = max(self.last_heard, now)

    def heard_link(self, now: int) -> None:
        """A failover message from the partner arrived."""
        self._heard(now)
        self.last_rx = max(self.last_rx, now)
        start = now - self.staleness
        self._extend(start, start + self.chain)

    def synced(self, now: int) -> None:
        """The partner's STATE was processed on a live link: the failover protocol knows its
        state again, so the chain starts afresh."""
        self.heard_link(now)
        self.linked = True
        start = now - self.staleness
        self.covered_until = max(self.covered_until, start + self.chain)

    def link_down(self, now: int) -> None:
        """The failover link is gone (reset, closed, or timed out)."""
        self.linked = False
        self._heard(now)
        self.next_probe = min(self.next_probe, now)
        self.next_ask = min(self.next_ask, now)

    def probe_sent(self, now: int) -> None:
        self.counts["probes_sent"] += 1
        self.next_probe = now + self.settings.probe_every_ms

    def probe_answered(self, sent_at: int, now: int) -> None:
        """The partner's DHCP service answered our probe sent at ``sent_at``."""
        self.counts["probe_answers"] += 1
        self.last_probe_answer = now
        self._heard(now)
        self._extend(sent_at, sent_at + self.chain)

    def partner_probed(self, now: int) -> None:
        """A probe from the partner reached us (a DHCPINFORM from its address). Counting it
        is what makes an answered probe evidence for the partner's side."""
        self.counts["partner_probes"] += 1
        self._heard(now)

    def witness_asked(self, now: int) -> None:
        self.counts["witness_asks"] += 1
        self.next_ask = now + self.ask_every

    def witness_answer(
        self, sent_at: int, now: int, *, ticket_ms: int, grant_ms: int, partner_grant: bool
    ) -> None:
        """The witness answered our request sent at ``sent_at`` (durations as it sent them)."""
        self.counts["witness_answers"] += 1
        self.last_witness_answer = now
        self.partner_grant = partner_grant
        if ticket_ms > 0:
            self.ask_every = max(200, min(self.settings.ask_every_ms, ticket_ms // 3))
            end = sent_at + shorten(ticket_ms)
            self.ticket_until = max(self.ticket_until or end, end)
            if not partner_grant:
                self._extend(now, end)
        if grant_ms > 0:
            end = sent_at + shorten(grant_ms)
            if self.grant_until is None or end > self.grant_until:
                if self.grant_until is None or self.grant_until <= now:
                    self.counts["grants"] += 1
                self.grant_until = end

    def set_state(self, state: str, now: int) -> None:
        """The engine's server state (keyword), after every change."""
        if state != PARTNER_DOWN:
            self.forced = False
        self.state = state

    def operator_partner_down(self) -> None:
        """The operator's partner-down command: serve in PARTNER-DOWN whatever the witness
        says (the operator promises the partner is down)."""
        self.forced = True

    # --- outputs ------------------------------------------------------------------------

    def silent_for(self, now: int) -> int:
        return now - self.last_heard

    def _grant_valid(self, now: int) -> bool:
        return self.grant_until is not None and now < self.grant_until - FENCE_EARLY_MS

    def want_partner_down(self, now: int) -> bool:
        """What to tell the witness: we are, or would go, PARTNER-DOWN."""
        if self.state == PARTNER_DOWN:
            return True
        return (
            self.state == COMMUNICATIONS_INTERRUPTED
            and not self.linked
            and self.silent_for(now) >= self.n
        )

    def partner_down_due(self, now: int) -> bool:
        """Move COMMUNICATIONS-INTERRUPTED -> PARTNER-DOWN now."""
        if self.state != COMMUNICATIONS_INTERRUPTED or self.linked:
            return False
        if self.silent_for(now) < self.n:
            return False
        return not self.settings.witness or self._grant_valid(now)

    def fence(self, now: int) -> str | None:
        """None when we may answer clients; else why not (for the log and failover-get)."""
        if self.state == PARTNER_DOWN:
            if self.forced or self.linked or not self.settings.witness or self._grant_valid(now):
                why = None
            else:
                why = "no partner-down grant from the witness"
        elif self.state in (NORMAL, COMMUNICATIONS_INTERRUPTED):
            if now < self.covered_until - FENCE_EARLY_MS:
                why = None
            elif self.settings.witness:
                why = "partner not heard and no witness ticket since the link was last up"
            else:
                why = "partner not heard since the link was last up"
        else:
            why = None
        if why is not None and self._fenced is None:
            self.counts["fences"] += 1
        self._fenced = why
        return why

    def probe_due(self, now: int) -> bool:
        quiet = not self.linked or now - self.last_rx >= self.settings.probe_every_ms
        return quiet and now >= self.next_probe

    def ask_due(self, now: int) -> bool:
        if not self.settings.witness:
            return False
        quiet = not self.linked or now - self.last_rx >= self.ask_every
        return (quiet or self.state == PARTNER_DOWN) and now >= self.next_ask

    def next_deadline(self, now: int) -> int | None:
        """The earliest time something may change (call the rule again then)."""
        times = []
        if not self.linked:
            times.append(self.next_probe)
        else:
            times.append(max(self.next_probe, self.last_rx + self.settings.probe_every_ms))
        if self.settings.witness:
            if not self.linked or self.state == PARTNER_DOWN:
                times.append(self.next_ask)
            else:
                times.append(max(self.next_ask, self.last_rx + self.ask_every))
        times.append(self.covered_until - FENCE_EARLY_MS)
        times.append(self.last_heard + self.n)
        if self.grant_until is not None:
            times.append(self.grant_until - FENCE_EARLY_MS)
        later = [t for t in times if t > now]
        return min(later) if later else None

    def status(self, now: int) -> dict[str, object]:
        """For failover-get, metrics and the page (times as ms ago / ms left)."""

        def ago(t: int | None) -> int | None:
            return None if t is None else now - t

        def left(t: int | None) -> int | None:
            return None if t is None or t <= now else t - now

        return {
            "rule": "tandem",
            "n_ms": self.n,
            "witness": self.settings.witness,
            "linked": self.linked,
            "partner_silent_ms": self.silent_for(now),
            "last_probe_answer_ms_ago": ago(self.last_probe_answer),
            "partner_alive": (
                not self.linked
                and self.last_probe_answer is not None
                and now - self.last_probe_answer < self.n
            ),
            "covered_ms_left": left(self.covered_until),
            "fenced": self._fenced,
            "want_partner_down": self.want_partner_down(now),
            "ticket_ms_left": left(self.ticket_until),
            "grant_ms_left": left(self.grant_until),
            "partner_holds_grant": self.partner_grant,
            "last_witness_answer_ms_ago": ago(self.last_witness_answer),
            "forced": self.forced,
            **self.counts,
        }
