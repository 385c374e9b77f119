"""systemd's notify protocol from a real Tandem process (issue 10, item 7): the test binds the
Unix datagram socket systemd would, passes it as $NOTIFY_SOCKET, and reads what arrives:
READY=1 with STATUS= once serving, WATCHDOG=1 when WATCHDOG_USEC is set, RELOADING=1 then
READY=1 around a SIGHUP, STOPPING=1 at SIGTERM, and STATUS= following the failover states."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from failover_kit import NAME, SEED_PRIMARY, SEED_SECONDARY, pair_lab

from tandem.lab.netns import Lab, LabError
from tandem.lab.scenarios import SERVER_ADDR, seed_conf
from tandem.lab.servers import run_tandem

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("lab_prerequisites"),
]


class NotifySocket:
    """What systemd's end of $NOTIFY_SOCKET receives, one dict per datagram."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.got: list[dict[str, str]] = []

    def _read(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
        self.got.append(fields)

    def wait(self, pred: Callable[[dict[str, str]], bool], timeout: float, after: int = 0) -> int:
        """Index of the first message after ``after`` for which ``pred`` holds."""
        deadline = time.monotonic() + timeout
        i = after
        while True:
            while i < len(self.got):
                if pred(self.got[i]):
                    return i
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise LabError(f"no such notification within {timeout} s; got {self.got}")
            self._read(min(left, 0.2))

    def close(self) -> None:
        self.sock.close()


def test_ready_status_watchdog_reload_and_stop(lab: Lab, tmp_path: Path) -> None:
    srv = lab.add_host("srv", SERVER_ADDR)
    rx = NotifySocket(tmp_path / "notify")
    try:
        env = {"NOTIFY_SOCKET": str(rx.path), "WATCHDOG_USEC": "400000"}
        server = run_tandem(srv, seed_conf(ping_check=False), env=env)
        ready = rx.wait(lambda m: m.get("READY") == "1", 10)
        assert rx.got[ready].get("STATUS") == "serving 1 subnet", rx.got
        # Nothing came before READY but watchdog pings (READY comes once sockets are bound).
        assert all(m == {"WATCHDOG": "1"} for m in rx.got[:ready]), rx.got
        start = time.monotonic()
        first = rx.wait(lambda m: m == {"WATCHDOG": "1"}, 2, after=ready)
        last = first
        for _ in range(4):  # every WATCHDOG_USEC / 2 = 0.2 s
            last = rx.wait(lambda m: m == {"WATCHDOG": "1"}, 2, after=last + 1)
        assert time.monotonic() - start < 2.0

        server.conf_path.write_text(seed_conf(ping_check=False, extra="# edited"), "utf-8")
        os.kill(server.proc.pid, signal.SIGHUP)
        reloading = rx.wait(lambda m: m.get("RELOADING") == "1", 10, after=last)
        assert int(rx.got[reloading]["MONOTONIC_USEC"]) > 0
        again = rx.wait(lambda m: m.get("READY") == "1", 10, after=reloading)
        assert rx.got[again].get("STATUS") == "serving 1 subnet"

        assert server.stop() == 0
        rx.wait(lambda m: m.get("STOPPING") == "1", 5, after=again)
    finally:
        rx.close()


def test_status_follows_the_failover_states(lab: Lab, tmp_path: Path) -> None:
    h1, h2 = pair_lab(lab)
    rx = NotifySocket(tmp_path / "notify")
    try:
        env = {"NOTIFY_SOCKET": str(rx.path)}
        primary = run_tandem(h1, SEED_PRIMARY, h1.workdir / "p.leases", env=env, ready_timeout=20)
        ready = rx.wait(lambda m: m.get("READY") == "1", 10)
        status = rx.got[ready]["STATUS"]
        assert status.startswith(f"serving 1 subnet; {NAME}: ") and "normal/normal" not in status
        run_tandem(h2, SEED_SECONDARY, h2.workdir / "s.leases", ready_timeout=20)
        want = f"serving 1 subnet; {NAME}: normal/normal"
        rx.wait(lambda m: m.get("STATUS") == want, 40, after=ready)
        assert primary.proc.running()
    finally:
        rx.close()
