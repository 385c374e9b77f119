"""Golden vectors: every failover message ISC dhcpd 4.4.3-P1 sent in the captured run."""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address

import pytest
from fo_pcap import FAILOVER_PCAP, read_segments, reassemble

from tandem.wire.failover import Message, decode_message, encode_message
from tandem.wire.failover_codes import BindingState, MessageType, RejectReason, ServerState
from tandem.wire.framing import FrameBuffer

# reference/anchors.md "Message counts in the capture" (and tshark's dhcpfo dissector).
EXPECTED_COUNTS = {
    MessageType.BNDUPD: 256,
    MessageType.BNDACK: 255,
    MessageType.CONNECT: 3,
    MessageType.CONNECTACK: 3,
    MessageType.UPDREQALL: 4,
    MessageType.UPDDONE: 2,
    MessageType.STATE: 16,
    MessageType.CONTACT: 5,
}


def _messages() -> list[tuple[str, bytes]]:
    out = []
    for stream in reassemble(read_segments(FAILOVER_PCAP)):
        frames = FrameBuffer()
        frames.feed(stream.data())
        out.extend((stream.src[0], raw) for raw in frames)
        assert len(frames) == 0, "stream ended inside a message"
    return out


@pytest.fixture(scope="module")
def captured() -> list[tuple[str, bytes]]:
    return _messages()


def test_counts_match_the_anchors(captured: list[tuple[str, bytes]]) -> None:
    counts = Counter(decode_message(raw).type for _, raw in captured)
    assert counts == EXPECTED_COUNTS


def test_every_message_reencodes_byte_for_byte(captured: list[tuple[str, bytes]]) -> None:
    for _, raw in captured:
        assert encode_message(decode_message(raw)) == raw


def test_connects_come_from_the_primary(captured: list[tuple[str, bytes]]) -> None:
    connects = [(src, decode_message(raw)) for src, raw in captured]
    connects = [(src, m) for src, m in connects if m.type is MessageType.CONNECT]
    assert {src for src, _ in connects} == {"192.0.2.1"}
    for _, msg in connects:
        assert msg.xid == 0
        assert msg.relationship_name is not None
        assert msg.hba is not None and len(msg.hba) == 32
        assert msg.mclt == 3600  # failover-tcp-fields.txt: dhcpfo.mclt of frame 6
        assert msg.protocol_version == 1
        assert msg.vendor_class is not None and msg.vendor_class.startswith("isc-")


def test_bndupd_fields(captured: list[tuple[str, bytes]]) -> None:
    updates = [decode_message(raw) for _, raw in captured]
    updates = [m for m in updates if m.type is MessageType.BNDUPD]
    pool = {IPv4Address("192.0.2.100") + i for i in range(101)}
    for msg in updates:
        assert msg.xid != 0
        assert msg.assigned_address in pool
        assert msg.binding_status in set(BindingState)
        assert msg.lease_expiration is not None and msg.potential_expiration is not None
    statuses = Counter(m.binding_status for m in updates)
    assert statuses[BindingState.FREE] > 0 and statuses[BindingState.BACKUP] > 0
    active = [m for m in updates if m.binding_status == BindingState.ACTIVE]
    assert active and all(m.hardware is not None for m in active)


def test_states_and_rejects(captured: list[tuple[str, bytes]]) -> None:
    msgs: list[Message] = [decode_message(raw) for _, raw in captured]
    states = {m.server_state for m in msgs if m.type is MessageType.STATE}
    assert {ServerState.RECOVER, ServerState.NORMAL, ServerState.RECOVER_DONE} <= states
    acks = [m for m in msgs if m.type is MessageType.BNDACK]
    rejected = [m for m in acks if m.reject_reason is not None]
    # Dueling FREE updates of the fresh pair: "incoming update is less critical ..." (16).
    assert rejected and {m.reject_reason for m in rejected} == {RejectReason.LESS_CRIT_BIND_INFO}
    assert all(m.message_text for m in rejected)
