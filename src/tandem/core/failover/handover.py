"""A clean handover: SHUTDOWN before a planned stop, and the restart after one (sans I/O).

What ISC dhcpd 4.4 does (failover-isc.md §7.6; server/dhcpd.c ``dhcp_io_shutdown_countdown``
and server/failover.c ``dhcp_failover_set_state``):

* on an administrative shutdown a relationship in NORMAL, and only in NORMAL, moves to
  SHUTDOWN; a partner that receives STATE SHUTDOWN moves to PARTNER-DOWN (its §7.5 table);
* the stopping server waits for the partner's PARTNER-DOWN, then records RECOVER on exit, and
  if the partner was PARTNER-DOWN and no update was queued or un-acked, that transition
  back-dates STOS by MCLT, so the restart goes RECOVER -> RECOVER-DONE without RECOVER-WAIT.

Tandem keeps the SHUTDOWN record as the lease file's last word (it is what really happened
last) and makes the SHUTDOWN -> RECOVER move at the restart instead, under the same condition
read back from disk: the recorded partner state is PARTNER-DOWN and no lease of the
relationship has a change the partner never acknowledged (``tstp > atsfp``; stricter than
dhcpd, see ``unacked_changes``). Either way the
partner knows every binding we ever gave (UPDREQALL sends them all back during RECOVER), so
waiting out the MCLT protects nothing. Anything else (a handover that timed out, a crash in
SHUTDOWN) restarts in RECOVER with STOS = now: the full, always safe, MCLT wait. dhcpd itself
would stay in SHUTDOWN for ever after such a crash ("dead in the water").

Why only NORMAL: in COMMUNICATIONS-INTERRUPTED (or PARTNER-DOWN, RECOVER, ...) the partner is
not listening, so no STATE can reach it; recording SHUTDOWN there would only turn the restart
into a full RECOVER with an MCLT wait, where restarting from the recorded state resumes at
once. Those states stop as before, quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tandem.core.failover.states import FailoverStateMachine
from tandem.wire.failover_codes import ServerState

if TYPE_CHECKING:
    from tandem.core.failover.leases import FailoverLeases

S = ServerState

__all__ = [
    "HANDOVER_FROM",
    "HANDOVER_SECONDS",
    "handed_over",
    "nothing_to_wait_for",
    "restart_after_shutdown",
    "unacked_changes",
]

#: States a planned stop hands over from (ISC: ``if (state->me.state == normal)``).
HANDOVER_FROM = frozenset({S.NORMAL})
#: How long a stop waits for the partner's answer (the runtime's bound). A Tandem partner
#: answers at once; dhcpd moves to PARTNER-DOWN at once but batches its BNDACKs for 2 s
#: after the last update it got, and leaving NORMAL re-sends our un-acked updates (ISC's
#: rescind, §7.6), so their acks can take 2 s and a bit from the SIGTERM.
HANDOVER_SECONDS = 5.0


def handed_over(machine: FailoverStateMachine, leases: FailoverLeases) -> bool:
    """In SHUTDOWN, the partner's STATE said PARTNER-DOWN and every update of ours is acked."""
    return (
        machine.state is S.SHUTDOWN
        and machine.peer_state == S.PARTNER_DOWN
        and not (leases.queue or leases.inflight or leases.staged)
    )


def nothing_to_wait_for(
    machine: FailoverStateMachine, leases: FailoverLeases, link_up: bool
) -> bool:
    """Handed over, or waiting is pointless: not in SHUTDOWN, or the link is gone."""
    return machine.state is not S.SHUTDOWN or not link_up or handed_over(machine, leases)


def unacked_changes(leases: FailoverLeases) -> bool:
    """Does a lease of the relationship hold a change the partner never acknowledged?

    ``tstp > atsfp``, as the lease file says. Stricter than dhcpd's test (its update and ack
    queues): a change the partner refused (a lost duel, reject 16) counts too, so after one
    the restart takes the safe path and waits out the MCLT.
    """
    return any(
        (lease.tstp or 0) > (lease.atsfp or 0)
        for a, lease in leases.db.by_addr.items()
        if leases.pools.of(a) is not None
    )


def restart_after_shutdown(
    machine: FailoverStateMachine, leases: FailoverLeases, now: int
) -> list[str]:
    """Before ``machine.start``: a relationship restored in SHUTDOWN moves to RECOVER.

    Returns dhcpd's log line for the move. STOS is back-dated by MCLT when the partner was
    recorded PARTNER-DOWN and nothing of ours is un-acknowledged (see the module docstring).
    """
    if machine.state is not S.SHUTDOWN:
        return []
    clean = machine.peer_state == S.PARTNER_DOWN and not unacked_changes(leases)
    machine.state = machine.saved_state = S.RECOVER
    machine.stos = now - machine.mclt if clean else now
    return [f"failover peer {leases.name}: I move from shutdown to recover"]
