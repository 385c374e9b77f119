"""Reload over a live failover relationship (tandem.core.reload): an unchanged ``failover peer``
block keeps the engine, its states and its link; a changed one gets a new engine that starts
from the old one's state; and the reloaded server's changes still reach the peer."""

from __future__ import annotations

from fokit import SECONDARY_CONF, Node, binding_table, dora, fresh_pair, mac, msg_type, seed_conf

from tandem.config import parse_text
from tandem.core.reload import plan, rebuild

DHCPACK = 5
HOST = "host fixed1 {{ hardware ethernet {mac}; fixed-address 192.0.2.20; }}\n"


def _reload(node: Node, text: str, now: int) -> tuple[list[str], list[str]]:
    config = parse_text(text)
    decided = plan(node.server.config, config)
    server, engines = rebuild(
        node.server, config, {node.engine.name: node.engine}, decided, now=now
    )
    node.server, node.text = server, text
    (node.engine,) = engines.values()
    return list(decided.kept), list(decided.restarted)


def test_unchanged_peer_block_keeps_the_engine_the_link_and_normal() -> None:
    p, s, pair = fresh_pair()
    pair.connect()
    assert (p.state(), s.state()) == ("normal", "normal")
    _off, ack = dora(p, mac(1), pair.now)
    assert msg_type(ack) == DHCPACK
    pair.pump()
    engine, counts = p.engine, p.engine.leases.pools.summary()
    text = HOST.format(mac="52:54:00:10:00:63") + p.text.replace("mclt 3600;", "mclt  3600 ;")
    kept, restarted = _reload(p, text, pair.now)
    assert (kept, restarted) == (["failover-example"], [])
    assert p.engine is engine and pair.up
    assert (p.state(), s.state()) == ("normal", "normal")
    assert p.engine.leases.pools.summary() == counts  # FREE/BACKUP counts redone, same
    assert p.engine.leases.db is p.server.db
    # The new host is served its fixed address, and a new client's lease reaches the peer.
    _off, fixed = dora(p, mac(99), pair.now)
    assert fixed is not None and str(fixed.reply.packet.yiaddr) == "192.0.2.20"  # type: ignore[union-attr]
    _off, ack2 = dora(p, mac(2), pair.now)
    assert msg_type(ack2) == DHCPACK
    pair.pump()
    assert binding_table(p) == binding_table(s)
    assert not p.engine.leases.inflight and not pair.closed


def test_changed_peer_block_restarts_the_relationship_from_its_state() -> None:
    p, s, pair = fresh_pair()
    pair.connect()
    old = p.engine
    kept, restarted = _reload(p, seed_conf("primary", split=128), pair.now)
    assert (kept, restarted) == ([], ["failover-example"])
    assert p.engine is not old
    # Started as a restart would start it from the lease file's record: from NORMAL, with
    # no link yet, it waits in communications-interrupted for its (new) connection.
    assert p.engine.state_record().my_state != "startup"
    assert p.engine.link.state == "down"
    pair.a = p.engine
    pair.disconnect()
    pair.connect()
    assert (p.state(), s.state()) == ("normal", "normal")
    assert p.engine.leases.hba == bytes([0xFF] * 16 + [0] * 16)


def test_secondary_reload_keeps_its_engine() -> None:
    p, s, pair = fresh_pair()
    pair.connect()
    engine = s.engine
    kept, _ = _reload(s, SECONDARY_CONF + '\noption domain-name "example.org";\n', pair.now)
    assert kept == ["failover-example"] and s.engine is engine
    assert (p.state(), s.state()) == ("normal", "normal")
