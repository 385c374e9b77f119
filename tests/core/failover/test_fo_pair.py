"""Two servers with the seed configs on an in-memory failover link, through the states dhcpd
passes: fresh start, DORA replication, link loss, partner-down, recovery, load balancing."""

from __future__ import annotations

from fokit import (
    PRIMARY_CONF,
    SECONDARY_CONF,
    T0,
    A,
    B,
    Node,
    active_clients,
    binding_table,
    dora,
    fresh_pair,
    lease_time,
    link,
    mac,
    make_node,
    msg_type,
    packet,
    renew,
    seed_conf,
)

from tandem.lab.failover_pair import Pair

DHCPACK = 5
DHCPOFFER = 2
MCLT = 3600


def normal_pair() -> tuple[Node, Node, Pair]:
    p, s, pair = fresh_pair()
    pair.connect()
    assert (p.state(), s.state()) == ("normal", "normal")
    return p, s, pair


def assert_agree(p: Node, s: Node) -> None:
    """Both lease DBs hold the same state and client for every address."""
    tp, ts = binding_table(p), binding_table(s)
    for a in set(tp) | set(ts):
        assert tp.get(a, (B.FREE, None)) == ts.get(a, (B.FREE, None)), A(a)


def assert_no_double_binding(*nodes: Node) -> None:
    """No address is ACTIVE for two different clients anywhere."""
    owner: dict[int, bytes] = {}
    for node in nodes:
        for a, hw in active_clients(node).items():
            assert owner.setdefault(a, hw) == hw, f"{A(a)} bound to two clients"


def keep_alive(node: Node, *clients: dict[int, int], now: int) -> None:
    """Every client (mac number -> address) renews (RENEWING) with ``node``."""
    for group in clients:
        for n, addr in group.items():
            assert msg_type(renew(node, mac(n), str(A(addr)), now)) == DHCPACK


def test_seed_configs_reach_normal_and_balance() -> None:
    p, s, pair = fresh_pair()
    pair.connect()
    assert (p.state(), s.state()) == ("normal", "normal")
    plog, slog = p.engine.take_log(), s.engine.take_log()
    assert "failover peer failover-example: I move from recover to startup" in plog
    assert "failover peer failover-example: I move from recover-done to normal" in plog
    assert "failover peer failover-example: Both servers normal" in plog
    # dhcpd says it once per arrival in NORMAL
    for log in (plog, slog):
        assert log.count("failover peer failover-example: Both servers normal") == 1
    assert "failover peer failover-example: peer moves from recover-done to normal" in slog
    assert any(
        line.startswith("balancing pool 1 192.0.2.0  total 101  free 101  backup 0  lts 50")
        for line in plog
    )
    # dhcpd's anchor: the primary moves 50 of the 101 leases to BACKUP.
    for node in (p, s):
        (pool,) = node.engine.status()["pools"]  # type: ignore[misc]
        assert pool == {
            "pool": 1,
            "ranges": "192.0.2.100-192.0.2.200",
            "total": 101,
            "free": 51,
            "backup": 50,
        }
    assert_agree(p, s)
    # Both sides persisted their state record with the partner normal; only the secondary
    # writes the MCLT it learned.
    assert p.records[-1].my_state == "normal" and p.records[-1].partner_state == "normal"
    assert p.records[-1].mclt is None and s.records[-1].mclt == MCLT


