"""One engine against a scripted peer: hostile input, link timers, binding-level replies."""

from __future__ import annotations

from ipaddress import IPv4Address

from fokit import PRIMARY_CONF, SECONDARY_CONF, T0, B, Node, dora, fresh_pair, mac, make_node
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem.core.failover.loadbalance import hba_from_split
from tandem.wire.failover import Message, decode_message, encode_message
from tandem.wire.failover_build import (
    build_connect,
    build_connectack,
    build_empty,
    build_state,
)
from tandem.wire.failover_codes import (
    MessageType,
    OptionCode,
    RejectReason,
    ServerFlags,
    ServerState,
)
from tandem.wire.failover_fast import encode_bndupd
from tandem.wire.framing import FrameBuffer

NAME = b"failover-example"


def connect_msg(
    now: int = T0,
    *,
    name: bytes = NAME,
    mclt: int | None = 3600,
    hba: bytes | None = None,
    xid: int = 0,
) -> bytes:
    msg = build_connect(time=now, xid=xid, relationship_name=name, max_unacked=10,
                        receive_timer=60, vendor_class="isc-4.4.3-P1", mclt=mclt or 1,
                        hba=hba_from_split(128))  # fmt: skip
    opts = dict(msg.options)
    if mclt is None:
        del opts[OptionCode.MCLT]
    data = encode_message(Message(msg.type, msg.time, msg.xid, opts))
    if hba is not None:  # our encoder refuses a bad HBA: patch the last option by hand
        assert data[-36:-32] == bytes.fromhex("000b0020")
        data = data[:-36] + b"\x00\x0b" + len(hba).to_bytes(2, "big") + hba
        data = len(data).to_bytes(2, "big") + data[2:]
    return data


def messages(data: bytes) -> list[Message]:
    fb = FrameBuffer()
    fb.feed(data)
    return [decode_message(frame) for frame in fb]


def secondary(now: int = T0) -> Node:
    node = make_node("secondary", SECONDARY_CONF, now)
    node.engine.connection_made(now)
    assert node.engine.data_to_send() == b""  # the secondary waits for CONNECT
    return node


def connected_secondary(now: int = T0) -> Node:
    node = secondary(now)
    node.engine.receive_data(connect_msg(now), now)
    out = messages(node.engine.data_to_send())
    assert [m.type for m in out] == [MessageType.CONNECTACK, MessageType.STATE]
    assert out[0].reject_reason is None and node.engine.close_reason() is None
    return node


def refused(node: Node) -> Message:
    (ack,) = messages(node.engine.data_to_send())
    assert ack.type == MessageType.CONNECTACK
    assert node.engine.close_reason() is not None
    return ack


def test_connect_accepted_adopts_mclt_and_hba() -> None:
    node = connected_secondary()
    assert node.engine.machine.mclt == 3600
    assert node.engine.leases.hba == hba_from_split(128)
    assert node.engine.link.partner_receive_timer == 60


def test_wrong_relationship_name() -> None:
    node = secondary()
    node.engine.receive_data(connect_msg(name=b"wrong"), T0)
    ack = refused(node)
    assert ack.reject_reason == RejectReason.INVALID_PARTNER
    assert ack.relationship_name == b"wrong"  # echoed, without 14/19 (as ISC)
    assert ack.max_unacked is None and ack.receive_timer is None


def test_skewed_clock() -> None:
    node = secondary()
    node.engine.receive_data(connect_msg(T0 + 61), T0)
    assert refused(node).reject_reason == RejectReason.TIMEMISMATCH
    ok = secondary()
    ok.engine.receive_data(connect_msg(T0 - 60), T0)
    assert ok.engine.close_reason() is None


def test_missing_hba_and_mclt() -> None:
    node = secondary()
    node.engine.receive_data(connect_msg(hba=b"\xff" * 31), T0)
    assert refused(node).reject_reason == RejectReason.HBA_CONFLICT
    node = secondary()
    node.engine.receive_data(connect_msg(mclt=None), T0)
    assert refused(node).reject_reason == RejectReason.INVALID_MCLT


