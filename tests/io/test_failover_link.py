"""The failover link layer over real loopback TCP, with a scripted engine in place of the real one.

Addresses: 127.0.0.1 plays "us", 127.0.0.2 the configured peer, 127.0.0.3 a stranger (the whole
127/8 is on lo, so a socket can bind to any of them as its source).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Literal

import pytest

from tandem.config.model import FailoverPeer
from tandem.core.lease import BindingState, FailoverStateRecord, Lease
from tandem.io.commit import GroupCommit
from tandem.io.failover_link import FailoverLink, Timing
from tandem.io.failover_listen import FailoverLinks
from tandem.store.journal import JournalError, LeaseJournal, PendingChunk

pytestmark = pytest.mark.timeout(60)

US, PEER, STRANGER = "127.0.0.1", "127.0.0.2", "127.0.0.3"
FAST = Timing(
    reconnect_after_drop=0.2,
    reconnect_after_failure=0.5,
    connect_timeout=2.0,
    pending_timeout=0.5,
    listen_retry=0.5,
    max_pending=2,
)


def free_port(addr: str) -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return int(s.getsockname()[1])


class ScriptedEngine:
    """Stands in for FailoverEngine: records calls, answers by a tiny script.

    * on connection_made it queues ``greeting`` (a primary's CONNECT);
    * every received chunk is echoed back as b"ack:" + data;
    * a chunk containing b"lease" makes it persist a lease first (a BNDUPD it must ack);
    * a chunk containing b"bye" sets close_reason after queueing b"last-words".
    """

    def __init__(self, name: str, greeting: bytes = b"") -> None:
        self.name = name
        self.greeting = greeting
        self.events: list[str] = []
        self.received = bytearray()
        self._out = bytearray()
        self._reason: str | None = None
        self._writes: list[Lease] = []
        self._states: list[FailoverStateRecord] = []
        self._log: list[str] = []
        self.timer: int | None = None
        self.timer_fired: list[int] = []

    def connection_made(self, now: int) -> None:
        self.events.append("made")
        self._reason = None
        self._out += self.greeting

    def connection_lost(self, now: int) -> None:
        self.events.append("lost")
        self._log.append(
            f"failover peer {self.name}: I move from normal to communications-interrupted"
        )

    def receive_data(self, data: bytes, now: int) -> None:
        self.received += data
        if b"lease" in data:
            self._writes.append(
                Lease(IPv4Address("192.0.2.150"), BindingState.ACTIVE, starts=now, ends=now + 60)
            )
            self._states.append(FailoverStateRecord(self.name, "normal", now, "normal", now))
        self._out += b"ack:" + data
        if b"bye" in data:
            self._out += b"last-words"
            self._reason = "peer asked to close"

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def close_reason(self) -> str | None:
        return self._reason

    def get_timer(self) -> int | None:
        return self.timer

    def handle_timer(self, now: int) -> None:
        self.timer_fired.append(now)
        self.timer = None

    def partner_down(self, now: int) -> None:
        self.events.append("partner-down")

    def status(self) -> dict[str, object]:
        return {"my_state": "normal", "events": list(self.events)}

    def take_writes(self) -> tuple[list[Lease], list[FailoverStateRecord]]:
        writes, states = self._writes, self._states
        self._writes, self._states = [], []
        return writes, states

    def take_log(self) -> list[str]:
        lines, self._log = self._log, []
        return lines


def make_peer(
    role: Literal["primary", "secondary"], port: int, peer_port: int, name: str = "fo"
) -> FailoverPeer:
    return FailoverPeer(
        name=name,
        role=role,
        address=IPv4Address(US),
        peer_address=IPv4Address(PEER),
        port=port,
        peer_port=peer_port,
        mclt=60 if role == "primary" else None,
        split=128 if role == "primary" else None,
    )


async def wait_until(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    return await asyncio.wait_for(reader.readexactly(n), 5)


class Rig:
    def __init__(self, tmp: Path, role: Literal["primary", "secondary"], greeting: bytes = b""):
        self.port = free_port(US)
        self.peer_port = free_port(PEER)
        self.engine = ScriptedEngine("fo", greeting)
        self.journal = LeaseJournal(tmp / "leases", fsync=False)
        self.journal.load()
        self.commit = GroupCommit(self.journal)  # never started: every commit is inline
        self.lines: list[str] = []
        self.links = FailoverLinks(
            [(self.engine, make_peer(role, self.port, self.peer_port))],
            self.commit,
            self.lines.extend,
            timing=FAST,
        )

    @property
    def link(self) -> FailoverLink:
        return self.links.links["fo"]


def run(tmp: Path, body: Callable[[Path], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(tmp), 30))


def test_primary_dials_from_its_address_and_persists_before_sending(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        rig = Rig(tmp, "primary", greeting=b"CONNECT")
        seen: list[tuple[str, bytes, str]] = []
        done = asyncio.Event()

        async def peer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            src = w.get_extra_info("peername")[0]
            seen.append((src, await read_exactly(r, 7), ""))
            w.write(b"lease!")
            await w.drain()
            reply = await read_exactly(r, len(b"ack:lease!"))
            # The ack may only leave once the lease is in the lease file.
            seen.append((src, reply, rig.journal.path and Path(rig.journal.path).read_text()))
            done.set()
            await r.read()  # hold the link open until the test ends

        srv = await asyncio.start_server(peer, PEER, rig.peer_port)
        rig.links.start(asyncio.get_running_loop())
        await asyncio.wait_for(done.wait(), 5)
        assert seen[0][:2] == (US, b"CONNECT")
        assert seen[1][1] == b"ack:lease!"
        assert "lease 192.0.2.150 {" in seen[1][2]
        assert 'failover peer "fo" state {' in seen[1][2]
        assert rig.engine.events == ["made"]
        status = rig.links.status()["fo"]
        assert isinstance(status, dict)
        assert status["tcp"]["connected"] and status["tcp"]["direction"] == "outgoing"  # type: ignore[index]
        rig.links.close()
        srv.close()

    run(tmp_path, body)


def test_inbound_from_a_stranger_is_closed_before_any_state(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        rig = Rig(tmp, "secondary")
        rig.links.start(asyncio.get_running_loop())
        await wait_until(lambda: rig.links.listeners[0].sock is not None)
        r, w = await asyncio.open_connection(US, rig.port, local_addr=(STRANGER, 0))
        assert await asyncio.wait_for(r.read(), 5) == b""  # closed at once, nothing said
        w.close()
        assert rig.links.listeners[0].refused_foreign == 1
        assert rig.link.counters.accepted == 0
        assert rig.engine.events == []
        rig.links.close()

    run(tmp_path, body)


def test_secondary_attaches_the_first_connection_that_speaks(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        rig = Rig(tmp, "secondary")
        rig.links.start(asyncio.get_running_loop())
        await wait_until(lambda: rig.links.listeners[0].sock is not None)
        r1, w1 = await asyncio.open_connection(US, rig.port, local_addr=(PEER, 0))
        r2, w2 = await asyncio.open_connection(US, rig.port, local_addr=(PEER, 0))
        await wait_until(lambda: len(rig.link.pending) == 2)
        assert rig.engine.events == []  # a secondary waits for CONNECT
        w2.write(b"CONNECT")
        assert await read_exactly(r2, 11) == b"ack:CONNECT"
        assert await asyncio.wait_for(r1.read(), 5) == b""  # the loser is closed
        assert rig.engine.events == ["made"]
        # A third connection while attached is closed too (ISC: reject 7, close).
        r3, w3 = await asyncio.open_connection(US, rig.port, local_addr=(PEER, 0))
        w3.write(b"CONNECT")
        assert await asyncio.wait_for(r3.read(), 5) == b""
        assert rig.engine.received == b"CONNECT"
        assert rig.link.counters.refused_duplicate >= 2
        for w in (w1, w2, w3):
            w.close()
        rig.links.close()

    run(tmp_path, body)


def test_pending_connections_time_out_and_are_capped(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        rig = Rig(tmp, "secondary")
        rig.links.start(asyncio.get_running_loop())
        await wait_until(lambda: rig.links.listeners[0].sock is not None)
        conns = [
            await asyncio.open_connection(US, rig.port, local_addr=(PEER, 0)) for _ in range(3)
        ]
        # max_pending=2: the third is refused at once, the other two time out (slowloris).
        results = await asyncio.gather(*(asyncio.wait_for(r.read(), 5) for r, _ in conns))
        assert results == [b"", b"", b""]
        assert rig.link.counters.refused_pending_cap == 1
        assert rig.link.counters.pending_timeouts == 2
        assert rig.link.pending == []
        assert rig.engine.events == []
        for _, w in conns:
            w.close()
        rig.links.close()

    run(tmp_path, body)


def test_close_reason_flushes_then_closes_and_redials_after_drop(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        rig = Rig(tmp, "primary", greeting=b"HI")
        accepted: list[asyncio.StreamReader] = []
        got: list[bytes] = []

        async def peer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            accepted.append(r)
            await read_exactly(r, 2)
            if len(accepted) == 1:
                w.write(b"bye")
                got.append(await asyncio.wait_for(r.read(), 5))  # everything up to EOF
            else:
                await r.read()

        srv = await asyncio.start_server(peer, PEER, rig.peer_port)
        rig.links.start(asyncio.get_running_loop())
        await wait_until(lambda: len(accepted) == 2)
        assert got == [b"ack:byelast-words"]
        assert rig.engine.events == ["made", "lost", "made"]
        assert rig.link.counters.closed_by_engine == 1
        assert any("disconnected" in line for line in rig.lines)
        rig.links.close()
        srv.close()

    run(tmp_path, body)


def test_failed_dials_back_off(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        rig = Rig(tmp, "primary")
        rig.links.start(asyncio.get_running_loop())  # nobody listens on the peer port
        await asyncio.sleep(1.3)
        # t=0, 0.5, 1.0: three attempts at the failure cadence, not a tight loop.
        assert 2 <= rig.link.counters.dial_failures <= 4
        assert rig.link.counters.dials == rig.link.counters.dial_failures
        assert rig.engine.events == []
        rig.links.close()

    run(tmp_path, body)


def test_primary_closes_a_second_inbound_connection(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        rig = Rig(tmp, "primary", greeting=b"CONNECT")
        # Listen on the peer port ourselves so the primary's own dial succeeds and attaches.
        dialled: list[asyncio.StreamReader] = []

        async def peer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            dialled.append(r)
            await r.read()

        srv = await asyncio.start_server(peer, PEER, rig.peer_port)
        rig.links.start(asyncio.get_running_loop())
        await wait_until(lambda: rig.link.attached is not None)
        r, w = await asyncio.open_connection(US, rig.port, local_addr=(PEER, 0))
        assert await asyncio.wait_for(r.read(), 5) == b""
        assert rig.link.counters.refused_duplicate == 1
        assert rig.engine.events == ["made"]
        w.close()
        rig.links.close()
        srv.close()

    run(tmp_path, body)


def test_engine_timer_and_partner_down(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        rig = Rig(tmp, "primary")
        now = int(time.time())
        rig.engine.timer = now + 1
        rig.links.start(asyncio.get_running_loop())
        await wait_until(lambda: bool(rig.engine.timer_fired), timeout=3)
        assert rig.engine.timer_fired[0] >= now + 1
        rig.links.partner_down("fo")
        assert rig.engine.events[-1] == "partner-down"
        with pytest.raises(KeyError):
            rig.links.partner_down("nope")
        rig.links.close()

    run(tmp_path, body)


def fail_next_writes(journal: LeaseJournal) -> list[int]:
    """Make the journal's next N chunk writes fail (N: the returned list's one item)."""
    failing = [0]
    write = journal.write_chunk

    def write_chunk(chunk: PendingChunk) -> int:
        if failing[0]:
            failing[0] -= 1
            raise JournalError(errno.EIO, "injected write failure")
        return write(chunk)

    journal.write_chunk = write_chunk  # type: ignore[method-assign]
    return failing


def test_a_failed_commit_sends_nothing_and_drops_the_link(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        rig = Rig(tmp, "primary", greeting=b"CONNECT")
        failing = fail_next_writes(rig.journal)
        got = bytearray()
        closed = asyncio.Event()

        async def peer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            got.extend(await read_exactly(r, 7))
            failing[0] = 1
            w.write(b"lease1")
            await wait_until(lambda: rig.commit.withheld == 1)  # the ack of lease1
            w.write(b"lease2")
            got.extend(await asyncio.wait_for(r.read(), 5))
            closed.set()

        srv = await asyncio.start_server(peer, PEER, rig.peer_port)
        rig.links.start(asyncio.get_running_loop())
        await asyncio.wait_for(closed.wait(), 5)
        # Neither ack left: the first was never durable, the second would follow a hole.
        assert bytes(got) == b"CONNECT"
        assert rig.link.counters.journal_errors == 1
        assert rig.commit.failures == 1 and failing == [0]
        rig.links.close()
        srv.close()

    run(tmp_path, body)


def test_listener_retries_when_its_address_is_missing(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        journal = LeaseJournal(tmp / "leases", fsync=False)
        journal.load()
        peer = FailoverPeer(
            name="fo",
            role="secondary",
            address=IPv4Address("192.0.2.77"),  # not on any interface here
            peer_address=IPv4Address(PEER),
            port=free_port(US),
            peer_port=free_port(PEER),
        )
        links = FailoverLinks(
            [(ScriptedEngine("fo"), peer)], GroupCommit(journal), lambda lines: None, timing=FAST
        )
        links.start(asyncio.get_running_loop())
        await asyncio.sleep(0.1)
        status = links.listener_status()[0]
        assert status["listening"] is False and status["error"]
        links.close()

    run(tmp_path, body)


class HeldDurability:
    """Stands in for the link's ``GroupCommit``: holds every action until ``release``, so a
    test can look between 'appended' and 'sent' (as if every sync took until then)."""

    def __init__(self, journal: LeaseJournal) -> None:
        self.journal = journal
        self.held: list[Callable[[], None]] = []

    def after_durable(self, action: Callable[[], None]) -> None:
        self.held.append(action)

    def release(self) -> None:
        self.journal.commit()
        actions, self.held = self.held, []
        for action in actions:
            action()


def test_nothing_leaves_before_the_commit_and_order_is_kept(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        rig = Rig(tmp, "primary", greeting=b"CONNECT")
        held = HeldDurability(rig.journal)
        rig.link.commit = held  # type: ignore[assignment]
        got = bytearray()
        peer_ready = asyncio.Event()
        writer: list[asyncio.StreamWriter] = []

        async def peer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            writer.append(w)
            peer_ready.set()
            while chunk := await r.read(100):
                got.extend(chunk)

        srv = await asyncio.start_server(peer, PEER, rig.peer_port)
        rig.links.start(asyncio.get_running_loop())
        await asyncio.wait_for(peer_ready.wait(), 5)
        await wait_until(lambda: len(held.held) == 1)  # the CONNECT, waiting its turn
        writer[0].write(b"lease")
        await wait_until(lambda: len(held.held) == 2)
        writer[0].write(b"x")  # nothing to persist, yet its ack must not overtake the held one
        await wait_until(lambda: len(held.held) == 3)
        await asyncio.sleep(0.2)
        assert got == b""
        assert rig.journal.pending == 2  # the lease and the state record, not yet durable
        held.release()
        await wait_until(lambda: bytes(got) == b"CONNECTack:leaseack:x")
        assert "lease 192.0.2.150 {" in Path(rig.journal.path).read_text()
        rig.links.close()
        srv.close()

    run(tmp_path, body)
