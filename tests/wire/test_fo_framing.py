"""FrameBuffer: whole messages out of an arbitrary chunking of the TCP stream."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.wire.failover import FailoverProtocolError
from tandem.wire.framing import FrameBuffer


def frame(mtype: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HBBII", 12 + len(payload), mtype, 12, 0, mtype) + payload


A = frame(11)
B = frame(10, b"\x00\x18\x00\x01\x02")
C = frame(3, b"\x00\x02\x00\x04\x0a\x00\x00\x01" * 200)


def test_several_messages_in_one_segment() -> None:
    buf = FrameBuffer()
    buf.feed(A + B + C[:100])
    assert list(buf) == [A, B]
    assert len(buf) == 100
    buf.feed(C[100:])
    assert list(buf) == [C]
    assert len(buf) == 0


def test_one_byte_at_a_time() -> None:
    buf = FrameBuffer()
    out = []
    for byte in A + B + C:
        buf.feed(bytes([byte]))
        out.extend(buf)
    assert out == [A, B, C]


@pytest.mark.parametrize("length", [0, 1, 11, 2049, 0xFFFF])
def test_bad_declared_length_fails_at_once(length: int) -> None:
    buf = FrameBuffer()
    prefix = struct.pack("!H", length)
    buf.feed(prefix[:1])  # half a prefix: nothing to judge yet
    with pytest.raises(FailoverProtocolError) as info:
        buf.feed(prefix[1:])  # no body needed to refuse it
    assert info.value.reason == "bad-length"
    with pytest.raises(FailoverProtocolError):  # poisoned: the link must be closed
        next(buf)
    with pytest.raises(FailoverProtocolError):
        buf.feed(A)


def test_bad_length_behind_good_messages_is_caught_on_feed() -> None:
    buf = FrameBuffer()
    with pytest.raises(FailoverProtocolError):
        buf.feed(A + b"\x08\x01")  # second prefix says 2049
    assert len(buf) == 0


def test_buffer_is_bounded() -> None:
    buf = FrameBuffer(max_buffered=4096)
    buf.feed(A * 300)  # 3600 bytes of complete messages, not drained
    with pytest.raises(FailoverProtocolError) as info:
        buf.feed(A * 50)
    assert info.value.reason == "buffer-full"
    with pytest.raises(ValueError):
        FrameBuffer(max_buffered=100)


def test_drained_buffer_accepts_more_than_the_cap_over_time() -> None:
    buf = FrameBuffer(max_buffered=4096)
    total = 0
    for _ in range(100):
        buf.feed(C)
        total += len(list(buf))
    assert total == 100


@given(st.lists(st.integers(min_value=0, max_value=len(A + B + C)), max_size=20))
def test_random_chunking_yields_the_same_messages(cuts: list[int]) -> None:
    stream = A + B + C + A
    points = sorted({0, len(stream), *(c for c in cuts if c <= len(stream))})
    buf = FrameBuffer()
    out: list[bytes] = []
    for start, end in itertools.pairwise(points):
        buf.feed(stream[start:end])
        out.extend(buf)
    assert out == [A, B, C, A]
    assert len(buf) == 0


def test_drain_returns_every_complete_message_of_a_read_in_order() -> None:
    buf = FrameBuffer()
    buf.feed(A + B + A + C[:100])
    assert buf.drain() == [A, B, A]
    assert len(buf) == 100 and buf.drain() == []
    buf.feed(C[100:] + B)
    assert buf.drain() == [C, B]
    assert len(buf) == 0 and buf.drain() == []


def test_drain_keeps_a_message_split_across_reads() -> None:
    buf = FrameBuffer()
    buf.feed(B[:1])  # not even the length yet
    assert buf.drain() == []
    buf.feed(B[1:7])
    assert buf.drain() == []
    buf.feed(B[7:] + A[:3])
    assert buf.drain() == [B]
    buf.feed(A[3:])
    assert buf.drain() == [A]


def test_a_failed_stream_drains_nothing() -> None:
    buf = FrameBuffer()
    with pytest.raises(FailoverProtocolError):
        buf.feed(A + b"\x00\x05")  # a declared length of 5 behind a good message
    with pytest.raises(FailoverProtocolError):
        buf.drain()  # not even the good message before it: the link is being closed


@given(st.lists(st.integers(min_value=0, max_value=len(A + B + C)), max_size=20))
def test_drain_and_iteration_agree_on_any_chunking(cuts: list[int]) -> None:
    stream = A + B + C + A
    points = sorted({0, len(stream), *(c for c in cuts if c <= len(stream))})
    by_drain, by_iter = FrameBuffer(), FrameBuffer()
    out_drain: list[bytes] = []
    out_iter: list[bytes] = []
    for start, end in itertools.pairwise(points):
        by_drain.feed(stream[start:end])
        out_drain.extend(by_drain.drain())
        by_iter.feed(stream[start:end])
        out_iter.extend(by_iter)
        assert len(by_drain) == len(by_iter)
    assert out_drain == out_iter == [A, B, C, A]
