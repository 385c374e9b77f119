"""One function per received message type (dhcpd's dhcpdiscover, dhcprequest, ...).

Each takes the server, the per-packet ``Client`` and the ``Outcome`` to fill. Log lines use
dhcpd's wording (server/dhcp.c, server/bootp.c) so existing log parsers keep working.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from tandem.core import codes
from tandem.core.allocator import owned_by
from tandem.core.billing import refusal
from tandem.core.client import INFINITE, Candidate, Client
from tandem.core.context import ServerContext
from tandem.core.failover.loadbalance import client_key
from tandem.core.failover.policy import PoolFailover
from tandem.core.inform import inform
from tandem.core.lease import BindingState, Lease
from tandem.core.leasequery import leasequery
from tandem.core.reuse import reuse_lease
from tandem.core.topology import SubnetState
from tandem.core.types import Outcome
from tandem.wire.dhcp import ipv4

if TYPE_CHECKING:
    from tandem.core.scope import Values

_ACTIVE = BindingState.ACTIVE
_FREE = BindingState.FREE


def _hostname(lease: Lease | None) -> str:
    name = lease.client_hostname if lease is not None else None
    if not name:
        return ""
    if len(name) > 64 or not name.isprintable():
        return "(Hostname Unsuitable for Printing) "
    return f"({name}) "


def _packet_hostname(c: Client) -> str | None:
    raw = c.packet.options.get(codes.HOST_NAME)
    if raw is None:
        return None
    return raw.rstrip(b"\x00").decode("utf-8", "replace")


def _requested(c: Client) -> IPv4Address | None:
    raw = c.packet.options.get(codes.REQUESTED_ADDRESS)
    if raw is None or len(raw) != 4:
        return None
    return ipv4(raw)


def _admission(srv: ServerContext, c: Client, vals: Values, msg: str, out: Outcome) -> bool:
    """dhcpd's ack_lease gates: unknown clients, booting, bootp (False = drop)."""
    if srv.replies.plan(vals).admits_all:
        return True  # the common scope: nothing denied
    checks = [("unknown-clients", "unknown client", not c.known)]
    if c.bootp:
        checks.append(("bootp", "bootp disallowed", True))
    checks.append(("booting", "booting disallowed", True))
    for name, text, applies in checks:
        if applies and not vals.flag(name, True):
            if not vals.ignored(name):
                out.log.append(f"{msg}: {text}")
            srv.drop(out, text)
            return False
    return True


def _billed(
    srv: ServerContext, c: Client, cand: Candidate, msg: str, out: Outcome, *, offer: bool
) -> bool:
    """dhcpd's per-class billing (``lease limit``, core.billing); False = refused, dropped."""
    if srv.billing is None or cand.static:
        return True
    ctx = c.ectx(srv.names)
    name = srv.billing.check(srv.db.by_addr, cand.address, ctx, now=c.now, offer=offer)
    if name is None:
        return True
    if out.log and out.log[-1] == msg:
        out.log[-1] = refusal(msg, name)  # dhcpd logs a REQUEST only once it is answered
    else:
        out.log.append(refusal(msg, name))
    srv.drop(out, "lease limit")
    return False


def _commit(srv: ServerContext, c: Client, cand: Candidate, vals: Values, out: Outcome) -> Lease:
    """Bind the candidate to the client (ACK or BOOTREPLY) and record the write."""
    now = c.now
    db = srv.db
    if cand.static:
        lease = Lease(IPv4Address(cand.address), _ACTIVE, starts=now, cltt=now)
        lease.hardware = c.hw
        lease.uid = c.uid
        return lease
    if c.mtype == codes.DHCPREQUEST and srv.replies.plan(vals).one_lease_per_client:
        _release_others(srv, c, cand.address, vals, out)
    lease = db.materialize(cand.address)
    db.drop_hold(cand.address)
    if cand.abandoned or lease.binding_state is BindingState.ABANDONED:
        out.log.append(f"Reclaiming abandoned lease {lease.address}.")
    db.set_owner(lease, c.hw, c.uid)
    lease.binding_state = _ACTIVE
    lease.next_binding_state = _FREE
    lease.starts = now
    lease.cltt = now
    host = _packet_hostname(c)
    if host is not None:
        lease.client_hostname = host
    vci = c.packet.options.get(codes.VENDOR_CLASS_IDENTIFIER)
    if vci:
        lease.vendor_class_identifier = vci.decode("utf-8", "replace")
    if srv.billing is not None:  # written to the lease file (``billing class``)
        lease.billing = srv.billing.billed_to(cand.address)
    out.writes.append(lease)
    return lease


