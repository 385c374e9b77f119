"""Drift detection between two engines back to back (tandem.core.failover.drift, config/digest)."""

from __future__ import annotations

from ipaddress import IPv4Address

from fokit import PRIMARY_CONF, SECONDARY_CONF, T0, Node
from test_fo_ext import node, nonces

from tandem.config import parse_text
from tandem.config.digest import compare, config_digest, digest_items
from tandem.config.sides import choose_sides
from tandem.core.failover.drift import DriftFeature, drift_section, isc_compare
from tandem.core.failover.ext import ExtSetup
from tandem.lab.failover_pair import Pair

HOST = """
host extra-printer {
  hardware ethernet 52:54:00:aa:bb:cc;
  fixed-address 192.0.2.50;
}
"""


def drift_pair(
    primary: str = PRIMARY_CONF, secondary: str = SECONDARY_CONF
) -> tuple[Node, Node, Pair, list[str], list[str], DriftFeature, DriftFeature]:
    lp: list[str] = []
    ls: list[str] = []
    dp = DriftFeature(parse_text(primary, "primary.conf"), lp.extend)
    ds = DriftFeature(parse_text(secondary, "secondary.conf"), ls.extend)
    p = node("primary", ExtSetup((dp,), None, nonces(1)), text=primary)
    s = node("secondary", ExtSetup((ds,), None, nonces(2)), text=secondary)
    pair = Pair(p.engine, s.engine, T0)
    pair.connect()
    pair.advance(2)
    return p, s, pair, lp, ls, dp, ds


def range_line(text: str) -> int:
    """The line of the pool's range statement (the seed has a commented-out one above)."""
    lines = text.splitlines()
    return next(i for i, x in enumerate(lines, 1) if x.strip() == "range 192.0.2.100 192.0.2.200;")


def section(n: Node) -> dict[str, object]:
    return drift_section(n.engine.status())


def test_equal_configs_report_no_drift() -> None:
    p, s, _pair, lp, ls, _dp, _ds = drift_pair()
    assert p.state() == s.state() == "normal"
    for n in (p, s):
        d = section(n)
        assert d["compared"] == "tandem" and d["state"] == "agree" and d["drift"] is False
        assert d["digest"] == d["peer-digest"]
    assert not [x for x in lp + ls if "DRIFT" in x]


def test_a_range_one_address_longer_is_reported_on_both_sides_with_file_and_line() -> None:
    sec = SECONDARY_CONF.replace("range 192.0.2.100 192.0.2.200;", "range 192.0.2.100 192.0.2.201;")
    assert sec != SECONDARY_CONF
    p, s, _pair, lp, ls, _dp, _ds = drift_pair(secondary=sec)
    assert p.state() == s.state() == "normal"
    line, pline = range_line(SECONDARY_CONF), range_line(PRIMARY_CONF)
    for n, log, here, there in (
        (p, lp, "primary.conf", "secondary.conf"),
        (s, ls, "secondary.conf", "primary.conf"),
    ):
        d = section(n)
        assert d["state"] == "drift" and d["drift"] is True and d["count"] == 1
        (diff,) = d["differences"]  # type: ignore[misc]
        assert diff["key"] == "subnet 192.0.2.0/24 pool 1 range 1"
        mine_line = pline if here == "primary.conf" else line
        their_line = line if here == "primary.conf" else pline
        assert diff["here-loc"] == f"{here}:{mine_line}"
        assert diff["peer-loc"] == f"{there}:{their_line}"
        loud = [x for x in log if "CONFIGURATION DRIFT" in x]
        assert len(loud) == 1 and "in 1 item(s)" in loud[0]
        assert any(f"({here}:{mine_line})" in x and f"({there}:{their_line})" in x for x in log)


def test_one_host_more_is_reported_on_both_sides() -> None:
    p, s, _pair, lp, _ls, _dp, _ds = drift_pair(secondary=SECONDARY_CONF + HOST)
    dp_, ds_ = section(p), section(s)
    assert dp_["drift"] is True and ds_["drift"] is True
    (a,) = dp_["differences"]  # type: ignore[misc]
    (b,) = ds_["differences"]  # type: ignore[misc]
    assert a["key"] == b["key"] == "host extra-printer"
    assert a["here"] is None and a["peer-loc"].startswith("secondary.conf:")
    assert b["peer"] is None and b["here-loc"].startswith("secondary.conf:")
    assert any("host extra-printer: here absent, peer" in x for x in lp)


