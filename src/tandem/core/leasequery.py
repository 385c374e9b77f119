"""DHCPLEASEQUERY (RFC 4388) as ISC dhcpd 4.4.3 answers it (server/dhcpleasequery.c), sans I/O.

What dhcpd does, and so what this module does:

- A query without ``giaddr`` cannot be answered: dropped ("missing giaddr").
- The permit is ``allow leasequery;`` (default deny) evaluated in the scope of the subnet that
  contains ``giaddr`` (that subnet, its shared network and the global scope; pools and hosts do
  not count), else in the global scope, plus the classes the query itself falls into.
- The query is by IP address when ``ciaddr`` is set, else by client identifier when option 61 is
  present, else by hardware address (htype/hlen/chaddr). Nothing else is refused: a query that
  carries several of these is answered for the first one in that order.
- By client identifier or hardware address, the newest lease of that client is answered for
  (the ACTIVE one with the latest client-last-transaction-time, else the one that ended last);
  its address goes into ``ciaddr`` and the client's other ACTIVE addresses into option 92
  (at most 40, as dhcpd).
- DHCPLEASEUNKNOWN (12) when no lease is found (an address outside every range, a fixed
  address, a client never seen); DHCPLEASEUNASSIGNED (11) for a lease in any other state than
  ACTIVE (a fresh range address is a FREE lease in dhcpd); DHCPLEASEACTIVE (13) for an ACTIVE one.
- DHCPLEASEACTIVE carries only: message type, server identifier (the receiving interface's
  first address), lease time remaining (51), T1/T2 remaining computed from the lease's start
  at 1/2 and 7/8 of its length (58/59, when still ahead), client identifier (61), the client's
  vendor class identifier (60), client-last-transaction-time (91, seconds since the client's
  last transaction) and associated-ip (92), with chaddr/htype/hlen set from the lease. The
  parameter request list is not looked at (dhcpd looks it up in its own empty reply options).
- DHCPLEASEUNASSIGNED and DHCPLEASEUNKNOWN carry the message type, the server identifier
  (``server-identifier`` in the relay's scope, else the interface's first address) and every
  dhcp-space option configured in the relay's scope (dhcpd sends its option state as is).
- The reply is the query turned into a BOOTREPLY (xid, flags, yiaddr, siaddr, sname and file
  as received), sent to ``giaddr`` port 67 (68 when ``giaddr`` is 127.0.0.1, as dhcpd).

Not done: dhcpd also returns the relay agent information (option 82) it stashed in memory from
the client's last packet on an ACTIVE lease; Tandem's leases do not keep option 82.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from tandem.core import codes
from tandem.core.client import Client
from tandem.core.context import ServerContext
from tandem.core.lease import BindingState, Lease
from tandem.core.replies import chaddr16
from tandem.core.reply import CLIENT_PORT, SERVER_PORT
from tandem.core.scope import Values, execute
from tandem.core.types import Outcome, Reply
from tandem.wire.dhcp import Packet

#: dhcpd's MAX_TIME: the end of a lease that never ends.
MAX_TIME = 0x7FFFFFFF
#: dhcpd's assoc_ips[40]: at most this many addresses in option 92.
MAX_ASSOCIATED = 40
CLIENT_LAST_TRANSACTION_TIME = 91
LOOPBACK = IPv4Address("127.0.0.1")

#: cons_options' fixed order (options present only), then the rest by code.
_FIRST = (53, 54, 51, 58, 59, 56, 50, 92, 1, 3, 6, 12, 81)


def _print_hex_1(data: bytes) -> str:
    """dhcpd's print_hex_1(len, data, 60): quoted text if printable, else colon hex (or '')."""
    limit = 60
    if all(0x20 <= b < 0x7F for b in data[: limit - 3]):
        return '"' + data[: limit - 3].decode("ascii") + '"'
    if not data or len(data) * 3 > limit:
        return ""
    return data.hex(":")


def _newest(leases: list[Lease]) -> Lease | None:
    """dhcpd's get_newest_lease over a client's chain (ACTIVE ones first, as hw_hash_add keeps
    them): the ACTIVE lease with the latest cltt, else the one that ended last."""
    active = [x for x in leases if x.binding_state is BindingState.ACTIVE]
    if active:
        return max(active, key=lambda x: x.cltt or 0)
    if not leases:
        return None
    return max(leases, key=lambda x: MAX_TIME if x.ends is None else x.ends)


def _relay_values(srv: ServerContext, c: Client) -> Values:
    """The relay's scope: giaddr's subnet (else the global scope) and the query's classes."""
    if srv.classifier.classes:
        c.classes = srv.classifier.classify(c.ectx(srv.names))
    subnet = srv.topo.subnet_of(c.packet.giaddr)
    if subnet is not None:
        return srv.replies.values(c, subnet, None)
    extra = [b for _, blocks in reversed(c.classes) for b in blocks]
    return execute([*srv.topo.global_block, *extra], Values(), c.ectx(srv.names))


def _u32(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "big")


