"""The I/O side of a reload (tandem.io.reload.apply, FailoverLinks.replace) on a real event loop
with real listeners on loopback: an unchanged peer block keeps its link object and listener, a
changed port restarts the link and moves the listener, a removed peer closes both, and the
first peer of a server that had none gets links of its own."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tandem.config import parse_text
from tandem.core.failover.engine import FailoverSetup
from tandem.core.server import DhcpServer
from tandem.io.commit import GroupCommit
from tandem.io.failover_link import Timing
from tandem.io.failover_listen import FailoverLinks
from tandem.io.reload import ReloadResult, apply, listener_notes, read_config
from tandem.store.journal import LeaseJournal

pytestmark = pytest.mark.timeout(60)
FAST = Timing(reconnect_after_drop=0.2, reconnect_after_failure=0.5, listen_retry=0.5)
NOW = 1_700_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SUBNET = """\
subnet 127.0.0.0 netmask 255.0.0.0 {
  pool {
    %s
    range 127.0.0.100 127.0.0.120;
  }
}
"""


def conf(port: int | None, extra: str = "") -> str:
    if port is None:
        return extra + SUBNET % ""
    peer = f"""failover peer "fo" {{
  primary; address 127.0.0.1; port {port}; peer address 127.0.0.2; peer port {free_port()};
  max-response-delay 60; max-unacked-updates 10; mclt 600; split 128;
  load balance max seconds 3;
}}
"""
    return extra + peer + SUBNET % 'failover peer "fo";'


def listening(links: FailoverLinks) -> set[int]:
    return {x.port for x in links.listeners if x.sock is not None}


def test_replace_keeps_restarts_and_removes_links(tmp_path: Path) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        port = free_port()
        text = conf(port)
        config = parse_text(text)
        setup = FailoverSetup(config, {}, NOW)
        server = DhcpServer(config, failover=setup)
        commit = GroupCommit(LeaseJournal(str(tmp_path / "leases"), fsync=False))
        lines: list[str] = []
        links = FailoverLinks(
            [(setup.engines["fo"], config.failover_peers[0])], commit, lines.extend, timing=FAST
        )
        links.start(loop)
        assert listening(links) == {port}
        link, listener = links.links["fo"], links.listeners[0]

        host = "host h { hardware ethernet 52:54:00:00:00:01; fixed-address 127.0.0.9; }\n"
        kept = apply(
            parse_text(text + host),
            server,
            links=links,
            commit=commit,
            emit=lines.extend,
            path="x.conf",
            user=None,
        )
        assert kept.links is links and kept.result.restarted == []
        assert links.links["fo"] is link and links.listeners == [listener]
        assert kept.result.log_lines() == ["Reloaded x.conf: 1 subnet, 1 host"]
        assert link.engine.leases.db is kept.server.db  # type: ignore[attr-defined]

        moved = free_port()
        swap = apply(
            parse_text(conf(moved)),
            kept.server,
            links=links,
            commit=commit,
            emit=lines.extend,
            path="x.conf",
            user="tandem",
        )
        assert swap.result.restarted == ["fo"] and links.links["fo"] is not link
        assert link.closed and listener.sock is None and listening(links) == {moved}
        assert swap.result.summary == "1 subnet, 0 hosts, failover peer fo restarted"
        assert swap.result.notes == []  # a port above 1023: no root needed

        gone = apply(
            parse_text(conf(None)),
            swap.server,
            links=links,
            commit=commit,
            emit=lines.extend,
            path="x.conf",
            user=None,
        )
        assert links.links == {} and links.listeners == [] and gone.result.ok

        fresh = apply(
            parse_text(conf(port)),
            gone.server,
            links=None,
            commit=commit,
            emit=lines.extend,
            path="x.conf",
            user=None,
        )
        assert fresh.links is not None and fresh.links is not links
        assert set(fresh.links.links) == {"fo"} and listening(fresh.links) == {port}
        assert fresh.server.failover_enabled
        fresh.links.close()
        links.close()
        commit.close()

    asyncio.run(scenario())


def test_a_listener_below_1024_after_the_drop_is_noted() -> None:
    text = conf(free_port())
    config = parse_text(conf(647))
    before = {p.name: p for p in parse_text(text).failover_peers}
    after = {p.name: p for p in config.failover_peers}
    (note,) = listener_notes(before, after, "tandem")
    assert note.startswith("failover peer fo: listening on 127.0.0.1:647 needs root")
    assert listener_notes(before, after, None) == []


def test_read_config_refuses_with_file_line_col(tmp_path: Path) -> None:
    path = tmp_path / "dhcpd.conf"
    path.write_text("authoritative\nsubnet 10.0.0.0 netmask 255.0.0.0 { }\n", encoding="utf-8")
    result = read_config(str(path))
    assert isinstance(result, ReloadResult) and not result.ok
    (error,) = result.errors
    assert error.startswith(f"{path}:2:2: error: ")
    (line,) = result.log_lines()
    assert line == f"Reload of {path} refused: {error}; still serving the previous configuration"
    missing = read_config(str(tmp_path / "nope.conf"), chroot="/srv/jail")
    assert isinstance(missing, ReloadResult)
    assert (
        "No such file or directory" in missing.errors[0]
        and "-chroot /srv/jail" in (missing.errors[0])
    )