def _release_others(srv: ServerContext, c: Client, keep: int, vals: Values, out: Outcome) -> None:
    """one-lease-per-client: free the client's other active leases (by uid, else hardware)."""
    by_uid, by_hw = srv.db.leases_of(c.uid, c.hw)
    others = list(by_uid)
    if c.uid is None or (
        c.host is not None and c.host.client_id is None and not vals.flag("duplicates", True)
    ):
        others += by_hw
    for lease in others:
        if int(lease.address) != keep and lease.binding_state is _ACTIVE:
            _release(srv, lease, c.now, out)


def _release(srv: ServerContext, lease: Lease, now: int, out: Outcome) -> None:
    fo = srv.failover_of(int(lease.address)) if srv.failover_enabled else None
    if fo is not None:
        fo.release(lease, now)  # RELEASED until the peer agrees (or rewound)
    else:
        lease.binding_state = _FREE
        lease.next_binding_state = None
        lease.ends = now
        lease.tstp = now
    srv.db.requeue(lease)
    if lease not in out.writes:
        out.writes.append(lease)


def operator_release(srv: ServerContext, lease: Lease, now: int, out: Outcome) -> None:
    """The operator ends a binding (``lease4-del``; dhcpd's OMAPI ``state`` = free): the same
    change a DHCPRELEASE makes, so a failover pool's lease goes RELEASED and on to the peer."""
    _release(srv, lease, now, out)


# --- failover gates (dhcpd's FAILOVER_PROTOCOL blocks in dhcp.c / bootp.c) ----------------


def _pool_failover(cand: Candidate | None) -> PoolFailover | None:
    if cand is None or cand.static or cand.pool is None:
        return None
    return cand.pool.failover


def _failover_keeps(cand: Candidate, fo: PoolFailover, now: int) -> bool:
    """dhcpdiscover: a found lease is offered only if ACTIVE (the client's), last ACTIVE,
    or ours to reallocate; anything else belongs to the peer."""
    lease = cand.lease
    if lease is not None and _ACTIVE in (lease.binding_state, lease.rewind_binding_state):
        return True
    return fo.mine_to_reallocate(lease, now)


def _failover_silent(
    srv: ServerContext, c: Client, cand: Candidate, msg: str, out: Outcome
) -> bool:
    """Service-state gate and load balancing for DISCOVER and BOOTP (True = stay silent)."""
    fo = _pool_failover(cand)
    if fo is None:
        return False
    nrr = fo.not_responding()
    if nrr is not None:
        out.log.append(f"{msg}: not responding{nrr}")
        srv.drop(out, "failover: not responding")
        return True
    key = client_key(c.uid, c.hw[1])
    if fo.balance_to_peer(key, c.packet.secs, c.mtype):
        # Left to the peer only if it can serve (dhcpd: "peer_has_leases").
        if c.bootp or (cand.pool is not None and fo.peer_has_leases(cand.pool)):
            out.log.append(f"{msg}: load balance to peer {fo.name}")
            srv.drop(out, "failover: load balance to peer")
            return True
        out.log.append(f"{msg}: cancel load balance to peer {fo.name} - no free leases")
    return False