def test_dora_on_primary_is_replicated_to_secondary() -> None:
    p, s, pair = normal_pair()
    _, ack = dora(p, mac(1), pair.now)
    assert ack is not None and msg_type(ack) == DHCPACK
    assert lease_time(ack) == MCLT  # default-lease-time 43200 clamped to MCLT (anchor)
    addr = str(ack.reply.packet.yiaddr)  # type: ignore[union-attr]
    assert s.lease(addr) is None or s.lease(addr).binding_state is not B.ACTIVE  # type: ignore[union-attr]
    pair.pump()
    held = s.lease(addr)
    assert held is not None and held.binding_state is B.ACTIVE
    assert held.hardware == (1, mac(1)) and held.ends == T0 + MCLT
    assert held.tsfp == T0 + 43200 + MCLT // 2  # potential expiration = now + 45000 (anchor)
    prim = p.lease(addr)
    assert prim is not None and prim.tsfp == prim.atsfp == prim.tstp  # acked
    assert addr in {str(A(a)) for a in s.journal}  # the secondary committed it
    # 10 s later the lease is under dhcp-cache-threshold (25 % of 3600 s): reused as it is,
    # nothing written or replicated (dhcpd's reuse_lease).
    _, again = dora(p, mac(1), pair.now + 10)
    assert again is not None and lease_time(again) == MCLT - 10 and again.writes == []
    # Past it, a re-offer may give the full time: tsfp is now far ahead.
    _, again = dora(p, mac(1), pair.now + 1000)
    assert again is not None and lease_time(again) == 43200
    # The secondary stays silent for this client in NORMAL (split 256: primary serves all).
    quiet = s.handle(packet(1, mac(1)), pair.now)
    assert quiet.reply is None


def test_link_loss_comm_interrupted_then_back_to_normal() -> None:
    p, s, pair = normal_pair()
    _, ack = dora(p, mac(1), pair.now)
    assert ack is not None
    addr = str(ack.reply.packet.yiaddr)  # type: ignore[union-attr]
    pair.pump()
    pair.advance(60)
    pair.disconnect()
    assert (p.state(), s.state()) == ("communications-interrupted",) * 2
    slog = s.engine.take_log()
    assert (
        "failover peer failover-example: I move from normal to communications-interrupted" in slog
    )
    pair.advance(1000)
    # The secondary renews the existing client...
    r = renew(s, mac(1), addr, pair.now)
    assert msg_type(r) == DHCPACK
    # ...and gives a new client a BACKUP lease with an MCLT-limited time.
    backup_before = {a for a, (st, _) in binding_table(s).items() if st is B.BACKUP}
    _, ack2 = dora(s, mac(2), pair.now)
    assert ack2 is not None and msg_type(ack2) == DHCPACK
    new_addr = int(ack2.reply.packet.yiaddr)  # type: ignore[union-attr]
    assert new_addr in backup_before
    assert lease_time(ack2) == MCLT
    # The primary, also cut off, keeps serving from its FREE leases.
    _, ack3 = dora(p, mac(3), pair.now)
    assert ack3 is not None and msg_type(ack3) == DHCPACK
    assert int(ack3.reply.packet.yiaddr) not in backup_before  # type: ignore[union-attr]
    pair.advance(5)
    pair.connect()
    assert (p.state(), s.state()) == ("normal", "normal")
    plog = p.engine.take_log()
    assert (
        "failover peer failover-example: I move from communications-interrupted to normal" in plog
    )
    assert_agree(p, s)
    assert p.lease(str(A(new_addr))).hardware == (1, mac(2))  # type: ignore[union-attr]
    assert_no_double_binding(p, s)


