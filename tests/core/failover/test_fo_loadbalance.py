"""RFC 3074 hash and ISC's load-balancing decision (reference §10, vectors §16.1)."""

from __future__ import annotations

import hashlib
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.core.failover.loadbalance import (
    MIXING_TABLE,
    bucket_is_mine,
    client_key,
    hba_from_split,
    lb_hash,
    primary_serves,
    should_serve,
)

DISCOVER, REQUEST = 1, 3

# key hex, bucket, owner under split 128 (§16.1; the first five observed on a live dhcpd).
VECTORS = [
    ("aabbccddeeff", 57, "primary"),
    ("001122334455", 135, "secondary"),
    ("01001122334455", 223, "secondary"),
    ("01aabbccddeeff", 102, "primary"),
    ("01080027010203", 112, "primary"),
    ("080027010203", 8, "primary"),
    ("525400123456", 156, "secondary"),
    ("01525400123456", 253, "secondary"),
    ("000000000000", 254, "secondary"),
    ("ffffffffffff", 79, "primary"),
    ("0e", 232, "secondary"),
    ("", 0, "primary"),
]


def test_mixing_table_is_rfc_3074s() -> None:
    digest = hashlib.sha256(MIXING_TABLE).hexdigest()
    assert digest == "50015bcb049a75f57f1224b2d303a4d75485a0de3a772a30e06256daa1c873a7"
    assert sorted(MIXING_TABLE) == list(range(256))


@pytest.mark.parametrize(("key", "bucket", "owner"), VECTORS)
def test_hash_vectors(key: str, bucket: int, owner: str) -> None:
    assert lb_hash(bytes.fromhex(key)) == bucket
    hba = hba_from_split(128)
    assert primary_serves(bucket, hba) == (owner == "primary")
    assert bucket_is_mine(bucket, hba, "primary") == (owner == "primary")
    assert bucket_is_mine(bucket, hba, "secondary") == (owner == "secondary")


def test_hba_from_split() -> None:
    assert hba_from_split(128) == b"\xff" * 16 + b"\x00" * 16
    assert hba_from_split(64) == b"\xff" * 8 + b"\x00" * 24
    assert hba_from_split(100) == b"\xff" * 12 + b"\x0f" + b"\x00" * 19
    assert hba_from_split(0) == bytes(32)
    assert hba_from_split(256) == b"\xff" * 32
    for split in range(257):
        hba = hba_from_split(split)
        assert [primary_serves(b, hba) for b in range(256)] == [b < split for b in range(256)]
    for bad in (-1, 257):
        with pytest.raises(ValueError):
            hba_from_split(bad)
    with pytest.raises(ValueError):
        primary_serves(0, b"\xff")


def test_no_hba_means_not_mine() -> None:
    assert not bucket_is_mine(57, None, "primary")
    assert not bucket_is_mine(57, None, "secondary")


def test_option_61_wins_over_chaddr() -> None:
    chaddr = bytes.fromhex("aabbccddeeff")
    assert client_key(None, chaddr) == chaddr
    assert client_key(bytes.fromhex("01001122334455"), chaddr) == bytes.fromhex("01001122334455")
    hba = hba_from_split(128)
    key = client_key(bytes.fromhex("01001122334455"), chaddr)
    # Observed: ISC primary silent although chaddr alone hashes to the primary.
    assert not should_serve("primary", hba, key, 0, 3, DISCOVER)
    assert should_serve("secondary", hba, key, 0, 3, DISCOVER)


def test_secs_and_max_seconds() -> None:
    hba = hba_from_split(128)
    theirs = bytes.fromhex("001122334455")  # secondary's bucket
    # Observed with max seconds 3: silent at secs 0 and 3, answered at 4.
    assert not should_serve("primary", hba, theirs, 0, 3, DISCOVER)
    assert not should_serve("primary", hba, theirs, 3, 3, DISCOVER)
    assert should_serve("primary", hba, theirs, 4, 3, DISCOVER)
    # 0 = load balancing off (dhcpd 4.4 default).
    assert should_serve("primary", hba, theirs, 0, 0, DISCOVER)
    # check-secs-byte-order: 0x0400 is read as 4.
    assert not should_serve("primary", hba, theirs, 0x0400, 0x0500, DISCOVER)
    assert should_serve("primary", hba, theirs, 0x0400, 3, DISCOVER, check_secs_byte_order=True)
    assert not should_serve("primary", hba, theirs, 0x0300, 3, DISCOVER, check_secs_byte_order=True)


def test_only_discover_and_bootp_are_balanced() -> None:
    hba = hba_from_split(128)
    theirs = bytes.fromhex("001122334455")
    assert should_serve("primary", hba, theirs, 0, 3, REQUEST)
    assert not should_serve("primary", hba, theirs, 0, 3, None)  # BOOTP: balanced
    assert should_serve("secondary", hba, theirs, 0, 3, None)
    assert not should_serve("secondary", None, theirs, 0, 3, DISCOVER)


@given(st.binary(min_size=1, max_size=20), st.sampled_from([0, 256]), st.booleans())
def test_split_0_and_256_decide_without_the_hash_as_the_hash_would(
    key: bytes, split: int, primary: bool
) -> None:
    role: Literal["primary", "secondary"] = "primary" if primary else "secondary"
    hba = hba_from_split(split)
    expected = bucket_is_mine(lb_hash(key), hba, role)
    assert should_serve(role, hba, key, 0, 3, DISCOVER) == expected
    assert expected == ((split == 256) == primary)