def _failover_request_gate(
    srv: ServerContext, c: Client, cand: Candidate, cip: IPv4Address, *, msg: str, out: Outcome
) -> bool:
    """dhcprequest's failover checks (True = handled: dropped or NAKed)."""
    fo = _pool_failover(cand)
    if fo is None:
        return False
    nrr = fo.not_responding()
    if nrr is not None:
        out.log[-1] = f"{msg}: not responding{nrr}"
        srv.drop(out, "failover: not responding")
        return True
    lease = cand.lease
    st = lease.binding_state if lease is not None else _FREE
    if st in (_FREE, BindingState.BACKUP) and not fo.mine_to_reallocate(lease, c.now):
        out.log[-1] = f"{msg}: lease owned by peer"
        srv.drop(out, "failover: lease owned by peer")
        return True
    if (
        st in (BindingState.RELEASED, BindingState.EXPIRED)
        and lease is not None
        and lease.rewind_binding_state is not _ACTIVE
        and not fo.mine_to_reallocate(lease, c.now)
    ):
        out.log[-1] = f"{msg}: lease in transition state {st.keyword}"
        srv.drop(out, "failover: lease in transition")
        return True
    if st is BindingState.RESET and not fo.mine_to_reallocate(lease, c.now):
        out.log[-1] = f"{msg}: lease reset by administrator"
        _send_nak(srv, c, cip, cand.subnet, msg="lease reset by administrator", out=out)
        return True
    return False


# --- DHCPDISCOVER --------------------------------------------------------------------------


def discover(srv: ServerContext, c: Client, out: Outcome) -> None:
    share, err = srv.topo.locate(c.packet, srv.replies.if_addrs(c))
    if share is None:
        out.log.append(f"DHCPDISCOVER from {c.hwstr} via {c.via}: {err}")
        srv.drop(out, err or "unknown network segment")
        return
    c.share = share
    srv.identify(c)
    pings = srv.pings
    if pings is not None and pings.busy(srv.db, c):
        srv.drop(out, "ping pending")  # dhcpd's ack_lease: "already acking this lease"
        return
    cand = srv.alloc.find(c, share, _requested(c)).candidate
    old = cand.lease if cand is not None else None
    msg = f"DHCPDISCOVER from {c.hwstr} {_hostname(old)}via {c.via}"
    fo = _pool_failover(cand)
    if cand is not None and fo is not None and not _failover_keeps(cand, fo, c.now):
        cand = None
    allocated = False
    if cand is None:
        cand = srv.alloc.allocate(c, share)
        allocated = cand is not None
    if cand is None:
        if srv.alloc.gated is not None:
            out.log.append(f"{msg}: new-lease limit reached on network {share.name} (reserve)")
            srv.drop(out, "new-lease limit")
            return
        if any(p.failover is not None and p.failover.peer_has_leases(p) for p in share.pools):
            out.log.append(f"{msg}: peer holds all free leases")
        else:
            out.log.append(f"{msg}: network {share.name}: no free leases")
        srv.drop(out, "no free leases")
        return
    vals = _pass_gates(srv, c, cand, msg, out, allocated=allocated)
    if vals is None:
        return
    lease_time = srv.replies.lease_time(c, vals)
    fo = _pool_failover(cand)
    left = reuse_lease(srv, c, cand, vals, out, msg=msg, offer=True)  # dhcp-cache-threshold
    if left is not None:
        lease_time = left
    elif fo is not None:
        lease_time = fo.offer_time(cand.lease, lease_time, c.now)
    ping_ms = pings.timeout_ms(srv.db, c, cand, vals) if pings is not None else None
    if not cand.static:
        lease = cand.lease
        if lease is None or not (lease.is_active(c.now) and owned_by(lease, c)):
            srv.db.hold(cand.address, c.hw, c.uid, c.now)
    addr = ipv4(cand.address)
    reply = srv.replies.build(
        c,
        msg_type=codes.DHCPOFFER,
        yiaddr=addr,
        vals=vals,
        subnet=cand.subnet,
        lease_time=lease_time,
    )
    name = _packet_hostname(c)
    shown = f"({name}) " if name else _hostname(cand.lease)
    out.log.append(msg)
    line = f"DHCPOFFER on {addr} to {c.hwstr} {shown}via {c.via}"
    if pings is not None and ping_ms is not None:
        pings.start(out, c, reply, line, ping_ms)  # the OFFER waits for the ping (core.ping)
        return
    out.reply = reply
    out.log.append(line)


