"""A running Tandem under hostile packets (reference/ecosystem.md section 6) over real UDP.

The packets come from a lab host's port 68, broadcast and unicast, as a client's would. Tandem
must stay up, answer the two that are valid (option 57 below 576 is clamped, an FQDN option it
does not decode is ignored), take the BOOTP path for a cookie-less BOOTP request, drop the rest
and say so: one "Dropped malformed DHCP packet" line per reason per second, carrying the count.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tandem.lab.clients import Dhclient
from tandem.lab.hostile import Hostile, hostile_packets, send_udp
from tandem.lab.netns import Lab
from tandem.lab.scenarios import SERVER_ADDR, ip_in_range, seed_conf
from tandem.lab.servers import Server, run_tandem, tandem_command
from tandem.wire.dhcp import decode

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(90),
    pytest.mark.usefixtures("lab_prerequisites"),
]

EVIL_ADDR = "192.0.2.50"
_DROP_LINE = re.compile(
    r"^Dropped malformed DHCP packet from (\S+) via (\S+): (\S+) \((\d+) dropped so far\)$",
    re.MULTILINE,
)


def _drop_lines(server: Server) -> list[tuple[str, str, str, int]]:
    return [(m[1], m[2], m[3], int(m[4])) for m in _DROP_LINE.finditer(server.log())]


def _xid(h: Hostile) -> int:
    return int.from_bytes(h.payload[4:8], "big") if len(h.payload) >= 8 else -1


def test_hostile_packets_are_dropped_counted_and_logged(lab: Lab) -> None:
    srv = lab.add_host("srv", SERVER_ADDR)
    server = run_tandem(srv, seed_conf(ping_check=False))
    evil = lab.add_host("evil", f"{EVIL_ADDR}/24")
    packets = {h.name: h for h in hostile_packets()}
    dropped = [h for h in packets.values() if h.drop_reason is not None]
    # Each malformed pattern has its own reason, so one line each proves each was counted.
    assert len({h.drop_reason for h in dropped}) == len(dropped) >= 6

    replies = send_udp(evil, [h.payload for h in packets.values()], gap=0.05, listen=1.5)
    assert server.proc.running(), server.log()[-3000:]

    # 1. Every malformed packet: one line, from the sender, count 1.
    lines = _drop_lines(server)
    for h in dropped:
        mine = [ln for ln in lines if ln[2] == h.drop_reason]
        assert mine == [(EVIL_ADDR, "eth0", h.drop_reason, 1)], (h.name, lines)
    assert len(lines) == len(dropped), lines

    # 2. Replies: exactly the valid packets were answered, each with an address in the pool:
    # two DHCPOFFERs, and a BOOTREPLY (the seed's explicit pool has no permit list, so dhcpd
    # too serves dynamic BOOTP clients from it).
    by_xid = {}
    for src, data in replies:
        p = decode(data)
        assert src == "192.0.2.1" and p.op == 2, (src, p)
        by_xid[p.xid] = (p, data)
    answered = {h.name for h in packets.values() if _xid(h) in by_xid}
    assert answered == {
        "max-message-size-below-576",
        "fqdn-label-too-long",
        "bootp-without-cookie",
    }, answered
    for name in answered - {"bootp-without-cookie"}:
        p, data = by_xid[_xid(packets[name])]
        assert p.message_type == 2 and ip_in_range(str(p.yiaddr)), (name, p)
        assert p.hwaddr.hex(":") == packets[name].mac, (name, p)
        # Clamped to 576, not obeyed: 576 - 28 octets of IP+UDP is the largest legal reply.
        assert 300 <= len(data) <= 548, (name, len(data))
        assert re.search(
            rf"^DHCPOFFER on {re.escape(str(p.yiaddr))} to {packets[name].mac} via eth0",
            server.log(),
            re.MULTILINE,
        ), server.log()[-2000:]

    # 3. A BOOTP request without the magic cookie is a valid BOOTP packet: the BOOTP path,
    # answered with a BOOTREPLY (no DHCP message type) for a pool address.
    bootp = packets["bootp-without-cookie"]
    assert re.search(rf"^BOOTREQUEST from {bootp.mac} via eth0", server.log(), re.MULTILINE)
    reply, _ = by_xid[_xid(bootp)]
    assert reply.message_type is None and ip_in_range(str(reply.yiaddr)), reply
    assert re.search(rf"^BOOTREPLY for {re.escape(str(reply.yiaddr))} to ", server.log(), re.M)

    # 4. A flood is rate-limited (one line per reason per second) but fully counted; unicast
    # to the server's address takes the same path as broadcast.
    zero = packets["zero-length-client-id"]
    send_udp(evil, [zero.payload] * 5, "192.0.2.1", gap=0.01, listen=0.0)
    time.sleep(1.2)
    send_udp(evil, [zero.payload], "192.0.2.1", listen=0.0)
    server.wait_for_log(r"zero-length-client-id \(7 dropped so far\)$", 5)
    counts = [ln[3] for ln in _drop_lines(server) if ln[2] == "zero-length-client-id"]
    assert counts == [1, 2, 7], counts

    # 5. The same counts through the control socket (`tandem status`).
    assert server.pid_path is not None
    res = srv.run([*tandem_command(), "status", "--json", "-pf", str(server.pid_path)])
    counted = json.loads(res.stdout)["dhcp"]["dropped"]
    want = {h.drop_reason: 1 for h in packets.values() if h.drop_reason is not None}
    want["zero-length-client-id"] = 7
    assert {k: counted.get(k) for k in want} == want, counted

    # 6. Still serving: a real client gets a lease.
    assert server.proc.running(), server.log()[-3000:]
    cli = Dhclient(lab.add_host("cli"))
    cli.start()
    ev = cli.wait_lease(20)
    assert ev.event == "BOUND" and ip_in_range(ev.address), ev
    assert server.proc.running()
