"""A clean handover (issue 10 item 6): SHUTDOWN on a planned stop, the partner to PARTNER-DOWN
at once, and a restart that goes through RECOVER without waiting out the MCLT (ISC's special
case, failover-isc.md §7.6), only when that is safe."""

from __future__ import annotations

from fokit import (
    PRIMARY_CONF,
    SECONDARY_CONF,
    Node,
    active_clients,
    binding_table,
    dora,
    fresh_pair,
    lease_time,
    link,
    mac,
    msg_type,
    renew,
)

from tandem.lab.failover_pair import Pair

MCLT = 3600
DHCPACK = 5


def normal_pair() -> tuple[Node, Node, Pair]:
    p, s, pair = fresh_pair()
    pair.connect()
    assert (p.state(), s.state()) == ("normal", "normal")
    return p, s, pair


def serve_clients(node: Node, pair: Pair, count: int) -> dict[int, int]:
    got = {}
    for n in range(1, count + 1):
        _, ack = dora(node, mac(n), pair.now)
        assert ack is not None and msg_type(ack) == DHCPACK
        got[n] = int(ack.reply.packet.yiaddr)  # type: ignore[union-attr]
    return got


def moves(node: Node) -> list[str]:
    return [x.split("I move from ")[1] for x in node.engine.take_log() if "I move from" in x]


def assert_no_double_binding(*nodes: Node) -> None:
    owner: dict[int, bytes] = {}
    for node in nodes:
        for a, hw in active_clients(node).items():
            assert owner.setdefault(a, hw) == hw, f"{a} bound to two clients"


def hand_over(stopping: Node, partner: Node, pair: Pair) -> None:
    """SIGTERM's engine half: shutdown, then pump until the partner answered; link closes."""
    assert stopping.engine.shutdown(pair.now) is True
    assert not stopping.engine.handover_done()  # the STATE is not even sent yet
    pair.pump()
    assert stopping.state() == "shutdown"
    assert partner.state() == "partner-down"
    assert stopping.engine.handover_done() and stopping.engine.handed_over()
    pair.disconnect()  # the process exits
    assert partner.state() == "partner-down"


def test_shutdown_of_either_peer_puts_the_other_in_partner_down_and_restart_skips_mclt() -> None:
    for role in ("primary", "secondary"):
        p, s, pair = normal_pair()
        clients = serve_clients(p, pair, 4)
        pair.pump()
        stopping, partner = (p, s) if role == "primary" else (s, p)
        stopping.engine.take_log()
        hand_over(stopping, partner, pair)
        assert moves(stopping) == ["normal to shutdown"]
        assert "I move from normal to partner-down" in " ".join(partner.engine.take_log())
        rec = stopping.records[-1]
        assert (rec.my_state, rec.partner_state) == ("shutdown", "partner-down"), rec

        # The partner serves alone for a while, then the stopped server comes back.
        pair.advance(30)
        _, ack = dora(partner, mac(50), pair.now)
        assert ack is not None and msg_type(ack) == DHCPACK
        back = stopping.restart(pair.now)
        pair2 = link(back, partner, pair.now) if role == "primary" else link(p, back, pair.now)
        start = pair2.now
        pair2.connect()
        pair2.advance(5)
        assert (back.state(), partner.state()) == ("normal", "normal")
        assert pair2.now - start < 60 < MCLT
        assert moves(back) == [
            "shutdown to recover",
            "recover to startup",
            "startup to recover",
            "recover to recover-done",
            "recover-done to normal",
        ]
        assert binding_table(back) == binding_table(partner)
        assert_no_double_binding(back, partner)
        assert set(clients.values()) <= set(active_clients(back))


def test_handover_waits_for_the_acks_of_what_was_queued() -> None:
    p, s, pair = normal_pair()
    serve_clients(p, pair, 3)  # their BNDUPDs are staged, not sent yet
    assert p.engine.shutdown(pair.now)
    pair.commit()
    s.engine.receive_data(p.engine.data_to_send(), pair.now)  # our STATE, then the BNDUPDs
    assert s.state() == "partner-down"
    pair.commit()
    answer = s.engine.data_to_send()  # its STATE PARTNER-DOWN, then the BNDACKs
    first = int.from_bytes(answer[:2], "big")  # failover framing: 2-byte message length
    p.engine.receive_data(answer[:first], pair.now)
    assert p.engine.machine.peer_state == 4  # PARTNER-DOWN seen...
    assert not p.engine.handover_done()  # ...but three updates are still un-acked
    assert not p.engine.handed_over()
    p.engine.receive_data(answer[first:], pair.now)
    assert p.engine.handover_done() and p.engine.handed_over()
    assert len(active_clients(s)) == 3


