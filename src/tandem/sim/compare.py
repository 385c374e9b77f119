"""What both servers' lease databases must agree on once quiet (invariant (c))."""

from __future__ import annotations

from ipaddress import IPv4Address

from tandem.core.lease import BindingState, Lease
from tandem.sim.client import SimClient
from tandem.sim.node import T0, SimNode

__all__ = ["lease_text", "missing_ack", "same", "view"]

#: (server, client) -> (address, lease end on that server, client's end, commit number)
AcksFrom = dict[tuple[str, int], tuple[IPv4Address, int | None, int, int]]

S = 1000


def view(lease: object, offset_ms: int) -> tuple[object, ...]:
    """What both servers must agree on; an ACTIVE lease's end in virtual ms (each server
    writes ends in its own clock, so clock offsets are taken out)."""
    if not isinstance(lease, Lease):
        return ("free",)
    st = lease.binding_state
    if st is BindingState.ACTIVE:
        ends = None if lease.ends is None else (lease.ends - T0) * S - offset_ms
        return ("active", lease.hardware, lease.uid, ends)
    return (st.keyword,)


def same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """Equal, except that ACTIVE ends may differ by the clocks' whole-second rounding."""
    if a[:3] != b[:3] or len(a) != len(b):
        return False
    if len(a) < 4 or a[3] is None or b[3] is None:
        return a == b
    ea, eb = a[3], b[3]
    assert isinstance(ea, int) and isinstance(eb, int)
    return abs(ea - eb) <= 3 * S


def lease_text(lease: object) -> str:
    assert isinstance(lease, Lease)
    hw = lease.hardware[1].hex(":") if lease.hardware else "-"
    ends = "never" if lease.ends is None else str(lease.ends - T0)
    return f"{lease.binding_state.keyword} hw {hw} ends T0+{ends}"


def missing_ack(node: SimNode, clients: list[SimClient], acks_from: AcksFrom, t: int) -> str | None:
    """(b): after a restart, every ACK this server gave a still-bound client is there.

    "There" means: the lease is ACTIVE for that client and ends no earlier than the ACK
    said, unless a later record for the address was committed after the ACK (a later
    binding, e.g. the peer's renewal of the same client, whose end the peer's clock set).
    """
    server = node.server
    assert server is not None
    for client in clients:
        got = acks_from.get((node.name, client.index))
        if got is None or client.holding is None:
            continue
        addr, ends, client_end, commit = got
        if client.holding[0] != addr or client_end <= t:
            continue
        lease = server.db.by_addr.get(int(addr))
        later = node.journal.last_commit.get(int(addr), 0) > commit
        ok = (
            lease is not None
            and lease.binding_state is BindingState.ACTIVE
            and lease.hardware is not None
            and lease.hardware[1] == client.hw
            and (lease.ends is None or ends is None or lease.ends >= ends or later)
        )
        if not ok:
            have = "nothing" if lease is None else lease_text(lease)
            return (
                f"{node.name} restarted without the ACK it gave {client.label()} for "
                f"{addr} (ends {ends}); it has {have}"
            )
    return None
