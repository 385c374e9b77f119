"""ping-check against real programs: a device with a hand-set address inside the pool answers
pings, so the server abandons that address instead of offering it; ISC dhcpd and Tandem alike.

The range holds ONE address, so "the address the server would offer first" is that one
whatever the allocation order. A client then can get nothing while the squatter is there, and
gets the address once the squatter is gone (the abandoned lease is reclaimed, pinged again, and
offered): dhcpd's allocate_lease reclaims an abandoned lease when nothing free is left.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest
from test_unprivileged import GROUP, USER, _assert_dropped, _owned_dir, root_dir

from tandem.lab.clients import Udhcpc
from tandem.lab.netns import Lab
from tandem.lab.scenarios import SERVER_ADDR, last_lease_blocks
from tandem.lab.servers import DHCPD_KINDS, run_dhcpd_kind, run_tandem

pytestmark = pytest.mark.lab

__all__ = ["root_dir"]  # the fixture, from test_unprivileged

KINDS = pytest.mark.parametrize("kind", DHCPD_KINDS)
SQUATTED = "192.0.2.100"
ABANDONING = rf"^Abandoning IP address {re.escape(SQUATTED)}: pinged before offer$"


def conf(ping_check: bool | None) -> str:
    """One address in the range; ``None`` leaves ping-check at dhcpd's default (on)."""
    lines = ["authoritative;", "default-lease-time 600;", "max-lease-time 600;"]
    if ping_check is not None:
        lines.append(f"ping-check {'true' if ping_check else 'false'};")
    return "\n".join(lines) + (
        "\nsubnet 192.0.2.0 netmask 255.255.255.0 {\n"
        "  option routers 192.0.2.1;\n"
        f"  range {SQUATTED} {SQUATTED};\n"
        "}\n"
    )


@KINDS
def test_ping_check_abandons_an_address_that_answers(lab: Lab, kind: str) -> None:
    srv = lab.add_host("srv", SERVER_ADDR)
    squat = lab.add_host("squat", f"{SQUATTED}/24")  # a device set by hand: answers pings
    server = run_dhcpd_kind(kind, srv, conf(None))
    cli = Udhcpc(lab.add_host("cli"))
    cli.start(tries=60, retry_wait=1)
    line = ABANDONING
    server.wait_for_log(line, 20)
    # The client keeps asking; the address is pinged again each time and never offered.
    time.sleep(4)
    log = server.log()
    assert len(re.findall(line, log, re.MULTILINE)) >= 2, log[-3000:]
    assert not re.search(rf"^DHCPOFFER on {re.escape(SQUATTED)} ", log, re.MULTILINE), log[-3000:]
    assert not [ev for ev in cli.events() if ev.address == SQUATTED], cli.events()
    block = last_lease_blocks(server.leases_text()).get(SQUATTED, "")
    assert "binding state abandoned;" in block, server.leases_text()[-2000:]
    assert "hardware ethernet" not in block, block
    # The device leaves: nothing else is free, so the abandoned lease is reclaimed, pinged
    # (nobody answers now), offered and bound.
    squat.run(["ip", "addr", "flush", "dev", "eth0"])
    ev = cli.wait_lease(30)
    assert ev.address == SQUATTED, ev
    log = server.log()
    assert re.search(rf"^Reclaiming abandoned lease {re.escape(SQUATTED)}\.$", log, re.M), log
    assert re.search(rf"^DHCPACK on {re.escape(SQUATTED)} to {cli.mac()}", log, re.M), log
    server.stop()
    block = last_lease_blocks(server.leases_text()).get(SQUATTED, "")
    assert "binding state active;" in block, block


@KINDS
def test_ping_check_false_gives_the_answering_address_away(lab: Lab, kind: str) -> None:
    srv = lab.add_host("srv", SERVER_ADDR)
    lab.add_host("squat", f"{SQUATTED}/24")
    server = run_dhcpd_kind(kind, srv, conf(False))
    cli = Udhcpc(lab.add_host("cli"))
    cli.start()
    ev = cli.wait_lease(20)
    assert ev.address == SQUATTED, ev  # the duplicate ping-check would have prevented
    assert "Abandoning IP address" not in server.log(), server.log()[-2000:]


def test_ping_check_after_dropping_root(lab: Lab, root_dir: Path) -> None:
    """``-user nobody``: the raw ICMP socket is opened before the drop, so pings still go out
    and answers are still heard with no capability left."""
    srv = lab.add_host("srv", SERVER_ADDR)
    lab.add_host("squat", f"{SQUATTED}/24")
    leases = _owned_dir(root_dir, "db") / "tandem.leases"
    server = run_tandem(srv, conf(None), leases, ["-user", USER, "-group", GROUP], pure=True)
    _assert_dropped(server.proc.pid)
    cli = Udhcpc(lab.add_host("cli"))
    cli.start(tries=60, retry_wait=1)
    server.wait_for_log(ABANDONING, 20)
    _assert_dropped(server.proc.pid)
    assert "unable to create icmp socket" not in server.log(), server.log()[-2000:]


