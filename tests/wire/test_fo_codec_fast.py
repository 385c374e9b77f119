"""The BNDUPD/BNDACK fast decoder agrees with the generic decoder on any option order."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from tandem.wire.failover import decode_message
from tandem.wire.failover_codes import MessageType
from tandem.wire.failover_fast import (
    _SIZES_BNDACK,
    _SIZES_BNDUPD,
    _decode_fast,
    binding_from_message,
    decode_binding,
)

OPTIONS = {
    2: struct.pack("!I", 0xC0000264),
    3: b"\x02",
    4: b"\x01\xaa\xbb\xcc\xdd\xee\xff",
    5: b"\x01\xaa\xbb\xcc\xdd\xee\xff",
    6: struct.pack("!I", 1_700_000_000),
    12: b"\x00\x02",
    13: struct.pack("!I", 1_700_000_300),
    18: struct.pack("!I", 1_700_003_900),
    25: struct.pack("!I", 1_700_000_000),
}


def message(mtype: int, codes: list[int]) -> bytes:
    body = b"".join(struct.pack("!HH", c, len(OPTIONS[c])) + OPTIONS[c] for c in codes)
    return struct.pack("!HBBII", 12 + len(body), mtype, 12, 1_700_000_000, 7) + body


@given(
    st.permutations(sorted(OPTIONS)).flatmap(
        lambda order: st.integers(min_value=1, max_value=len(order)).map(lambda n: order[:n])
    ),
    st.sampled_from([MessageType.BNDUPD, MessageType.BNDACK]),
)
def test_fast_path_equals_generic_decoder(codes: list[int], mtype: MessageType) -> None:
    data = message(mtype, codes)
    fast = decode_binding(data)
    slow = binding_from_message(decode_message(data))
    assert fast == slow


def test_common_layouts_take_the_fast_path() -> None:
    upd = message(MessageType.BNDUPD, [2, 3, 4, 5, 13, 18, 25, 6])
    got = _decode_fast(upd, MessageType.BNDUPD, 1_700_000_000, 7, _SIZES_BNDUPD)
    assert got is not None and (got.address, got.status, got.cltt) == (0xC0000264, 2, 1700000000)
    ack = message(MessageType.BNDACK, [2])
    got = _decode_fast(ack, MessageType.BNDACK, 1_700_000_000, 7, _SIZES_BNDACK)
    assert got is not None and got.address == 0xC0000264 and got.status is None
    # A repeated option 3 right after the prefix is left to the generic decoder (an error).
    dup = message(MessageType.BNDUPD, [2, 3, 3])
    assert _decode_fast(dup, MessageType.BNDUPD, 1_700_000_000, 7, _SIZES_BNDUPD) is None
