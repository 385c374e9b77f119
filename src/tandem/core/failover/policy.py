"""What the DHCP core asks of failover for a pool with ``failover peer``.

A Protocol, so ``pools``/``server``/``flows`` need not import the engine (which imports
them). ``tandem.core.failover.leases.FailoverLeases`` implements it, one per relationship.
It names no type of ``pools``: the allocator owns the free lists and asks failover only
for the rule (``TakeRule``) by which it may take from them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

from tandem.core.lease import Lease


class TakeRule(NamedTuple):
    """Which free states the allocator may take from (see ``pools.LeaseDB.take``)."""

    free: bool  # FREE leases and never-used addresses (the primary's)
    backup: bool  # BACKUP leases (the secondary's)
    abandoned_ok: bool
    accept: Callable[[Lease | None], bool] | None  # a veto per candidate (PARTNER-DOWN)
    reclaim: Callable[[Lease], bool] | None = None  # a veto per abandoned candidate


class PoolFailover(Protocol):
    name: str

    def not_responding(self) -> str | None:
        """None when we may answer clients; else why not (dhcpd's ``nrr`` suffix)."""

    def balance_to_peer(self, key: bytes, secs: int, mtype: int | None) -> bool:
        """NORMAL only: True when load balancing leaves this DISCOVER/BOOTP to the peer."""

    def peer_has_leases(self, pool: object) -> bool:
        """The peer still has free-state leases in ``pool`` (a ``pools.PoolState``)."""

    def mine_to_reallocate(self, lease: Lease | None, now: int) -> bool:
        """dhcpd's lease_mine_to_reallocate (``None``: a never-used address, i.e. FREE)."""

    def take_rule(self, now: int, abandoned_ok: bool) -> TakeRule:
        """How to allocate honouring ownership (FREE: primary, BACKUP: secondary)."""

    def offer_time(self, lease: Lease | None, desired: int, now: int) -> int:
        """Lease time for an OFFER (the MCLT clamp, no side effects)."""

    def ack_time(self, lease: Lease, desired: int, now: int, held: int | None = None) -> int:
        """Lease time for an ACK; also sets ``tstp`` (sent to the peer as potential expiry).

        ``held``: the end this client already holds on the address; the ACK never ends
        before it."""

    def release(self, lease: Lease, now: int) -> None:
        """DHCPRELEASE: RELEASED until the peer acks (or straight back if rewindable)."""

    def changed(self, lease: Lease, now: int) -> None:
        """A committed local change of a lease: book-keeping plus a BNDUPD to the peer."""

    def expire(self, lease: Lease, now: int) -> bool | None:
        """Expiry hook for LeaseDB.expire (see pools.ExpiryHook)."""