def _active_options(lease: Lease, now: int, associated: list[Lease]) -> dict[int, bytes]:
    """The options of a DHCPLEASEACTIVE (besides message type and server identifier)."""
    opts: dict[int, bytes] = {}
    starts = now if lease.starts is None else lease.starts
    ends = MAX_TIME if lease.ends is None else lease.ends
    length = ends - starts
    t1 = starts + length // 2
    t2 = starts + length // 2 + length // 4 + length // 8
    if ends > now:
        opts[codes.LEASE_TIME] = _u32(ends - now)
    if t1 > now:
        opts[codes.RENEWAL_TIME] = _u32(t1 - now)
    if t2 > now:
        opts[codes.REBINDING_TIME] = _u32(t2 - now)
    if associated:
        shown = associated[:MAX_ASSOCIATED]
        opts[codes.ASSOCIATED_IP] = b"".join(x.address.packed for x in shown)
    if lease.uid:
        opts[codes.CLIENT_IDENTIFIER] = lease.uid
    if lease.vendor_class_identifier:
        opts[codes.VENDOR_CLASS_IDENTIFIER] = lease.vendor_class_identifier.encode()
    if lease.cltt is not None:
        opts[CLIENT_LAST_TRANSACTION_TIME] = _u32(max(now - lease.cltt, 0))
    return opts


def _ordered(opts: dict[int, bytes]) -> dict[int, bytes]:
    head = {k: opts[k] for k in _FIRST if k in opts}
    head.update(sorted((k, v) for k, v in opts.items() if k not in head))
    return head


def leasequery(srv: ServerContext, c: Client, out: Outcome) -> None:
    """Answer a DHCPLEASEQUERY as dhcpd's dhcpleasequery does (see the module docstring)."""
    p = c.packet
    now = c.now
    msg = f"DHCPLEASEQUERY from {p.giaddr}"
    if not int(p.giaddr):
        out.log.append(f"{msg}: missing giaddr, ciaddr is {p.ciaddr}, no reply sent")
        srv.drop(out, "leasequery: missing giaddr")
        return
    vals = _relay_values(srv, c)
    if not vals.flag("leasequery", False):
        out.log.append(f"{msg}: LEASEQUERY not allowed, query ignored")
        srv.drop(out, "leasequery not allowed")
        return
    db = srv.db
    ciaddr = p.ciaddr
    lease: Lease | None = None
    associated: list[Lease] = []
    by_client = not int(ciaddr)
    if not by_client:
        what = f"IP {ciaddr}"
        a = int(ciaddr)
        lease = db.by_addr.get(a)
        if lease is None and db.locate(a) is not None and a not in db.excluded:
            lease = Lease(ciaddr)  # a fresh range address: a FREE lease in dhcpd
    else:
        uid = p.options.get(codes.CLIENT_IDENTIFIER)
        if uid is not None:
            what = f"client-id {_print_hex_1(uid)}"
            chain = db.leases_of(uid, c.hw)[0]
        else:
            if p.hlen > 16:
                out.log.append(f"{msg}: hardware length too long, no reply sent")
                srv.drop(out, "leasequery: hardware length too long")
                return
            what = f"MAC address {c.hwstr}"
            chain = db.leases_of(None, c.hw)[1]
        lease = _newest(chain)
        associated = [x for x in chain if x.binding_state is BindingState.ACTIVE and x is not lease]
        # dhcpd's chain keeps the leases that end last first.
        associated.sort(key=lambda x: -(MAX_TIME if x.ends is None else x.ends))
        if lease is not None:
            ciaddr = lease.address
        if len(associated) > MAX_ASSOCIATED:
            out.log.append(
                f"{len(associated)} IP addresses associated with {what}, "
                f"only {MAX_ASSOCIATED} sent in reply."
            )
    msg = f"{msg} for {what}"[:255]
    htype, hlen, chaddr = p.htype, p.hlen, p.chaddr
    if lease is None:
        mtype = codes.DHCPLEASEUNKNOWN
    elif lease.is_active(now):
        mtype = codes.DHCPLEASEACTIVE
    else:
        mtype = codes.DHCPLEASEUNASSIGNED
    if lease is not None and mtype == codes.DHCPLEASEACTIVE:
        opts = _active_options(lease, now, associated)
        sid = srv.replies.server_id(c, None, None)
        if lease.hardware is not None:
            htype, chaddr = lease.hardware
            hlen = len(chaddr)
    else:
        opts = {
            code: data
            for (space, code), data in vals.options.items()
            if space == "dhcp" and code != codes.RELAY_AGENT_INFORMATION
        }
        sid = srv.replies.server_id(c, vals, None)
    opts[codes.MESSAGE_TYPE] = bytes([mtype])
    opts[codes.SERVER_IDENTIFIER] = sid.packed
    reply = Packet(
        2,
        htype,
        hlen,
        p.hops,
        p.xid,
        p.secs,
        p.flags,
        ciaddr,
        p.yiaddr,
        p.siaddr,
        p.giaddr,
        chaddr16(chaddr),
        p.sname,
        p.file,
        _ordered(opts),
    )
    port = CLIENT_PORT if p.giaddr == LOOPBACK else SERVER_PORT
    out.reply = Reply(reply, p.giaddr, port, None, c.meta.interface, sid)
    out.log.append(msg)
    n = len(associated)
    out.log.append(f"{codes.MESSAGE_NAMES[mtype]} to {p.giaddr} for {what} ({n} associated IPs)")
