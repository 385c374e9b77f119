"""Lease events with real clients: ``on commit``, ``on release`` and ``on expiry`` run a script.

The script (written here) appends its arguments to a record file: the event, the address
(``binary-to-ascii(10, 8, ".", leased-address)``) and the MAC (``binary-to-ascii(16, 8, ":",
substring(hardware, 1, 6))``, which dhcpd prints without leading zeros). Parametrised over
["dhcpd", "tandem"] and over dhclient and udhcpc: the same config, clients and assertions. The
expiry comes with the client killed (no traffic at all), from the lease's end alone.

The hanging-script test is Tandem's only: dhcpd waits for every program it runs, so a script
that hangs stops dhcpd itself; Tandem kills it after ``--event-timeout`` and keeps serving.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from tandem.io.control import control_path_for, request
from tandem.lab.clients import Client, Dhclient, Udhcpc
from tandem.lab.netns import Lab
from tandem.lab.scenarios import SERVER_ADDR, ip_in_range, seed_conf
from tandem.lab.servers import DHCPD_KINDS, run_dhcpd_kind, run_tandem

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(180),
    pytest.mark.usefixtures("lab_prerequisites"),
]

IP = 'binary-to-ascii(10, 8, ".", leased-address)'
MAC = 'binary-to-ascii(16, 8, ":", substring(hardware, 1, 6))'
LEASE = 8  # seconds: short, so that the lease expires during the test

EVENTS = f"""\
default-lease-time {LEASE};
max-lease-time {LEASE};
min-lease-time {LEASE};
on commit {{ execute("__SCRIPT__", "commit", {IP}, {MAC}); }}
on release {{ execute("__SCRIPT__", "release", {IP}, {MAC}); }}
on expiry {{ execute("__SCRIPT__", "expiry", {IP}, {MAC}); }}
"""


def _recorder(directory: Path) -> tuple[Path, Path]:
    script, record = directory / "record.sh", directory / "record"
    script.write_text(f'#!/bin/sh\necho "$*" >> {record}\n', encoding="ascii")
    script.chmod(0o755)
    return script, record


def _lines(record: Path) -> list[str]:
    if not record.exists():
        return []
    return record.read_text(encoding="ascii").splitlines()


def _wait_line(record: Path, line: str, timeout: float, *, after: int = 0) -> int:
    """Index of ``line`` among the record's lines from ``after`` on (waits for it)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = _lines(record)
        if line in lines[after:]:
            return lines.index(line, after)
        if time.monotonic() > deadline:
            raise AssertionError(f"no {line!r} in the record within {timeout} s: {lines}")
        time.sleep(0.1)


def dhcpd_mac(mac: str) -> str:
    """A MAC as binary-to-ascii(16, 8, ":", ...) prints it: hex without leading zeros."""
    return ":".join(f"{int(octet, 16):x}" for octet in mac.split(":"))


@pytest.mark.parametrize("client_kind", ["dhclient", "udhcpc"])
@pytest.mark.parametrize("kind", DHCPD_KINDS)
def test_commit_release_and_expiry_run_the_script(lab: Lab, kind: str, client_kind: str) -> None:
    srv = lab.add_host("srv", SERVER_ADDR)
    script, record = _recorder(srv.workdir)
    server = run_dhcpd_kind(kind, srv, seed_conf(ping_check=False, extra=EVENTS).replace(
        "__SCRIPT__", str(script)))  # fmt: skip
    host = lab.add_host("client")
    client: Client = Dhclient(host) if client_kind == "dhclient" else Udhcpc(host)
    mac = dhcpd_mac(client.mac())

    client.start()
    ip = client.wait_lease(20).address
    assert ip_in_range(ip), ip
    n = _wait_line(record, f"commit {ip} {mac}", 15)

    # Release: dhclient -r, udhcpc's SIGUSR2.
    if isinstance(client, Dhclient):
        client.release()
    else:
        assert isinstance(client, Udhcpc)
        client.release()
    n = _wait_line(record, f"release {ip} {mac}", 15, after=n + 1)

    # A lease again; then the client dies without a word: the lease expires on its own.
    after = client.event_count()
    if isinstance(client, Dhclient):
        client.start()
    else:
        assert isinstance(client, Udhcpc)
        client.renew()
    again = client.wait_lease(20, after=after).address
    assert ip_in_range(again), again
    recommitted = _wait_line(record, f"commit {again} {mac}", 15, after=n + 1)
    assert client.proc is not None
    client.proc.stop(signal.SIGKILL)
    quiet_from = len(server.log())
    killed_at = time.monotonic()
    _wait_line(record, f"expiry {again} {mac}", 3 * LEASE + 10, after=recommitted + 1)
    assert time.monotonic() - killed_at <= LEASE + 5
    since = server.log()[quiet_from:]
    assert f"from {client.mac()}" not in since, since  # no packet from it after the kill
    # Each event once: the expired lease was never released, and nothing ran twice.
    lines = _lines(record)
    assert not any(x.startswith("release") for x in lines[recommitted:]), lines
    assert lines.count(f"expiry {again} {mac}") == 1, lines
    assert lines.count(f"release {ip} {mac}") == 1, lines


HANG = """\
on commit { execute("__SCRIPT__", binary-to-ascii(10, 8, ".", leased-address)); }
"""


def test_a_hanging_script_is_killed_and_dhcp_keeps_answering(lab: Lab) -> None:
    srv = lab.add_host("srv", SERVER_ADDR)
    pids = srv.workdir / "pids"
    script = srv.workdir / "hang.sh"
    script.write_text(f'#!/bin/sh\necho "$$ $1" >> {pids}\nexec sleep 3600\n', encoding="ascii")
    script.chmod(0o755)
    timeout = 8
    conf = seed_conf(ping_check=False, extra=HANG.replace("__SCRIPT__", str(script)))
    server = run_tandem(srv, conf, extra_args=["--event-timeout", str(timeout)])

    first = Udhcpc(lab.add_host("first"))
    first.start()
    ip1 = first.wait_lease(20).address
    started = time.monotonic()
    deadline = started + 10
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid1, arg1 = pids.read_text(encoding="ascii").split()[:2]
    assert arg1 == ip1

    # While the first script hangs, a second client is served.
    second = Udhcpc(lab.add_host("second"))
    second.start()
    ip2 = second.wait_lease(20).address
    assert ip_in_range(ip2) and ip2 != ip1, (ip1, ip2)
    assert os.path.exists(f"/proc/{pid1}"), "the first script ended before its timeout"
    assert time.monotonic() - started < timeout, "the second lease came only after the timeout"

    killed = re.escape(f"execute: {script} still running after {timeout} seconds: killed")
    server.wait_for_log(rf"^{killed} \(process group {pid1}\)$", timeout + 10)
    server.wait_for_log(rf"^execute: {re.escape(str(script))} exit status 9$", 5)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid1}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid1}"), "the hanging script survived its kill"
    assert server.pid_path is not None
    status = request(control_path_for(str(server.pid_path)), {"command": "status"})["result"]
    assert isinstance(status, dict)
    events = status["events"]
    assert isinstance(events, dict)
    assert (events["killed"], events["running"], events["dropped"]) == (1, 1, 0), events

    # The second client's script is killed at shutdown at the latest.
    pid2 = pids.read_text(encoding="ascii").split()[2]
    server.stop()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid2}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid2}"), "a script outlived the server"
