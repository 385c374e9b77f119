"""``tandem witness``: the third party that lets at most one peer of a relationship be in
PARTNER-DOWN at a time (auto-partner-down).

A small UDP service for any third host (a router, a Raspberry Pi): peers ask with
``wire/witness.py`` requests, the decision table is ``core/witness.py``, and this module is
only its edge:

* one UDP socket on ``--listen ADDR:PORT``; every datagram is decoded and its MAC checked
  (``--witness-secret FILE``, the same file as the peers'); junk, a bad or missing MAC, an
  answer sent to us, and a request id not above the last one seen from that (relationship,
  role) are dropped and counted by reason, and logged at most once a second per reason;
* the table's record (who holds or last held a grant, the MCLT; ``core/witness.py``) and the
  last request ids are written to ``--state FILE`` and made durable (temporary file, fsync,
  rename, fsync of the directory) before an answer that changed the record leaves, so a grant
  the witness forgets in a crash never left; the file is written at the first start;
* after its own restart the table grants nothing new until every ticket it may have given
  could have expired, and the saved holder keeps its grant (``core/witness.py``'s restart
  rule); a missing state file is a first start, an unreadable one refuses to start (it may
  hide a grant).

Log lines say what a peer's admin needs: ``witness: failover peer NAME: partner-down granted
to secondary for 12 s``, ``witness: failover peer NAME: partner-down refused to primary:
partner holds the grant`` (once per reason), ``witness: restarted: granting nothing new for
N ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from tandem.core import witness as table
from tandem.io.witness_client import listen_address, read_secret_file
from tandem.wire import witness as wire

log = logging.getLogger("tandem")

DROP_LOG_INTERVAL = 1.0  # seconds between two lines about drops of one reason
STATE_VERSION = 1


class WitnessStateError(Exception):
    """The state file exists but cannot be read: refuse to start (it may hold a grant)."""


def read_state(path: Path) -> dict[str, object] | None:
    """The saved record, None when the file does not exist (a first start)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WitnessStateError(f"{path}: {exc.strerror}") from exc
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise WitnessStateError(f"{path}: not a witness state file ({exc})") from exc
    if not isinstance(record, dict) or record.get("version") != STATE_VERSION:
        raise WitnessStateError(f"{path}: not a version {STATE_VERSION} witness state file")
    return record