# --- DHCPREQUEST ---------------------------------------------------------------------------


def request(srv: ServerContext, c: Client, out: Outcome) -> None:
    p = c.packet
    req = _requested(c)
    cip = req if req is not None else p.ciaddr
    sid_raw = p.options.get(codes.SERVER_IDENTIFIER)
    sid = ipv4(sid_raw) if sid_raw is not None and len(sid_raw) == 4 else None
    share, _ = srv.topo.locate(p, srv.replies.if_addrs(c))
    c.share = share
    srv.identify(c)
    subnet = srv.topo.subnet_of(cip) if int(cip) else None
    cand, ours = None, False
    message = "requested address not available"
    if subnet is not None:
        cand, ours, message = srv.alloc.find(c, subnet.share, cip)
    smbuf = f" ({sid})" if sid is not None else ""
    msg = (
        f"DHCPREQUEST for {cip}{smbuf} from {c.hwstr} "
        f"{_hostname(cand.lease if cand else None)}via {c.via}"
    )
    out.log.append(msg)
    if cand is not None and _failover_request_gate(srv, c, cand, cip, msg=msg, out=out):
        return
    if sid is not None and not srv.replies.is_our_server_id(c, sid):
        # SELECTING state, and the client chose another server's offer: forget ours.
        srv.db.release_hold_of(c.uid, c.hw)
        out.log[-1] = f"{msg}: not our server id"
        srv.drop(out, "not our server id")
        return
    if (
        share is None
        or (int(p.ciaddr) and int(p.giaddr))
        or (req is not None and not int(p.ciaddr))
    ):
        if share is None:
            if subnet is not None and subnet.authoritative:
                out.log[-1] = f"{msg}: wrong network."
                _send_nak(srv, c, cip, subnet, msg=message, out=out)
                return
            why = "not authoritative" if subnet is not None else "unknown subnet"
            out.log[-1] = f"{msg}: ignored ({why})."
            srv.drop(out, "ignored")
            return
        if subnet is None or subnet.share is not share:
            if any(s.authoritative for s in share.subnets):
                out.log[-1] = f"{msg}: wrong network."
                _send_nak(srv, c, cip, share.subnets[0], msg=message, out=out)
                return
            out.log[-1] = f"{msg}: ignored (not authoritative)."
            srv.drop(out, "ignored")
            return
    if cand is None:
        if ours:
            out.log[-1] = f"{msg}: lease {cip} unavailable."
            _send_nak(srv, c, cip, subnet, msg=message, out=out)
        else:
            out.log[-1] = f"{msg}: unknown lease {cip}."
            srv.drop(out, "unknown lease")
        return
    _ack(srv, c, cand, msg, out)


def _ack(srv: ServerContext, c: Client, cand: Candidate, msg: str, out: Outcome) -> None:
    if srv.pings is not None and cand.address in srv.pings.pending:
        out.log.remove(msg)  # ignored without a word while its ping waits (core.ping)
        srv.drop(out, "ping pending")
        return
    vals = srv.replies.values(c, cand.subnet, cand.pool)
    if not _admission(srv, c, vals, msg, out) or not _billed(srv, c, cand, msg, out, offer=False):
        return
    lease_time = srv.replies.lease_time(c, vals)
    left = reuse_lease(srv, c, cand, vals, out, msg=msg, offer=False)  # dhcp-cache-threshold
    if left is not None and cand.lease is not None:
        lease, lease_time = cand.lease, left  # unaltered: no write, no BNDUPD
    else:
        held = _held_until(cand.lease, c)
        lease = _commit(srv, c, cand, vals, out)
        lease.bootp = False
        fo = _pool_failover(cand)
        if fo is not None:
            lease_time = fo.ack_time(lease, lease_time, c.now, held)
        elif held is not None and lease_time != INFINITE and c.now + lease_time < held:
            lease_time = held - c.now
        lease.ends = None if lease_time == INFINITE else c.now + lease_time
        if not cand.static:
            srv.db.schedule(lease)
    addr = ipv4(cand.address)
    out.reply = srv.replies.build(
        c,
        msg_type=codes.DHCPACK,
        yiaddr=addr,
        vals=vals,
        subnet=cand.subnet,
        lease_time=lease_time,
    )
    out.log.append(f"DHCPACK on {addr} to {c.hwstr} {_hostname(lease)}via {c.via}")


