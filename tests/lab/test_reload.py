"""SIGHUP reloads the configuration of a running Tandem (issue 10, item 5), with real clients.

A standalone server: a broken config is refused (the error's file:line:col in the log, same pid,
a new client still served); a config with a new host reservation serves that host its fixed
address without a restart. Then a Tandem pair: a reload that does not touch the ``failover
peer`` block keeps the link up (neither side logs a disconnect, both stay NORMAL, no second
connection), with a Tandem and with an ISC dhcpd partner, while one that changes it restarts
that link and the pair returns to NORMAL.
"""

from __future__ import annotations

import os
import re
import signal

import pytest
from failover_kit import NAME, SEED_PRIMARY, SEED_SECONDARY, Node, pair_lab, wait_for

from tandem.lab.clients import Udhcpc
from tandem.lab.netns import Lab
from tandem.lab.scenarios import SERVER_ADDR, ip_in_range, seed_conf
from tandem.lab.servers import run_tandem, tandem_command

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(180),
    pytest.mark.usefixtures("lab_prerequisites"),
]

FIXED = "192.0.2.42"  # outside the pool (100-200), inside the subnet


def _hup(pid: int) -> None:
    os.kill(pid, signal.SIGHUP)


def test_broken_config_is_refused_and_a_new_host_is_served_without_restart(lab: Lab) -> None:
    srv = lab.add_host("srv", SERVER_ADDR)
    conf = seed_conf(ping_check=False)
    server = run_tandem(srv, conf)
    pid = server.proc.pid
    first = Udhcpc(lab.add_host("c1"))
    first.start()
    assert ip_in_range(first.wait_lease(20).address)

    # A missing semicolon: the refusal names the place `tandem -t` (and dhcpd -t) blames.
    broken = conf.replace("authoritative;", 'authoritative;\noption domain-name "x.org"')
    server.conf_path.write_text(broken, encoding="utf-8")
    check = srv.run([*tandem_command(), "-t", "-cf", str(server.conf_path)], check=False)
    assert check.returncode == 1
    expected = next(x for x in check.stderr.splitlines() if ": error: " in x)
    mark = len(server.log())
    _hup(pid)
    path = re.escape(str(server.conf_path))
    hit = server.wait_for_log(
        rf"^Reload of {path} refused: ({path}:\d+:\d+: error: .*)"
        r"; still serving the previous configuration$",
        10,
        start=mark,
    )
    assert hit.group(1) == expected and ":4:" in expected, (hit.group(0), expected)
    assert server.proc.running() and server.proc.pid == pid
    second = Udhcpc(lab.add_host("c2"))
    second.start()
    assert ip_in_range(second.wait_lease(20).address), server.log()[-2000:]

    # A new reservation: served at once, by the same process.
    third = Udhcpc(lab.add_host("c3"))
    host = f"host c3 {{ hardware ethernet {third.mac()}; fixed-address {FIXED}; }}\n"
    server.conf_path.write_text(conf + host, encoding="utf-8")
    mark = len(server.log())
    _hup(pid)
    server.wait_for_log(rf"^Reloaded {path}: 1 subnet, 1 host$", 10, start=mark)
    third.start()
    assert str(third.wait_lease(20).address) == FIXED, server.log()[-2000:]
    assert server.proc.pid == pid and server.proc.running()
    server.wait_for_log(rf"^DHCPACK on {re.escape(FIXED)} to {re.escape(third.mac())}", 5)
    assert "Traceback" not in server.log(), server.log()[-3000:]


def _counters(node: Node) -> dict[str, int]:
    tcp = node.status()["tcp"]
    assert isinstance(tcp, dict)
    counters = tcp["counters"]
    assert isinstance(counters, dict)
    return {k: int(v) for k, v in counters.items()}


def _link_counters(*nodes: Node) -> list[dict[str, int]]:
    return [_counters(n) for n in nodes if n.kind == "tandem"]


@pytest.mark.parametrize("partner", ["tandem", "dhcpd"])
def test_failover_link_stays_up_across_a_reload_that_keeps_the_peer_block(
    lab: Lab, partner: str
) -> None:
    h1, h2 = pair_lab(lab)
    primary, secondary = Node("tandem", h1, SEED_PRIMARY), Node(partner, h2, SEED_SECONDARY)
    secondary.start()
    primary.start()
    primary.wait_state("normal", 30)
    secondary.wait_state("normal", 30)
    before = _link_counters(primary, secondary)
    assert all(c["attached"] == 1 for c in before), before

    client = Udhcpc(lab.add_host("cli"))
    assert primary.server is not None and secondary.server is not None
    host = f"host cli {{ hardware ethernet {client.mac()}; fixed-address {FIXED}; }}\n"
    reloaded = SEED_PRIMARY + "\n" + host
    primary.server.conf_path.write_text(reloaded, encoding="utf-8")
    marks = len(primary.log()), len(secondary.log())
    _hup(primary.server.proc.pid)
    path = re.escape(str(primary.server.conf_path))
    primary.server.wait_for_log(rf"^Reloaded {path}: 1 subnet, 1 host$", 10, start=marks[0])
    client.start()
    assert str(client.wait_lease(20).address) == FIXED
    # A dynamic client's lease still reaches the secondary over the same connection.
    dyn = Udhcpc(lab.add_host("dyn"))
    dyn.start()
    got = str(dyn.wait_lease(20).address)
    wait_for(lambda: secondary.active().get(got) == dyn.mac(), 15, "BNDUPD on the secondary")
    after = _link_counters(primary, secondary)
    for b, a in zip(before, after, strict=True):
        assert (a["attached"], a["lost"]) == (b["attached"], 0), (before, after)
    assert (primary.my_state(), secondary.my_state()) == ("normal", "normal")
    for node, mark in zip((primary, secondary), marks, strict=True):
        tail = node.log()[mark:]
        assert "disconnected" not in tail and " I move from " not in tail, tail

    # Changing the peer block (max-unacked-updates) restarts that link; the pair recovers.
    restart = reloaded.replace("max-unacked-updates 10;", "max-unacked-updates 9;")
    primary.server.conf_path.write_text(restart, encoding="utf-8")
    mark, partner_mark = len(primary.log()), len(secondary.log())
    _hup(primary.server.proc.pid)
    primary.server.wait_for_log(
        rf"^Reloaded {path}: 1 subnet, 1 host, failover peer {NAME} restarted$", 10, start=mark
    )
    wait_for(
        lambda: f"failover peer {NAME}: I move from normal to " in secondary.log()[partner_mark:],
        30,
        "the partner to see the link restart",
    )
    primary.wait_state("normal", 40)
    secondary.wait_state("normal", 40)
    assert primary.server.proc.running() and "Traceback" not in primary.log()
