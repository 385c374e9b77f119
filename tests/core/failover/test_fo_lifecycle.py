"""Lease life cycle across the pair (release, expiry) and state paths after restarts."""

from __future__ import annotations

from fokit import B, dora, fresh_pair, link, mac, packet
from test_fo_pair import assert_agree, assert_no_double_binding


def test_release_and_expiry_become_free_on_both_after_the_ack() -> None:
    p, s, pair = fresh_pair()
    pair.connect()
    _, ack1 = dora(p, mac(1), pair.now)
    _, ack2 = dora(p, mac(2), pair.now)
    assert ack1 is not None and ack1.reply is not None
    assert ack2 is not None and ack2.reply is not None
    addr1, addr2 = str(ack1.reply.packet.yiaddr), str(ack2.reply.packet.yiaddr)
    pair.pump()
    p.handle(packet(7, mac(2), ciaddr=addr2), pair.now)  # DHCPRELEASE
    assert p.lease(addr2).binding_state is B.RELEASED  # type: ignore[union-attr]
    pair.pump()
    assert p.lease(addr2).binding_state is B.FREE  # type: ignore[union-attr]
    assert s.lease(addr2).binding_state is B.FREE  # type: ignore[union-attr]
    # The secondary leaves expiry to the primary while NORMAL; the primary's EXPIRED
    # update frees the lease on both sides once acked.
    pair.advance(3601)
    assert p.lease(addr1).binding_state is B.FREE  # type: ignore[union-attr]
    assert s.lease(addr1).binding_state is B.FREE  # type: ignore[union-attr]
    assert s.engine.leases.deferred_expiry == set()
    assert_agree(p, s)


def test_partner_down_meets_comm_interrupted_potential_conflict_resolution() -> None:
    p, s, pair = fresh_pair()
    pair.connect()
    for n in range(3):
        dora(p, mac(n), pair.now)
    pair.pump()
    pair.disconnect()  # a partition: both sides keep running
    s.engine.partner_down(pair.now)
    _, ack = dora(s, mac(50), pair.now)  # the secondary serves alone meanwhile
    assert ack is not None and ack.reply is not None
    pair.advance(10)
    p.engine.take_log()
    pair.connect()
    assert (p.state(), s.state()) == ("normal", "normal")
    moves = [x.split("I move from ")[1] for x in p.engine.take_log() if "I move" in x]
    assert moves == [
        "communications-interrupted to potential-conflict",
        "potential-conflict to conflict-done",
        "conflict-done to normal",
    ]
    assert p.lease(str(ack.reply.packet.yiaddr)).hardware == (1, mac(50))  # type: ignore[union-attr]
    assert_agree(p, s)
    assert_no_double_binding(p, s)


def test_restart_reads_back_the_state_record() -> None:
    p, s, pair = fresh_pair()
    pair.connect()
    dora(p, mac(1), pair.now)
    pair.pump()
    pair.disconnect()
    rec = p.records[-1]
    assert (rec.my_state, rec.partner_state) == ("communications-interrupted", "normal")
    p2 = p.restart(pair.now + 5)
    assert p2.engine.machine.saved_state.keyword == "communications-interrupted"
    assert p2.engine.status()["reported_state"] == "communications-interrupted"
    pair2 = link(p2, s, pair.now + 5)
    pair2.connect()
    assert (p2.state(), s.state()) == ("normal", "normal")
    moves = [x.split("I move from ")[1] for x in p2.engine.take_log() if "I move" in x]
    assert moves == ["communications-interrupted to startup", "startup to normal"]
    assert_agree(p2, s)