def test_duplicate_connect() -> None:
    node = connected_secondary()
    node.engine.receive_data(connect_msg(xid=5), T0 + 1)
    ack = refused(node)
    assert ack.reject_reason == RejectReason.DUP_CONNECTION and ack.xid == 5


def test_garbage_and_huge_lengths() -> None:
    for junk in (b"\x00\x05" + b"x" * 10, b"\xff\xff", b"\x08\x01", b"\x00\x0c\x05\x04" + bytes(8)):
        node = secondary()
        node.engine.receive_data(junk, T0)
        assert node.engine.close_reason() is not None, junk
        assert node.engine.data_to_send() == b""
        node.engine.receive_data(connect_msg(), T0)  # ignored after the error
        assert node.engine.data_to_send() == b""


def test_messages_before_connect_close_the_link() -> None:
    node = secondary()
    st_msg = build_state(time=T0, xid=1, state=ServerState.NORMAL, flags=ServerFlags.NONE, stos=T0)
    node.engine.receive_data(encode_message(st_msg), T0)
    assert "before the link was accepted" in (node.engine.close_reason() or "")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_receive_data_never_raises(data: bytes) -> None:
    node = connected_secondary()
    node.engine.receive_data(data, T0 + 1)
    node.engine.data_to_send()


def test_primary_refuses_bad_connectack() -> None:
    for name, when, reason in ((b"other", T0, 8), (NAME, T0 + 100, 4)):
        node = make_node("primary", PRIMARY_CONF, T0)
        node.engine.connection_made(T0)
        (conn,) = messages(node.engine.data_to_send())
        assert conn.type == MessageType.CONNECT and conn.xid == 0 and conn.mclt == 3600
        ack = build_connectack(time=when, xid=0, relationship_name=name, vendor_class="x",
                               max_unacked=10, receive_timer=60, tls_reply=True)  # fmt: skip
        node.engine.receive_data(encode_message(ack), T0)
        (disc,) = messages(node.engine.data_to_send())
        assert disc.type == MessageType.DISCONNECT and disc.reject_reason == reason
        assert node.engine.close_reason() is not None
    # A CONNECTACK carrying a reject: close, no DISCONNECT.
    node = make_node("primary", PRIMARY_CONF, T0)
    node.engine.connection_made(T0)
    node.engine.data_to_send()
    rej = build_connectack(time=T0, xid=0, relationship_name=NAME, vendor_class="x",
                           max_unacked=None, receive_timer=None, tls_reply=False,
                           reject=(RejectReason.TIMEMISMATCH, "time offset too large"))  # fmt: skip
    node.engine.receive_data(encode_message(rej), T0)
    assert node.engine.data_to_send() == b""
    assert "rejected" in (node.engine.close_reason() or "")


def test_link_startup_timer() -> None:
    node = secondary()
    assert node.engine.get_timer() == T0 + 15
    node.engine.handle_timer(T0 + 14)
    assert node.engine.close_reason() is None
    node.engine.handle_timer(T0 + 15)
    assert "startup" in (node.engine.close_reason() or "")


def test_contact_cadence_and_silence_timeout() -> None:
    node = connected_secondary()
    eng = node.engine
    assert eng.get_timer() == T0 + 15  # STARTUP: no peer STATE yet
    eng.handle_timer(T0 + 15)  # leaves STARTUP for RECOVER and says so (STATE)
    sent = [m.type for m in messages(eng.data_to_send())]
    assert sent == [MessageType.STATE, MessageType.UPDREQALL]
    assert eng.get_timer() == T0 + 35  # partner receive-timer 60 / 3 after the last send
    eng.handle_timer(T0 + 35)
    (contact,) = messages(eng.data_to_send())
    assert contact.type == MessageType.CONTACT
    assert eng.get_timer() == T0 + 55
    # Something from the peer every 30 s keeps the link; 60 s of silence drops it.
    eng.receive_data(encode_message(build_empty(MessageType.CONTACT, time=T0 + 30, xid=9)), T0 + 30)
    eng.handle_timer(T0 + 60)
    assert eng.close_reason() is None
    eng.data_to_send()
    eng.handle_timer(T0 + 89)
    assert eng.close_reason() is None
    eng.handle_timer(T0 + 90)
    assert eng.close_reason() == "timeout waiting for failover peer"
    assert "timeout waiting for failover peer failover-example" in eng.take_log()


