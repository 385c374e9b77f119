"""auto-partner-down in the views: failover-get's ``auto-partner-down`` block, the
``tandem_failover_probe_*`` / ``tandem_witness_*`` metrics, and the page feed's events."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_commands import _commands
from test_metrics import FakeLink

from tandem.io import command_views as views
from tandem.io.metrics import registry_for
from tandem.io.page_feed import PageFeed

pytestmark = pytest.mark.timeout(60)

APD = {
    "seconds": 5,
    "summary": "partner alive, failover link down",
    "link_down": True,
    "partner_alive": True,
    "fenced": False,
    "probe": {"sent": 9, "answered": 7, "dropped": {"unknown-xid": 2}},
    "witness": {
        "address": "192.0.2.60:5419",
        "sent": 4,
        "answered": 3,
        "granted": False,
        "dropped": {"bad-mac": 1},
    },
    "rule": {},
}


class ApdLink(FakeLink):
    apd: dict[str, object] = dict(APD)

    def status(self) -> dict[str, object]:
        return {**super().status(), "auto_partner_down": self.apd}


class ApdLinks:
    def __init__(self) -> None:
        self.links = {"fo": ApdLink()}


def test_failover_view_carries_the_block() -> None:
    view = views.failover_view(ApdLink().status(), {}, 0)
    assert view["auto-partner-down"] == APD
    assert views.failover_view(FakeLink().status(), {}, 0)["auto-partner-down"] is None


def test_metrics(tmp_path: Path) -> None:
    cmd = _commands(tmp_path)
    cmd.links = ApdLinks()  # type: ignore[assignment]
    text = generate_latest(registry_for(cmd)).decode()
    m: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            m.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    peer = (("peer", "fo"),)
    assert m["tandem_failover_probe_sent_total"] == {peer: 9}
    assert m["tandem_failover_probe_answered_total"] == {peer: 7}
    assert m["tandem_failover_probe_dropped_total"] == {
        (("peer", "fo"), ("reason", "unknown-xid")): 2
    }
    assert m["tandem_failover_partner_alive"] == {peer: 1}
    assert m["tandem_failover_fenced"] == {peer: 0}
    assert m["tandem_witness_requests_total"] == {peer: 4}
    assert m["tandem_witness_answers_total"] == {peer: 3}
    assert m["tandem_witness_dropped_total"] == {(("reason", "bad-mac"),): 1}
    assert m["tandem_witness_granted"] == {peer: 0}


def test_page_feed_turns_summary_changes_into_events(tmp_path: Path) -> None:
    cmd = _commands(tmp_path)
    links = ApdLinks()
    cmd.links = links  # type: ignore[assignment]
    feed = PageFeed(cmd, clock=lambda: 1000.0)
    feed.tick(1000.0)
    links.links["fo"].apd = {**APD, "summary": "fenced: no witness ticket (answering no client)"}
    feed.tick(1001.0)
    texts = [str(e.get("text")) for e in feed.events.as_json()]
    assert any("failover peer fo: fenced: no witness ticket" in t for t in texts), texts