#: Run inside a lab namespace: a real Pinger on a real raw socket. It pings a host that
#: answers and one that does not, and meanwhile sends itself junk (echo replies it must not
#: take: a bad checksum, another identifier, a wrong sequence number, one nobody waits for).
PROBE = r"""
import asyncio, json, socket, struct, sys
from ipaddress import IPv4Address
from tandem.io.ping import Pinger, echo_request, icmp_checksum

me, peer, nobody = sys.argv[1:4]
results = []
loop = asyncio.new_event_loop()
pinger = Pinger.open(lambda a, ok: results.append([str(a), ok]))
assert pinger.sock is not None
pinger.start(loop)
pinger.ping(IPv4Address(peer), 3000)
pinger.ping(IPv4Address(nobody), 400)
junk = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)

def reply(ident, seq, cksum=None):
    body = struct.pack("!BBHHH", 0, 0, 0, ident, seq) + bytes(20)
    c = icmp_checksum(body) if cksum is None else cksum
    return struct.pack("!BBHHH", 0, 0, c, ident, seq) + bytes(20)

seq = pinger._waiting[int(IPv4Address(nobody))][0]
junk.sendto(reply(pinger.ident, seq, cksum=0x1234), (me, 0))    # bad checksum
junk.sendto(reply(pinger.ident ^ 0x5A5A, seq), (me, 0))         # another program's ping
junk.sendto(reply(pinger.ident, (seq + 7) & 0xFFFF), (me, 0))   # not the sequence we sent
loop.run_until_complete(asyncio.sleep(1.0))
print(json.dumps({"results": results, "counters": dict(pinger.counters)}))
"""


def test_pinger_on_a_real_raw_socket(lab: Lab, tmp_path: Path) -> None:
    srv = lab.add_host("srv", SERVER_ADDR)
    peer = lab.add_host("peer", "192.0.2.7/24")
    del peer  # it only has to answer pings
    script = tmp_path / "probe.py"
    script.write_text(PROBE, encoding="utf-8")
    res = srv.run([sys.executable, str(script), "192.0.2.1", "192.0.2.7", "192.0.2.9"])
    got = json.loads(res.stdout)
    results = sorted(tuple(r) for r in got["results"])
    assert results == [("192.0.2.7", True), ("192.0.2.9", False)], got
    counters = got["counters"]
    assert counters.get("answered") == 1 and counters.get("timed-out") == 1, counters
    assert counters.get("sent") == 2, counters
    assert counters.get("ignored: checksum", 0) >= 1, counters
    assert counters.get("ignored: not ours", 0) >= 1, counters
    assert counters.get("ignored: late or unexpected", 0) >= 1, counters


#: Run as ``nobody`` (no CAP_NET_RAW): the socket cannot be opened.
NO_SOCKET = r"""
import asyncio, json, logging, sys
from ipaddress import IPv4Address
from tandem.io.ping import Pinger

logging.basicConfig(stream=sys.stderr, format="%(message)s")
done = []
loop = asyncio.new_event_loop()
pinger = Pinger.open(lambda a, ok: done.append([str(a), ok]))
pinger.start(loop)
pinger.ping(IPv4Address(sys.argv[1]), 200)
loop.run_until_complete(asyncio.sleep(0.5))
print(json.dumps({"socket": pinger.sock is not None, "done": done}))
"""


def test_pinger_without_a_socket_logs_dhcpds_line_and_still_waits(lab: Lab) -> None:
    """As dhcpd's icmp_startup: "unable to create icmp socket: ..." and no ping, yet the
    OFFER still waits ping-timeout (dhcpd's icmp_echorequest then reports success)."""
    srv = lab.add_host("srv", SERVER_ADDR)
    lab.add_host("squat", f"{SQUATTED}/24")  # would answer, if anything were sent
    src = str(Path(__file__).resolve().parents[2] / "src")
    as_user = ["setpriv", f"--reuid={USER}", f"--regid={GROUP}", "--clear-groups"]
    res = srv.run(
        [*as_user, sys.executable, "-c", NO_SOCKET, SQUATTED],
        env={"PYTHONPATH": src, "TANDEM_PURE": "1"},
    )
    assert res.stderr.startswith("unable to create icmp socket: Operation not permitted"), res
    assert json.loads(res.stdout) == {"socket": False, "done": [[SQUATTED, False]]}
