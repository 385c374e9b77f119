"""The live page's memory (tandem.io.page_feed): the history ring buffer (bounds, sampling,
rates), the event list (bounds, what feeds it), the page's JSON shape and the lease search;
and the page over HTTP (files, /page.json, /page/search, the auth rules)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_commands import MAC1, MAC2, T0, _commands
from test_http_api import TOKEN, Live

from tandem.core.lease import BindingState
from tandem.io.command_views import format_status
from tandem.io.commands import Request
from tandem.io.http_api import PAGE_FILES
from tandem.io.page_feed import (
    EVENT_LIMIT,
    HISTORY_SPAN,
    SAMPLE_EVERY,
    Events,
    History,
    PageFeed,
    search,
)

pytestmark = pytest.mark.timeout(60)


class StateLink:
    """A link whose states the test sets (what FailoverLink.status() returns)."""

    def __init__(self) -> None:
        self.my, self.partner = "normal", "normal"

    def status(self) -> dict[str, object]:
        return {
            "name": "fo",
            "role": "secondary",
            "my_state": self.my,
            "my_stos": T0 - 30,
            "partner_state": self.partner,
            "partner_stos": T0 - 300,
            "link": "up",
            "last_contact": T0 - 1,
            "clock_skew": 0,
            "mclt": 3600,
            "unacked_updates": 0,
            "queued_updates": 0,
            "pools": [{"ranges": "192.0.2.100-192.0.2.109", "total": 10, "free": 4, "backup": 4}],
            "tcp": {"connected": True},
        }


class Links:
    def __init__(self) -> None:
        self.link = StateLink()
        self.links = {"fo": self.link}


# --- the history ---------------------------------------------------------------------------


def test_history_keeps_one_hour_of_samples_and_drops_the_oldest() -> None:
    h = History()
    cap = int(HISTORY_SPAN // SAMPLE_EVERY) + 1
    for i in range(cap + 50):
        h.add(T0 + i * SAMPLE_EVERY, i, i * 10)
    assert len(h.samples) == cap
    js = h.as_json()
    assert js["t"][0] == T0 + 50 * SAMPLE_EVERY  # type: ignore[index]
    assert js["t"][-1] - js["t"][0] == HISTORY_SPAN  # type: ignore[index,operator]
    assert len(js["leases"]) == len(js["pps"]) == cap  # type: ignore[arg-type]


def test_history_rate_is_packets_per_second_between_samples() -> None:
    h = History(span=60, every=5)
    assert h.add(T0, 3, 100).pps == 0.0  # nothing to compare with yet
    assert h.add(T0 + 5, 3, 150).pps == 10.0
    assert h.add(T0 + 15, 4, 153).pps == 0.3
    assert h.add(T0 + 20, 4, 0).pps == 0.0  # a counter that went back (never negative)


def test_history_due_every_sample_period() -> None:
    h = History(span=60, every=5)
    assert h.due(T0)
    h.add(T0, 0, 0)
    assert not h.due(T0 + 4.9)
    assert h.due(T0 + 5)


# --- the events ----------------------------------------------------------------------------


def test_events_are_bounded_and_listed_newest_first() -> None:
    ev = Events(limit=3)
    for i in range(5):
        ev.add(T0 + i, "drop", f"e{i}")
    assert [e["text"] for e in ev.as_json()] == ["e4", "e3", "e2"]
    assert ev.total == 5
    assert Events().items.maxlen == EVENT_LIMIT


def test_feed_events_from_state_changes_drops_refusals_and_abandoned() -> None:
    cmd = _commands()
    links = Links()
    cmd.links = links  # type: ignore[assignment]
    feed = PageFeed(cmd, history=History(span=60, every=5))
    feed.tick(T0)
    first = [e["text"] for e in feed.events.as_json()]
    assert first == [  # newest first
        "2 packet(s) dropped: bad-cookie (2 so far)",
        "failover peer fo: me normal, partner normal",
    ]
    n = feed.events.total

    feed.tick(T0 + 1)  # nothing changed: nothing new
    assert feed.events.total == n

    links.link.my = "communications-interrupted"
    links.link.partner = "unknown-state"
    assert cmd.counters is not None
    cmd.counters.drops["unknown client"] += 3
    cmd.counters.drops["bad-cookie"] += 1
    feed.tick(T0 + 2)
    new = feed.events.as_json()[: feed.events.total - n]
    assert {(e["kind"], e["text"]) for e in new} == {
        ("state", "failover peer fo: I move from normal to communications-interrupted"),
        ("state", "failover peer fo: peer moves from normal to unknown-state"),
        ("refused", "3 packet(s) refused: unknown client (3 so far)"),
        ("drop", "1 packet(s) dropped: bad-cookie (3 so far)"),
    }
    n = feed.events.total

    # An address newly abandoned is named at the next sample (the seed's .107 is not news).
    lease = next(
        x for x in cmd.server.db.by_addr.values() if x.binding_state is BindingState.ACTIVE
    )
    lease.binding_state = BindingState.ABANDONED
    feed.tick(T0 + 4)  # not yet due: no sample, no scan
    assert feed.events.total == n
    feed.tick(T0 + 5)
    assert feed.events.as_json()[0] == {
        "t": T0 + 5,
        "kind": "abandoned",
        "text": f"Abandoning IP address {lease.address}",
    }
    assert feed.history.as_json()["leases"] == [2, 1]  # type: ignore[union-attr]


def test_snapshot_shape() -> None:
    cmd = _commands()
    cmd.links = Links()  # type: ignore[assignment]
    feed = PageFeed(cmd)
    feed.tick(T0)
    snap = json.loads(json.dumps(feed.snapshot()))
    assert set(snap) == {
        "now",
        "server",
        "relationships",
        "pools",
        "dhcp",
        "history",
        "events",
        "events-total",
    }
    assert snap["now"] == T0 and snap["server"]["uptime"] == 60
    (rel,) = snap["relationships"]
    assert rel["local"] == {"state": "normal", "since": T0 - 30}
    assert rel["partner"]["state"] == "normal" and rel["last-contact-age"] == 1
    assert rel["clock-skew"] == 0
    assert [p["pool"] for p in snap["pools"]] == [
        "192.0.2.0/24 192.0.2.100-192.0.2.109",
        "198.51.100.0/24 198.51.100.10-198.51.100.14",
    ]
    first = snap["pools"][0]
    assert sum(first["states"].values()) == first["total"] == 10
    assert first["states"]["active"] == 1 and first["states"]["abandoned"] == 1
    assert snap["history"] == {"every": SAMPLE_EVERY, "t": [T0], "leases": [2], "pps": [0.0]}
    assert snap["dhcp"]["received"] == 7
    assert snap["events"][0]["kind"] in {"state", "drop"}


def test_history_get_and_tandem_status_text() -> None:
    cmd = _commands()
    cmd.links = Links()  # type: ignore[assignment]
    feed = PageFeed(cmd, history=History(span=60, every=5))
    cmd.add("history-get", feed.history_get)
    empty = asyncio.run(cmd.execute(Request("history-get", {}), may_write=False))
    assert empty["arguments"] == {"history": {"samples": 0, "every": 5}, "events": []}
    assert cmd.counters is not None
    feed.tick(T0)
    cmd.counters.received += 50
    feed.tick(T0 + 5)
    got = asyncio.run(cmd.execute(Request("history-get", {}), may_write=False))
    assert got["result"] == 0
    body = got["arguments"]
    assert isinstance(body, dict)
    assert body["history"] == {
        "samples": 2,
        "every": 5,
        "since": T0,
        "leases-in-use": 2,
        "leases-in-use-max": 2,
        "pps": 10.0,
        "pps-max": 10.0,
    }
    assert len(body["events"]) == 2
    bad = asyncio.run(cmd.execute(Request("history-get", {"x": 1}), may_write=False))
    assert bad["result"] == 1 and "'x'" in str(bad["text"])
    status = asyncio.run(cmd.execute(Request("status-get", {}), may_write=False))["arguments"]
    text = format_status(status, cmd.relationships(), T0 + 5, body)  # type: ignore[arg-type]
    assert "last 5 s: leases in use 2 (max 2), DHCP packets/s 10.0 (max 10.0)" in text
    assert "latest events:\n  22:13:20 drop: 2 packet(s) dropped: bad-cookie" in text
    assert "  22:13:20 state: failover peer fo: me normal, partner normal" in text


# --- the search ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("192.0.2.105", ["192.0.2.105"]),
        (MAC1.hex(":"), ["192.0.2.105"]),
        (MAC1.hex("-").upper(), ["192.0.2.105"]),
        (MAC1.hex(), ["192.0.2.105"]),
        ("PC1", ["192.0.2.105", "192.0.2.107", "198.51.100.12"]),  # host name, any case
        ("198.51", ["198.51.100.12"]),  # part of an address
        ("00:02", ["192.0.2.107"]),  # part of a MAC
        ("192.0.2.101", []),  # free: not a lease
        ("nobody", []),
        ("  ", []),
    ],
)
def test_search_by_address_mac_or_host_name(query: str, found: list[str]) -> None:
    got = search(_commands(), query)
    assert [x["ip-address"] for x in got["leases"]] == found  # type: ignore[union-attr]
    assert got["more"] is False


def test_search_is_capped() -> None:
    got = search(_commands(), "pc1", limit=2)
    assert len(got["leases"]) == 2 and got["more"] is True  # type: ignore[arg-type]
    (lease,) = search(_commands(), MAC2.hex(":"))["leases"]  # type: ignore[misc]
    assert lease["hw-address"] == MAC2.hex(":") and lease["state"] == 1  # abandoned: Kea's 1


# --- over HTTP -----------------------------------------------------------------------------


def _get(url: str, token: str | None = None) -> tuple[int, str, bytes]:
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def test_page_files_and_json_without_a_token(tmp_path: Path) -> None:
    with Live(tmp_path, None) as live:
        status, kind, body = _get(live.url + "/")
        assert status == 200 and kind.startswith("text/html")
        assert b"/page/app.js" in body and b"/page/vendor/uPlot.iife.min.js" in body
        for name in ("app.js", "page.css"):
            status, kind, body = _get(f"{live.url}/page/{name}")
            assert status == 200 and kind.startswith(PAGE_FILES[name]) and body
        assert _get(live.url + "/page/../http_api.py")[0] == 404
        assert _get(live.url + "/page/nothing.js")[0] == 404
        status, kind, body = _get(live.url + "/page.json")
        assert status == 200 and kind.startswith("application/json")
        snap = json.loads(body)
        assert snap["pools"][0]["total"] == 10 and snap["relationships"] == []
        status, _, body = _get(live.url + "/page/search?q=" + MAC1.hex(":"))
        assert status == 200
        assert [x["ip-address"] for x in json.loads(body)["leases"]] == ["192.0.2.105"]
        status, _, body = _get(live.url + "/page/search?q=" + "x" * 300)
        assert status == 400 and json.loads(body)["result"] == 1


def test_page_json_needs_the_token_when_there_is_one(tmp_path: Path) -> None:
    with Live(tmp_path, TOKEN) as live:
        assert _get(live.url + "/")[0] == 200  # the page itself holds no data
        for path in ("/page.json", "/page/search?q=pc1"):
            status, _, body = _get(live.url + path)
            assert status == 401 and json.loads(body)["result"] == 1
            assert _get(live.url + path, "wrong-token-0123456789")[0] == 401
            assert _get(live.url + path, TOKEN)[0] == 200


def test_missing_chart_library_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(PAGE_FILES, "vendor/absent.js", "text/javascript")
    with Live(tmp_path, None) as live:
        status, _, body = _get(live.url + "/page/vendor/absent.js")
    assert status == 404 and b"make deps" in body
