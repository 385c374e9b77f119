"""The lab itself: teardown, stale cleanup, host hygiene, and the real-dhcpd lease file fixture."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path

import pytest

from tandem.lab.clients import Dhclient, Dhcpcd, Udhcpc
from tandem.lab.netns import Lab, LabError, cleanup_stale, list_namespaces
from tandem.lab.scenarios import (
    SERVER_ADDR,
    DhcpdLeaseFile,
    last_lease_blocks,
    seed_conf,
)
from tandem.lab.servers import run_dhcpd

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("lab_prerequisites"),
]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_teardown_on_exception_stops_processes_and_deletes_namespaces() -> None:
    pids: list[int] = []
    names: list[str] = []
    with pytest.raises(RuntimeError, match="boom"), Lab() as lab:
        a = lab.add_host("a", "192.0.2.1/24")
        b = lab.add_host("b", "192.0.2.2/24")
        names = [a.ns, b.ns, lab.br_ns]
        # A process that ignores SIGTERM must still go (SIGKILL after the grace time).
        proc = a.spawn(["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"])
        pids.append(proc.pid)
        assert a.run(["busybox", "ping", "-c", "1", "-W", "2", "192.0.2.2"]).returncode == 0
        raise RuntimeError("boom")
    left = set(list_namespaces())
    assert not left & set(names), left
    assert not _alive(pids[0])


def test_hosts_have_offload_off_ipv6_off_and_short_names(lab: Lab) -> None:
    h = lab.add_host("abcdefghij", "192.0.2.9/24")
    lab.add_iface(h, "eth1", "b", "198.51.100.9/24")
    features = h.run(["ethtool", "-k", "eth0"]).stdout
    assert re.search(r"^tx-checksumming: off", features, re.MULTILINE), features
    assert re.search(r"^rx-checksumming: off", features, re.MULTILINE), features
    disabled = h.run(["sysctl", "-n", "net.ipv6.conf.eth1.disable_ipv6"]).stdout.strip()
    assert disabled == "1"
    links = subprocess.run(
        ["ip", "-n", lab.br_ns, "-o", "link"], capture_output=True, text=True, check=True
    ).stdout
    for name in re.findall(r"^\d+: ([^:@]+)", links, re.MULTILINE):
        assert len(name) <= 15, name
    with pytest.raises(LabError):
        lab.add_host("Bad_Name")


def test_cleanup_stale_only_touches_dead_runs_with_our_prefix() -> None:
    stale = f"td{secrets.token_hex(3)}-x"
    foreign = f"tdkeep{secrets.token_hex(2)}"  # starts with "td" but is not a lab name
    subprocess.run(["ip", "netns", "add", stale], check=True)
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        with Lab() as live:
            live.add_host("h")
            removed = cleanup_stale()
            now = set(list_namespaces())
            assert stale in removed and stale not in now
            assert foreign in now, "a name without our pattern must be left alone"
            assert live.hosts["h"].ns in now and live.br_ns in now, "a live lab is not stale"
    finally:
        for ns in (stale, foreign):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def test_clients_leave_host_files_alone(lab: Lab) -> None:
    """dhclient, udhcpc and dhcpcd in namespaces write nothing outside the lab's work dir."""
    watched = [Path("/etc/resolv.conf"), Path("/var/lib/dhcpcd"), Path("/var/lib/dhcp")]
    before = {p: (p.exists(), p.stat().st_mtime_ns if p.exists() else 0) for p in watched}
    listing = {p: sorted(os.listdir(p)) for p in watched if p.is_dir()}
    run_existed = Path("/run/dhcpcd").exists()
    srv = lab.add_host("srv", SERVER_ADDR)
    run_dhcpd(srv, seed_conf(ping_check=False))
    clients = [Dhclient(lab.add_host("c1")), Udhcpc(lab.add_host("c2")), Dhcpcd(lab.add_host("c3"))]
    for c in clients:
        c.start()
    for c in clients:
        c.wait_lease(20)
        c.stop()
    after = {p: (p.exists(), p.stat().st_mtime_ns if p.exists() else 0) for p in watched}
    assert after == before
    assert {p: sorted(os.listdir(p)) for p in watched if p.is_dir()} == listing
    assert Path("/run/dhcpcd").exists() == run_existed


def test_isc_dhcpd_lease_fixture(isc_dhcpd_leases: DhcpdLeaseFile) -> None:
    """The fixture's file is dhcpd's own, with active, released (free) and abandoned leases."""
    text = isc_dhcpd_leases.path.read_text()
    assert "# This lease file was written by isc-dhcp-4" in text
    assert "authoring-byte-order" in text
    blocks = last_lease_blocks(text)
    assert len(isc_dhcpd_leases.active) == 4
    for mac, addr in isc_dhcpd_leases.active.items():
        body = blocks[addr]
        assert "binding state active;" in body, body
        assert f"hardware ethernet {mac};" in body, body
    assert any('uid "lab-1";' in b for b in blocks.values())
    for mac, addr in isc_dhcpd_leases.released.items():
        assert "binding state free;" in blocks[addr] and mac in blocks[addr]
    for addr in isc_dhcpd_leases.abandoned:
        assert "binding state abandoned;" in blocks[addr]
