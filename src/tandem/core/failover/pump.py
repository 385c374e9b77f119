"""BNDUPDs out: queued binding updates encoded into the link's output within the peer's window.

Moved out of ``tandem.core.failover.engine`` (the 600-line rule); the engine calls
``pump_updates`` from ``data_to_send``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tandem.core.failover.leases import INFINITE_ENDS
from tandem.core.lease import BindingState
from tandem.wire.failover import FailoverEncodeError
from tandem.wire.failover_fast import encode_bndupd

if TYPE_CHECKING:
    from tandem.core.failover.leases import FailoverLeases
    from tandem.core.failover.link import Link

__all__ = ["pump_updates"]


def pump_updates(leases: FailoverLeases, link: Link, now: int, log: list[str]) -> None:
    """Encode queued BNDUPDs into the link's output while the peer's window has room.

    Every one of a window goes into the same output buffer, so the link sends a window
    with one write. Times go out in the peer's clock (``Link.peer_offset``).
    """
    free = link.partner_max_unacked - len(leases.inflight)
    if free <= 0 or not leases.queue:
        return
    off = link.peer_offset
    out = link.out
    active = BindingState.ACTIVE
    while free > 0 and leases.queue:
        xid = link.next_update_xid()
        got = leases.next_update(xid)
        if got is None:
            break
        free -= 1
        lease, sent = got
        hw = lease.hardware
        ends = lease.ends
        if ends is None:
            ends = INFINITE_ENDS if lease.binding_state is active else 0
        elif off and ends:
            ends += off
        starts = lease.starts
        cltt = lease.cltt
        potential = sent.potential
        if off:
            potential = potential + off if potential else potential
            cltt = cltt + off if cltt else cltt
        try:
            out += encode_bndupd(
                time=now,
                xid=xid,
                address=int(lease.address),
                status=sent.status,
                uid=lease.uid,
                chaddr=bytes((hw[0],)) + hw[1] if hw else None,
                ends=ends,
                potential=potential,
                stos=(starts or 0) + off if starts else 0,
                cltt=cltt,
                flags=2 if lease.bootp else 0,
            )
        except FailoverEncodeError as exc:
            leases.inflight.pop(int(lease.address), None)
            log.append(f"failover peer {link.name}: cannot send {lease.address}: {exc}")