def _bndupd(
    xid: int, addr: str, status: int, *, chaddr: bytes | None = b"\x01" + mac(7), potential: int = 0
) -> bytes:
    return encode_bndupd(time=T0, xid=xid, address=int(IPv4Address(addr)), status=status,
                         uid=None, chaddr=chaddr, ends=T0 + 600, potential=potential, stos=T0,
                         cltt=T0, flags=0)  # fmt: skip


def _acks(node: Node) -> list[Message]:
    return [m for m in messages(node.engine.data_to_send()) if m.type == MessageType.BNDACK]


def test_bndupd_rejects_and_commit_barrier() -> None:
    node = connected_secondary()
    eng = node.engine
    eng.receive_data(_bndupd(11, "10.9.9.9", 2), T0)  # not in our pools
    eng.receive_data(_bndupd(12, "192.0.2.150", 2, chaddr=None), T0)  # ACTIVE without chaddr
    (a1, a2) = _acks(node)
    assert (a1.xid, a1.reject_reason) == (11, RejectReason.ILLEGAL_IP_ADDR)
    assert (a2.xid, a2.reject_reason) == (12, RejectReason.MISSING_BINDINFO)
    eng.receive_data(_bndupd(13, "192.0.2.150", 2), T0)
    assert _acks(node) == []  # accepted, but not acked before the caller commits
    writes, _ = eng.take_writes()
    assert [str(x.address) for x in writes] == ["192.0.2.150"]
    assert writes[0].binding_state is B.ACTIVE
    (ok,) = _acks(node)
    assert ok.xid == 13 and ok.reject_reason is None
    assert set(ok.options) == {OptionCode.ASSIGNED_IP_ADDRESS}  # minimal BNDACK (G11)
    # The secondary in a non-NORMAL state refuses ACTIVE -> FREE (§8.3b).
    eng.receive_data(_bndupd(14, "192.0.2.150", 1), T0)
    (no,) = _acks(node)
    assert no.reject_reason == RejectReason.FATAL_CONFLICT
    assert "invalid state transition: active to free" in (no.message_text or "")


def test_primary_in_normal_refuses_expiry_of_its_active_lease_and_xid_mismatch() -> None:
    p, _, pair = fresh_pair()
    pair.connect()
    _, ack = dora(p, mac(1), pair.now)
    assert ack is not None and ack.reply is not None
    addr = str(ack.reply.packet.yiaddr)
    p.engine.take_writes()
    (upd,) = messages(p.engine.data_to_send())
    assert upd.type == MessageType.BNDUPD and upd.binding_status == 2
    # An ack with another xid is ignored: the update stays outstanding.
    bad = encode_message(Message(MessageType.BNDACK, T0, upd.xid + 1,
                                 {OptionCode.ASSIGNED_IP_ADDRESS: IPv4Address(addr)}))  # fmt: skip
    p.engine.receive_data(bad, T0)
    assert p.engine.status()["unacked_updates"] == 1
    assert any("xid mismatch" in x for x in p.engine.take_log())
    # Dueling: a crossing ACTIVE with an older cltt loses against ours (reason 16)...
    older = encode_bndupd(time=T0, xid=78, address=int(IPv4Address(addr)), status=2, uid=None,
                          chaddr=b"\x01" + mac(2), ends=T0 + 600, potential=0, stos=T0 - 5,
                          cltt=T0 - 5, flags=0)  # fmt: skip
    p.engine.receive_data(older, T0)
    (lost,) = _acks(p)
    assert lost.reject_reason == RejectReason.LESS_CRIT_BIND_INFO
    assert p.engine.status()["unacked_updates"] == 1
    assert p.lease(addr).hardware == (1, mac(1))  # type: ignore[union-attr]
    # ...a received EXPIRED beats our un-acked ACTIVE, but the NORMAL table then refuses
    # it: a secondary must not expire the primary's ACTIVE lease (G12).
    p.engine.receive_data(_bndupd(77, addr, 3, chaddr=b"\x01" + mac(1)), T0)
    (rej,) = _acks(p)
    assert rej.reject_reason == RejectReason.FATAL_CONFLICT
    assert p.lease(addr).binding_state is B.ACTIVE  # type: ignore[union-attr]


