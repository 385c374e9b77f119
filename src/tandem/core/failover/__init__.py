"""The failover engine: ISC's failover protocol as dhcpd 4.4 speaks it, sans I/O.

``engine``       a relationship's server state and updates (``FailoverEngine``, ``FailoverSetup``)
``link``         the connection to the peer: framing, CONNECT/CONNECTACK, link timers, peer clock
``states``       the server-state machine as one table (rendered into docs/failover-states.md)
``leases``       lease ownership and binding updates (what the DHCP core consults)
``balance``      FREE/BACKUP counts per pool and ISC's pool balancing
``rules``        ISC's pure rules for binding updates, ownership and the MCLT
``queue``        the BNDUPD queue, O(1) at both ends
``loadbalance``  the RFC 3074 hash and ISC's HBA meaning
``policy``       the Protocol through which the DHCP core sees a pool's failover

The package imports nothing itself, so the DHCP core can use ``policy`` and ``loadbalance``
without loading the engine.
"""
