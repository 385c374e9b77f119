"""systemd's readiness protocol (sd_notify(3)), spoken directly: no library.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``: a Unix datagram socket, a path or,
starting with ``@``, a name in the abstract namespace. Each notification is one datagram of
``KEY=VALUE`` lines. Tandem sends:

* ``READY=1`` once the sockets are bound and the lease file is loaded ("Server starting
  service."), with a ``STATUS=`` line (``serving 3 subnets; failover-example: normal/normal``);
* ``STATUS=`` again whenever that text changes (the runtime checks once a second);
* ``WATCHDOG=1`` every ``$WATCHDOG_USEC``/2 when it is set (``WatchdogSec=``) and
  ``$WATCHDOG_PID`` is unset or ours, from the event loop, so a hung loop stops the pings;
* ``RELOADING=1`` (with ``MONOTONIC_USEC=``) when a reload starts and ``READY=1`` when it ends;
* ``STOPPING=1`` at shutdown.

Without ``$NOTIFY_SOCKET`` every call does nothing. A send that fails (systemd gone, socket
full) is counted and otherwise ignored: notifications never stop the server.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Mapping, Sequence

__all__ = ["Notifier", "format_message", "socket_address", "status_text", "watchdog_interval"]


def format_message(fields: Sequence[tuple[str, str]]) -> bytes:
    """``KEY=VALUE`` lines, one datagram; a newline inside a value becomes a space."""
    lines = [f"{key}={value.replace(chr(10), ' ')}" for key, value in fields]
    return ("\n".join(lines) + "\n").encode("utf-8", "replace")


def socket_address(value: str) -> str | bytes | None:
    """``$NOTIFY_SOCKET`` as an AF_UNIX address: ``@name`` is abstract (a leading NUL), an
    absolute path is a path; anything else (unset, ``vsock:``) is None: not notifying."""
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or None."""
    usec = environ.get("WATCHDOG_USEC", "")
    owner = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner and owner != str(pid):
        return None  # meant for another process (a parent that exec'd us keeps its own)
    return int(usec) / 2_000_000


def status_text(subnets: int, states: Mapping[str, tuple[str, str]]) -> str:
    """``serving 3 subnets; failover-example: normal/normal`` (own state / partner's)."""
    text = f"serving {subnets} subnet{'' if subnets == 1 else 's'}"
    for name, (mine, partner) in states.items():
        text += f"; {name}: {mine}/{partner}"
    return text


class Notifier:
    """Sends notifications to ``$NOTIFY_SOCKET``; does nothing without one."""

    def __init__(self, environ: Mapping[str, str] | None = None, pid: int | None = None) -> None:
        env = os.environ if environ is None else environ
        me = os.getpid() if pid is None else pid
        self.address = socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog = watchdog_interval(env, me) if self.address is not None else None
        self.failures = 0
        self.sent = 0
        self._status: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        if self.address is not None:
            # Created now, before -user drops root; each send names the address, so a
            # systemd that re-executed (new socket, same path) still hears us.
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *fields: tuple[str, str]) -> bool:
        if self._sock is None or self.address is None:
            return False
        try:
            self._sock.sendto(format_message(fields), self.address)
        except OSError:
            self.failures += 1
            return False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> None:
        fields = [("READY", "1")]
        if status is not None:
            fields.append(("STATUS", status))
            self._status = status
        self.send(*fields)

    def status(self, text: str) -> None:
        """Send ``STATUS=`` when the text changed since the last one sent."""
        if self._sock is not None and text != self._status:
            self._status = text
            self.send(("STATUS", text))

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send(("RELOADING", "1"), ("MONOTONIC_USEC", str(usec)))

    def stopping(self) -> None:
        self.send(("STOPPING", "1"))

    def start_watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ping now and every interval after, from ``loop`` (no-op without a watchdog)."""
        if self.watchdog is None:
            return
        self._loop = loop
        self._ping()

    def _ping(self) -> None:
        self._timer = None
        if self._loop is None or self.watchdog is None:
            return
        self.send(("WATCHDOG", "1"))
        self._timer = self._loop.call_later(self.watchdog, self._ping)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
