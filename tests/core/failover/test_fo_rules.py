"""BNDUPD acceptance (§8.3a/b), dueling updates, MCLT clamp, and the fast codec."""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.core.failover.rules import (
    END_SLACK,
    expiry_believed,
    incoming_wins,
    later_end,
    may_take_peers,
    mclt_lease_time,
    potential_expiry,
    stale_end,
    transition_ok,
)
from tandem.core.lease import BindingState, Lease
from tandem.wire.failover import FailoverProtocolError, encode_message
from tandem.wire.failover_build import (
    build_bndack,
    build_bndupd,
)
from tandem.wire.failover_codes import IPFlags, RejectReason
from tandem.wire.failover_fast import Binding, decode_binding, encode_bndack, encode_bndupd

B = BindingState
NOW = 1_700_000_000
F, AC, EX, RE, AB, RS, BK = (
    B.FREE,
    B.ACTIVE,
    B.EXPIRED,
    B.RELEASED,
    B.ABANDONED,
    B.RESET,
    B.BACKUP,
)
ALL = list(B)

# (we are, current, received) -> verdict in NORMAL; "E" = only if ends-65 <= now,
# "P" = only if the received potential expiration <= now. Written out from §8.3a.
NORMAL_EXPECTED = {
    ("secondary", AC, F): "P",
    ("secondary", AC, BK): "P",
    ("secondary", AC, EX): "E",
    ("primary", AC, F): False,
    ("primary", AC, BK): False,
    ("primary", AC, EX): False,
    ("primary", AC, RS): False,
    ("primary", EX, F): "P",
    ("primary", EX, BK): "P",
    ("secondary", EX, F): "P",
    ("secondary", EX, BK): "P",
    ("primary", RS, F): "P",
    ("primary", RS, BK): "P",
    ("secondary", RS, F): "P",
    ("secondary", RS, BK): "P",
}
OTHER_EXPECTED = {(AC, F): False, (AC, BK): False, (AC, EX): "E"}


def _verdicts(role: str, normal: bool, cur: BindingState, rx: BindingState) -> tuple[bool, bool]:
    """(accepted when the condition holds, accepted when it does not)."""
    yes = transition_ok(role, normal, cur, rx, ends=NOW, potential=NOW - 1, now=NOW)  # type: ignore[arg-type]
    no = transition_ok(role, normal, cur, rx, ends=NOW + 66, potential=NOW + 1, now=NOW)  # type: ignore[arg-type]
    return yes, no


@pytest.mark.parametrize("role", ["primary", "secondary"])
@pytest.mark.parametrize("cur", ALL)
@pytest.mark.parametrize("rx", ALL)
def test_acceptance_in_normal(role: str, cur: BindingState, rx: BindingState) -> None:
    expect = True if cur is rx else NORMAL_EXPECTED.get((role, cur, rx), True)
    yes, no = _verdicts(role, True, cur, rx)
    if expect in ("P", "E"):
        assert (yes, no) == (True, False)
    else:
        assert yes == no == expect


@pytest.mark.parametrize("role", ["primary", "secondary"])
@pytest.mark.parametrize("cur", ALL)
@pytest.mark.parametrize("rx", ALL)
def test_acceptance_outside_normal(role: str, cur: BindingState, rx: BindingState) -> None:
    expect = True if cur is rx else OTHER_EXPECTED.get((cur, rx), True)
    yes, no = _verdicts(role, False, cur, rx)
    if expect == "E":
        assert (yes, no) == (True, False)
    else:
        assert yes == no == expect


def test_expiry_fudge_is_65_seconds() -> None:
    ok = transition_ok("secondary", True, AC, EX, ends=NOW + 65, potential=None, now=NOW)
    late = transition_ok("secondary", True, AC, EX, ends=NOW + 66, potential=None, now=NOW)
    assert ok and not late
    # A missing potential-expiration counts as 0 (already past).
    assert transition_ok("secondary", True, AC, F, ends=None, potential=None, now=NOW)


def test_expiry_fudge_only_for_the_same_end() -> None:
    """The 65 s allow for the peer's clock on the end both know; an EXPIRED naming an
    earlier end (the peer missed a renewal) is believed only once our end has passed
    (tandem.sim seed 5152). An infinite lease (ISC: MAX_TIME) never expires this way."""
    end = NOW + 40
    assert expiry_believed(end, end, NOW)  # same end, 40 s early: ISC's allowance
    assert expiry_believed(end, end - END_SLACK, NOW)  # rounding of clock offsets
    assert expiry_believed(end, None, NOW)  # no lease-expiration-time: ISC's rule
    assert not expiry_believed(end, end - END_SLACK - 1, NOW)
    assert not expiry_believed(end, NOW - 300, NOW)
    assert expiry_believed(end, NOW - 300, end)
    assert not expiry_believed(end, end, NOW - 26)  # beyond the 65 s
    assert not expiry_believed(None, NOW, NOW + 10**6)
    assert stale_end(None, NOW) and not stale_end(NOW, None) and not stale_end(NOW, NOW + 1)
    for normal in (True, False):
        stale = transition_ok("secondary", normal, AC, EX, ends=end, potential=None, now=NOW,
                              peer_ends=NOW - 300)  # fmt: skip
        same = transition_ok("secondary", normal, AC, EX, ends=end, potential=None, now=NOW,
                             peer_ends=end)  # fmt: skip
        assert (stale, same) == (False, True)


