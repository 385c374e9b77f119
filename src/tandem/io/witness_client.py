"""The peer's side of the witness (``--witness ADDR:PORT``, ``--witness-secret FILE``).

One UDP socket, connected to the witness (the kernel then delivers only its datagrams), shared
by every relationship with ``auto-partner-down``. ``ask`` sends a request with a fresh,
increasing request id and remembers when it left (monotonic milliseconds); an answer is
accepted only for a request still pending, for the same relationship and role, and is handed
to its callback with that send time: the asker counts its ticket and grant from when it
asked, never from when the answer came (core/failover/autopd.py applies the margins).
A datagram that does not decode, carries a wrong MAC, or answers no pending request is
dropped and counted by reason.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from tandem.wire import witness as wire

log = logging.getLogger("tandem")

#: Requests whose answer still counts: older ones are forgotten (a late answer is dropped).
PENDING_MAX = 32
PENDING_MS = 30_000

AnswerCallback = Callable[[wire.WitnessAnswer, int], None]


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def listen_address(value: str) -> tuple[str, int]:
    """``ADDR:PORT`` (IPv4) -> (host, port); ValueError with the fix otherwise."""
    host, sep, port = value.rpartition(":")
    try:
        socket.inet_aton(host)
    except OSError:
        sep = ""
    if not sep or host.count(".") != 3 or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r}: give ADDR:PORT, e.g. 192.0.2.60:5419")
    return host, int(port)


def read_secret_file(path: str) -> bytes:
    """A ``--witness-secret`` file's key; ValueError (with the path) when unusable."""
    try:
        with open(path, "rb") as fh:
            return wire.read_secret(fh.read())
    except OSError as exc:
        raise ValueError(f"--witness-secret {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ValueError(f"--witness-secret {path}: {exc}") from exc


@dataclass(slots=True)
class _Pending:
    sent_ms: int
    relationship: str
    role: str
    callback: AnswerCallback


class WitnessClient(asyncio.DatagramProtocol):
    """Requests to the witness, answers to their callbacks."""

    def __init__(
        self,
        address: tuple[str, int],
        secret: bytes | None,
        *,
        clock: Callable[[], int] = monotonic_ms,
    ) -> None:
        self.address = address
        self.secret = secret
        self.clock = clock
        self.transport: asyncio.DatagramTransport | None = None
        self._pending: dict[int, _Pending] = {}
        # Increasing across restarts too: the witness drops an id not above the last it saw.
        self._last_id = time.time_ns() // 1000
        self.sent = 0
        self.answered = 0
        self.drops: Counter[str] = Counter()
        self.last_answer_ms: int | None = None
        self.last_error: str | None = None

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            await loop.create_datagram_endpoint(lambda: self, remote_addr=self.address)
        except OSError as exc:
            self.last_error = f"witness {self.address[0]}:{self.address[1]}: {exc.strerror}"
            log.error("%s (auto-partner-down without its witness)", self.last_error)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable: witness not there
        self.drops["unreachable" if isinstance(exc, ConnectionRefusedError) else "error"] += 1
        self.last_error = str(exc)

    def ask(
        self,
        relationship: str,
        role: str,
        want_partner_down: bool,
        callback: AnswerCallback,
        mclt_s: int = 0,
    ) -> int | None:
        """Send one request; its id, or None when it could not leave (counted)."""
        now = self.clock()
        self._last_id = max(self._last_id + 1, time.time_ns() // 1000)
        rid = self._last_id
        request = wire.WitnessRequest(relationship, role, rid, want_partner_down, mclt_s)
        if self.transport is None:
            self.drops["no-socket"] += 1
            return None
        self.transport.sendto(wire.encode(request, self.secret))
        self.sent += 1
        self._pending[rid] = _Pending(now, relationship, role, callback)
        self._prune(now)
        return rid

    def _prune(self, now: int) -> None:
        pending = self._pending
        while pending:
            rid, first = next(iter(pending.items()))
            if len(pending) <= PENDING_MAX and now - first.sent_ms <= PENDING_MS:
                break
            del pending[rid]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.receive(data)

    def receive(self, data: bytes) -> bool:
        """One datagram from the witness: an answer handed on (True), or a counted drop."""
        try:
            msg = wire.decode(data, self.secret)
        except wire.WitnessDropped as exc:
            self.drops[exc.reason] += 1
            return False
        if not isinstance(msg, wire.WitnessAnswer):
            self.drops["not-an-answer"] += 1
            return False
        pending = self._pending.get(msg.request_id)
        if pending is None:
            self.drops["stale-id"] += 1
            return False
        if (pending.relationship, pending.role) != (msg.relationship, msg.role):
            self.drops["wrong-relationship"] += 1
            return False
        # Every older request is answered by this one (or lost): forget them too, so an
        # answer that comes late can never count from an earlier send time.
        key = (msg.relationship, msg.role)
        for rid, p in list(self._pending.items()):
            if rid <= msg.request_id and (p.relationship, p.role) == key:
                del self._pending[rid]
        self.answered += 1
        self.last_answer_ms = self.clock()
        pending.callback(msg, pending.sent_ms)
        return True

    def status(self) -> dict[str, object]:
        return {
            "address": f"{self.address[0]}:{self.address[1]}",
            "authenticated": self.secret is not None,
            "sent": self.sent,
            "answered": self.answered,
            "dropped": dict(self.drops),
            "error": self.last_error,
        }


__all__ = ["WitnessClient", "listen_address", "monotonic_ms", "read_secret_file"]
