"""Failover codec: the §16 hex vectors of reference/failover-isc.md and ISC's receive rules."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

import pytest

from tandem.wire.errors import WireError
from tandem.wire.failover import (
    FailoverEncodeError,
    FailoverProtocolError,
    Message,
    decode_message,
    encode_message,
)
from tandem.wire.failover_build import (
    build_bndack,
    build_bndupd,
    build_connect,
    build_connectack,
    build_empty,
    build_state,
    check_connect,
    check_connectack,
)
from tandem.wire.failover_codes import (
    BindingState,
    IPFlags,
    MessageType,
    OptionCode,
    RejectReason,
    ServerFlags,
    ServerState,
)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


CONNECT = h("""
006a 05 0c 6b0a4606 00000000
0016 0004 74657374            000e 0004 0000000a       0013 0004 0000001e
001c 000c 6973632d342e342e332d5031                    0014 0001 01
001b 0001 00                  000f 0004 0000012c
000b 0020 ffffffffffffffffffffffffffffffff00000000000000000000000000000000
""")
CONNECTACK_ACCEPT = h(
    "003e060c6b0a4669000003e9 0016000474657374 000e00040000000a 001300040000001e"
    " 001c000c6973632d342e342e332d5031 0014000101 001a000100"
)
CONNECTACK_NO_HBA = h(
    "0052060c6b0a4667000003e9 0016000474657374 000e00040000000a 001300040000001e"
    " 001c000c6973632d342e342e332d5031 0014000101 001a000100 0015000112"
    " 0010000b696e76616c696420484241"
)
CONNECTACK_BAD_NAME = h(
    "005a060c6b0a4668000003e9 0016000577726f6e67 001c000c6973632d342e342e332d5031"
    " 0014000101 001a000100 0015000108"
    " 00100022756e6b6e6f776e206661696c6f7665722072656c6174696f6e73686970206e616d65"
)
STATE_STARTUP = h("001e0a0c6b0a4606 00000001 0018000106 0017000101 001900046b0a4606")
STATE_RECOVER = h("001e0a0c6b0a4606 00000002 0018000106 0017000100 001900046b0a4606")
UPDREQALL = h("000c070c6b0a460600000003")
BNDUPD_FREE = h(
    "0031030c6b0a460600000004 000200047f010064 0003000101 000d000400000000"
    " 0012000400000000 0019000400000000"
)
BNDUPD_ACTIVE = h("""
004f 03 0c 6b0a47ee 00000025
0002 0004 7f01006e      0003 0001 02
0004 0007 01080027010203
0005 0007 01aabbccddeeff
000d 0004 6b0a491a      0012 0004 6b0a5694
0019 0004 6b0a47ee      0006 0004 6b0a47ee
""")
T0 = 0x6B0A4606


def test_connect_vector() -> None:
    msg = decode_message(CONNECT)
    assert (msg.type, msg.time, msg.xid) == (MessageType.CONNECT, T0, 0)
    assert msg.relationship_name == b"test"
    assert (msg.max_unacked, msg.receive_timer, msg.mclt) == (10, 30, 300)
    assert msg.vendor_class == "isc-4.4.3-P1"
    assert (msg.protocol_version, msg.tls_request) == (1, 0)
    assert msg.hba == b"\xff" * 16 + b"\x00" * 16
    built = build_connect(
        time=T0,
        xid=0,
        relationship_name=b"test",
        max_unacked=10,
        receive_timer=30,
        vendor_class="isc-4.4.3-P1",
        mclt=300,
        hba=b"\xff" * 16 + b"\x00" * 16,
    )
    assert encode_message(built) == CONNECT


def test_connectack_vectors() -> None:
    accept = decode_message(CONNECTACK_ACCEPT)
    assert (accept.type, accept.xid, accept.tls_reply) == (MessageType.CONNECTACK, 1001, 0)
    assert accept.reject_reason is None
    built = build_connectack(
        time=accept.time,
        xid=1001,
        relationship_name=b"test",
        vendor_class="isc-4.4.3-P1",
        max_unacked=10,
        receive_timer=30,
        tls_reply=True,
    )
    assert encode_message(built) == CONNECTACK_ACCEPT

    no_hba = decode_message(CONNECTACK_NO_HBA)
    assert no_hba.reject_reason is RejectReason.HBA_CONFLICT
    assert no_hba.message_text == "invalid HBA"

    bad = decode_message(CONNECTACK_BAD_NAME)
    assert bad.relationship_name == b"wrong"
    assert bad.max_unacked is None and bad.receive_timer is None
    assert bad.reject_reason is RejectReason.INVALID_PARTNER
    assert bad.message_text == "unknown failover relationship name"
    rebuilt = build_connectack(
        time=bad.time,
        xid=1001,
        relationship_name=b"wrong",
        vendor_class="isc-4.4.3-P1",
        max_unacked=None,
        receive_timer=None,
        tls_reply=True,
        reject=(RejectReason.INVALID_PARTNER, "unknown failover relationship name"),
    )
    assert encode_message(rebuilt) == CONNECTACK_BAD_NAME


def test_state_vectors() -> None:
    first, second = decode_message(STATE_STARTUP), decode_message(STATE_RECOVER)
    assert first.server_state is ServerState.RECOVER
    assert first.server_flags == ServerFlags.STARTUP
    assert second.server_flags == ServerFlags.NONE
    assert (first.stos, first.xid, second.xid) == (T0, 1, 2)
    built = build_state(
        time=T0, xid=1, state=ServerState.RECOVER, flags=ServerFlags.STARTUP, stos=T0
    )
    assert encode_message(built) == STATE_STARTUP


def test_updreqall_and_bndupd_vectors() -> None:
    req = decode_message(UPDREQALL)
    assert (req.type, req.xid, dict(req.options)) == (MessageType.UPDREQALL, 3, {})
    assert encode_message(build_empty(MessageType.UPDREQALL, time=T0, xid=3)) == UPDREQALL

    free = decode_message(BNDUPD_FREE)
    assert free.assigned_address == IPv4Address("127.1.0.100")
    assert free.binding_status is BindingState.FREE
    assert (free.lease_expiration, free.potential_expiration, free.stos) == (0, 0, 0)
    assert free.cltt is None and free.chaddr is None

    active = decode_message(BNDUPD_ACTIVE)
    assert active.xid == 0x25
    assert active.assigned_address == IPv4Address("127.1.0.110")
    assert active.binding_status is BindingState.ACTIVE
    assert active.client_identifier == h("01080027010203")
    assert active.hardware == (1, h("aabbccddeeff"))
    now = 0x6B0A47EE
    assert active.lease_expiration == now + 300
    assert active.potential_expiration == now + 3750
    assert active.stos == active.cltt == now
    built = build_bndupd(
        time=now,
        xid=0x25,
        address=IPv4Address("127.1.0.110"),
        status=BindingState.ACTIVE,
        client_identifier=h("01080027010203"),
        chaddr=h("01aabbccddeeff"),
        ends=now + 300,
        potential_expiration=now + 3750,
        stos=now,
        cltt=now,
    )
    assert encode_message(built) == BNDUPD_ACTIVE


def test_python_side_reference_encodings() -> None:
    """§16.3: what we must produce, byte for byte."""
    t = 1_700_000_000
    ack = build_bndack(time=t, xid=4, address=IPv4Address("192.168.1.10"))
    assert encode_message(ack) == h("0014040c6553f10000000004 00020004c0a8010a")
    state = build_state(
        time=t, xid=2, state=ServerState.NORMAL, flags=ServerFlags.NONE, stos=t - 100
    )
    assert encode_message(state) == h(
        "001e0a0c6553f10000000002 0018000102 0017000100 001900046553f09c"
    )
    contact = build_empty(MessageType.CONTACT, time=t, xid=3)
    assert encode_message(contact) == h("000c0b0c6553f10000000003")


# --- receive rules (reference §2, §3; ISC do_a_failover_option) ---


def msg(mtype: int, *options: tuple[int, bytes], payoff: int = 12, extra: bytes = b"") -> bytes:
    body = b"".join(struct.pack("!HH", c, len(d)) + d for c, d in options)
    total = 12 + len(extra) + len(body)
    return struct.pack("!HBBII", total, mtype, payoff, 1, 2) + extra + body


def reject(data: bytes, reason: str) -> FailoverProtocolError:
    with pytest.raises(FailoverProtocolError) as info:
        decode_message(data)
    assert info.value.reason == reason
    assert isinstance(info.value, WireError)
    return info.value


def test_length_bounds() -> None:
    reject(b"\x00\x0b" + bytes(9), "short-message")
    reject(struct.pack("!HBBII", 11, 11, 12, 0, 0), "bad-length")
    big = struct.pack("!HBBII", 2049, 11, 12, 0, 0) + bytes(2037)
    reject(big, "bad-length")
    reject(msg(11) + b"\x00", "length-mismatch")
    ok = msg(3, (2, bytes(4)), (16, b"x" * (2048 - 12 - 8 - 4)))
    assert len(ok) == 2048 and decode_message(ok).type is MessageType.BNDUPD


def test_payload_offset() -> None:
    reject(msg(11, payoff=8), "bad-payload-offset")
    reject(msg(11, payoff=13), "bad-payload-offset")  # beyond the 12-byte message
    skipped = decode_message(msg(10, (24, b"\x02"), payoff=16, extra=b"\xde\xad\xbe\xef"))
    assert skipped.server_state is ServerState.NORMAL
    # We always send 12, whatever we decoded.
    assert encode_message(skipped)[3] == 12


def test_unknown_option_codes_are_skipped() -> None:
    decoded = decode_message(msg(10, (0, b"abc"), (30, b"zz"), (999, b""), (24, b"\x02")))
    assert dict(decoded.options) == {OptionCode.SERVER_STATE: ServerState.NORMAL}


def test_option_not_allowed_for_type_is_skipped() -> None:
    # MCLT and HBA in a CONNECTACK are not read by ISC (§3 note); a wrong size is not checked.
    decoded = decode_message(msg(6, (22, b"t"), (15, b"\x00"), (11, b"x")))
    assert dict(decoded.options) == {OptionCode.RELATIONSHIP_NAME: b"t"}
    # Repeating a skipped option is not a duplicate either (ISC never marks it present).
    decode_message(msg(11, (24, b"\x02"), (24, b"\x02")))


def test_duplicate_allowed_option_is_an_error() -> None:
    reject(msg(10, (24, b"\x02"), (24, b"\x03")), "duplicate-option")


@pytest.mark.parametrize(
    ("mtype", "code", "data"),
    [
        (3, 3, b"\x01\x00"),  # binding-status is 1 byte
        (3, 12, b"\x01"),  # IP-flags is 2 bytes in ISC
        (3, 13, b"\x00\x00\x00"),  # times are 4 bytes
        (3, 2, b"\x7f\x00\x00"),  # IPv4 is 4 bytes
        (5, 27, b"\x00\x00"),  # TLS-request 1 byte
        (10, 24, b""),
    ],
)
def test_fixed_size_options(mtype: int, code: int, data: bytes) -> None:
    reject(msg(mtype, (code, data)), "option-size")


def test_ddns_must_be_empty_in_binding_messages() -> None:
    reject(msg(3, (2, bytes(4)), (9, b"\x00\x01ab")), "option-size")
    reject(msg(4, (2, bytes(4)), (9, b"\x00\x01")), "option-size")
    assert OptionCode.DDNS not in decode_message(msg(3, (2, bytes(4)), (9, b""))).options
    # Elsewhere DDNS is not allowed, hence skipped whatever its size.
    decode_message(msg(10, (9, b"\x00\x01abc")))


def test_message_digest_must_be_last() -> None:
    reject(msg(11, (17, b"\x01abc"), (24, b"\x02")), "digest-not-last")
    decoded = decode_message(msg(10, (24, b"\x02"), (17, b"\x01abc")))
    assert OptionCode.MESSAGE_DIGEST not in decoded.options


def test_option_overruns() -> None:
    reject(msg(10, (24, b"\x02"))[:-1] + b"", "length-mismatch")
    data = bytearray(msg(10, (24, b"\x02")))
    data[14:16] = b"\x00\x05"  # option length past the end
    reject(bytes(data), "option-overrun")
    data = bytearray(msg(10, (24, b"\x02")) + b"\x00\x18")
    data[0:2] = struct.pack("!H", len(data))
    reject(bytes(data), "option-overrun")


def test_unknown_message_types() -> None:
    reject(msg(13, (24, b"\x02")), "unknown-type")
    reject(msg(200, (999, b"")), "unknown-type")  # any option at all, even an unknown one
    bare = decode_message(msg(13))
    assert bare.type == 13 and bare.known_type is None
    assert encode_message(bare) == msg(13)
    zero = decode_message(msg(0, (24, b"\x02")))  # type 0: ISC's mask is empty -> skipped
    assert zero.known_type is None and not zero.options


def test_short_hba_decodes_so_the_connect_can_be_refused_with_reason_18() -> None:
    connect = decode_message(msg(5, (22, b"test"), (11, b"\xff" * 31)))
    assert connect.hba == b"\xff" * 31


def test_unknown_enum_values_survive() -> None:
    decoded = decode_message(msg(10, (24, b"\xc8"), (23, b"\x81")))
    assert decoded.server_state == 200 and not isinstance(decoded.server_state, ServerState)
    assert decoded.server_flags == 0x81
    assert encode_message(decoded) == msg(10, (24, b"\xc8"), (23, b"\x81"))
    ack = decode_message(msg(4, (2, bytes(4)), (21, b"\x63"), (16, b"\xff\xfe")))
    assert ack.reject_reason == 99 and ack.message_text is not None
    assert encode_message(ack) == msg(4, (2, bytes(4)), (21, b"\x63"), (16, b"\xff\xfe"))


def test_encoder_refuses_what_isc_cannot_take() -> None:
    ip = IPv4Address("10.0.0.1")
    with pytest.raises(FailoverEncodeError):
        encode_message(Message(MessageType.BNDUPD, 0, 1, {OptionCode.DDNS: b""}))
    with pytest.raises(FailoverEncodeError):
        encode_message(Message(MessageType.STATE, 0, 1, {OptionCode.MESSAGE_DIGEST: b"\x01"}))
    with pytest.raises(FailoverEncodeError):  # ISC ignores MCLT in CONNECTACK
        encode_message(Message(MessageType.CONNECTACK, 0, 1, {OptionCode.MCLT: 5}))
    with pytest.raises(FailoverEncodeError):
        Message(MessageType.STATE, 0, 1, {OptionCode.SERVER_STATE: 256})
    with pytest.raises(FailoverEncodeError):
        Message(MessageType.STATE, 0, 1 << 32)
    with pytest.raises(FailoverEncodeError):
        Message(MessageType.BNDACK, 0, 1, {OptionCode.ASSIGNED_IP_ADDRESS: b"\x01\x02\x03\x04"})
    with pytest.raises(FailoverEncodeError):
        encode_message(
            Message(MessageType.CONNECT, 0, 1, {OptionCode.HASH_BUCKET_ASSIGNMENT: b"\xff" * 31})
        )
    with pytest.raises(FailoverEncodeError):
        encode_message(
            build_bndack(time=0, xid=1, address=ip, reject=(RejectReason.MISC_REJECT, "x" * 2100))
        )
    with pytest.raises(FailoverEncodeError):
        build_bndupd(
            time=0,
            xid=0,
            address=ip,
            status=BindingState.FREE,
            ends=0,
            potential_expiration=0,
            stos=0,
        )
    with pytest.raises(FailoverEncodeError):
        build_empty(MessageType.STATE, time=0, xid=1)


def test_bndupd_optional_fields_follow_isc_order() -> None:
    ip = IPv4Address("10.0.0.1")
    built = build_bndupd(
        time=5, xid=7, address=ip, status=BindingState.ACTIVE, ends=9, potential_expiration=10,
        stos=4, chaddr=b"\x01abcdef", cltt=4, ip_flags=IPFlags.BOOTP,
    )  # fmt: skip
    assert list(built.options) == [2, 3, 5, 13, 18, 25, 6, 12]
    again = decode_message(encode_message(built))
    assert again == built and again.ip_flags == IPFlags.BOOTP


def test_check_connect_follows_isc_order() -> None:
    good = decode_message(CONNECT)

    def check(m: Message, **kw: object) -> tuple[RejectReason | None, str] | None:
        args: dict[str, object] = {
            "relationship_name": b"test",
            "now": T0,
            "already_connected": False,
        }
        args.update(kw)
        err = check_connect(m, **args)  # type: ignore[arg-type]
        return None if err is None else (err.reject_reason, str(err))

    assert check(good) is None
    assert check(good, relationship_name=b"other") == (
        RejectReason.INVALID_PARTNER,
        "unknown failover relationship name",
    )
    assert check(good, now=T0 + 61) == (RejectReason.TIMEMISMATCH, "time offset too large")
    assert check(good, now=T0 - 60) is None
    assert check(good, already_connected=True) == (RejectReason.DUP_CONNECTION, "already connected")
    opts = dict(good.options)
    del opts[OptionCode.HASH_BUCKET_ASSIGNMENT]
    # Missing HBA beats "already connected" and missing MCLT (ISC checks it at link level).
    assert check(Message(5, T0, 0, opts), already_connected=True) == (
        RejectReason.HBA_CONFLICT,
        "invalid HBA",
    )
    opts = dict(good.options)
    del opts[OptionCode.MCLT]
    assert check(Message(5, T0, 0, opts)) == (RejectReason.INVALID_MCLT, "no MCLT provided")
    del opts[OptionCode.RELATIONSHIP_NAME]
    assert check(Message(5, T0, 0, opts)) == (
        RejectReason.INVALID_PARTNER,
        "missing relationship-name",
    )


def test_check_connectack() -> None:
    accept = decode_message(CONNECTACK_ACCEPT)
    kw: dict[str, object] = {"relationship_name": b"test", "already_connected": False}
    assert check_connectack(accept, now=accept.time, **kw) is None  # type: ignore[arg-type]
    refused = check_connectack(decode_message(CONNECTACK_NO_HBA), now=accept.time, **kw)  # type: ignore[arg-type]
    assert refused is not None and refused.reject_reason is None
    late = check_connectack(accept, now=accept.time + 61, **kw)  # type: ignore[arg-type]
    assert late is not None and late.reject_reason is RejectReason.TIMEMISMATCH
    dup = check_connectack(
        accept, now=accept.time, relationship_name=b"test", already_connected=True
    )
    assert dup is not None and dup.reject_reason is RejectReason.DUP_CONNECTION
    other = check_connectack(
        accept, now=accept.time, relationship_name=b"x", already_connected=False
    )
    assert other is not None and other.reject_reason is RejectReason.INVALID_PARTNER