def test_partner_down_then_primary_recovers_from_scratch() -> None:
    p, s, pair = normal_pair()
    clients = {}
    for n in range(1, 6):
        _, ack = dora(p, mac(n), pair.now)
        assert ack is not None and msg_type(ack) == DHCPACK
        clients[n] = int(ack.reply.packet.yiaddr)  # type: ignore[union-attr]
    pair.pump()
    pair.disconnect()  # the primary dies
    down_at = pair.now
    s.engine.partner_down(pair.now)
    assert s.state() == "partner-down"
    assert "I move from communications-interrupted to partner-down" in s.engine.take_log()[-1]
    # Before MCLT: only its own BACKUP leases (50 of them).
    served: dict[int, int] = {}
    n = 100
    while True:
        _, ack = dora(s, mac(n), pair.now)
        n += 1
        if ack is None or msg_type(ack) != DHCPACK:
            break
        served[n - 1] = int(ack.reply.packet.yiaddr)  # type: ignore[union-attr]
    assert len(served) == 50
    assert s.log[-1].endswith(": peer holds all free leases")
    # After MCLT it may use the primary's FREE leases too: the whole pool.
    pair.advance(MCLT // 2)
    keep_alive(s, clients, served, now=pair.now)
    pair.advance(MCLT // 2 + 1)
    while True:
        _, ack = dora(s, mac(n), pair.now)
        n += 1
        if ack is None or msg_type(ack) != DHCPACK:
            break
        served[n - 1] = int(ack.reply.packet.yiaddr)  # type: ignore[union-attr]
    assert len(served) + len(clients) == 101
    assert not set(served.values()) & set(clients.values())
    assert pair.now > down_at + MCLT
    # The primary comes back with an empty lease file: RECOVER, full update, RECOVER-WAIT
    # for MCLT (the peer is not recovering), RECOVER-DONE, NORMAL.
    p2 = make_node("primary", PRIMARY_CONF, pair.now)
    pair2 = link(p2, s, pair.now)
    pair2.connect()
    assert p2.state() == "recover-wait"
    assert p2.server.handle(packet(1, mac(999)), p2.meta, pair2.now).reply is None  # silent
    pair2.advance(MCLT // 2)
    keep_alive(s, clients, served, now=pair2.now)
    pair2.advance(MCLT // 2 + 1)
    assert (p2.state(), s.state()) == ("normal", "normal")
    moves = [x for x in p2.engine.take_log() if "I move" in x]
    assert [m.split("I move from ")[1] for m in moves] == [
        "recover to startup",
        "startup to recover",
        "recover to recover-wait",
        "recover-wait to recover-done",
        "recover-done to normal",
    ]
    assert_agree(p2, s)
    assert_no_double_binding(p2, s)
    assert len(active_clients(p2)) == 101


def test_secondary_restart_recovers_from_primary() -> None:
    """A secondary that lost its lease file: primary goes PARTNER-DOWN, resyncs it."""
    p, _, pair = normal_pair()
    clients = {}
    for n in range(1, 4):
        _, ack = dora(p, mac(n), pair.now)
        clients[n] = int(ack.reply.packet.yiaddr)  # type: ignore[union-attr]
    pair.pump()
    pair.disconnect()
    s2 = make_node("secondary", SECONDARY_CONF, pair.now)
    pair2 = link(p, s2, pair.now)
    pair2.connect()
    assert p.state() == "partner-down"
    assert s2.state() == "recover-wait"
    pair2.advance(MCLT // 2)
    keep_alive(p, clients, now=pair2.now)
    pair2.advance(MCLT // 2 + 1)
    assert (p.state(), s2.state()) == ("normal", "normal")
    assert_agree(p, s2)
    assert len(active_clients(s2)) == 3


def test_split_128_load_balancing() -> None:
    p = make_node("primary", seed_conf("primary", split=128), T0)
    s = make_node("secondary", seed_conf("secondary"), T0)
    pair = link(p, s, T0)
    pair.connect()
    answered: dict[str, int] = {"primary": 0, "secondary": 0}
    for n in range(60):
        hw = mac(0x200 + n)
        replies = [node.name for node in (p, s) if msg_type(node.handle(packet(1, hw), T0))]
        assert len(replies) == 1, (hw.hex(), replies)
        answered[replies[0]] += 1
    assert answered["primary"] > 10 and answered["secondary"] > 10
    lb = [x for x in p.log + s.log if x.endswith("load balance to peer failover-example")]
    assert len(lb) == 60
    # secs above "load balance max seconds" (3): the other server answers too.
    for n in range(10):
        hw = mac(0x300 + n)
        both = [node.name for node in (p, s) if msg_type(node.handle(packet(1, hw, secs=4), T0))]
        assert both == ["primary", "secondary"]
        at_limit = [
            node.name for node in (p, s) if msg_type(node.handle(packet(1, hw, secs=3), T0))
        ]
        assert len(at_limit) == 1
    # The reference vectors: chaddr aa:bb:cc:dd:ee:ff -> primary, 00:11:22:33:44:55 -> secondary.
    assert msg_type(p.handle(packet(1, bytes.fromhex("aabbccddeeff")), T0)) == DHCPOFFER
    assert msg_type(s.handle(packet(1, bytes.fromhex("001122334455")), T0)) == DHCPOFFER
    assert msg_type(p.handle(packet(1, bytes.fromhex("001122334455")), T0)) is None


def test_pool_balancing_counts_after_use() -> None:
    """Leases that come back FREE are rebalanced on the timer: counts stay near 50/50."""
    p, s, pair = normal_pair()
    for n in range(40):
        dora(p, mac(n), pair.now)
    pair.pump()
    (pool,) = p.engine.status()["pools"]  # type: ignore[misc]
    assert pool["free"] == 11 and pool["backup"] == 50
    s.engine.take_log()
    pair.advance(120)  # the scheduled balance runs (min-balance 60 s)
    # The secondary has the surplus: its balancer gives never-used BACKUP leases back as
    # FREE down to an even split (lts (50 - 11) / 2 = 19).
    log = s.engine.take_log()
    assert (
        "balancing pool 1 192.0.2.0  total 101  free 11  backup 50  lts 19  max-own (+/-)6" in log
    )
    for node in (p, s):
        (pool,) = node.engine.status()["pools"]  # type: ignore[misc]
        assert (pool["free"], pool["backup"]) == (30, 31)
    assert_agree(p, s)


def test_crossing_renewals_keep_the_later_end_on_both() -> None:
    """tandem.sim seed 5587: both servers ACK the same client's renewal in the same second
    and their BNDUPDs cross. ISC's duel (same cltt: the primary wins) would make both keep
    the primary's shorter end, though the client may have taken the secondary's longer
    ACK last; the end a server told a client is never shortened, so both keep the later."""
    short = PRIMARY_CONF.replace(
        "option routers", "default-lease-time 7200;\n        option routers"
    )
    p, s, pair = fresh_pair(primary=short)
    pair.connect()
    _, ack = dora(p, mac(1), pair.now)
    assert ack is not None and ack.reply is not None
    addr = str(ack.reply.packet.yiaddr)
    pair.pump()
    pair.advance(1800)
    t = pair.now
    mine = p.handle(packet(3, mac(1), xid=3, ciaddr=addr), t)
    theirs = s.handle(packet(3, mac(1), xid=3, ciaddr=addr, secs=10), t)  # past lb max secs
    assert lease_time(mine) == 7200 and lease_time(theirs) > 7200
    longer = t + lease_time(theirs)
    assert s.lease(addr).ends == longer  # type: ignore[union-attr]
    pair.pump()  # the two ACTIVE updates cross (same cltt)
    for node in (p, s):
        held = node.lease(addr)
        assert held is not None and held.binding_state is B.ACTIVE
        assert held.ends == longer and held.hardware == (1, mac(1))
    assert p.engine.status()["unsynced_leases"] == s.engine.status()["unsynced_leases"] == 0
    pair.advance(7200 + 60)  # past the primary's own end: still bound on both
    assert p.lease(addr).binding_state is s.lease(addr).binding_state is B.ACTIVE  # type: ignore[union-attr]
    assert_agree(p, s)


def test_auto_partner_down_after_its_timer_only() -> None:
    """`auto-partner-down N;` moves a server from COMMUNICATIONS-INTERRUPTED to PARTNER-DOWN
    N seconds after the link went down, and not a second earlier; without it, never."""
    extra = "        auto-partner-down 30;"
    p, s, pair = fresh_pair(secondary=seed_conf("secondary", extra=extra))
    pair.connect()
    assert (p.state(), s.state()) == ("normal", "normal")
    pair.disconnect()
    assert (p.state(), s.state()) == ("communications-interrupted", "communications-interrupted")
    pair.advance(29)
    assert s.state() == "communications-interrupted"
    pair.advance(2)
    assert s.state() == "partner-down"
    assert p.state() == "communications-interrupted"  # the primary has no such timer
    pair.advance(3600)
    assert p.state() == "communications-interrupted"
