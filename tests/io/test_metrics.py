"""The Prometheus collector (tandem.io.metrics): names, labels and values read at scrape time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_commands import T0, _commands

from tandem.io.commit import COMMIT_BUCKETS
from tandem.io.metrics import FAILOVER_STATES, registry_for

pytestmark = pytest.mark.timeout(60)


class FakeLink:
    """What a FailoverLink's ``status()`` returns (the engine's status plus ``tcp``)."""

    def status(self) -> dict[str, object]:
        return {
            "name": "fo",
            "role": "secondary",
            "my_state": "communications-interrupted",
            "my_stos": T0 - 30,
            "partner_state": "normal",
            "partner_stos": T0 - 3000,
            "link": "down",
            "last_contact": T0 - 25,
            "clock_skew": -3,
            "mclt": 3600,
            "unacked_updates": 4,
            "queued_updates": 7,
            "pools": [
                {
                    "pool": 1,
                    "ranges": "192.0.2.100-192.0.2.109",
                    "total": 10,
                    "free": 2,
                    "backup": 5,
                }
            ],
            "tcp": {"connected": False},
        }


class FakeLinks:
    links = {"fo": FakeLink()}


def _scrape(tmp_path: Path) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    cmd = _commands(tmp_path)
    cmd.links = FakeLinks()  # type: ignore[assignment]
    assert cmd.commit is not None
    for seconds in (0.0002, 0.004, 0.004, 3.0):
        cmd.commit.sync_times.observe(seconds)
    text = generate_latest(registry_for(cmd)).decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_failover_series(tmp_path: Path) -> None:
    m = _scrape(tmp_path)
    states = m["tandem_failover_state"]
    assert len(states) == 2 * len(FAILOVER_STATES)
    ones = sorted(k for k, v in states.items() if v == 1)
    assert ones == [
        (("peer", "fo"), ("side", "local"), ("state", "communications-interrupted")),
        (("peer", "fo"), ("side", "partner"), ("state", "normal")),
    ]
    assert m["tandem_failover_last_contact_seconds"] == {(("peer", "fo"),): 25}
    assert m["tandem_failover_last_contact_timestamp_seconds"] == {(("peer", "fo"),): T0 - 25}
    assert m["tandem_failover_clock_skew_seconds"] == {(("peer", "fo"),): -3}
    assert m["tandem_failover_unacked_updates"] == {(("peer", "fo"),): 4}
    assert m["tandem_failover_queued_updates"] == {(("peer", "fo"),): 7}


def test_pool_and_dhcp_series(tmp_path: Path) -> None:
    m = _scrape(tmp_path)
    pool = "192.0.2.0/24 192.0.2.100-192.0.2.109"
    mine = {k: v for k, v in m["tandem_pool_addresses"].items() if ("pool", pool) in k}
    assert sum(mine.values()) == 10
    assert mine[(("pool", pool), ("state", "active"))] == 1
    assert mine[(("pool", pool), ("state", "abandoned"))] == 1
    assert m["tandem_pool_size"][(("pool", pool),)] == 10
    assert m["tandem_dhcp_dropped_total"] == {(("reason", "bad-cookie"),): 2}
    assert m["tandem_dhcp_datagrams_received_total"] == {(): 7}


def test_commit_histogram_is_cumulative(tmp_path: Path) -> None:
    m = _scrape(tmp_path)
    buckets = m["tandem_lease_commit_seconds_bucket"]
    assert len(buckets) == len(COMMIT_BUCKETS) + 1
    assert buckets[(("le", "0.00025"),)] == 1
    assert buckets[(("le", "0.005"),)] == 3
    assert buckets[(("le", "2.5"),)] == 3
    assert buckets[(("le", "+Inf"),)] == 4
    assert m["tandem_lease_commit_seconds_count"] == {(): 4}
    assert m["tandem_lease_commit_seconds_sum"][()] == pytest.approx(3.0082)


def test_names_follow_prometheus_conventions(tmp_path: Path) -> None:
    text = generate_latest(registry_for(_commands(tmp_path))).decode()
    for fam in text_string_to_metric_families(text):
        assert re.fullmatch(r"tandem_[a-z_]+", fam.name), fam.name
        if fam.type == "counter":
            assert all(s.name.endswith("_total") for s in fam.samples), fam.name
        assert "seconds" not in fam.name or fam.name.endswith(("_seconds", "_timestamp_seconds"))


def test_failover_get_names_pools_by_subnet_and_range(tmp_path: Path) -> None:
    cmd = _commands(tmp_path)
    cmd.links = FakeLinks()  # type: ignore[assignment]
    (rel,) = cmd.relationships()
    assert rel["local"] == {"state": "communications-interrupted", "since": T0 - 30}
    assert rel["partner"] == {"state": "normal", "since": T0 - 3000}
    assert rel["last-contact-age"] == 25 and rel["clock-skew"] == -3
    assert rel["queued-updates"] == 7 and rel["unacked-updates"] == 4
    assert rel["pools"] == [
        {"pool": "192.0.2.0/24 192.0.2.100-192.0.2.109", "total": 10, "free": 2, "backup": 5}
    ]
