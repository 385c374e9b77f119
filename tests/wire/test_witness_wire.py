"""wire/witness.py: the witness datagrams, their MAC, and the decoder's refusals."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.wire.witness import (
    MAX_DATAGRAM,
    WitnessAnswer,
    WitnessDropped,
    WitnessRequest,
    decode,
    encode,
    read_secret,
)

KEY = b"correct horse battery staple"
REQ = WitnessRequest("failover-example", "secondary", 7, want_partner_down=True, mclt_s=3600)
ANS = WitnessAnswer("failover-example", "secondary", 7, 12_000, 12_000, 0, False, False)


def test_request_layout_is_the_documented_one() -> None:
    data = encode(REQ)
    assert data[:4] == b"TDWT"
    assert data[4:8] == bytes([1, 1, 2, 0x01])  # version, request, secondary, want-pd
    assert struct.unpack("!Q", data[8:16]) == (7,)
    assert data[16] == len("failover-example")
    assert data[17:-4] == b"failover-example"
    assert struct.unpack("!I", data[-4:]) == (3600,)


def test_answer_layout_carries_durations() -> None:
    ans = WitnessAnswer("r", "primary", 1, 5000, 0, 3000, True, True)
    data = encode(ans)
    assert data[4:8] == bytes([1, 2, 1, 0x06])
    assert struct.unpack("!III", data[-12:]) == (5000, 0, 3000)
    assert decode(data) == ans


@pytest.mark.parametrize("msg", [REQ, ANS, WitnessRequest("r", "primary", 2**64 - 1)])
def test_round_trip_with_and_without_secret(msg: WitnessRequest | WitnessAnswer) -> None:
    assert decode(encode(msg)) == msg
    signed = encode(msg, KEY)
    assert signed[-32:] == hmac.new(KEY, signed[:-32], hashlib.sha256).digest()
    assert decode(signed, KEY) == msg


def test_bad_mac_missing_mac_and_unexpected_mac_are_refused() -> None:
    signed = bytearray(encode(REQ, KEY))
    with pytest.raises(WitnessDropped) as exc:
        decode(bytes(signed), b"another secret")
    assert exc.value.reason == "bad-mac"
    signed[10] ^= 1  # the request id changed under the MAC
    with pytest.raises(WitnessDropped) as exc:
        decode(bytes(signed), KEY)
    assert exc.value.reason == "bad-mac"
    with pytest.raises(WitnessDropped) as exc:
        decode(encode(REQ), KEY)
    assert exc.value.reason == "mac-missing"
    with pytest.raises(WitnessDropped) as exc:
        decode(encode(REQ, KEY))
    assert exc.value.reason == "mac-unexpected"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "short"),
        (b"TDWT\x01\x01\x01", "short"),
        (b"XXXX" + encode(REQ)[4:], "bad-magic"),
        (encode(REQ)[:4] + b"\x02" + encode(REQ)[5:], "bad-version"),
        (encode(REQ)[:5] + b"\x09" + encode(REQ)[6:], "bad-kind"),
        (encode(REQ)[:6] + b"\x03" + encode(REQ)[7:], "bad-role"),
        (encode(REQ)[:7] + b"\x40" + encode(REQ)[8:], "bad-flags"),
        (encode(REQ)[:7] + b"\x02" + encode(REQ)[8:], "bad-flags"),  # answer flag on a request
        (encode(REQ) + b"x", "bad-length"),
        (encode(REQ)[:-1], "bad-length"),
        (encode(ANS)[:-12], "bad-length"),
        (encode(REQ)[:16] + b"\x00" + bytes(4), "bad-length"),
        (encode(REQ)[:16] + b"\x02\xff\xfe" + bytes(4), "bad-name"),
        (encode(REQ) + bytes(MAX_DATAGRAM), "too-long"),
    ],
)
def test_junk_is_dropped_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(WitnessDropped) as exc:
        decode(data)
    assert exc.value.reason == reason


def test_values_are_checked_when_built() -> None:
    with pytest.raises(ValueError, match="role"):
        WitnessRequest("r", "tertiary", 1)
    with pytest.raises(ValueError, match="request id"):
        WitnessRequest("r", "primary", -1)
    with pytest.raises(ValueError, match="relationship name"):
        WitnessRequest("", "primary", 1)
    with pytest.raises(ValueError, match="relationship name"):
        WitnessRequest("x" * 256, "primary", 1)
    with pytest.raises(ValueError, match="grant_ms"):
        WitnessAnswer("r", "primary", 1, 0, 2**32)


def test_read_secret_strips_the_newline() -> None:
    assert read_secret(b"  s3cret\n") == b"s3cret"
    with pytest.raises(ValueError, match="empty"):
        read_secret(b"\n \n")


@given(st.binary(max_size=MAX_DATAGRAM + 8), st.sampled_from([None, KEY]))
def test_decoder_raises_only_witness_dropped(data: bytes, secret: bytes | None) -> None:
    try:
        msg = decode(data, secret)
    except WitnessDropped as exc:
        assert exc.reason and " " not in exc.reason
        return
    assert encode(msg, secret) == data


@given(
    st.text(min_size=1, max_size=60),
    st.sampled_from(["primary", "secondary"]),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_every_answer_round_trips(name: str, role: str, rid: int, ms: int, flag: bool) -> None:
    if not 1 <= len(name.encode()) <= 255:
        return
    ans = WitnessAnswer(name, role, rid, ms, ms // 2, ms // 3, flag, not flag)
    assert decode(encode(ans, KEY), KEY) == ans