def _held_until(lease: Lease | None, c: Client) -> int | None:
    """The end a renewing client already holds on the address (its own ACTIVE lease), else
    None. A REQUEST with a server identifier (SELECTING) holds nothing yet.

    An ACK never ends before it: if the ACK is lost, the client still holds the address
    until then, so the server must not free it earlier. A shorter grant happened with an ISC
    dhcpd primary re-sending a stale potential expiration in its UPDREQALL answer (the
    sequence of simulator seed 71489, which dhcpd 4.4 still follows): the MCLT clamp then cut
    a renewal below the client's end."""
    if lease is None or lease.binding_state is not _ACTIVE or lease.ends is None:
        return None
    if codes.SERVER_IDENTIFIER in c.packet.options or lease.ends <= c.now or not owned_by(lease, c):
        return None
    return lease.ends


def _send_nak(
    srv: ServerContext,
    c: Client,
    cip: IPv4Address,
    sub: SubnetState | None,
    *,
    msg: str,
    out: Outcome,
) -> None:
    out.reply = srv.replies.nak(c, sub, msg)
    out.log.append(f"DHCPNAK on {cip} to {c.hwstr} via {c.via}")


# --- DHCPRELEASE / DHCPDECLINE -----------------------------------------------------------


def release(srv: ServerContext, c: Client, out: Outcome) -> None:
    p = c.packet
    if codes.REQUESTED_ADDRESS in p.options:
        out.log.append(f"DHCPRELEASE from {c.hwstr} specified requested-address.")
    lease: Lease | None = None
    ci = int(p.ciaddr)
    if c.uid is not None:
        lease = next((x for x in srv.db.leases_of(c.uid, c.hw)[0] if int(x.address) == ci), None)
    if lease is None:
        lease = srv.db.by_addr.get(ci)
    if lease is not None and lease.hardware != c.hw:
        lease = None
    msg = (
        f"DHCPRELEASE of {p.ciaddr} from {c.hwstr} {_hostname(lease)}via {c.via} "
        f"({'' if lease else 'not '}found)"
    )
    if (
        lease is not None
        and lease.binding_state is _ACTIVE
        and (lease.ends is None or lease.ends > c.now)
    ):
        _release(srv, lease, c.now, out)
    else:
        srv.drop(out, "release of unknown lease")
    out.log.append(msg)


def decline(srv: ServerContext, c: Client, out: Outcome) -> None:
    cip = _requested(c)
    if cip is None:
        srv.drop(out, "decline without requested address")
        return
    a = int(cip)
    lease = srv.db.by_addr.get(a)
    pool, subnet = srv.alloc.where(a)
    if lease is None and pool is not None and a not in srv.db.excluded:
        lease = srv.db.materialize(a)  # a fresh range address: dhcpd has a lease for it
    msg = f"DHCPDECLINE of {cip} from {c.hwstr} {_hostname(lease)}via {c.via}"
    srv.identify(c)
    vals = srv.replies.values(c, subnet, pool) if subnet is not None else None
    if vals is not None and not vals.flag("declines", True):
        if not vals.ignored("declines"):
            out.log.append(f"{msg}: ignored")
        srv.drop(out, "declines disallowed")
        return
    if lease is None:
        out.log.append(f"{msg}: not found")
        srv.drop(out, "decline of unknown lease")
        return
    if lease.is_active(c.now) and not owned_by(lease, c):
        # Tandem refuses to let one client abandon another client's binding (dhcpd would).
        out.log.append(f"{msg}: ignored (lease held by another client)")
        srv.drop(out, "decline of another client's lease")
        return
    srv.abandon(lease, c.now, "declined.", out)
    out.log.append(f"{msg}: abandoned")


