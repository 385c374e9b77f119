"""Batching on the failover hot path: a window of BNDUPDs leaves as one write, every message
of one read is handled, a message split across reads is kept, and nothing overtakes the
commit barrier (a BNDACK waits for ``take_writes``)."""

from __future__ import annotations

import itertools

from fokit import T0, Node, dora, fresh_pair, mac, seed_conf

from tandem.wire.failover_codes import MessageType
from tandem.wire.failover_fast import Binding, decode_binding
from tandem.wire.framing import FrameBuffer

POOL = ("192.0.2.10", "192.0.2.250")


def bindings(data: bytes) -> list[Binding]:
    buf = FrameBuffer()
    buf.feed(data)
    out = [decode_binding(f) for f in buf.drain()]
    assert len(buf) == 0, "a write carries whole messages only"
    assert all(isinstance(m, Binding) for m in out)
    return out  # type: ignore[return-value]


def window_after_doras(n: int) -> tuple[Node, Node, list[int], bytes]:
    """A NORMAL, balanced pair; n clients ACKed by the primary; its next write."""
    p, s, pair = fresh_pair(
        primary=seed_conf("primary", pool=POOL), secondary=seed_conf("secondary", pool=POOL)
    )
    pair.connect()
    assert (p.state(), s.state()) == ("normal", "normal")
    acked: list[int] = []
    for i in range(n):
        _, ack = dora(p, mac(100 + i), T0)
        assert ack is not None and ack.reply is not None
        acked.append(int(ack.reply.packet.yiaddr))
    p.engine.take_writes()  # the DHCP batch is committed: the barrier releases its updates
    return p, s, acked, p.engine.data_to_send()


def test_a_window_of_bndupds_is_one_write_in_order() -> None:
    p, _s, acked, data = window_after_doras(25)
    window = p.engine.link.partner_max_unacked
    assert window == 10
    msgs = bindings(data)
    assert [m.type for m in msgs] == [MessageType.BNDUPD] * window
    assert [m.address for m in msgs] == acked[:window]  # the order the leases changed
    xids = [m.xid for m in msgs]
    assert xids == list(range(xids[0], xids[0] + window)) and 0 not in xids
    # The window is full: nothing more leaves until BNDACKs come back.
    p.engine.take_writes()
    assert p.engine.data_to_send() == b""


def _secondary_reads(s: Node, chunks: list[bytes]) -> tuple[int, list[Binding]]:
    eng = s.engine
    for chunk in chunks:
        eng.receive_data(chunk, T0)
        # Applied, not yet durable: no BNDACK may leave before the commit barrier.
        assert eng.data_to_send() == b""
    leases, _ = eng.take_writes()
    return len(leases), bindings(eng.data_to_send())


def test_every_message_of_one_read_is_acked_in_order() -> None:
    _p, s, acked, data = window_after_doras(10)
    written, acks = _secondary_reads(s, [data])
    upds = bindings(data)
    assert written == 10
    assert [a.type for a in acks] == [MessageType.BNDACK] * 10
    assert [(a.xid, a.address) for a in acks] == [(u.xid, u.address) for u in upds]
    assert all(a.reject is None for a in acks)
    assert set(acked) == {u.address for u in upds}


def test_messages_split_across_reads_are_all_acked() -> None:
    _p, s, _acked, data = window_after_doras(10)
    upds = bindings(data)
    # Cut inside the length prefix, inside a header and inside options.
    cuts = [1, 13, 50, 51, 120, 121, 300, len(data) - 1, len(data)]
    chunks = [data[a:b] for a, b in itertools.pairwise([0, *cuts])]
    assert b"".join(chunks) == data
    written, acks = _secondary_reads(s, chunks)
    assert written == 10
    assert [(a.xid, a.address) for a in acks] == [(u.xid, u.address) for u in upds]


def test_acks_open_the_window_for_the_next_write() -> None:
    p, s, acked, data = window_after_doras(25)
    sent: list[int] = []
    for _ in range(3):
        upds = bindings(data)
        sent += [u.address or 0 for u in upds]
        s.engine.receive_data(data, T0)
        s.engine.take_writes()
        p.engine.receive_data(s.engine.data_to_send(), T0)
        p.engine.take_writes()
        data = p.engine.data_to_send()
    assert sent == acked  # 10 + 10 + 5, every lease once, in order
    assert data == b"" and p.engine.status()["unacked_updates"] == 0
