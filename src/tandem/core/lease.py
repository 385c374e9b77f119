"""The records the core keeps and the lease store persists: leases and failover states.

A lease is mutable on purpose: the core updates leases in place on the hot path and hands
the changed ones to the store, which must make them durable before the reply leaves.
Times are whole seconds since the epoch (UTC), as dhcpd keeps them; ``None`` means "never
set" (dhcpd writes no such line). ``ends`` of ``None`` on an ACTIVE lease means "never"
(an infinite BOOTP lease).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address

from tandem.wire.failover_codes import BindingState

__all__ = ["BindingState", "FailoverStateRecord", "Lease"]


@dataclass(slots=True, eq=True)
class Lease:
    """One address and what is known about its binding, as a dhcpd.leases ``lease`` block."""

    address: IPv4Address
    binding_state: BindingState = BindingState.FREE
    next_binding_state: BindingState | None = None
    rewind_binding_state: BindingState | None = None
    starts: int | None = None
    ends: int | None = None
    tstp: int | None = None
    tsfp: int | None = None
    atsfp: int | None = None
    cltt: int | None = None
    hardware: tuple[int, bytes] | None = None  # (htype, chaddr bytes)
    uid: bytes | None = None  # client identifier (option 61 payload)
    client_hostname: str | None = None
    vendor_class_identifier: str | None = None
    bootp: bool = False  # a dynamic-bootp (infinite) lease
    variables: dict[str, str] = field(default_factory=dict)  # `set NAME = "VALUE";`
    billing: tuple[str, bytes | None] | None = None  # `lease limit` class (key: subclass)

    def is_active(self, now: int) -> bool:
        """True while the binding is ACTIVE and not past its end."""
        if self.binding_state is not BindingState.ACTIVE:
            return False
        return self.ends is None or self.ends > now

    def copy(self) -> Lease:
        """A detached copy (the store keeps what was committed, the core keeps mutating)."""
        return Lease(
            address=self.address,
            binding_state=self.binding_state,
            next_binding_state=self.next_binding_state,
            rewind_binding_state=self.rewind_binding_state,
            starts=self.starts,
            ends=self.ends,
            tstp=self.tstp,
            tsfp=self.tsfp,
            atsfp=self.atsfp,
            cltt=self.cltt,
            hardware=self.hardware,
            uid=self.uid,
            client_hostname=self.client_hostname,
            vendor_class_identifier=self.vendor_class_identifier,
            bootp=self.bootp,
            variables=dict(self.variables),
            billing=self.billing,
        )


@dataclass(slots=True, frozen=True)
class FailoverStateRecord:
    """A ``failover peer "NAME" state { ... }`` record: both sides' state and its start.

    ``*_stos`` of ``None`` means the ``at DATE`` part is absent (dhcpd then takes the time
    of reading). ``mclt`` is written by a secondary only (a primary rejects it).
    """

    name: str
    my_state: str
    my_stos: int | None
    partner_state: str
    partner_stos: int | None
    mclt: int | None = None
