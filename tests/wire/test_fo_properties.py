"""Hypothesis: codec round trips, decoder totality, framer against random input."""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address

from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.wire.failover import (
    ALLOWED_OPTIONS,
    HBA_SIZE,
    OPTION_SPECS,
    FailoverEncodeError,
    FailoverProtocolError,
    Kind,
    Message,
    OptionValue,
    decode_message,
    encode_message,
)
from tandem.wire.failover_codes import MessageType, OptionCode
from tandem.wire.framing import FrameBuffer

_SENDABLE = {OptionCode.DDNS, OptionCode.MESSAGE_DIGEST}


def _value(code: OptionCode) -> st.SearchStrategy[OptionValue]:
    kind = OPTION_SPECS[code].kind
    if kind is Kind.U8:
        return st.integers(0, 0xFF)
    if kind is Kind.U16:
        return st.integers(0, 0xFFFF)
    if kind is Kind.U32:
        return st.integers(0, 0xFFFFFFFF)
    if kind is Kind.IPV4:
        return st.integers(0, 0xFFFFFFFF).map(IPv4Address)
    if kind is Kind.HBA:
        return st.binary(min_size=HBA_SIZE, max_size=HBA_SIZE)
    if kind is Kind.TEXT:
        return st.binary(max_size=60).map(lambda b: b.decode("utf-8", "surrogateescape"))
    return st.binary(max_size=60)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    mtype = draw(st.sampled_from(list(MessageType)))
    codes = sorted(ALLOWED_OPTIONS[mtype] - _SENDABLE)
    chosen = draw(st.lists(st.sampled_from(codes), unique=True) if codes else st.just([]))
    options = {code: draw(_value(code)) for code in chosen}
    return Message(
        mtype, draw(st.integers(0, 0xFFFFFFFF)), draw(st.integers(0, 0xFFFFFFFF)), options
    )


@settings(max_examples=400)
@given(messages())
def test_encode_decode_round_trip(msg: Message) -> None:
    raw = encode_message(msg)
    back = decode_message(raw)
    assert back == msg
    assert list(back.options) == list(msg.options)  # order is kept
    assert encode_message(back) == raw


@settings(max_examples=1000)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_protocol_errors(data: bytes) -> None:
    try:
        msg = decode_message(data)
    except FailoverProtocolError:
        return
    try:
        raw = encode_message(msg)
    except FailoverEncodeError:
        return  # e.g. an odd-length HBA, which ISC refuses only at CONNECT time
    assert decode_message(raw) == msg  # what we accepted survives normalisation


@settings(max_examples=500)
@given(
    st.integers(0, 255),
    st.lists(st.tuples(st.integers(0, 40), st.binary(max_size=40)), max_size=12),
)
def test_random_option_soup_raises_only_protocol_errors(
    mtype: int, options: list[tuple[int, bytes]]
) -> None:
    body = b"".join(c.to_bytes(2, "big") + len(d).to_bytes(2, "big") + d for c, d in options)
    data = (12 + len(body)).to_bytes(2, "big") + bytes([mtype, 12]) + bytes(8) + body
    with contextlib.suppress(FailoverProtocolError):
        msg = decode_message(data)
        allowed = ALLOWED_OPTIONS.get(mtype, frozenset())
        assert set(msg.options) <= allowed  # skipped options never leak through


@settings(max_examples=200)
@given(st.lists(messages(), min_size=1, max_size=6), st.data())
def test_framer_with_random_chunking(msgs: list[Message], data: st.DataObject) -> None:
    raws = [encode_message(m) for m in msgs]
    stream = b"".join(raws)
    buf = FrameBuffer()
    out: list[bytes] = []
    pos = 0
    while pos < len(stream):
        step = data.draw(st.integers(1, 700))
        buf.feed(stream[pos : pos + step])
        pos += step
        out.extend(buf)
    assert out == raws
    assert [decode_message(r) for r in out] == msgs


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=100), max_size=20))
def test_framer_on_garbage_raises_only_protocol_errors(chunks: list[bytes]) -> None:
    buf = FrameBuffer()
    try:
        for chunk in chunks:
            buf.feed(chunk)
            for raw in buf:
                assert 12 <= len(raw) <= 2048
    except FailoverProtocolError:
        pass
