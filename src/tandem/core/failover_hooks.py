"""What the DHCP core asks of failover for a pool with ``failover peer``.

A Protocol, so ``pools``/``server``/``flows`` need not import the engine (which imports
them). ``tandem.core.failover_leases.FailoverLeases`` implements it, one per relationship.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from tandem.core.lease import Lease

if TYPE_CHECKING:
    from tandem.core.pools import FreeList, LeaseDB, PoolState


class PoolFailover(Protocol):
    name: str

    def not_responding(self) -> str | None:
        """None when we may answer clients; else why not (dhcpd's ``nrr`` suffix)."""

    def balance_to_peer(self, key: bytes, secs: int, mtype: int | None) -> bool:
        """NORMAL only: True when load balancing leaves this DISCOVER/BOOTP to the peer."""

    def peer_has_leases(self, pool: PoolState) -> bool:
        """The peer still has free-state leases in ``pool``."""

    def mine_to_reallocate(self, lease: Lease | None, now: int) -> bool:
        """dhcpd's lease_mine_to_reallocate (``None``: a never-used address, i.e. FREE)."""

    def take(
        self, db: LeaseDB, fl: FreeList, now: int, abandoned_ok: bool
    ) -> tuple[int, bool] | None:
        """Allocate from ``fl`` honouring ownership (FREE: primary, BACKUP: secondary)."""

    def offer_time(self, lease: Lease | None, desired: int, now: int) -> int:
        """Lease time for an OFFER (the MCLT clamp, no side effects)."""

    def ack_time(self, lease: Lease, desired: int, now: int) -> int:
        """Lease time for an ACK; also sets ``tstp`` (sent to the peer as potential expiry)."""

    def release(self, lease: Lease, now: int) -> None:
        """DHCPRELEASE: RELEASED until the peer acks (or straight back if rewindable)."""

    def changed(self, lease: Lease, now: int) -> None:
        """A committed local change of a lease: book-keeping plus a BNDUPD to the peer."""

    def expire(self, lease: Lease, now: int) -> bool | None:
        """Expiry hook for LeaseDB.expire (see pools.ExpiryHook)."""