def test_no_handover_outside_normal() -> None:
    p, s, pair = normal_pair()
    pair.disconnect()
    assert p.state() == "communications-interrupted"
    assert p.engine.shutdown(pair.now) is False
    assert p.state() == "communications-interrupted"
    assert p.engine.handover_done()
    s.engine.partner_down(pair.now)
    assert s.engine.shutdown(pair.now) is False
    assert s.state() == "partner-down"


def test_restart_after_an_unanswered_shutdown_waits_out_the_mclt() -> None:
    """The STATE never reached the partner (link lost first): the record says SHUTDOWN with
    the partner NORMAL, so the restart must not skip RECOVER-WAIT."""
    p, s, pair = normal_pair()
    serve_clients(p, pair, 2)
    pair.pump()
    assert p.engine.shutdown(pair.now)
    pair.commit()  # the SHUTDOWN record is durable, its STATE is lost with the link
    pair.up = False
    p.engine.connection_lost(pair.now)
    s.engine.connection_lost(pair.now)
    assert p.engine.handover_done()  # nothing more to wait for...
    assert not p.engine.handed_over()  # ...but nothing was handed over
    rec = p.records[-1]
    assert (rec.my_state, rec.partner_state) == ("shutdown", "normal")
    s.engine.partner_down(pair.now)
    back = p.restart(pair.now + 10)
    pair2 = link(back, s, pair.now + 10)
    pair2.connect()
    assert back.state() == "recover-wait"
    pair2.advance(MCLT + 1)
    assert (back.state(), s.state()) == ("normal", "normal")


def test_restart_after_shutdown_with_an_unacked_change_waits_out_the_mclt() -> None:
    """A lease whose change the partner never acknowledged (tstp > atsfp): not safe to skip."""
    p, s, pair = normal_pair()
    clients = serve_clients(p, pair, 2)
    pair.pump()
    hand_over(p, s, pair)
    addr = clients[1]
    lease = p.journal[addr]
    lease.tstp = (lease.atsfp or 0) + 10
    back = p.restart(pair.now + 10)
    pair2 = link(back, s, pair.now + 10)
    pair2.connect()
    assert back.state() == "recover-wait"
    pair2.advance(MCLT + 1)
    assert (back.state(), s.state()) == ("normal", "normal")
    assert_no_double_binding(back, s)


def test_recover_after_a_handover_keeps_what_the_peer_acked_so_renewals_keep_their_end() -> None:
    """tandem.sim seed 71489 (core.failover.rules.potential_expiry): the primary ACKed a
    client, the secondary renewed it twice (ends +380 s, potential +500 s); the primary's
    tstp stayed at its own first ACK's (+255 s). After the secondary's handover and restart,
    the primary's UPDREQALL answer re-sent that tstp as potential-expiration: both sides took
    it as tsfp, and the next renewal was cut to the MCLT, ending 90 s before the end the
    client already held (had that ACK been lost, the lease would have expired while held)."""
    short = "default-lease-time 240;\nmax-lease-time 240;\n"
    p, s, pair = fresh_pair(
        primary=short + PRIMARY_CONF.replace("mclt 3600;", "mclt 30;"),
        secondary=short + SECONDARY_CONF,
    )
    pair.connect()
    t0 = pair.now
    n = next(n for n in range(1, 50) if dora(p, mac(n), t0)[1] is not None)
    hw = mac(n)
    addr = str(p.server.db.leases_of(None, (1, hw))[1][0].address)
    pair.pump()
    for at in (20, 140):  # renewals at the secondary, 240 s each
        pair.advance(at - (pair.now - t0))
        assert lease_time(renew(s, hw, addr, pair.now)) == 240
        pair.pump()
    held = s.lease(addr)
    assert held is not None and held.ends == t0 + 380 and held.tsfp == t0 + 500
    assert (p.lease(addr).tstp, p.lease(addr).tsfp) == (t0 + 255, t0 + 500)  # type: ignore[union-attr]

    hand_over(s, p, pair)
    back = s.restart(pair.now + 5)
    pair2 = link(p, back, pair.now + 5)
    pair2.connect()
    pair2.advance(5)
    assert (p.state(), back.state()) == ("normal", "normal")
    for node in (p, back):
        lease = node.lease(addr)
        assert lease is not None and lease.tsfp == t0 + 500, (node.name, lease)

    pair2.advance(t0 + 260 - pair2.now)  # past the primary's old tstp, before the end held
    out = renew(back, hw, addr, pair2.now)
    assert msg_type(out) == DHCPACK
    assert pair2.now + lease_time(out) >= t0 + 380  # never below what the client holds
    assert lease_time(out) == 240
