"""io/probe.py: the DHCPINFORM probe, what a Tandem partner answers to it in every failover
state (a DHCPACK, no lease written or allocated), and how answers are matched."""

from __future__ import annotations

import sys
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from tandem.core.types import RxMeta
from tandem.io.probe import Prober, inform_packet
from tandem.wire import dhcp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "failover"))

from fokit import T0, fresh_pair, make_node, seed_conf

A = IPv4Address
PRIMARY = A("192.0.2.1")
SECONDARY = A("192.0.2.2")
AUTH = "authoritative;\n"


def probe_from_secondary(xid: int = 0x1234) -> dhcp.Packet:
    return dhcp.decode(inform_packet(xid, SECONDARY, bytes.fromhex("020000000002")))


def test_probe_is_an_inform_from_our_own_address() -> None:
    p = probe_from_secondary()
    assert p.op == 1 and p.message_type == 8 and p.xid == 0x1234
    assert p.ciaddr == SECONDARY and int(p.giaddr) == 0 and int(p.yiaddr) == 0
    assert p.options[55] == b"\x01" and p.options[60] == b"tandem-probe"


def _answer(node: object, xid: int = 0x1234) -> tuple[object, list[object]]:
    meta = RxMeta("eth0", (node.ip,), SECONDARY, 68, unicast=True)  # type: ignore[attr-defined]
    leases_before = len(list(node.server.leases()))  # type: ignore[attr-defined]
    out = node.server.handle(probe_from_secondary(xid), meta, T0 + 100)  # type: ignore[attr-defined]
    assert out.writes == [], "a probe writes no lease"
    assert len(list(node.server.leases())) == leases_before  # type: ignore[attr-defined]
    return out, out.log


def _check_ack(out: object) -> None:
    reply = out.reply  # type: ignore[attr-defined]
    assert reply is not None
    assert reply.packet.message_type == 5 and int(reply.packet.yiaddr) == 0
    assert reply.dest_ip == SECONDARY and reply.dest_port == 68  # back to the probe socket
    assert 51 not in reply.packet.options  # no lease time: nothing was leased


def test_tandem_partner_answers_in_every_failover_state() -> None:
    seen = []
    node = make_node("primary", AUTH + seed_conf("primary"), T0)
    _check_ack(_answer(node)[0])
    seen.append(node.engine.machine.state.keyword)
    for step in range(0, 200, 5):  # no partner, no saved state: STARTUP, then RECOVER
        node.tick(T0 + step)
        node.engine.handle_timer(T0 + step)
    _check_ack(_answer(node)[0])
    seen.append(node.engine.machine.state.keyword)
    p, s, pair = fresh_pair(T0, AUTH + seed_conf("primary"), AUTH + seed_conf("secondary"))
    pair.connect()
    pair.pump()
    pair.advance(30)
    assert p.state() == "normal" and s.state() == "normal"
    for who in (p, s):  # the secondary at split 256 too: INFORM is not load-balanced
        _check_ack(_answer(who)[0])
    seen.append(s.state())
    pair.disconnect()
    pair.advance(5)
    _check_ack(_answer(s)[0])
    seen.append(s.state())
    s.engine.partner_down(pair.now)
    _check_ack(_answer(s)[0])
    seen.append(s.state())
    assert seen == ["startup", "recover", "normal", "communications-interrupted", "partner-down"]


def test_a_partner_that_is_not_authoritative_stays_silent() -> None:
    """dhcpd's rule, kept: the probe needs ``authoritative;`` (docs/auto-partner-down-io.md)."""
    node = make_node("primary", seed_conf("primary"), T0)
    out, log = _answer(node)
    assert out.reply is None  # type: ignore[attr-defined]
    assert "not authoritative for subnet 192.0.2.0" in str(log[0])


def _prober() -> tuple[Prober, list[tuple[int, int]]]:
    got: list[tuple[int, int]] = []
    prober = Prober(PRIMARY, lambda s, n: got.append((s, n)), source=SECONDARY, clock=lambda: T0)
    prober._xids[0x1234] = T0 - 40  # as if sent 40 ms ago
    return prober, got


def _reply_bytes(xid: int = 0x1234) -> bytes:
    node = make_node("primary", AUTH + seed_conf("primary"), T0)
    out, _ = _answer(node, xid)
    reply = out.reply  # type: ignore[attr-defined]
    return dhcp.encode(reply.packet)


def test_an_answer_from_the_partner_is_reported_once() -> None:
    prober, got = _prober()
    data = _reply_bytes()
    assert prober.receive(data, PRIMARY)
    assert got == [(T0 - 40, T0)] and prober.answered == 1 and prober.last_answer == T0
    assert not prober.receive(data, PRIMARY)  # the same xid again: already answered
    assert prober.drops["unknown-xid"] == 1 and got == [(T0 - 40, T0)]


@pytest.mark.parametrize(
    ("data", "source", "reason"),
    [
        (b"\x02junk", PRIMARY, "short-header"),
        (None, A("192.0.2.9"), "not-the-partner-or-id"),
        (inform_packet(0x1234, SECONDARY), PRIMARY, "not-an-ack"),
    ],
)
def test_other_datagrams_are_dropped(data: bytes | None, source: A, reason: str) -> None:
    prober, got = _prober()
    if data is None:  # an ACK with our xid, from elsewhere, naming another server
        packet = dhcp.decode(_reply_bytes())
        packet.options[54] = A("192.0.2.9").packed
        data = dhcp.encode(packet)
        reason = "not-the-partner"
    assert not prober.receive(data, source)
    assert got == [] and sum(prober.drops.values()) == 1
    assert reason in prober.drops or any(k.startswith("short") for k in prober.drops)


def test_an_unknown_xid_is_dropped() -> None:
    prober, got = _prober()
    assert not prober.receive(_reply_bytes(0x9999), PRIMARY)
    assert prober.drops == {"unknown-xid": 1} and got == []


def test_the_partners_probes_are_counted_only_when_watched() -> None:
    """auto-partner-down counts DHCPINFORMs from its partner (io/autopd.py reads probed_by)."""
    node = make_node("primary", AUTH + seed_conf("primary"), T0)
    _check_ack(_answer(node)[0])
    assert node.server.ctx.probed_by == {}  # nobody watches: nothing counted
    node.server.ctx.probe_sources = frozenset({int(SECONDARY)})
    _check_ack(_answer(node)[0])
    _check_ack(_answer(node)[0])
    assert node.server.ctx.probed_by == {int(SECONDARY): 2}