def test_later_end() -> None:
    assert later_end(NOW + 1, NOW) and not later_end(NOW, NOW) and not later_end(NOW, NOW + 1)
    assert later_end(None, NOW) and not later_end(NOW, None) and not later_end(None, None)


@pytest.mark.parametrize(
    ("role", "ours", "ours_cltt", "theirs", "theirs_cltt", "wins"),
    [
        ("primary", AC, 100, AC, 101, True),  # later cltt wins
        ("primary", AC, 101, AC, 100, False),
        ("primary", AC, 100, AC, 100, False),  # tie: primary wins
        ("secondary", AC, 100, AC, 100, True),
        ("secondary", AC, None, AC, 5, True),  # missing cltt = 0
        ("primary", F, 0, AC, 0, True),  # received ACTIVE beats non-ACTIVE
        ("primary", RE, 0, AC, 0, True),
        ("primary", AC, 0, EX, 0, True),  # received EXPIRED beats local ACTIVE
        ("primary", F, 0, BK, 0, False),  # other pairs: the primary wins
        ("secondary", F, 0, BK, 0, True),
        ("secondary", AC, 0, RE, 0, False),  # our ACTIVE beats RELEASED (seeds 144, 210)
        ("secondary", AC, 0, AB, 0, False),  # and ABANDONED, on either side
        ("primary", AC, 0, RE, 0, False),
        ("primary", AC, 0, AB, 0, False),
        ("secondary", RE, 0, F, 0, True),  # other non-ACTIVE pairs: still the primary
    ],
)
def test_dueling_updates(  # noqa: PLR0917 - parametrized
    role: str,
    ours: BindingState,
    ours_cltt: int | None,
    theirs: BindingState,
    theirs_cltt: int | None,
    wins: bool,
) -> None:
    assert incoming_wins(role, ours, ours_cltt, theirs, theirs_cltt) is wins  # type: ignore[arg-type]


def test_mclt_clamp_matches_isc_ack_lease() -> None:
    # Observed: D 3600, M 300 -> first ACK 300; after the peer acked now+3750, 3600.
    assert mclt_lease_time(3600, 300, None, NOW) == 300
    assert mclt_lease_time(3600, 300, NOW + 3750, NOW + 5) == 3600
    assert mclt_lease_time(200, 300, None, NOW) == 200  # D <= M
    assert mclt_lease_time(3600, 300, NOW - 1, NOW) == 300  # tsfp in the past
    assert mclt_lease_time(3600, 300, NOW + 1000, NOW) == 1300  # tsfp - now + M


@given(
    st.integers(1, 10**6), st.integers(1, 10**5), st.one_of(st.none(), st.integers(0, 2 * 10**6))
)
def test_mclt_clamp_never_exceeds_what_the_peer_allows(
    desired: int, mclt: int, tsfp: int | None
) -> None:
    now = 10**6
    t = mclt_lease_time(desired, mclt, tsfp, now)
    assert 0 < t <= desired
    assert t <= mclt or now + t <= (tsfp or 0) + mclt


def test_potential_expiry_of_a_resent_binding_keeps_what_the_peer_acked() -> None:
    """tandem.sim seed 71489: a BNDUPD re-sending the peer's ACTIVE binding (UPDREQALL)
    must not carry our own older tstp, or the peer's tsfp, and with it the MCLT clamp of its
    next renewal, drops below the end its client holds."""

    def lease(state: BindingState, tstp: int | None, atsfp: int | None) -> Lease:
        return Lease(IPv4Address("192.0.2.101"), state, tstp=tstp, tsfp=atsfp, atsfp=atsfp)

    assert potential_expiry(lease(AC, NOW + 255, NOW + 500)) == NOW + 500  # the peer's binding
    assert potential_expiry(lease(AC, NOW + 500, NOW + 500)) == NOW + 500  # ours, acked
    assert potential_expiry(lease(AC, NOW + 600, None)) == NOW + 600  # ours, un-acked: ISC
    assert potential_expiry(lease(AC, None, None)) == 0
    # Other states send tstp, as ISC (a BACKUP move's potential must be "now", §9).
    for state in (F, BK, EX, RE, RS, AB):
        assert potential_expiry(lease(state, NOW, NOW + 500)) == NOW
    # With it, the renewal of the re-sent binding is not cut to the MCLT (30 s).
    sent = potential_expiry(lease(AC, NOW + 255, NOW + 500))
    assert mclt_lease_time(240, 30, sent, NOW + 260) == 240
    assert mclt_lease_time(240, 30, NOW + 255, NOW + 260) == 30  # the old tstp: cut