def write_state(path: Path, record: dict[str, object]) -> None:
    """``record`` on disk, durably: temporary file, fsync, rename, fsync of the directory."""
    tmp = path.with_name(path.name + ".tmp")
    data = json.dumps(record, sort_keys=True).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class WitnessServer(asyncio.DatagramProtocol):
    """The witness's socket around its table."""

    def __init__(
        self,
        state_path: Path,
        secret: bytes | None,
        *,
        clock: Callable[[], int] = monotonic_ms,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.state_path = state_path
        self.secret = secret
        self.clock = clock
        self.wall = wall
        self.transport: asyncio.DatagramTransport | None = None
        self.received = 0
        self.answered = 0
        self.drops: Counter[str] = Counter()
        self._drop_logged: dict[str, float] = {}
        self.last_ids: dict[tuple[str, str], int] = {}
        self._refusals: dict[tuple[str, str], str] = {}
        saved = read_state(state_path)
        now = clock()
        #: After a restart: granting nothing until every saved ticket/grant could have expired.
        self.restarted = saved is not None
        if saved is None:
            self.table = table.Witness(now=now)
        else:
            ids = saved.get("last_ids", {})
            for key, value in (ids if isinstance(ids, dict) else {}).items():
                rel, _, role = str(key).rpartition("/")
                if isinstance(value, int):
                    self.last_ids[rel, role] = value
            record = saved.get("table")
            try:
                self.table = table.Witness(
                    now=now, record=record if isinstance(record, dict) else {}
                )
            except table.RecordError as exc:
                raise WitnessStateError(f"{state_path}: {exc}") from exc
        self._persist()  # the state file exists from the first start on (a lost one is loud)

    def _persist(self) -> None:
        record: dict[str, object] = {
            "version": STATE_VERSION,
            "saved_at": self.wall(),
            "table": self.table.to_record(),
            "last_ids": {f"{rel}/{role}": rid for (rel, role), rid in self.last_ids.items()},
        }
        write_state(self.state_path, record)

    def hold_ms(self, now: int) -> int:
        left = self.table.status(now).get("hold_ms_left")
        return left if isinstance(left, int) else 0

    def tick(self) -> None:
        """Housekeeping: grants ending, cool-downs over (persisted, not urgent)."""
        if self.table.tick(self.clock()):
            try:
                self._persist()
            except OSError as exc:
                log.error("witness: cannot write %s: %s", self.state_path, exc)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.received += 1
        answer = self.handle(data, addr[0])
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)
            self.answered += 1

    def handle(self, data: bytes, source: str) -> bytes | None:
        """One datagram in, the answer's bytes out (None: dropped, counted)."""
        try:
            msg = wire.decode(data, self.secret)
        except wire.WitnessDropped as exc:
            self._drop(exc.reason, source)
            return None
        if not isinstance(msg, wire.WitnessRequest):
            self._drop("not-a-request", source)
            return None
        key = (msg.relationship, msg.role)
        last = self.last_ids.get(key)
        if last is not None and msg.request_id <= last:
            self._drop("stale-id", source)
            return None
        now = self.clock()
        self.last_ids[key] = msg.request_id
        role: table.Role = "primary" if msg.role == "primary" else "secondary"
        request = table.WitnessRequest(msg.relationship, role, msg.want_partner_down, msg.mclt_s)
        decision, changed = self.table.handle(request, now=now)
        if decision.grant_ms and decision.reason == "granted":
            log.info(
                "witness: failover peer %s: partner-down granted to %s for %g s",
                msg.relationship,
                msg.role,
                decision.grant_ms / 1000,
            )
        elif msg.want_partner_down and not decision.grant_ms:
            self._refused(msg.relationship, msg.role, decision.reason)
        if changed:
            # Durable before the answer leaves: a grant the witness could forget in a crash
            # must never have been seen by a peer.
            try:
                self._persist()
            except OSError as exc:
                self._drop("state-write-error", source)
                log.error("witness: cannot write %s: %s (not answering)", self.state_path, exc)
                return None
        answer = wire.WitnessAnswer(
            msg.relationship,
            msg.role,
            msg.request_id,
            ticket_ms=decision.ticket_ms,
            grant_ms=decision.grant_ms,
            hold_ms=self.hold_ms(now) if decision.reason == "restart hold" else 0,
            partner_alive=decision.reason == "partner alive",
            partner_granted=decision.partner_grant,
        )
        return wire.encode(answer, self.secret)

    def _refused(self, relationship: str, role: str, reason: str) -> None:
        """One line per (relationship, role, reason) change: refusals repeat every T/3."""
        key = (relationship, role)
        if self._refusals.get(key) != reason:
            self._refusals[key] = reason
            log.info(
                "witness: failover peer %s: partner-down refused to %s: %s",
                relationship,
                role,
                reason,
            )

    def _drop(self, reason: str, source: str) -> None:
        self.drops[reason] += 1
        now = time.monotonic()
        last = self._drop_logged.get(reason)
        if last is None or now - last >= DROP_LOG_INTERVAL:
            self._drop_logged[reason] = now
            log.info(
                "witness: dropped a datagram from %s: %s (%d so far)",
                source,
                reason,
                self.drops[reason],
            )


def _saved_at(saved: dict[str, object], now: float) -> float:
    value = saved.get("saved_at")
    return float(value) if isinstance(value, (int, float)) else now


def run_witness(listen: str, state: str, secret_file: str | None) -> int:
    """``tandem witness``: serve until SIGTERM/SIGINT; exit status 1 on a start-up failure."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        host, port = listen_address(listen)
        secret = read_secret_file(secret_file) if secret_file else None
        server = WitnessServer(Path(state), secret)
    except (ValueError, WitnessStateError, OSError) as exc:
        print(f"tandem witness: {exc}", file=sys.stderr)
        print("exiting.", file=sys.stderr)
        return 1
    if secret is None:
        log.info("witness: no --witness-secret: datagrams are not authenticated")
    return asyncio.run(_serve(server, host, port))


async def _serve(server: WitnessServer, host: str, port: int) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        transport, _ = await loop.create_datagram_endpoint(lambda: server, local_addr=(host, port))
    except OSError as exc:
        print(f"tandem witness: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        print("exiting.", file=sys.stderr)
        return 1
    hold = server.hold_ms(server.clock())
    log.info("witness: listening on %s:%d, state in %s", host, port, server.state_path)
    if server.restarted:
        log.info("witness: restarted: granting nothing new for %d ms (saved grants kept)", hold)
    log.info("Witness starting service.")
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            server.tick()
    finally:
        transport.close()
        with contextlib.suppress(OSError):
            server._persist()
    return 0


__all__ = ["WitnessServer", "WitnessStateError", "run_witness"]
