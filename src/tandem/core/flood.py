"""Keep a flood of new clients from taking a pool's last addresses at line rate.

A DHCP server hands an address to anyone who asks; a flood of DISCOVERs from random MACs (a
misbehaving device, a test tool, an attacker on the segment) can empty a pool in seconds, and
then the real clients that reboot get nothing. dhcpd has no defence against this.

Tandem keeps a *reserve*: while more than ``reserve_percent`` of a pool's addresses are free,
new clients are served as fast as they come. Once a pool is down to its reserve, new bindings
from that pool are let through a token bucket: at most ``rate`` per second, with bursts of at
most ``burst``. Clients that already hold a lease (renewals, reboots, a returning client's own
address) never go through the gate; only allocating a fresh address does. So a flood can take
at most ``burst + rate * t`` of the reserve in ``t`` seconds, which leaves an administrator time
to see the "new-lease limit" log lines and act.

Set it on the command line: ``--reserve PERCENT`` (default 5; 0 turns the gate off) and
``--reserve-rate N`` (new bindings per second per pool once in the reserve, default 10).
The free count is read from the pool's free queues; it may briefly overstate what is free
right after an address was taken out of order, so the gate can engage a few addresses late,
never early.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class NewLeaseLimit:
    reserve_percent: float = 5.0
    rate: float = 10.0
    burst: int = 10

    @property
    def enabled(self) -> bool:
        return self.reserve_percent > 0


@dataclass(slots=True)
class NewLeaseGate:
    """Token buckets, one per pool, consulted only once the pool is in its reserve."""

    limit: NewLeaseLimit
    _buckets: dict[int, tuple[float, int]] = field(default_factory=dict)

    def allow(self, pool_key: int, size: int, free: int, now: int) -> bool:
        """May a new client get one more address from this pool now?"""
        limit = self.limit
        if not limit.enabled or size <= 0 or free * 100 > size * limit.reserve_percent:
            return True
        tokens, last = self._buckets.get(pool_key, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + max(0, now - last) * limit.rate)
        if tokens < 1.0:
            self._buckets[pool_key] = (tokens, now)
            return False
        self._buckets[pool_key] = (tokens - 1.0, now)
        return True