def _expired(xid: int, addr: str, ends: int, now: int) -> bytes:
    return encode_bndupd(time=now, xid=xid, address=int(IPv4Address(addr)), status=3, uid=None,
                         chaddr=b"\x01" + mac(7), ends=ends, potential=ends, stos=ends,
                         cltt=T0, flags=0)  # fmt: skip


def test_stale_expired_gets_no_fudge_and_our_binding_goes_back() -> None:
    """tandem.sim seed 5152: outside NORMAL, ISC believes EXPIRED once ends - 65 <= now.
    That allowance is for the peer's clock judging the *same* end; an EXPIRED naming an
    earlier end than ours (the peer missed a renewal) is refused until our end has passed,
    and our binding is sent again so the peer learns the later end."""
    node = connected_secondary()
    eng = node.engine
    assert node.state() != "normal"
    addr = "192.0.2.150"
    eng.receive_data(_bndupd(13, addr, 2), T0)  # ACTIVE until T0 + 600
    eng.take_writes()
    assert [a.reject_reason for a in _acks(node)] == [None]
    now = T0 + 560  # 40 s before the end: inside ISC's 65 s
    eng.receive_data(_expired(14, addr, T0 + 300, now), now)
    writes, _ = eng.take_writes()
    out = messages(eng.data_to_send())
    (rej,) = [m for m in out if m.type == MessageType.BNDACK]
    assert rej.reject_reason == RejectReason.FATAL_CONFLICT
    assert node.lease(addr).binding_state is B.ACTIVE  # type: ignore[union-attr]
    (again,) = [m for m in out if m.type == MessageType.BNDUPD]
    assert again.binding_status == 2 and again.lease_expiration == T0 + 600
    assert [str(x.address) for x in writes] == [addr]
    # The same end 40 s early is still believed (ISC's allowance for the peer's clock).
    eng.receive_data(_bndack_for(again), now)
    eng.receive_data(_expired(15, addr, T0 + 600, now), now)
    eng.take_writes()
    (ok,) = _acks(node)
    assert ok.reject_reason is None
    assert node.lease(addr).binding_state is B.FREE  # type: ignore[union-attr]
    # A stale EXPIRED is believed once our own end has passed.
    eng.receive_data(_bndupd(16, addr, 2), now)
    eng.take_writes()
    _acks(node)
    eng.receive_data(_expired(17, addr, T0 + 300, T0 + 600), T0 + 600)
    eng.take_writes()
    (late,) = _acks(node)
    assert late.reject_reason is None


def _bndack_for(upd: Message) -> bytes:
    assert upd.assigned_address is not None
    opts = {OptionCode.ASSIGNED_IP_ADDRESS: upd.assigned_address}
    return encode_message(Message(MessageType.BNDACK, upd.time, upd.xid, opts))


def test_our_binding_sent_back_after_a_stale_expired_keeps_the_peers_potential() -> None:
    """The binding re-sent after a stale EXPIRED (above) was the peer's own: it carries the
    potential expiration the peer gave, not our older tstp (rules.potential_expiry; a lower
    one becomes the peer's tsfp and cuts its next renewal of the client to the MCLT)."""
    node = connected_secondary()
    eng = node.engine
    addr = "192.0.2.150"
    eng.receive_data(_bndupd(13, addr, 2, potential=T0 + 900), T0)  # ACTIVE until T0 + 600
    eng.take_writes()
    _acks(node)
    now = T0 + 560
    eng.receive_data(_expired(14, addr, T0 + 300, now), now)
    eng.take_writes()
    (again,) = [m for m in messages(eng.data_to_send()) if m.type == MessageType.BNDUPD]
    assert again.lease_expiration == T0 + 600
    assert again.potential_expiration == T0 + 900
