"""systemd's notify protocol (tandem.io.sdnotify): message formatting, the $NOTIFY_SOCKET
address forms, and real datagrams to a socket the test binds (a path, and an abstract name)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

import pytest

from tandem.io.sdnotify import (
    Notifier,
    format_message,
    socket_address,
    status_text,
    watchdog_interval,
)


def test_format_message_is_key_value_lines() -> None:
    assert format_message([("READY", "1"), ("STATUS", "serving 1 subnet")]) == (
        b"READY=1\nSTATUS=serving 1 subnet\n"
    )
    assert format_message([("STATUS", "two\nlines")]) == b"STATUS=two lines\n"


def test_socket_address_forms() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@/org/freedesktop/systemd1/notify/42") == (
        b"\0/org/freedesktop/systemd1/notify/42"
    )
    assert socket_address("") is None
    assert socket_address("@") is None
    assert socket_address("vsock:2:1234") is None  # not a Unix socket: not notifying


def test_watchdog_interval_is_half_the_timeout_and_only_for_us() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "3000000"}, 10) == 1.5
    assert watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "10"}, 10) == 1.5
    assert watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "11"}, 10) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}, 10) is None
    assert watchdog_interval({"WATCHDOG_USEC": "x"}, 10) is None
    assert watchdog_interval({}, 10) is None


def test_status_text() -> None:
    assert status_text(1, {}) == "serving 1 subnet"
    states = {"failover-example": ("normal", "normal"), "b": ("partner-down", "unknown-state")}
    assert status_text(3, states) == (
        "serving 3 subnets; failover-example: normal/normal; b: partner-down/unknown-state"
    )


def _receiver(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2.0)
    return sock


def test_notifier_sends_to_a_path_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    rx = _receiver(path)
    try:
        n = Notifier({"NOTIFY_SOCKET": path}, pid=os.getpid())
        assert n.enabled and n.watchdog is None
        n.ready("serving 1 subnet")
        assert rx.recv(4096) == b"READY=1\nSTATUS=serving 1 subnet\n"
        n.status("serving 1 subnet")  # unchanged: not sent again
        n.status("serving 2 subnets")
        assert rx.recv(4096) == b"STATUS=serving 2 subnets\n"
        n.reloading()
        lines = rx.recv(4096).decode().splitlines()
        assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
        assert int(lines[1].split("=")[1]) > 0
        n.stopping()
        assert rx.recv(4096) == b"STOPPING=1\n"
        n.close()
    finally:
        rx.close()


def test_notifier_sends_to_an_abstract_socket() -> None:
    name = f"@tandem-test-{os.getpid()}-{id(object())}"
    rx = _receiver(b"\0" + name[1:].encode())
    try:
        n = Notifier({"NOTIFY_SOCKET": name})
        n.ready()
        assert rx.recv(4096) == b"READY=1\n"
        n.close()
    finally:
        rx.close()


def test_without_notify_socket_nothing_is_sent() -> None:
    n = Notifier({"WATCHDOG_USEC": "1000"})
    assert not n.enabled and n.watchdog is None
    n.ready("x")
    n.stopping()
    assert n.sent == 0


def test_a_vanished_socket_is_counted_not_raised(tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    n.ready()
    assert n.failures == 1 and n.sent == 0


@pytest.mark.timeout(10)
def test_watchdog_pings_from_the_event_loop_and_stop_when_it_hangs(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    rx = _receiver(path)
    rx.setblocking(False)

    async def scenario() -> tuple[int, int]:
        n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"}, pid=os.getpid())
        assert n.watchdog == 0.05
        n.start_watchdog(asyncio.get_running_loop())
        await asyncio.sleep(0.32)
        running = _drain(rx)
        time.sleep(0.3)  # the loop hangs: no ping may be sent meanwhile
        hung = _drain(rx)
        n.close()
        return running, hung

    running, hung = asyncio.run(scenario())
    rx.close()
    assert running >= 5  # one at once, then every 50 ms
    assert hung == 0


def _drain(rx: socket.socket) -> int:
    count = 0
    while True:
        try:
            data = rx.recv(4096)
        except BlockingIOError:
            return count
        assert data == b"WATCHDOG=1\n"
        count += 1
