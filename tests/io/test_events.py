"""io/events.py: the event programs' pool, its bound, the timeout, dhcpd's exit-status lines; and
the DHCP endpoint queueing a commit's events behind its lease's fsync (GroupCommit)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from ipaddress import IPv4Address as A
from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from tandem.config import parse_text
from tandem.core.server import DhcpServer
from tandem.core.types import EventAction, LogLine, RunProgram
from tandem.io import commit as commit_module
from tandem.io.commit import GroupCommit
from tandem.io.dhcp_socket import DhcpEndpoint, _Port
from tandem.io.events import EventRunner
from tandem.io.netif import Interface
from tandem.store.journal import LeaseJournal
from tandem.wire.dhcp import Packet, decode, encode


class Lines:
    def __init__(self) -> None:
        self.got: list[tuple[int, str]] = []

    def __call__(self, level: int, text: str) -> None:
        self.got.append((level, text))

    def texts(self) -> list[str]:
        return [t for _, t in self.got]


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body, encoding="ascii")
    path.chmod(0o755)
    return str(path)


async def _settle(runner: EventRunner, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while runner.busy:
        assert asyncio.get_running_loop().time() < deadline, runner.status()
        await asyncio.sleep(0.02)


def test_the_pool_runs_at_most_max_running_and_drops_beyond_the_queue(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    prog = _script(tmp_path, "slow.sh", f"echo start >> {marks}; sleep 0.3; echo end >> {marks}\n")
    lines = Lines()

    async def scenario() -> EventRunner:
        runner = EventRunner(lines, max_running=2, max_queued=3)
        runner.start(asyncio.get_running_loop())
        runner.submit([RunProgram((prog, str(i))) for i in range(7)])
        assert runner.queued == 3
        assert runner.dropped == 2
        await _settle(runner)
        return runner

    runner = asyncio.run(scenario())
    assert runner.started == 5
    assert runner.peak == 2
    assert marks.read_text().split().count("end") == 5
    drops = [t for t in lines.texts() if "dropped" in t]
    assert drops == [
        f"execute: {prog}: dropped, 2 running and 3 waiting (1 dropped so far)",
        f"execute: {prog}: dropped, 2 running and 3 waiting (2 dropped so far)",
    ]
    assert all(level == logging.ERROR for level, t in lines.got if "dropped" in t)


def test_exit_status_and_start_failure_are_logged_as_dhcpd_logs_them(tmp_path: Path) -> None:
    ok = _script(tmp_path, "ok.sh", "exit 0\n")
    three = _script(tmp_path, "three.sh", "exit 3\n")
    term = _script(tmp_path, "term.sh", "kill -TERM $$\n")
    lines = Lines()

    async def scenario() -> None:
        runner = EventRunner(lines)
        runner.start(asyncio.get_running_loop())
        runner.submit([RunProgram((ok,)), RunProgram((three,)), RunProgram((term,))])
        runner.submit([RunProgram((str(tmp_path / "missing"), "x"))])
        await _settle(runner)

    asyncio.run(scenario())
    assert sorted(lines.texts()) == sorted(
        [
            f"execute: {three} exit status 768",  # dhcpd prints the wait status: 3 << 8
            f"execute: {term} exit status 15",  # killed by SIGTERM
            f"Unable to execute {tmp_path / 'missing'}: No such file or directory",
            f"execute: {tmp_path / 'missing'} exit status 32512",
        ]
    )


def test_a_program_past_the_timeout_is_killed_with_its_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    hang = _script(
        tmp_path, "hang.sh", f"sleep 3600 & echo $! >> {pids}; echo $$ >> {pids}; wait\n"
    )
    lines = Lines()

    async def scenario() -> EventRunner:
        runner = EventRunner(lines, timeout=0.5)
        runner.start(asyncio.get_running_loop())
        runner.submit([RunProgram((hang,))])
        await _settle(runner)
        return runner

    runner = asyncio.run(scenario())
    child, leader = pids.read_text().split()
    assert runner.killed == 1
    assert lines.texts() == [
        f"execute: {hang} still running after 0.5 seconds: killed (process group {leader})",
        f"execute: {hang} exit status 9",
    ]
    for pid in (child, leader):  # the script's own child went with it
        for _ in range(100):
            if not os.path.exists(f"/proc/{pid}") or "Z" in _state(pid):
                break
            asyncio.run(asyncio.sleep(0.02))
        assert not os.path.exists(f"/proc/{pid}") or "Z" in _state(pid), pid


def _state(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0]
    except OSError:
        return "gone"


def test_log_lines_go_out_at_their_level() -> None:
    lines = Lines()
    runner = EventRunner(lines)
    runner.submit([LogLine("info", "i"), LogLine("error", "e"), LogLine("debug", "d"),
                   LogLine("fatal", "f")])  # fmt: skip
    assert lines.got == [(logging.INFO, "i"), (logging.ERROR, "e"), (logging.DEBUG, "d"),
                         (logging.CRITICAL, "f")]  # fmt: skip


# --- the endpoint: events run only after the commit is durable ------------------------------


def _relayed(mtype: int, mac: bytes, extra: dict[int, bytes]) -> bytes:
    opts = {53: bytes([mtype]), 61: b"\x01" + mac, **extra}
    p = Packet(1, 1, 6, 1, 7, 0, 0, A(0), A(0), A(0), A("10.0.0.254"),
               mac.ljust(16, b"\0"), options=opts)  # fmt: skip
    return encode(p)


class _Socket:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        self.sent.append(data)
        return len(data)


@pytest.mark.parametrize("inline_max", [1.0, 0.0])
def test_a_commits_events_run_after_its_lease_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inline_max: float
) -> None:
    """Inline sync and worker sync alike: when the events action runs, the lease file already
    holds the ACTIVE binding (synced); the expiry's, after the expired record."""
    monkeypatch.setattr(commit_module, "INLINE_SYNC_MAX", inline_max)
    conf = """\
default-lease-time 30;
max-lease-time 30;
on commit { execute("/bin/true", binary-to-ascii(10, 8, ".", leased-address)); }
on expiry { execute("/bin/true", "expiry"); }
subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.20; }
"""
    iface = Interface("eth0", 2, bytes(6), (IPv4Interface("10.0.0.1/24"),))
    path = tmp_path / f"dhcpd-{inline_max}.leases"
    seen: list[tuple[list[EventAction], str]] = []
    clock = [1_000_000.0]

    def record(actions: list[EventAction]) -> None:
        seen.append((actions, path.read_text()))

    async def scenario() -> None:
        journal = LeaseJournal(path)
        journal.load()
        server = DhcpServer(parse_text(conf), interfaces={"eth0": iface.addrs})
        commit = GroupCommit(journal)
        now: Callable[[], float] = lambda: clock[0]  # noqa: E731
        endpoint = DhcpEndpoint(
            server, commit, [], emit=lambda _lines: None, clock=now, events=record
        )
        commit.start(asyncio.get_running_loop())
        endpoint.start(asyncio.get_running_loop())
        sock = _Socket()
        port = _Port(iface, sock)  # type: ignore[arg-type]
        relay = ("10.0.0.254", 67)
        mac = b"\x02\x00\x00\x00\x00\x01"
        endpoint.process_batch(port, [(_relayed(1, mac, {}), True, relay)])
        offer = decode(sock.sent[-1])
        ask = {50: offer.yiaddr.packed, 54: offer.options[54]}
        assert seen == []  # an OFFER commits nothing
        endpoint.process_batch(port, [(_relayed(3, mac, ask), True, relay)])
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.01)
        clock[0] += 30
        endpoint.tick()
        for _ in range(200):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
        endpoint.close()
        commit.close()

    asyncio.run(scenario())
    (committed, disk1), (expired, disk2) = seen
    assert [a.argv for a in committed if isinstance(a, RunProgram)] == [("/bin/true", "10.0.0.10")]
    assert "binding state active;" in disk1
    assert [a.argv for a in expired if isinstance(a, RunProgram)] == [("/bin/true", "expiry")]
    assert disk2.rstrip().endswith("}") and "binding state free;" in disk2.split("lease")[-1]


def test_programs_still_running_at_shutdown_are_killed(tmp_path: Path) -> None:
    """asyncio.run cancels the runner's tasks when the server's loop ends: their programs go."""
    pids = tmp_path / "pids"
    hang = _script(tmp_path, "hang.sh", f"echo $$ >> {pids}; exec sleep 3600\n")

    async def scenario() -> None:
        runner = EventRunner(Lines(), timeout=3600)
        runner.submit([RunProgram((hang,))])
        for _ in range(200):
            if runner.running and pids.exists():
                return  # leave with the program running
            await asyncio.sleep(0.02)
        raise AssertionError("the program never started")

    asyncio.run(scenario())
    pid = pids.read_text().split()[0]
    for _ in range(100):
        if _state(pid) in ("gone", "Z"):
            break
        asyncio.run(asyncio.sleep(0.02))
    assert _state(pid) in ("gone", "Z"), f"pid {pid} survived the shutdown"
