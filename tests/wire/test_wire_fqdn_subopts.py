"""Option 81 (client FQDN) and the sub-option walkers for 82/43/124/125."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.wire.errors import FormatError, MalformedPacket
from tandem.wire.fqdn import FLAG_E, FLAG_S, ClientFqdn, decode_fqdn, encode_fqdn
from tandem.wire.suboptions import (
    decode_enterprise,
    decode_suboptions,
    encode_enterprise,
    encode_suboptions,
)


def test_fqdn_wire_encoded() -> None:
    data = bytes((FLAG_S | FLAG_E, 0, 0)) + b"\x04host\x07example\x03com\x00"
    f = decode_fqdn(data)
    assert f == ClientFqdn(FLAG_S | FLAG_E, 0, 0, "host.example.com", True)
    assert encode_fqdn(f) == data


def test_fqdn_partial_and_ascii() -> None:
    partial = bytes((FLAG_E, 0, 0)) + b"\x04host"
    assert decode_fqdn(partial) == ClientFqdn(FLAG_E, 0, 0, "host", False)
    assert encode_fqdn(decode_fqdn(partial)) == partial
    ascii_ = b"\x00\xff\xff" + b"host.example.org."
    f = decode_fqdn(ascii_)
    assert (f.name, f.qualified, f.encoded) == ("host.example.org", True, False)
    assert encode_fqdn(f) == ascii_
    assert decode_fqdn(b"\x00\x00\x00myhost\x00").name == "myhost"  # NUL-terminated


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x04\x00", "fqdn-short"),
        (bytes((FLAG_E, 0, 0)) + b"\x40" + b"a" * 64 + b"\x00", "fqdn-label-too-long"),
        (bytes((FLAG_E, 0, 0)) + b"\xc0\x00", "fqdn-label-too-long"),  # pointers are not allowed
        (bytes((FLAG_E, 0, 0)) + b"\x05abc", "fqdn-overrun"),
        (bytes((FLAG_E, 0, 0)) + b"\x01a\x00junk", "fqdn-overrun"),
        (bytes((FLAG_E, 0, 0)) + (b"\x3f" + b"a" * 63) * 4 + b"\x00", "fqdn-too-long"),
    ],
)
def test_fqdn_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket) as info:
        decode_fqdn(data)
    assert info.value.reason == reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fqdn_random_bytes(blob: bytes) -> None:
    try:
        f = decode_fqdn(blob)
    except MalformedPacket:
        return
    assert decode_fqdn(encode_fqdn(f)) == f


def test_agent_suboptions_round_trip() -> None:
    items = [(1, b"eth0:vlan5"), (2, b"\x00\x11\x22\x33\x44\x55"), (5, b"\xc0\x00\x02\x00")]
    data = encode_suboptions(items)
    assert data[:2] == b"\x01\x0a"
    assert decode_suboptions(data) == items
    assert decode_suboptions(b"") == []


@pytest.mark.parametrize("data", [b"\x01", b"\x01\x05abc", b"\x01\x01a\x02"])
def test_agent_suboptions_overrun(data: bytes) -> None:
    with pytest.raises(FormatError):
        decode_suboptions(data)


def test_enterprise_lists() -> None:
    items = [(2495, b"\x01\x02ab"), (4491, b"")]
    data = encode_enterprise(items)
    assert data.hex() == "000009bf0401026162" + "0000118b00"
    assert decode_enterprise(data) == items
    for bad in (data[:-1] + b"\x05", b"\x00\x00\x09", b"\x00\x00\x09\xbf\x09ab"):
        with pytest.raises(FormatError):
            decode_enterprise(bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_walkers_on_random_bytes(blob: bytes) -> None:
    for decode, encode in ((decode_suboptions, encode_suboptions),
                           (decode_enterprise, encode_enterprise)):  # fmt: skip
        try:
            items = decode(blob)
        except FormatError:
            continue
        assert encode(items) == blob