# --- BOOTP ----------------------------------------------------------------------------------


def _pass_gates(
    srv: ServerContext, c: Client, cand: Candidate, msg: str, out: Outcome, *, allocated: bool
) -> Values | None:
    """Failover's and dhcpd's admission gates for an address we would hand out; on refusal a
    freshly allocated address goes back to its pool and None is returned."""
    if not _failover_silent(srv, c, cand, msg, out):
        vals = srv.replies.values(c, cand.subnet, cand.pool)
        offer = c.mtype == codes.DHCPDISCOVER
        if _admission(srv, c, vals, msg, out) and _billed(srv, c, cand, msg, out, offer=offer):
            return vals
    if allocated:
        srv.db.give_back(cand.address)
    return None


def bootp(srv: ServerContext, c: Client, out: Outcome) -> None:
    msg = f"BOOTREQUEST from {c.hwstr} via {c.via}"
    share, _ = srv.topo.locate(c.packet, srv.replies.if_addrs(c))
    if share is None:
        out.log.append(f"{msg}: network unknown")
        srv.drop(out, "network unknown")
        return
    c.share = share
    srv.identify(c)
    cip = c.packet.ciaddr if int(c.packet.ciaddr) else None
    cand = srv.alloc.find(c, share, cip).candidate
    # A BOOTP client may only keep a dynamic-bootp lease (an infinite one).
    if (
        cand is not None
        and cand.lease is not None
        and not cand.static
        and not cand.lease.bootp
        and cand.lease.binding_state is _ACTIVE
    ):
        cand = None
    allocated = False
    if cand is None:
        cand = srv.alloc.allocate(c, share)
        allocated = cand is not None
    if cand is None:
        out.log.append(f"{msg}: BOOTP from dynamic client and no dynamic leases")
        srv.drop(out, "no dynamic bootp leases")
        return
    vals = _pass_gates(srv, c, cand, msg, out, allocated=allocated)
    if vals is None:
        return
    lease = _commit(srv, c, cand, vals, out)
    length = vals.integer("dynamic-bootp-lease-length")
    cutoff = vals.integer("dynamic-bootp-lease-cutoff")
    ends = None
    if length is not None:
        ends = c.now + length
    if cutoff is not None:
        ends = cutoff
    lease.ends = ends
    lease.bootp = True
    if not cand.static:
        srv.db.schedule(lease)
    addr = ipv4(cand.address)
    out.reply = srv.replies.build(
        c, msg_type=None, yiaddr=addr, vals=vals, subnet=cand.subnet, lease_time=None
    )
    out.log.append(msg)
    name = c.host.name if c.host is not None else "unknown"
    out.log.append(f"BOOTREPLY for {addr} to {name} ({c.hwstr}) via {c.via}")


def _ignore(srv: ServerContext, c: Client, out: Outcome) -> None:
    srv.drop(out, "server message type")


HANDLERS: dict[int | None, Callable[[ServerContext, Client, Outcome], None]] = {
    None: bootp,
    codes.DHCPDISCOVER: discover,
    codes.DHCPREQUEST: request,
    codes.DHCPDECLINE: decline,
    codes.DHCPRELEASE: release,
    codes.DHCPINFORM: inform,
    codes.DHCPLEASEQUERY: leasequery,
    codes.DHCPOFFER: _ignore,
    codes.DHCPACK: _ignore,
    codes.DHCPNAK: _ignore,
}
