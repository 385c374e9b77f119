"""DHCPINFORM as dhcpd's dhcpinform answers it: the client's subnet (from ciaddr, the source
address, the relay, or a link/subnet selection option), an authoritative check, and a DHCPACK
with the scope's options and no address or lease time.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from tandem.core import codes
from tandem.core.client import Client
from tandem.core.context import ServerContext
from tandem.core.expr import parse_suboptions
from tandem.core.types import Outcome


def inform(srv: ServerContext, c: Client, out: Outcome) -> None:
    p = c.packet
    cip = p.ciaddr if int(p.ciaddr) else c.meta.src_ip
    msg = f"DHCPINFORM from {cip} via {c.via}"
    if srv.probe_sources and int(cip) in srv.probe_sources:
        # A failover partner's probe (auto-partner-down): counted, answered like any other.
        srv.probed_by[int(cip)] = srv.probed_by.get(int(cip), 0) + 1
    if not int(cip):
        out.log.append(f"{msg}: ignored (null source address).")
        srv.drop(out, "null source address")
        return
    where = cip if int(p.ciaddr) or not int(p.giaddr) else p.giaddr
    agent_sel = None
    agent = p.options.get(codes.RELAY_AGENT_INFORMATION)
    if agent is not None:
        agent_sel = parse_suboptions(agent).get(codes.AGENT_LINK_SELECTION)
    sel = agent_sel if agent_sel is not None else p.options.get(codes.SUBNET_SELECTION)
    if sel is not None:
        if len(sel) != 4:
            out.log.append(f"{msg}: ignored (invalid subnet selection option).")
            srv.drop(out, "invalid subnet selection option")
            return
        where = IPv4Address(sel)
    subnet = srv.topo.subnet_of(where)
    if subnet is None:
        out.log.append(f"{msg}: unknown subnet for address {where}")
        srv.drop(out, "unknown subnet")
        return
    if not subnet.authoritative:
        out.log.append(f"{msg}: not authoritative for subnet {subnet.network.network_address}")
        srv.drop(out, "not authoritative")
        return
    srv.identify(c)
    pool = None
    if int(p.ciaddr):
        pool, _ = srv.alloc.where(int(p.ciaddr))
    vals = srv.replies.values(c, subnet, pool)
    out.reply = srv.replies.build(
        c,
        msg_type=codes.DHCPACK,
        yiaddr=IPv4Address(0),
        vals=vals,
        subnet=subnet,
        lease_time=None,
    )
    out.log.append(msg)
    out.log.append(f"DHCPACK to {cip} ({c.hwstr}) via {c.via}")