def test_the_log_line_comes_once_per_connection_and_a_reload_resends() -> None:
    sec = SECONDARY_CONF + HOST
    p, s, pair, lp, _ls, _dp, ds = drift_pair(secondary=sec)
    assert len([x for x in lp if "CONFIGURATION DRIFT" in x]) == 1
    pair.advance(30)
    assert len([x for x in lp if "CONFIGURATION DRIFT" in x]) == 1
    pair.disconnect()
    pair.connect()
    pair.advance(2)
    assert len([x for x in lp if "CONFIGURATION DRIFT" in x]) == 2
    # The secondary's file is fixed and reloaded: both sides agree again.
    ds.update(parse_text(SECONDARY_CONF, "secondary.conf"), pair.now)
    pair.pump()
    assert section(p)["state"] == section(s)["state"] == "agree"
    assert "failover peer failover-example: configuration agrees with the peer's now" in lp
    # ... and drift again after another reload.
    ds.update(parse_text(sec, "secondary.conf"), pair.now)
    pair.pump()
    assert section(p)["state"] == section(s)["state"] == "drift"
    assert len([x for x in lp if "CONFIGURATION DRIFT" in x]) == 3


def test_many_differences_are_chunked_and_all_counted() -> None:
    hosts = "".join(
        f"host h{i} {{ hardware ethernet 52:54:00:00:{i >> 8:02x}:{i & 255:02x}; "
        f"fixed-address 192.0.2.{10 + i % 80}; }}\n"
        for i in range(300)
    )
    p, s, _pair, lp, _ls, _dp, _ds = drift_pair(secondary=SECONDARY_CONF + hosts)
    d = section(p)
    assert d["drift"] is True and d["count"] == 300
    assert len(d["differences"]) == 20  # type: ignore[arg-type]
    assert any("... and 295 more" in x for x in lp)
    assert s.engine.status()["extension"]["sent"] > 5  # type: ignore[index]


def test_the_same_primary_file_on_both_hosts_has_one_digest() -> None:
    cfg = parse_text(PRIMARY_CONF)
    sec, (side,) = choose_sides(cfg, {IPv4Address("192.0.2.2")}, None)
    assert side.mirrored and sec.failover_peers[0].role == "secondary"
    assert config_digest(digest_items(cfg)) == config_digest(digest_items(sec))
    # The seed's two files (the secondary without mclt/split) agree too.
    assert compare(digest_items(cfg), digest_items(parse_text(SECONDARY_CONF))) == []


def test_a_port_mixup_is_drift() -> None:
    sec = SECONDARY_CONF.replace("peer port 519;", "peer port 647;")
    assert sec != SECONDARY_CONF
    diffs = compare(digest_items(parse_text(PRIMARY_CONF)), digest_items(parse_text(sec)))
    assert [d.key for d in diffs] == ["failover peer failover-example primary"]


def test_with_a_dhcpd_partner_only_what_isc_carries_is_compared() -> None:
    cfg = parse_text(PRIMARY_CONF)
    _sec, (side,) = choose_sides(cfg, {IPv4Address("192.0.2.2")}, None)
    from tandem.core.failover.loadbalance import hba_from_split

    view = isc_compare(
        side.peer, peer_mclt=1800, peer_hba=hba_from_split(128), peer_max_unacked=10,
        peer_receive_timer=30,
    )  # fmt: skip
    assert view["differences"] == [
        "mclt: here 3600, peer 1800",
        "split-hba: here split 256, peer split 128",
    ]
    d = drift_section(
        {"extension": {"peer_vendor": "isc-V4.4.3", "peer_is_tandem": False}, "isc_compare": view}
    )
    assert d["compared"] == "isc" and d["drift"] is True
    assert "cannot be compared" in str(d["note"])
