"""The reload decision and the rebuilt server (tandem.core.reload), without failover traffic:
what a new configuration changes, and that nothing held in memory is lost or handed twice."""

from __future__ import annotations

from corekit import IFACE, SERVER_IP, FakeClient, mac

from tandem.config import parse_text
from tandem.config.seed import SEED_PRIMARY, SEED_SECONDARY
from tandem.core.reload import peer_changed, plan, rebuild
from tandem.core.server import DhcpServer

NOW = 1_700_000_000
BASE = """\
authoritative;
subnet 192.0.2.0 netmask 255.255.255.0 {
  option routers 192.0.2.5;
  range 192.0.2.100 192.0.2.110;
}
"""


def _server(text: str) -> DhcpServer:
    return DhcpServer(parse_text(text), interfaces={IFACE: (SERVER_IP,)})


def _reload(old: DhcpServer, text: str) -> DhcpServer:
    config = parse_text(text)
    server, engines = rebuild(old, config, {}, plan(old.config, config), now=NOW)
    assert engines == {}
    return server


def test_plan_counts_and_an_unchanged_peer_block_is_kept() -> None:
    # Same block, written elsewhere and differently spaced: only its location changed.
    moved = 'option domain-name "example.org";\n\n' + SEED_PRIMARY.replace(
        "split 256;", "split  256 ;"
    )
    decided = plan(parse_text(SEED_PRIMARY), parse_text(moved))
    assert (decided.kept, decided.restarted, decided.added, decided.removed) == (
        ("failover-example",),
        (),
        (),
        (),
    )
    assert decided.summary() == "1 subnet, 0 hosts"
    assert decided.notes == ()


def test_plan_a_changed_block_restarts_that_link_and_names_changes() -> None:
    old = parse_text(SEED_PRIMARY)
    for edit in (
        ("split 256;", "split 128;"),
        ("port 519;", "port 5190;"),
        (
            "max-unacked-updates 10;",
            "max-unacked-updates 11;",
        ),
    ):
        new = parse_text(SEED_PRIMARY.replace(*edit))
        assert peer_changed(old.failover_peers[0], new.failover_peers[0]), edit
        decided = plan(old, new)
        assert decided.restarted == ("failover-example",) and decided.kept == (), edit
        assert decided.summary() == "1 subnet, 0 hosts, failover peer failover-example restarted"
    renamed = parse_text(SEED_PRIMARY.replace("failover-example", "other"))
    decided = plan(old, renamed)
    assert (decided.added, decided.removed) == (("other",), ("failover-example",))


def test_plan_notes_what_a_reload_cannot_apply() -> None:
    decided = plan(parse_text(BASE), parse_text("log-facility local7;\n" + BASE))
    assert decided.notes == (
        "log-facility local7 applies after a restart (logging to daemon until then)",
    )


def test_a_new_host_reservation_applies_to_the_next_packet() -> None:
    old = _server(BASE)
    client = FakeClient(old, mac(7))
    client.dora(NOW)
    before = client.address
    assert before is not None
    host = "host seven { hardware ethernet 52:54:00:00:00:07; fixed-address 192.0.2.50; }\n"
    new = _reload(old, BASE + host)
    client.srv = new
    ack = client.dora(NOW + 10)
    assert ack.reply is not None and str(ack.reply.packet.yiaddr) == "192.0.2.50"
    # The dynamic lease it held is still there, in memory (and so in the lease file).
    assert any(lease.address == before for lease in new.leases())


def test_a_lease_outside_the_new_ranges_stays_and_is_not_handed_out() -> None:
    old = _server(BASE)
    holder = FakeClient(old, mac(1))
    off = holder.send(1, NOW, requested="192.0.2.110")  # the range's last address
    assert off.reply is not None and str(off.reply.packet.yiaddr) == "192.0.2.110", off.log
    holder.send(3, NOW, requested="192.0.2.110", server_id=str(off.reply.server_ip))
    kept = off.reply.packet.yiaddr
    new = _reload(old, BASE.replace("192.0.2.110", "192.0.2.105"))
    lease = next(x for x in new.leases() if x.address == kept)
    assert lease.binding_state.keyword == "active"
    others = [FakeClient(new, mac(100 + i)) for i in range(6)]
    got = [c.dora(NOW + 5) for c in others]
    addrs = sorted(str(o.reply.packet.yiaddr) for o in got if o.reply is not None)
    assert addrs == [f"192.0.2.{n}" for n in range(100, 106)]
    late = FakeClient(new, mac(200)).send(1, NOW + 6)
    assert late.reply is None and late.log[-1].endswith("no free leases")


def test_offers_held_before_a_reload_are_not_offered_twice() -> None:
    old = _server(BASE)
    first = FakeClient(old, mac(1))
    offer = first.send(1, NOW)
    assert offer.reply is not None
    offered = offer.reply.packet.yiaddr
    new = _reload(old, BASE)
    other = FakeClient(new, mac(2)).send(1, NOW + 1)
    assert other.reply is not None and other.reply.packet.yiaddr != offered
    first.srv = new
    ack = first.send(3, NOW + 2, requested=str(offered), server_id="192.0.2.1")
    assert ack.reply is not None and ack.reply.packet.options[53] == b"\x05"
    assert new.counters["rx.DHCPDISCOVER"] == 2  # the counters carry over


def test_a_reloaded_secondary_config_keeps_its_peer() -> None:
    decided = plan(
        parse_text(SEED_SECONDARY),
        parse_text(SEED_SECONDARY + BASE.replace("192.0.2.", "198.51.100.")),
    )
    assert decided.kept == ("failover-example",)
    assert decided.summary() == "2 subnets, 0 hosts"
