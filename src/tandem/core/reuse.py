"""dhcpd's lease reuse (``dhcp-cache-threshold``, server/dhcp.c reuse_lease), sans I/O.

A client that asks again (a DISCOVER or a REQUEST) for the ACTIVE lease it already holds, while
that lease is younger than ``dhcp-cache-threshold`` percent of its length (25 by default; 0
turns reuse off; a value of 100 or more is ignored), gets the lease as it stands: the reply's
lease time is what is left of it, and nothing is written, replicated or billed again. dhcpd
logs ``reuse_lease: lease age N (secs) under T% threshold, reply with unaltered, existing lease
for A`` (at debug level) before the DHCPDISCOVER/DHCPREQUEST line.

The rules, from ack_lease and reuse_lease:

- only a dynamic lease (not a fixed address) that is ACTIVE, of the same client: the same
  client identifier (or both none) and the same hardware address (the host declaration always
  compares equal: ack_lease copies it from the lease);
- not when the client sends a host name (option 12) other than the lease's (ack_lease sets
  ``cannot_reuse``), nor when the lease's ``lease limit`` billing changes;
- not for the REQUEST that follows a DISCOVER which could not reuse the lease: dhcpd updated
  the lease in memory for that OFFER and remembers ``cannot_reuse`` until the next answer;
- dhcpd also refuses when a DDNS update is under way (Tandem does none) or when the client asks
  for an infinite lease that becomes reserved (Tandem has no reserved leases).
"""

from __future__ import annotations

from tandem.core import codes
from tandem.core.client import INFINITE, Candidate, Client
from tandem.core.context import ServerContext
from tandem.core.lease import BindingState, Lease
from tandem.core.scope import Values
from tandem.core.types import Outcome

DEFAULT_CACHE_THRESHOLD = 25  # dhcpd DEFAULT_CACHE_THRESHOLD (percent)
_INT_MAX = 0x7FFFFFFF
_MAX_TIME = 0x7FFFFFFF  # dhcpd's MAX_TIME: the end of an infinite lease


def reuse_lease(
    srv: ServerContext,
    c: Client,
    cand: Candidate,
    vals: Values,
    out: Outcome,
    *,
    msg: str,
    offer: bool,
) -> int | None:
    """reuse_lease for a lease about to be offered (``offer``) or acked: the lease time left
    when the existing lease is to be sent unaltered (dhcpd's log line is added before ``msg``),
    else None. Keeps dhcpd's ``cannot_reuse`` flag in ``LeaseDB.cannot_reuse``."""
    lease = cand.lease
    if cand.static or lease is None:
        return None
    a = cand.address
    billing = srv.billing is not None and lease.billing != srv.billing.billed_to(a)
    blocked = billing or hostname_changed(c, lease) or a in srv.db.cannot_reuse
    line = None if blocked else _reusable(c, lease, vals)
    if line is None:
        if offer:
            srv.db.cannot_reuse.add(a)  # the OFFER would have changed dhcpd's lease
        else:
            srv.db.cannot_reuse.discard(a)
        return None
    srv.db.cannot_reuse.discard(a)
    log = out.log
    log.insert(len(log) - 1 if log and log[-1] == msg else len(log), line)
    return INFINITE if lease.ends is None else lease.ends - c.now


def hostname_changed(c: Client, lease: Lease) -> bool:
    """ack_lease's test: the client sent a host name that is not the lease's, byte for byte
    (a NUL-terminated name never equals the stored one, as in dhcpd)."""
    raw = c.packet.options.get(codes.HOST_NAME)
    if raw is None:
        return False
    old = lease.client_hostname
    return old is None or b"\x00" in raw or raw.decode("utf-8", "replace") != old


def _reusable(c: Client, lease: Lease, vals: Values) -> str | None:
    if lease.binding_state is not BindingState.ACTIVE or lease.starts is None:
        return None
    if lease.uid != c.uid or lease.hardware != c.hw:
        return None
    raw = vals.integer("dhcp-cache-threshold")
    thresh = raw if raw is not None and 0 <= raw < 100 else DEFAULT_CACHE_THRESHOLD
    if thresh <= 0:
        return None
    ends = _MAX_TIME if lease.ends is None else lease.ends
    length = ends - lease.starts
    limit = length * thresh // 100 if length <= _INT_MAX // thresh else length // 100 * thresh
    age = c.now - lease.starts
    if age > limit:
        return None
    return (
        f"reuse_lease: lease age {age} (secs) under {thresh}% threshold, reply with unaltered, "
        f"existing lease for {lease.address}"
    )
