"""The engine hook of Tandem's auto-partner-down rule (``core/failover/autopd.py``).

``attach(engine, settings, mono=)`` switches one relationship from dhcpd's blind
auto-partner-down timer to the rule: the state machine's own timer is disabled and an
``AutoPDHook`` takes its place. The caller (io, or the simulator's node) then calls
``hook.service(now=, mono=)`` after every engine call (receive_data, connection_made/lost,
handle_timer, take_writes) and at ``hook.next_deadline(mono)``, with ``now`` the engine's
wall-clock seconds and ``mono`` milliseconds of a clock that never steps. ``service`` reads
what the engine saw since the last call (messages received, the link lost, the partner's
STATE), feeds the rule, moves COMMUNICATIONS-INTERRUPTED -> PARTNER-DOWN through the state
table (``Input.AUTO_PARTNER_DOWN``) when the rule says so, and sets the machine's ``fence``
(the DHCP core answers no client while it is set). Probes and witness requests are the
caller's: it asks ``hook.rule.probe_due(mono)`` / ``ask_due(mono)``, sends, reports
``probe_sent``/``witness_asked`` and the answers (``probe_answered``, ``partner_probed``,
``witness_answer``) on ``hook.rule``, then calls ``service`` again.

Without ``attach`` (``--blind-auto-partner-down``, and every engine built by
``FailoverSetup`` alone) the engine keeps dhcpd's timer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tandem.core.failover.autopd import AutoPartnerDown, AutoPDSettings
from tandem.wire.failover_codes import MessageType

if TYPE_CHECKING:
    from tandem.core.failover.engine import FailoverEngine

__all__ = ["AutoPDHook", "attach", "settings_for"]

_STATE = str(int(MessageType.STATE))


def settings_for(engine: FailoverEngine, *, witness: bool, **extra: int) -> AutoPDSettings | None:
    """The rule's settings from the relationship's config (None: auto-partner-down is off)."""
    n = engine.cfg.auto_partner_down
    if n <= 0:
        return None
    return AutoPDSettings(
        n_ms=n * 1000,
        witness=witness,
        mrd_ms=engine.cfg.max_response_delay * 1000,
        **extra,
    )


class AutoPDHook:
    """The rule bound to one engine."""

    def __init__(self, engine: FailoverEngine, settings: AutoPDSettings, *, mono: int) -> None:
        self.engine = engine
        self.rule = AutoPartnerDown(settings, now=mono)
        m = engine.machine
        m.auto_partner_down = 0  # dhcpd's blind timer: never armed again
        m.auto_partner_down_deadline = None
        counters = engine.counters
        self._rx = sum(counters.values())
        self._states = counters.get(_STATE, 0)
        self._up = engine.link.state == "up"
        self.rule.set_state(m.state.keyword, mono)

    def service(self, *, now: int, mono: int) -> None:
        """Feed the rule what happened since the last call and apply its outputs."""
        engine, rule = self.engine, self.rule
        counters = engine.counters
        rx = sum(counters.values())
        states = counters.get(_STATE, 0)
        up = engine.link.state == "up" and engine.link.close is None
        if rx != self._rx:
            rule.heard_link(mono)
        if states != self._states:
            rule.synced(mono)
        if (self._up and not up) or (rule.linked and not up):
            rule.link_down(mono)
        self._rx, self._states, self._up = rx, states, up
        rule.set_state(engine.machine.state.keyword, mono)
        if rule.partner_down_due(mono):
            engine.auto_partner_down(now)
            rule.set_state(engine.machine.state.keyword, mono)
        engine.machine.fence = rule.fence(mono)

    def operator_partner_down(self, *, now: int, mono: int) -> None:
        """The operator's partner-down command (it overrides the fence, see autopd)."""
        self.engine.partner_down(now)
        self.rule.set_state(self.engine.machine.state.keyword, mono)
        self.rule.operator_partner_down()
        self.service(now=now, mono=mono)

    def next_deadline(self, mono: int) -> int | None:
        return self.rule.next_deadline(mono)

    def status(self, mono: int) -> dict[str, object]:
        return self.rule.status(mono)


def attach(engine: FailoverEngine, settings: AutoPDSettings, *, mono: int) -> AutoPDHook:
    """Put ``engine`` under Tandem's rule (see the module docstring)."""
    return AutoPDHook(engine, settings, mono=mono)
