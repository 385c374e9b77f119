"""The control socket: bounded, depth-checked JSON requests; the client's friendly errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.cli import main, parse_args
from tandem.io.control import (
    MAX_DEPTH,
    MAX_REQUEST,
    ControlError,
    ControlServer,
    ControlUnavailable,
    control_path_for,
    json_depth,
    parse_request,
    request,
)

pytestmark = pytest.mark.timeout(60)


# --- parsing ---------------------------------------------------------------------------------


def test_json_depth_skips_strings_and_escapes() -> None:
    assert json_depth('{"a": [1, {"b": 2}]}', 10) == 3
    assert json_depth('{"a": "[[[[{{{{"}', 10) == 1
    assert json_depth('{"a": "\\"[[[["}', 10) == 1
    assert json_depth("[]", 10) == 1
    assert json_depth("3", 10) == 0


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_deep_nesting_is_refused_cleanly(depth: int) -> None:
    line = ("[" * depth + "]" * depth).encode()
    with pytest.raises(ControlError, match=r"nested deeper|longer than"):
        parse_request(line)
    # The same within the size cap, as an object: refused by depth, before json.loads.
    nested = '{"command": "status", "x": ' + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "}"
    with pytest.raises(ControlError, match="nested deeper"):
        parse_request(nested.encode())


def test_requests_that_are_accepted_and_refused() -> None:
    assert parse_request(b'{"command": "status"}') == {"command": "status"}
    ok = {"command": "x", "a": [[[[[[1]]]]]]}  # depth 7 <= 8
    assert parse_request(json.dumps(ok).encode()) == ok
    for bad, why in [
        (b"status", "not valid JSON"),
        (b"[1]", "JSON object"),
        (b'{"name": "x"}', '"command"'),
        (b'{"command": 3}', '"command"'),
        (b'{"command": "\xff"}', "not UTF-8"),
        (b" " * (MAX_REQUEST + 1), "longer than"),
    ]:
        with pytest.raises(ControlError, match=why):
            parse_request(bad)


@given(st.binary(max_size=600))
def test_parse_request_never_raises_anything_else(data: bytes) -> None:
    with contextlib.suppress(ControlError):
        assert isinstance(parse_request(data)["command"], str)


@given(st.integers(min_value=0, max_value=3000), st.sampled_from("[{"))
def test_any_nesting_depth_is_answered_without_recursion_error(depth: int, kind: str) -> None:
    close = "]" if kind == "[" else "}"
    inner = '"k": ' if kind == "{" else ""
    text = (kind + inner) * depth + "1" + close * depth
    if depth > MAX_DEPTH:
        with pytest.raises(ControlError, match=r"nested deeper|longer than"):
            parse_request(text.encode())
    else:  # valid JSON within the limit: refused only for lacking "command"
        with pytest.raises(ControlError, match=r"JSON object|\"command\""):
            parse_request(text.encode())


def test_control_path_next_to_pid_file() -> None:
    assert control_path_for("/run/tandem.pid") == "/run/tandem.ctl"
    assert control_path_for("/tmp/x/srv.pid") == "/tmp/x/srv.ctl"
    assert control_path_for("/tmp/x/pidfile") == "/tmp/x/pidfile.ctl"
    assert control_path_for(None) == "/run/tandem.ctl"
    assert parse_args(["-pf", "/tmp/a.pid"]).control_path == "/tmp/a.ctl"
    assert parse_args(["-ctl", "/tmp/c.sock", "-pf", "/tmp/a.pid"]).control_path == "/tmp/c.sock"
    opts = parse_args(["partner-down", "fo", "--control", "/tmp/c"])
    assert (opts.mode, opts.peer_name, opts.control) == ("partner-down", "fo", "/tmp/c")
    assert parse_args(["status", "--json", "-pf", "/x/y.pid"]).control_path == "/x/y.ctl"


# --- a live server in a thread ---------------------------------------------------------------


class LiveServer:
    def __init__(self, path: str) -> None:
        self.path = path
        self.partner_down: list[str] = []
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.server = ControlServer(
            path,
            {
                "status": lambda req: {"failover": {"fo": {"my_state": "normal"}}},
                "partner-down": self._pd,
                "boom": lambda req: 1 // 0,
            },
            {
                "status-get": self._status_get,
                "failover-get": self._failover_get,
                "failover-partner-down": self._fo_pd,
                "slow-get": self._slow,
            },
        )
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _pd(self, req: dict[str, object]) -> dict[str, object]:
        name = req.get("name")
        if name != "fo":
            raise ControlError(f"no failover peer named {name!r}")
        self.partner_down.append(name)
        return {"my_state": "partner-down"}

    # Command-layer commands (Kea envelope, answered by a coroutine).

    async def _status_get(self, req: dict[str, object]) -> dict[str, object]:
        args = {"pid": 42, "uptime": 5, "version": "t", "build": "pure", "config-file": "c"}
        return {"result": 0, "text": "", "arguments": args}

    async def _failover_get(self, req: dict[str, object]) -> dict[str, object]:
        rel = {
            "name": "fo",
            "role": "primary",
            "link": "up",
            "local": {"state": "normal", "since": 1_700_000_000},
            "partner": {"state": "normal", "since": 1_700_000_000},
            "last-contact-age": 1,
            "clock-skew": 0,
            "queued-updates": 0,
            "unacked-updates": 0,
            "pools": [
                {
                    "pool": "192.0.2.0/24 192.0.2.100-192.0.2.200",
                    "free": 1,
                    "backup": 2,
                    "total": 101,
                }
            ],
        }
        return {"result": 0, "text": "1", "arguments": {"relationships": [rel]}}

    async def _fo_pd(self, req: dict[str, object]) -> dict[str, object]:
        args = req.get("arguments")
        name = args.get("name") if isinstance(args, dict) else None
        if name != "fo":
            return {"result": 1, "text": f"no failover peer named {name!r} (configured: ['fo'])"}
        self.partner_down.append(name)
        return {"result": 0, "text": "ok", "arguments": {"local": {"state": "partner-down"}}}

    async def _slow(self, req: dict[str, object]) -> dict[str, object]:
        await asyncio.sleep(0.2)
        return {"result": 0, "text": "slow"}

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.start())
        self.ready.set()
        self.loop.run_forever()
        self.server.close()

    def __enter__(self) -> LiveServer:
        self.thread.start()
        assert self.ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(str(tmp_path / "t.ctl")) as srv:
        yield srv


def test_status_and_partner_down_round_trip(live: LiveServer) -> None:
    assert os.stat(live.path).st_mode & 0o777 == 0o600
    answer = request(live.path, {"command": "status"})
    assert answer == {"ok": True, "result": {"failover": {"fo": {"my_state": "normal"}}}}
    answer = request(live.path, {"command": "partner-down", "name": "fo"})
    assert answer["ok"] and live.partner_down == ["fo"]
    bad = request(live.path, {"command": "partner-down", "name": "other"})
    assert bad == {"ok": False, "error": "no failover peer named 'other'"}
    unknown = request(live.path, {"command": "reboot"})
    assert not unknown["ok"] and "unknown command" in str(unknown["error"])
    boom = request(live.path, {"command": "boom"})
    assert not boom["ok"] and "internal error" in str(boom["error"])
    assert request(live.path, {"command": "status"})["ok"]  # still serving


def raw_exchange(path: str, payload: bytes) -> list[bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(payload)
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            buf += chunk
            if payload.endswith(b"\n") and buf.count(b"\n") >= payload.count(b"\n"):
                break
    return buf.splitlines()


def test_hostile_lines_get_errors_and_the_server_survives(live: LiveServer) -> None:
    deep = b"[" * 50_000 + b"]" * 50_000 + b"\n"  # over the size cap: refused and closed
    (answer,) = raw_exchange(live.path, deep)
    assert json.loads(answer)["ok"] is False
    nested = ("[" * 2000 + "]" * 2000 + "\n").encode()
    (answer,) = raw_exchange(live.path, nested)
    assert "longer than" in json.loads(answer)["error"] or "nested" in json.loads(answer)["error"]
    within = ("[" * 100 + "]" * 100 + "\n").encode()
    (answer,) = raw_exchange(live.path, within)
    assert "nested deeper" in json.loads(answer)["error"]
    two = b'{"command": "status"}\nnot json\n'
    first, second = raw_exchange(live.path, two)
    assert json.loads(first)["ok"] and not json.loads(second)["ok"]
    assert request(live.path, {"command": "status"})["ok"]


def test_stale_socket_file_is_replaced_and_a_live_one_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "s.ctl")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: what a crashed server leaves
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    with LiveServer(path):
        assert request(path, {"command": "status"})["ok"]
        second = ControlServer(path, {})
        with pytest.raises(OSError, match="another server"):
            asyncio.run(second.start())
        assert request(path, {"command": "status"})["ok"]  # the first one is untouched
    assert not os.path.exists(path)  # removed on close


def test_client_errors_are_friendly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "none.ctl")
    with pytest.raises(ControlUnavailable, match="no Tandem server is running"):
        request(missing, {"command": "status"})
    assert main(["status", "--control", missing]) == 1
    err = capsys.readouterr().err
    assert "no Tandem server is running" in err and "Traceback" not in err
    assert main(["partner-down", "fo", "-ctl", missing]) == 1
    assert main(["partner-down"]) == 2  # usage: the name is required


def test_cli_commands_against_a_live_server(
    live: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--control", live.path, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["failover"]["fo"]["my_state"] == "normal"
    assert main(["status", "--control", live.path]) == 0
    text = capsys.readouterr().out
    assert "tandem t pid 42 up 5 s" in text
    assert "failover peer fo (primary): link up" in text
    assert "me      normal since 2023-11-14 22:13:20 UTC" in text
    assert "pool 192.0.2.0/24 192.0.2.100-192.0.2.200: free 1, backup 2 of 101" in text
    assert main(["partner-down", "fo", "--control", live.path]) == 0
    assert "partner-down" in capsys.readouterr().out
    assert main(["partner-down", "nope", "--control", live.path]) == 1
    assert "no failover peer named 'nope'" in capsys.readouterr().err


def test_answers_that_wait_keep_the_order_of_the_requests(live: LiveServer) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(live.path)
        s.sendall(b'{"command": "slow-get"}\n{"command": "status"}\n{"command": "slow-get"}\n')
        reader = s.makefile("rb")
        answers = [json.loads(reader.readline()) for _ in range(3)]
    assert answers[0] == {"result": 0, "text": "slow"}
    assert answers[1]["ok"] is True
    assert answers[2] == {"result": 0, "text": "slow"}


def test_an_oversized_line_gets_one_error_and_the_connection_ends(live: LiveServer) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(live.path)
        s.sendall(b'{"command": "status"}\n' + b"{" * 100_000 + b"\n")
        data = s.makefile("rb").read()  # until EOF: the server must hang up
    first, second = data.splitlines()
    assert json.loads(first)["ok"] is True
    assert "longer than" in json.loads(second)["error"]
    assert request(live.path, {"command": "status"})["ok"]
