"""One file on both hosts: the seed's *primary* configuration, verbatim, on 192.0.2.1 and
192.0.2.2 (config/sides.py), and the file ``tandem export-partner-config`` writes for a dhcpd
partner, run by dhcpd opposite Tandem.

The seed story as tests/lab/test_failover_seed.py tells it (NORMAL, a lease replicated, kill -9
of the primary, back to NORMAL with agreeing lease files); only the files differ.
"""

from __future__ import annotations

import os
import re
import signal

import pytest
from failover_kit import (
    NAME,
    PRIMARY_IP,
    SEED_PRIMARY,
    SEED_SECONDARY,
    Node,
    assert_unique_clients,
    dhcpd_rejections,
    pair_lab,
    wait_agree,
    wait_for,
)
from test_failover_seed import _outage_story

from tandem.lab.clients import Dhclient
from tandem.lab.netns import Host, Lab
from tandem.lab.servers import tandem_command

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("lab_prerequisites"),
]


def _tandem(host: Host, *args: str) -> str:
    """``tandem ARGS`` in the host's namespace; its stderr (the side line is there)."""
    return host.run([*tandem_command(), *args]).stderr


def _side_line(side: str, why: str) -> str:
    return f'failover peer "{NAME}": this host is the {side} ({why})'


def test_seed_primary_file_on_both_hosts(lab: Lab) -> None:
    h1, h2 = pair_lab(lab)
    for host in (h1, h2):
        (host.workdir / "seed.conf").write_text(SEED_PRIMARY, encoding="utf-8")
    # tandem -t names the side each host takes, and why.
    out1 = _tandem(h1, "-t", "-cf", str(h1.workdir / "seed.conf"))
    assert _side_line("primary", "its address 192.0.2.1 is the block's address") in out1, out1
    out2 = _tandem(h2, "-t", "-cf", str(h2.workdir / "seed.conf"))
    assert _side_line("secondary", "its address 192.0.2.2 is the block's peer address") in out2

    primary = Node("tandem", h1, SEED_PRIMARY)
    secondary = Node("tandem", h2, SEED_PRIMARY)
    secondary.start()
    primary.start()
    primary.wait_state("normal", 30)
    secondary.wait_state("normal", 30)
    assert "this host is the secondary" in secondary.log()
    assert f"failover peer {NAME}: Both servers normal" in primary.log()
    status = secondary.status()
    assert status["role"] == "secondary" and status["mclt"] == 3600, status
    _outage_story(lab, primary, secondary, mclt=3600)


def test_exported_partner_file_run_by_dhcpd(lab: Lab) -> None:
    h1, h2 = pair_lab(lab)
    conf = h1.workdir / "seed.conf"
    conf.write_text(SEED_PRIMARY, encoding="utf-8")
    exported = h1.run([*tandem_command(), "export-partner-config", "-cf", str(conf)]).stdout
    assert exported.split("\n", 2)[2] == SEED_SECONDARY.split("\n", 1)[1]  # the seed's other file
    primary = Node("tandem", h1, SEED_PRIMARY)
    secondary = Node("dhcpd", h2, exported)
    secondary.start()
    primary.start()
    primary.wait_state("normal", 60)
    secondary.wait_state("normal", 60)
    wait_for(lambda: f"failover peer {NAME}: Both servers normal" in secondary.log(), 30, "dhcpd")

    cli = Dhclient(lab.add_host("cli1"))
    cli.start()
    ev = cli.wait_lease(40)
    assert ev.server_id == PRIMARY_IP  # split 256: the primary answers
    wait_for(lambda: secondary.active().get(str(ev.address)) == cli.mac(), 15, "BNDUPD")

    primary.kill()
    secondary.wait_state("communications-interrupted", 15)
    primary.start()
    primary.wait_state("normal", 60)
    secondary.wait_state("normal", 60)
    wait_agree(primary, secondary, 20)
    assert primary.active().get(str(ev.address)) == cli.mac()
    assert_unique_clients(primary, secondary)
    log = secondary.all_logs()
    assert dhcpd_rejections(log) == []
    assert "Failover CONNECT" not in log and not re.search(r"unknown (message|option)", log)
    assert primary.status()["partner_state"] == "normal"


def test_reload_on_the_secondary_keeps_its_side(lab: Lab) -> None:
    """SIGHUP on the host that mirrors the block: the reloaded block is mirrored again, so the
    link stays up (a block read as written would turn it into a second primary)."""
    h1, h2 = pair_lab(lab)
    primary, secondary = Node("tandem", h1, SEED_PRIMARY), Node("tandem", h2, SEED_PRIMARY)
    secondary.start()
    primary.start()
    primary.wait_state("normal", 30)
    secondary.wait_state("normal", 30)
    assert secondary.server is not None
    host = "host fixed { hardware ethernet 02:00:00:00:00:42; fixed-address 192.0.2.42; }\n"
    secondary.server.conf_path.write_text(SEED_PRIMARY + "\n" + host, encoding="utf-8")
    marks = len(primary.log()), len(secondary.log())
    os.kill(secondary.server.proc.pid, signal.SIGHUP)
    path = re.escape(str(secondary.server.conf_path))
    secondary.server.wait_for_log(rf"^Reloaded {path}: 1 subnet, 1 host$", 10, start=marks[1])
    assert secondary.status()["role"] == "secondary"
    cli = Dhclient(lab.add_host("cli1"))
    cli.start()
    ev = cli.wait_lease(40)
    wait_for(lambda: secondary.active().get(str(ev.address)) == cli.mac(), 15, "BNDUPD")
    assert (primary.my_state(), secondary.my_state()) == ("normal", "normal")
    for node, mark in zip((primary, secondary), marks, strict=True):
        tail = node.log()[mark:]
        assert "disconnected" not in tail and " I move from " not in tail, tail
