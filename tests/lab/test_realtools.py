"""The lease file Tandem writes while serving real clients is one the real tools read.

Five clients bind, one releases. Tandem's file is checked twice: as it stands while Tandem runs
(the journal: a rewrite at start, then appended records, one per change), and after a restart
(the startup rewrite: one block per address). Each time:

* ``dhcpd -T`` (ISC dhcpd's lease-file test) reads it without complaint and says it would write
  one lease per address the file mentions;
* ``dhcpd-pools`` (JSON with active lease details) counts exactly the four active leases, with
  the clients' addresses and MACs, out of the pool's 101 addresses.

The tools run on a copy: ``dhcpd -T`` writes a new lease file where it read one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tandem.lab.clients import Client, Dhclient, Dhcpcd, Udhcpc
from tandem.lab.netns import Lab
from tandem.lab.scenarios import SERVER_ADDR, last_lease_blocks, seed_conf
from tandem.lab.servers import Server, run_tandem

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(90),
    pytest.mark.usefixtures("lab_prerequisites"),
]

POOL_SIZE = 101  # 192.0.2.100 - 192.0.2.200


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def _dhcpd_test(conf: Path, leases: Path) -> int:
    """``dhcpd -T``; returns the N of "Wrote N leases". It exits 0 even on a corrupt file,
    so its output is what tells."""
    res = _run("dhcpd", "-T", "-4", "-cf", str(conf), "-lf", str(leases))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "Lease file test successful" in out, out
    for bad in ("Corrupt lease file", "possibly corrupt", "expecting", "WARNING"):
        assert bad not in out, out
    assert re.search(r"line \d+:", out) is None, out
    m = re.search(r"^Wrote (\d+) leases to leases file\.$", out, re.MULTILINE)
    assert m is not None, out
    return int(m[1])


def _dhcpd_pools(conf: Path, leases: Path) -> dict[str, object]:
    res = _run("dhcpd-pools", "-c", str(conf), "-l", str(leases), "-f", "J")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert isinstance(report, dict), report
    return report


def _check_with_tools(
    server: Server, tag: str, active: dict[str, str], released: str
) -> tuple[int, str]:
    """Run both tools on a copy of ``server``'s file; return (dhcpd's N, the file's text)."""
    assert server.leases_path is not None
    copy = server.host.workdir / f"{tag}.leases"
    shutil.copyfile(server.leases_path, copy)
    text = copy.read_text()
    blocks = last_lease_blocks(text)
    assert set(blocks) == {*active, released}, (tag, sorted(blocks))
    assert "binding state free;" in blocks[released], (tag, blocks[released])

    wrote = _dhcpd_test(server.conf_path, copy)
    assert wrote == len(blocks) == len(active) + 1, (tag, wrote, sorted(blocks))

    report = _dhcpd_pools(server.conf_path, copy)
    summary = report["summary"]
    assert isinstance(summary, dict)
    assert (summary["defined"], summary["used"], summary["free"]) == (
        POOL_SIZE,
        len(active),
        POOL_SIZE - len(active),
    ), (tag, summary)
    listed = report.get("active_leases")
    assert isinstance(listed, list), report
    assert {(x["ip"], x["macaddress"]) for x in listed} == set(active.items()), (tag, listed)
    return wrote, text


def _wait_released(server: Server, addr: str, timeout: float = 5.0) -> None:
    """The DHCPRELEASE is logged before its record is on disk (no reply waits for it)."""
    deadline = time.monotonic() + timeout
    while "binding state free;" not in last_lease_blocks(server.leases_text()).get(addr, ""):
        assert time.monotonic() < deadline, server.leases_text()
        time.sleep(0.05)


def test_served_lease_file_passes_dhcpd_and_dhcpd_pools(lab: Lab) -> None:
    srv = lab.add_host("srv", SERVER_ADDR)
    conf = seed_conf(ping_check=False)
    server = run_tandem(srv, conf)
    clients: list[Client] = [
        Dhclient(lab.add_host("dhcl"), extra_conf='send dhcp-client-identifier "lab-1";\n'),
        Dhcpcd(lab.add_host("dhcpcd")),
        Udhcpc(lab.add_host("u1")),
        Udhcpc(lab.add_host("u2")),
    ]
    leaver = Udhcpc(lab.add_host("leaver"))
    for c in (*clients, leaver):
        c.start()
    active = {str(c.wait_lease(25).address): c.mac() for c in clients}
    released = str(leaver.wait_lease(25).address)
    leaver.release()
    server.wait_for_log(rf"^DHCPRELEASE of {re.escape(released)} ", 10)
    _wait_released(server, released)
    assert len(active) == 4 and released not in active, (active, released)

    # 1. The journal as written while serving (Tandem still running).
    wrote_live, live = _check_with_tools(server, "live", active, released)
    records = len(re.findall(r"^lease ", live, re.MULTILINE))
    assert records > wrote_live, "expected appended records (the release), not only a rewrite"

    # 2. After a restart: Tandem rewrites the file at startup, as dhcpd does.
    server.stop()
    again = run_tandem(srv, conf, server.leases_path)
    m = re.search(r"^Wrote (\d+) leases to leases file\.$", again.log(), re.MULTILINE)
    assert m is not None, again.log()
    wrote_again, rewritten = _check_with_tools(again, "rewritten", active, released)
    assert int(m[1]) == wrote_again == wrote_live
    assert len(re.findall(r"^lease ", rewritten, re.MULTILINE)) == wrote_again, rewritten
