"""Files the journal writes, read by the real tools: dhcpd -T, dhcpd-pools, a running dhcpd."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from tandem.core.lease import BindingState, Lease
from tandem.store.journal import LeaseJournal
from tandem.store.leasefile import FailoverStateRecord, LeaseFileReader, format_lease, parse_leases

NOW = int(time.time())
PLAIN_CONF = """\
authoritative;
subnet 10.9.0.0 netmask 255.255.255.0 {
  range 10.9.0.100 10.9.0.199;
}
"""
FAILOVER_CONF = """\
failover peer "fo-test" {
  secondary;
  address 10.9.0.2;
  port 10520;
  peer address 10.9.0.1;
  peer port 10519;
  max-response-delay 60;
  max-unacked-updates 10;
  load balance max seconds 3;
}
subnet 10.9.0.0 netmask 255.255.255.0 {
  pool {
    failover peer "fo-test";
    range 10.9.0.100 10.9.0.199;
  }
}
"""


def make_lease(n: int, state: BindingState) -> Lease:
    active = state is BindingState.ACTIVE
    return Lease(
        IPv4Address(f"10.9.0.{100 + n}"),
        state,
        next_binding_state=BindingState.FREE if active else None,
        starts=NOW - 600,
        ends=NOW + 86400 if active else NOW - 60,
        cltt=NOW - 600,
        hardware=(1, bytes([2, 0, 0, 0, 9, n])),
        uid=b"\x01\x02\x00\x00\x00\x09" + bytes([n]) + b'"\\ ',
        client_hostname=f"client-{n}",
        vendor_class_identifier="udhcp 1.36.1" if n % 2 else None,
        variables={"ddns-txt": f"txt {n}"} if n % 3 == 0 else {},
    )


def write_journal(path: Path, states: list[BindingState]) -> dict[IPv4Address, Lease]:
    """Several group commits, a rewrite, then more commits: the file dhcpd has to read."""
    final: dict[IPv4Address, Lease] = {}
    jr = LeaseJournal(path)
    jr.load()
    for n in range(len(states)):
        first = make_lease(n, BindingState.FREE)
        jr.append(first)  # superseded below: the last record must win for the tools too
        final[first.address] = first
    jr.commit()
    jr.rewrite(final.values())
    for n, state in enumerate(states):
        lease = make_lease(n, state)
        jr.append(lease)
        final[lease.address] = lease
        if n % 4 == 3:
            jr.commit()
    jr.commit()
    jr.close()
    return final


STATES = [BindingState.ACTIVE] * 7 + [
    BindingState.FREE,
    BindingState.FREE,
    BindingState.EXPIRED,
    BindingState.RELEASED,
    BindingState.ABANDONED,
]


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def dhcpd_test(conf: Path, leases: Path) -> str:
    result = run("dhcpd", "-T", "-4", "-cf", str(conf), "-lf", str(leases))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # dhcpd -T exits 0 even for a corrupt lease file: its complaints are in the output.
    assert "Corrupt lease file" not in output, output
    assert "possibly corrupt" not in output, output
    assert re.search(r"line \d+:", output) is None, output
    assert "Lease file test successful" in output, output
    return output


def test_dhcpd_accepts_the_journal(tmp_path: Path) -> None:
    conf = tmp_path / "dhcpd.conf"
    conf.write_text(PLAIN_CONF)
    leases = tmp_path / "dhcpd.leases"
    final = write_journal(leases, STATES)
    output = dhcpd_test(conf, leases)
    # dhcpd counts the leases it re-writes: every address we gave it (all have a client).
    assert f"Wrote {len(final)} leases to leases file." in output, output


def test_dhcpd_test_does_see_damage(tmp_path: Path) -> None:
    """The check above can fail: a damaged record is reported by dhcpd -T."""
    conf = tmp_path / "dhcpd.conf"
    conf.write_text(PLAIN_CONF)
    leases = tmp_path / "dhcpd.leases"
    write_journal(leases, STATES)
    text = leases.read_text().replace("binding state released;", "binding state releasd;")
    leases.write_text(text)
    with pytest.raises(AssertionError, match="expecting a binding state"):
        dhcpd_test(conf, leases)


def test_dhcpd_accepts_failover_state_records(tmp_path: Path) -> None:
    conf = tmp_path / "dhcpd.conf"
    conf.write_text(FAILOVER_CONF)
    leases = tmp_path / "dhcpd.leases"
    jr = LeaseJournal(leases)
    jr.load()
    jr.append_state(FailoverStateRecord("fo-test", "recover", NOW - 5, "unknown-state", NOW - 5, 0))
    for n in range(5):
        jr.append(make_lease(n, BindingState.BACKUP if n % 2 else BindingState.ACTIVE))
    jr.append_state(FailoverStateRecord("fo-test", "normal", NOW, "normal", NOW, 3600))
    jr.commit()
    jr.close()
    output = dhcpd_test(conf, leases)
    assert "Wrote 5 leases to leases file." in output, output
    assert "WARNING" not in output and "expecting" not in output, output
    # ...and dhcpd does check these records: a state name it does not know is reported.
    leases.write_text(leases.read_text().replace("my state normal", "my state norml"))
    with pytest.raises(AssertionError, match="unknown failover state"):
        dhcpd_test(conf, leases)


def test_dhcpd_pools_counts_active_leases(tmp_path: Path) -> None:
    conf = tmp_path / "dhcpd.conf"
    conf.write_text(PLAIN_CONF)
    leases = tmp_path / "dhcpd.leases"
    final = write_journal(leases, STATES)
    result = run("dhcpd-pools", "-c", str(conf), "-l", str(leases), "-f", "j")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    summary = report["summary"]
    active = sum(1 for lease in final.values() if lease.binding_state is BindingState.ACTIVE)
    assert active == 7
    assert summary["defined"] == 100
    assert summary["used"] == active
    assert summary["free"] == 100 - active
    (subnet,) = report["subnets"]
    assert subnet["range"] == "10.9.0.100 - 10.9.0.199"
    assert subnet["used"] == active


# --- a running dhcpd rewrites our file: we read its output back ------------------------------


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"tst-store-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for cmd in (
            ["ip", "-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
            ["ip", "-n", name, "addr", "add", "10.9.0.1/24", "dev", "v0"],
            ["ip", "-n", name, "link", "set", "v0", "up"],
            ["ip", "-n", name, "link", "set", "v1", "up"],
        ):
            subprocess.run(cmd, check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _sorted_sets(block: str) -> str:
    """dhcpd reverses the order of `set` lines each time it reads and rewrites a lease."""
    lines = block.split("\n")
    sets = sorted(line for line in lines if line.startswith("  set "))
    it = iter(sets)
    return "\n".join(next(it) if line.startswith("  set ") else line for line in lines)


@pytest.mark.lab
def test_running_dhcpd_rewrites_our_file_and_we_read_it_back(tmp_path: Path, netns: str) -> None:
    conf = tmp_path / "dhcpd.conf"
    conf.write_text(PLAIN_CONF)
    leases = tmp_path / "dhcpd.leases"
    final = write_journal(leases, STATES)
    log = tmp_path / "dhcpd.out"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *("ip", "netns", "exec", netns, "dhcpd", "-f", "-d", "-4"),
                *("-cf", str(conf), "-lf", str(leases), "-pf", str(tmp_path / "dhcpd.pid")),
                "v0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while "Server starting service." not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    text = leases.read_text(encoding="latin-1")
    assert "written by isc-dhcp-4.4" in text  # dhcpd's file now, not ours
    reader = LeaseFileReader(text, str(leases))
    by_address = {r.record.address: r for r in reader.records() if isinstance(r.record, Lease)}
    assert reader.warnings == []
    assert set(by_address) == set(final)
    now = int(time.time())
    for address, ours in final.items():
        rec = by_address[address]
        theirs = rec.record
        assert isinstance(theirs, Lease)
        # its block is the one we write for what we read, byte for byte (apart from the
        # order of `set` lines, which dhcpd itself reverses on every read/write cycle)
        assert _sorted_sets(format_lease(theirs).rstrip("\n")) == _sorted_sets(
            text[rec.start : rec.end]
        )
        if ours.binding_state is BindingState.ACTIVE:
            # still active; dhcpd fills in tstp = ends when it is missing
            assert theirs.tstp == ours.ends
            same = theirs.copy()
            same.tstp = None
            assert same == ours
        else:  # dhcpd expired what had ended: expired/released become free at start-up
            assert theirs.binding_state in (BindingState.FREE, ours.binding_state)
            assert (theirs.hardware, theirs.uid, theirs.client_hostname) == (
                ours.hardware,
                ours.uid,
                ours.client_hostname,
            )
            assert theirs.ends is not None and theirs.ends <= now
    assert parse_leases(text, "x").leases.keys() == final.keys()