def test_partner_down_wait() -> None:
    assert not may_take_peers(None, NOW, 3600, NOW + 3600)
    assert may_take_peers(None, NOW, 3600, NOW + 3601)
    assert not may_take_peers(NOW + 100, NOW, 3600, NOW + 3601)  # tsfp later than STOS


def test_fast_bndupd_bytes_equal_the_generic_builder() -> None:
    fast = encode_bndupd(
        time=NOW, xid=0x25, address=int(IPv4Address("127.1.0.110")), status=2,
        uid=bytes.fromhex("01080027010203"), chaddr=bytes.fromhex("01aabbccddeeff"),
        ends=NOW + 300, potential=NOW + 3750, stos=NOW, cltt=NOW, flags=0,
    )  # fmt: skip
    slow = encode_message(
        build_bndupd(
            time=NOW, xid=0x25, address=IPv4Address("127.1.0.110"), status=BindingState.ACTIVE,
            ends=NOW + 300, potential_expiration=NOW + 3750, stos=NOW,
            client_identifier=bytes.fromhex("01080027010203"),
            chaddr=bytes.fromhex("01aabbccddeeff"), cltt=NOW,
        )
    )  # fmt: skip
    assert fast == slow
    flagged = encode_bndupd(
        time=NOW, xid=1, address=1, status=7, uid=None, chaddr=None, ends=0, potential=0,
        stos=0, cltt=None, flags=2,
    )  # fmt: skip
    assert flagged == encode_message(
        build_bndupd(
            time=NOW, xid=1, address=IPv4Address(1), status=BindingState.BACKUP, ends=0,
            potential_expiration=0, stos=0, ip_flags=IPFlags.BOOTP,
        )
    )  # fmt: skip


def test_fast_bndack_bytes_equal_the_generic_builder() -> None:
    # Reference encoding (failover-isc.md §16.3): BNDACK accept for 192.168.1.10, xid 4.
    ack = encode_bndack(time=1700000000, xid=4, address=int(IPv4Address("192.168.1.10")))
    assert ack.hex() == "0014040c6553f1000000000400020004c0a8010a"
    rej = encode_bndack(time=NOW, xid=9, address=5, reject=(16, "less critical"))
    assert rej == encode_message(
        build_bndack(
            time=NOW, xid=9, address=IPv4Address(5),
            reject=(RejectReason.LESS_CRIT_BIND_INFO, "less critical"),
        )
    )  # fmt: skip


def test_decoder_falls_back_to_isc_rules() -> None:
    base = encode_bndupd(
        time=NOW, xid=7, address=9, status=1, uid=None, chaddr=None, ends=0, potential=0,
        stos=0, cltt=None, flags=0,
    )  # fmt: skip
    fast = decode_binding(base)
    assert isinstance(fast, Binding) and (fast.address, fast.status, fast.xid) == (9, 1, 7)
    # An unknown option (code 99) is skipped by ISC: the slow path gives the same result.
    extra = base + bytes.fromhex("00630002abcd")
    extra = len(extra).to_bytes(2, "big") + extra[2:]
    slow = decode_binding(extra)
    assert isinstance(slow, Binding) and (slow.address, slow.status, slow.xid) == (9, 1, 7)
    # A duplicated binding-status is a protocol error (the link is closed).
    dup = base + bytes.fromhex("0003000102")
    dup = len(dup).to_bytes(2, "big") + dup[2:]
    with pytest.raises(FailoverProtocolError):
        decode_binding(dup)
    # A binding-status of the wrong size too (2 bytes instead of 1).
    assert base[20:24] == bytes.fromhex("00030001")
    bad = bytearray(base[:22] + b"\x00\x02" + base[24:25] + b"\x00" + base[25:])
    bad[0:2] = len(bad).to_bytes(2, "big")
    with pytest.raises(FailoverProtocolError, match="length 2, expected 1"):
        decode_binding(bytes(bad))


@given(st.binary(min_size=0, max_size=200))
def test_decoder_raises_only_protocol_errors(tail: bytes) -> None:
    head = bytes.fromhex("0000030c6553f10000000001")
    data = (len(head) + len(tail)).to_bytes(2, "big") + head[2:] + tail
    with contextlib.suppress(FailoverProtocolError):
        decode_binding(data)
