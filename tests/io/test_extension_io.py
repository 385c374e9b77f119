"""The extension channel's I/O side: --peer-secret, the digest commands, `tandem check --peer`."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tandem.cli import UsageError, main, parse_args
from tandem.config import parse_text
from tandem.config.seed import SEED_PRIMARY, SEED_SECONDARY
from tandem.io.commands import CommandError
from tandem.io.config_check import check_peer, digest_commands
from tandem.io.extension import SecretError, extension_setup, read_peer_secret


def test_peer_secret_file(tmp_path: Path) -> None:
    good = tmp_path / "s"
    good.write_bytes(b"0123456789abcdef0123\nignored\n")
    good.chmod(0o600)
    assert read_peer_secret(str(good)) == b"0123456789abcdef0123"
    setup = extension_setup(str(good))
    assert setup.secret == b"0123456789abcdef0123" and setup.nonce is not None
    assert len(setup.nonce()) == 16 and setup.nonce() != setup.nonce()
    assert extension_setup(None).secret is None
    short = tmp_path / "short"
    short.write_text("tiny\n")
    with pytest.raises(SecretError, match="at least 16 bytes"):
        read_peer_secret(str(short))
    with pytest.raises(SecretError, match="No such file"):
        read_peer_secret(str(tmp_path / "missing"))


def test_cli_flags() -> None:
    assert parse_args(["-f", "--peer-secret", "/etc/s"]).peer_secret == "/etc/s"
    assert parse_args(["serve", "--peer-secret", "/etc/s"]).peer_secret == "/etc/s"
    opts = parse_args(["check", "--peer", "http://h:8067", "--http-token-file", "t", "-cf", "c"])
    assert (opts.mode, opts.peer_url, opts.http_token_file, opts.config) == (
        "check-peer",
        "http://h:8067",
        "t",
        "c",
    )
    with pytest.raises(UsageError):
        parse_args(["status", "--peer", "x"])
    with pytest.raises(UsageError):
        parse_args(["--peer-secret"])


def test_digest_commands() -> None:
    cmds = digest_commands(lambda: parse_text(SEED_PRIMARY, "p.conf"))
    h = cmds["config-hash-get"]({})
    d = cmds["config-digest-get"]({})
    assert h["result"] == d["result"] == 0
    assert h["arguments"]["hash"] == d["arguments"]["hash"]  # type: ignore[index]
    items = d["arguments"]["items"]  # type: ignore[index]
    assert {"key": "subnet 192.0.2.0/24 pool 1 range 1", "value": "192.0.2.100 192.0.2.200",
            "loc": "p.conf:24"} in items  # fmt: skip
    with pytest.raises(CommandError, match="unknown argument"):
        cmds["config-hash-get"]({"x": 1})


@pytest.fixture
def peer_api() -> Iterator[str]:
    """A stand-in for a running peer's HTTP API answering config-digest-get."""
    answer = digest_commands(lambda: parse_text(SEED_SECONDARY, "/etc/peer.conf"))[
        "config-digest-get"
    ]({})

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            req = json.loads(self.rfile.read(length))
            body = json.dumps(answer if req["command"] == "config-digest-get" else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_check_peer(peer_api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_peer(parse_text(SEED_PRIMARY, "p.conf"), "p.conf", peer_api, None) == 0
    assert "agrees with the peer" in capsys.readouterr().out
    text = SEED_PRIMARY.replace(
        "        range 192.0.2.100 192.0.2.200;", "        range 192.0.2.100 192.0.2.199;"
    )
    assert text != SEED_PRIMARY
    assert check_peer(parse_text(text, "p.conf"), "p.conf", peer_api, None) == 1
    out = capsys.readouterr().out
    assert "CONFIGURATION DRIFT" in out
    assert (
        "here 192.0.2.100 192.0.2.199 (p.conf:24), peer 192.0.2.100 192.0.2.200 (/etc/peer.conf:22)"
        in out
    )
    # Through the command line, and a peer that is not there.
    conf = tmp_path / "d.conf"
    conf.write_text(text)
    assert main(["check", "--peer", peer_api, "-cf", str(conf)]) == 1
    assert main(["check", "--peer", "http://127.0.0.1:1", "-cf", str(conf)]) == 2
    assert "tandem check: http://127.0.0.1:1" in capsys.readouterr().err
