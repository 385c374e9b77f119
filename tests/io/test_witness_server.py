"""io/witness_server.py: the witness's edge: drops by reason, the state on disk before an
answer leaves, a refused unreadable state file, and no grant right after a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tandem.io import witness_server as ws
from tandem.wire import witness as wire

KEY = b"secret"
REL = "failover-example"


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def _server(tmp_path: Path, clock: Clock) -> ws.WitnessServer:
    return ws.WitnessServer(tmp_path / "witness.state", KEY, clock=clock, wall=lambda: 1.7e9)


def _ask(server: ws.WitnessServer, role: str, rid: int, want: bool) -> wire.WitnessAnswer | None:
    data = server.handle(wire.encode(wire.WitnessRequest(REL, role, rid, want), KEY), "192.0.2.2")
    if data is None:
        return None
    answer = wire.decode(data, KEY)
    assert isinstance(answer, wire.WitnessAnswer) and answer.request_id == rid
    return answer


def test_answers_and_persists_before_answering(tmp_path: Path) -> None:
    clock = Clock()
    server = _server(tmp_path, clock)
    answer = _ask(server, "secondary", 10, True)
    assert answer is not None and answer.ticket_ms > 0
    saved = json.loads((tmp_path / "witness.state").read_text())
    assert saved["version"] == 1 and saved["last_ids"] == {f"{REL}/secondary": 10}


def test_a_failed_state_write_sends_no_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _server(tmp_path, Clock())

    def broken(path: Path, record: dict[str, object]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ws, "write_state", broken)
    assert _ask(server, "secondary", 10, True) is None
    assert server.drops == {"state-write-error": 1}


def test_stale_ids_bad_macs_and_junk_are_counted(tmp_path: Path) -> None:
    server = _server(tmp_path, Clock())
    assert _ask(server, "primary", 5, False) is not None
    assert _ask(server, "primary", 5, False) is None  # replayed
    assert _ask(server, "primary", 4, False) is None  # older
    assert _ask(server, "secondary", 4, False) is not None  # ids are per role
    assert server.handle(wire.encode(wire.WitnessRequest(REL, "primary", 9), b"x"), "h") is None
    assert server.handle(b"junk", "h") is None
    answer = wire.WitnessAnswer(REL, "primary", 99, 1000)
    assert server.handle(wire.encode(answer, KEY), "h") is None
    assert server.drops == {"stale-id": 2, "bad-mac": 1, "short": 1, "not-a-request": 1}


def test_unreadable_state_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "witness.state").write_text("{not json")
    with pytest.raises(ws.WitnessStateError, match="not a witness state file"):
        _server(tmp_path, Clock())
    (tmp_path / "witness.state").write_text(json.dumps({"version": 99}))
    with pytest.raises(ws.WitnessStateError, match="version 1"):
        _server(tmp_path, Clock())


def test_restart_holds_grants_and_keeps_the_last_ids(tmp_path: Path) -> None:
    clock = Clock()
    server = _server(tmp_path, clock)
    assert _ask(server, "primary", 7, False) is not None
    again = _server(tmp_path, clock)  # a restart on the same state file
    assert _ask(again, "primary", 7, False) is None  # the saved id survived
    answer = _ask(again, "secondary", 8, True)
    assert answer is not None and answer.grant_ms == 0 and answer.hold_ms > 0
