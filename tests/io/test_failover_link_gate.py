"""The link's fast path: output that depends on no fresh record leaves without waiting for a sync.

Issue 3 (a fresh 60,000-address pair took 20-30 s to balance): each window of BNDACKs made the
primary sync their bookkeeping before the next window of BNDUPDs left, two syncs in series per
round trip. These tests pin what the fast path may and may not do.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_failover_link import PEER, HeldDurability, Rig, ScriptedEngine, run, wait_until

pytestmark = pytest.mark.timeout(60)


class GatedEngine(ScriptedEngine):
    """ScriptedEngine whose output depends on its writes unless the input said b"ackonly"."""

    def __init__(self, name: str, greeting: bytes = b"") -> None:
        super().__init__(name, greeting)
        self.gated = True

    def receive_data(self, data: bytes, now: int) -> None:
        self.gated = b"ackonly" not in data
        super().receive_data(data, now)

    def output_needs_commit(self) -> bool:
        return self.gated


def gated_rig(tmp: Path) -> tuple[Rig, GatedEngine, HeldDurability]:
    rig = Rig(tmp, "primary", greeting=b"CONNECT")
    engine = GatedEngine("fo", b"CONNECT")
    rig.engine = engine
    rig.link.engine = engine
    held = HeldDurability(rig.journal)
    rig.link.commit = held  # type: ignore[assignment]
    return rig, engine, held


class FakePeer:
    """The partner's end of the link: accepts it and records every byte it sends."""

    def __init__(self) -> None:
        self.got = bytearray()
        self.writers: list[asyncio.StreamWriter] = []

    async def serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.writers.append(w)
        while chunk := await r.read(100):
            self.got.extend(chunk)

    def write(self, data: bytes) -> None:
        self.writers[0].write(data)


async def connected(rig: Rig, held: HeldDurability) -> tuple[FakePeer, asyncio.Server]:
    """Start the rig's links against a FakePeer and let the CONNECT through."""
    peer = FakePeer()
    srv = await asyncio.start_server(peer.serve, PEER, rig.peer_port)
    rig.links.start(asyncio.get_running_loop())
    await wait_until(lambda: len(held.held) == 1 and bool(peer.writers))
    held.release()  # the CONNECT
    await wait_until(lambda: bytes(peer.got) == b"CONNECT")
    return peer, srv


def test_ungated_output_leaves_at_once_and_its_records_are_committed_soon(
    tmp_path: Path,
) -> None:
    async def body(tmp: Path) -> None:
        rig, _engine, held = gated_rig(tmp)
        peer, srv = await connected(rig, held)
        # BNDACK-like input: the engine writes bookkeeping, but its answer depends on none of it.
        peer.write(b"ackonly-lease")
        await wait_until(lambda: bytes(peer.got) == b"CONNECTack:ackonly-lease")
        assert rig.journal.pending == 2  # sent ahead of the records, which are not durable yet
        assert held.held == []  # and no commit was asked for each window
        await wait_until(lambda: len(held.held) == 1)  # LAZY_COMMIT_AFTER later: one commit
        held.release()
        assert rig.journal.pending == 0
        assert "lease 192.0.2.150 {" in Path(rig.journal.path).read_text()
        rig.links.close()
        srv.close()

    run(tmp_path, body)


def test_ungated_output_never_overtakes_a_send_waiting_for_its_sync(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        rig, _engine, held = gated_rig(tmp)
        peer, srv = await connected(rig, held)
        peer.write(b"lease")  # a BNDUPD to ack: its ack waits for the sync
        await wait_until(lambda: len(held.held) == 1)
        peer.write(b"ackonly")  # would be free to go, but must queue behind the held ack
        await wait_until(lambda: len(held.held) == 2)
        await asyncio.sleep(0.1)
        assert bytes(peer.got) == b"CONNECT"
        held.release()
        await wait_until(lambda: bytes(peer.got) == b"CONNECTack:leaseack:ackonly")
        # With nothing held any more, the fast path is open again.
        peer.write(b"ackonly2")
        await wait_until(lambda: bytes(peer.got).endswith(b"ack:ackonly2"))
        assert held.held == []
        rig.links.close()
        srv.close()

    run(tmp_path, body)


def test_an_engine_without_the_hint_is_always_gated(tmp_path: Path) -> None:
    async def body(tmp: Path) -> None:
        rig = Rig(tmp, "primary", greeting=b"CONNECT")  # ScriptedEngine: no output_needs_commit
        held = HeldDurability(rig.journal)
        rig.link.commit = held  # type: ignore[assignment]
        peer, srv = await connected(rig, held)
        peer.write(b"ackonly")
        await wait_until(lambda: len(held.held) == 1)
        await asyncio.sleep(0.1)
        assert bytes(peer.got) == b"CONNECT"
        held.release()
        await wait_until(lambda: bytes(peer.got) == b"CONNECTack:ackonly")
        rig.links.close()
        srv.close()

    run(tmp_path, body)
