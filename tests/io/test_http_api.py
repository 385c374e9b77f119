"""The HTTP listener (tandem.io.http_api) on 127.0.0.1: the envelope over POST /, the auth
rules (loopback only and read-only without a token, bearer compare with one), the size cap,
malformed requests, and GET /metrics parsed by prometheus-client's own parser."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_commands import _commands

from tandem.io.commands import MAX_BODY
from tandem.io.http_api import HttpApi, HttpError, check_access, check_listen, read_token

pytestmark = pytest.mark.timeout(60)

TOKEN = "s3cret-token-0123456789"


class Live:
    """An HttpApi on an event loop in a thread."""

    def __init__(self, tmp_path: Path, token: str | None) -> None:
        self.commands = _commands(tmp_path)
        self.api = HttpApi(self.commands, "127.0.0.1", 0, token=token)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.api.start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.api.close())

    def __enter__(self) -> Live:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api.bound_port}"

    def post(self, body: bytes, token: str | None = None) -> tuple[int, object]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + "/", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def command(self, obj: object, token: str | None = None) -> tuple[int, object]:
        return self.post(json.dumps(obj).encode(), token)

    def metrics(self, token: str | None = None) -> tuple[int, str]:
        req = urllib.request.Request(self.url + "/metrics")
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


@pytest.fixture
def open_api(tmp_path: Path) -> Iterator[Live]:
    with Live(tmp_path, None) as live:
        yield live


@pytest.fixture
def token_api(tmp_path: Path) -> Iterator[Live]:
    with Live(tmp_path, TOKEN) as live:
        yield live


ADDR = "192.0.2.105"


def _state(live: Live) -> str:
    return live.commands.server.db.by_addr[int(IPv4Address(ADDR))].binding_state.keyword


def test_read_only_commands_without_token(open_api: Live) -> None:
    status, answer = open_api.command({"command": "lease4-get", "arguments": {"ip-address": ADDR}})
    assert status == 200 and isinstance(answer, dict) and answer["result"] == 0
    status, answer = open_api.command({"command": "status-get", "service": ["dhcp4"]})
    assert status == 200 and isinstance(answer, list) and answer[0]["result"] == 0  # CA shape


def test_write_without_token_is_403_and_changes_nothing(open_api: Live) -> None:
    status, answer = open_api.command({"command": "lease4-del", "arguments": {"ip-address": ADDR}})
    assert status == 403
    assert isinstance(answer, dict) and answer["result"] == 1 and "read-only" in answer["text"]
    assert _state(open_api) == "active"


def test_token_required_for_everything(token_api: Live) -> None:
    lease_get = {"command": "lease4-get", "arguments": {"ip-address": ADDR}}
    for token in (None, "wrong-token-0123456789", ""):
        status, answer = token_api.command(lease_get, token)
        assert status == 401, token
        assert isinstance(answer, dict) and answer["result"] == 1
    assert token_api.metrics()[0] == 401
    delete = {"command": "lease4-del", "arguments": {"ip-address": ADDR}}
    assert token_api.command(delete, "nope")[0] == 401
    assert _state(token_api) == "active"
    status, answer = token_api.command(delete, TOKEN)
    assert status == 200 and answer == {"result": 0, "text": "IPv4 lease deleted."}
    assert _state(token_api) == "free"
    status, text = token_api.metrics(TOKEN)
    assert status == 200 and "tandem_pool_addresses" in text


def test_malformed_requests_get_messages_not_tracebacks(open_api: Live) -> None:
    for body, code in (
        (b"{not json", 400),
        (b"[]", 400),
        (b'{"command": 3}', 400),
        (b"[" * 50_000, 400),
        (b'{"command": "lease4-get", "arguments": {"ip-address": ["x"]}}', 200),
    ):
        status, answer = open_api.post(body)
        assert status == code, body[:40]
        assert isinstance(answer, dict) and answer["result"] == 1, answer
        assert "Traceback" not in json.dumps(answer)
    status, answer = open_api.command({"command": "no-such-command"})
    assert status == 200 and answer == {
        "result": 2,
        "text": "'no-such-command' command not supported.",
    }


def test_size_cap(open_api: Live) -> None:
    big = b'{"command": "status-get", "pad": "' + b"x" * MAX_BODY + b'"}'
    status, answer = open_api.post(big)
    assert status == 413
    assert isinstance(answer, dict) and answer["result"] == 1 and "longer than" in answer["text"]
    assert open_api.command({"command": "status-get"})[0] == 200  # still serving


def test_metrics_parse_with_prometheus_parser(open_api: Live) -> None:
    status, text = open_api.metrics()
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    pools: dict[str, float] = {}
    for sample in families["tandem_pool_addresses"].samples:
        pools[sample.labels["pool"]] = pools.get(sample.labels["pool"], 0) + sample.value
    assert pools == {
        "192.0.2.0/24 192.0.2.100-192.0.2.109": 10,
        "198.51.100.0/24 198.51.100.10-198.51.100.14": 5,
    }
    drops = {s.labels["reason"]: s.value for s in families["tandem_dhcp_dropped"].samples}
    assert drops == {"bad-cookie": 2}
    assert families["tandem_lease_commit_seconds"].type == "histogram"


# --- the rules, without sockets -------------------------------------------------------------


def test_check_access_rules() -> None:
    ok = check_access(remote="127.0.0.1", authorization=None, token=None, writes=False)
    assert ok is None
    assert check_access(remote="::1", authorization=None, token=None, writes=False) is None
    far = check_access(remote="192.0.2.9", authorization=None, token=None, writes=False)
    assert far is not None and far[0] == 403 and "loopback" in far[1]
    assert check_access(remote=None, authorization=None, token=None, writes=False) is not None
    write = check_access(remote="127.0.0.1", authorization=None, token=None, writes=True)
    assert write is not None and write[0] == 403
    good = f"Bearer {TOKEN}"
    assert check_access(remote="192.0.2.9", authorization=good, token=TOKEN, writes=True) is None
    assert (
        check_access(remote="192.0.2.9", authorization=f"bearer {TOKEN}", token=TOKEN, writes=True)
        is None
    )
    for header in (None, "", "Bearer", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer x"):
        refused = check_access(remote="127.0.0.1", authorization=header, token=TOKEN, writes=False)
        assert refused is not None and refused[0] == 401, header


def test_check_listen_refuses_beyond_loopback_without_token() -> None:
    check_listen("127.0.0.1", None)
    check_listen("0.0.0.0", TOKEN)
    with pytest.raises(HttpError, match="needs --http-token-file"):
        check_listen("0.0.0.0", None)
    with pytest.raises(HttpError, match="needs --http-token-file"):
        check_listen("192.0.2.1", None)


def test_read_token(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    assert read_token(str(path)) == TOKEN
    path.write_text("short\n")
    with pytest.raises(HttpError, match="at least 16"):
        read_token(str(path))
    with pytest.raises(HttpError, match="No such file"):
        read_token(str(tmp_path / "missing"))


def test_http_flags_and_the_start_up_checks(tmp_path: Path) -> None:
    from tandem.cli import UsageError, parse_args
    from tandem.io.startup import DEFAULT_HTTP, prepare_http

    assert parse_args([]).http == DEFAULT_HTTP == "127.0.0.1:8067"
    assert parse_args(["--http", "off"]).http is None
    opts = parse_args(["serve", "--http", "0.0.0.0:9000", "--http-token-file", "/x"])
    assert (opts.http, opts.http_token_file) == ("0.0.0.0:9000", "/x")
    for bad in ("8067", "localhost:8067", "127.0.0.1:0", "127.0.0.1:70000", "1.2.3:80"):
        with pytest.raises(UsageError, match="give ADDR:PORT"):
            parse_args(["--http", bad])
    with pytest.raises(HttpError, match="needs --http-token-file"):
        prepare_http(parse_args(["--http", "0.0.0.0:8067"]))
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    setup = prepare_http(parse_args(["--http", "0.0.0.0:8067", "--http-token-file", str(token)]))
    assert setup is not None and (setup.host, setup.port, setup.token) == ("0.0.0.0", 8067, TOKEN)
    assert prepare_http(parse_args(["--http", "off"])) is None
