"""reservation-add/-get/-get-all/-del (tandem.io.hostcmds): Kea's shapes and results, the
lease file, and replication between two servers over a fake extension channel."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

import pytest
from tests.core.corekit import FakeClient, mac

from tandem.config import parse_text
from tandem.core.reload import plan, rebuild
from tandem.core.server import DhcpServer
from tandem.io import hostcmds
from tandem.io.commands import WRITE_COMMANDS, Commands, Request
from tandem.io.commit import GroupCommit
from tandem.store.journal import LeaseJournal

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000
A = IPv4Address
CONF = """
subnet 192.0.2.0 netmask 255.255.255.0 {
  range 192.0.2.100 192.0.2.109;
}
host cfg { hardware ethernet 52:54:00:00:00:77; fixed-address 192.0.2.9; }
"""
ADD = {
    "reservation": {
        "subnet-id": 1,
        "hw-address": "52:54:00:00:00:01",
        "ip-address": "192.0.2.105",
        "hostname": "printer",
        "option-data": [{"name": "domain-name-servers", "data": "10.1.1.202,10.1.1.203"}],
    }
}


class FakeLink:
    def __init__(self, state: str = "up") -> None:
        self.state = state

    def status(self) -> dict[str, object]:
        return {"link": self.state}


class FakeLinks:
    def __init__(self, state: str = "up") -> None:
        self.links = {"fo": FakeLink(state)}
        self.flushed = 0

    def after_batch(self) -> None:
        self.flushed += 1


class Node:
    """One server with its journal, commands and reservation service."""

    def __init__(self, path: Path, links: FakeLinks | None = None) -> None:
        self.path = path
        self.journal = LeaseJournal(path, fsync=False)
        contents = self.journal.load()
        self.server = DhcpServer(
            parse_text(CONF), interfaces={"eth0": (IPv4Interface("192.0.2.1/24"),)}
        )
        self.commands = Commands(
            self.server,
            commit=GroupCommit(self.journal),
            links=links,  # type: ignore[arg-type]
            clock=lambda: float(T0),
        )
        self.hosts = hostcmds.start(
            self.server, contents.hosts.values(), self.commands.commit, self.commands
        )
        self.hosts.peer_wait = 0.3
        self.hosts.table.origin = path.stem  # distinct writers, as two peers' addresses are

    def run(self, command: str, args: dict[str, object]) -> dict[str, Any]:
        return asyncio.run(self.commands.execute(Request(command, args), may_write=True))

    async def arun(self, command: str, args: dict[str, object]) -> dict[str, Any]:
        return await self.commands.execute(Request(command, args), may_write=True)

    def served(self, hw: bytes) -> IPv4Address | None:
        off = FakeClient(self.server, hw).send(1, T0)
        return None if off.reply is None else off.reply.packet.yiaddr


def test_add_get_del_with_kea_results(tmp_path: Path) -> None:
    node = Node(tmp_path / "a.leases")
    assert {"reservation-add", "reservation-del"} <= WRITE_COMMANDS
    added = node.run("reservation-add", ADD)
    assert added == {"result": 0, "text": "Host added."}
    assert node.served(mac(1)) == A("192.0.2.105")
    got = node.run("reservation-get", {"subnet-id": 1, "ip-address": "192.0.2.105"})
    assert got["result"] == 0 and got["text"] == "Host found."
    host = got["arguments"]
    assert host["hw-address"] == "52:54:00:00:00:01" and host["hostname"] == "printer"
    assert host["option-data"] == [
        {"name": "domain-name-servers", "code": 6, "data": "10.1.1.202,10.1.1.203"}
    ]
    by_id = node.run(
        "reservation-get", {"identifier-type": "hw-address", "identifier": "52:54:00:00:00:01"}
    )
    assert by_id["arguments"]["ip-address"] == "192.0.2.105"
    every = node.run("reservation-get-all", {"subnet-id": 1})
    assert every["result"] == 0 and every["text"] == "2 IPv4 host(s) found."
    assert [h["source"] for h in every["arguments"]["hosts"]] == [
        "dynamic",
        "configuration <string>:5",
    ]
    text = (tmp_path / "a.leases").read_text()
    assert "host printer {\n  dynamic;\n" in text and "fixed-address 192.0.2.105;" in text
    deleted = node.run("reservation-del", {"subnet-id": 1, "ip-address": "192.0.2.105"})
    assert deleted == {"result": 0, "text": "Host deleted."}
    assert node.run("reservation-get", {"ip-address": "192.0.2.105"}) == {
        "result": 3,
        "text": "Host not found.",
    }
    assert node.run("reservation-del", {"ip-address": "192.0.2.105"})["result"] == 3
    assert "host printer {\n  dynamic;\n  # tandem-stamp" in (tmp_path / "a.leases").read_text()
    assert "  deleted;\n}" in (tmp_path / "a.leases").read_text()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ip-address": "10.9.9.9"}, "address 10.9.9.9 is outside every subnet"),
        ({"ip-address": "192.0.2.9"}, "address 192.0.2.9 is already reserved for host cfg"),
        ({"hw-address": "52:54:00:00:00:77"}, "hw-address 52:54:00:00:00:77 is already reserved"),
        ({"subnet-id": 2}, "not in subnet-id 2"),
        ({"option-data": [{"name": "nope", "data": "1"}]}, "unknown option name 'nope'"),
        ({"hostname": "bad name"}, "'hostname' must be a host name"),
    ],
)
def test_conflicts_and_bad_arguments_are_result_1(
    tmp_path: Path, change: dict[str, object], reason: str
) -> None:
    node = Node(tmp_path / "a.leases")
    res = {**ADD["reservation"], **change}  # type: ignore[dict-item]
    answer = node.run("reservation-add", {"reservation": res})
    assert answer["result"] == 1 and reason in answer["text"], answer
    assert node.hosts.table.live() == []


def test_leased_to_another_client_is_refused(tmp_path: Path) -> None:
    node = Node(tmp_path / "a.leases")
    FakeClient(node.server, mac(5)).dora(T0)  # 192.0.2.100
    res = {**ADD["reservation"], "ip-address": "192.0.2.100"}  # type: ignore[dict-item]
    answer = node.run("reservation-add", {"reservation": res})
    assert answer == {
        "result": 1,
        "text": "Host not added: address 192.0.2.100 is leased to 52:54:00:00:00:05",
    }


def test_a_config_host_is_not_deleted(tmp_path: Path) -> None:
    node = Node(tmp_path / "a.leases")
    answer = node.run("reservation-del", {"ip-address": "192.0.2.9"})
    assert answer["result"] == 1 and "is in the configuration <string>:5" in answer["text"]


def test_restart_serves_the_saved_reservation(tmp_path: Path) -> None:
    node = Node(tmp_path / "a.leases")
    node.run("reservation-add", ADD)
    node.journal.close()
    again = Node(tmp_path / "a.leases")
    assert again.served(mac(1)) == A("192.0.2.105")
    assert again.served(mac(2)) == A("192.0.2.100")


# --- two peers -------------------------------------------------------------------------------


def join(a: Node, b: Node) -> None:
    """Connect the two HostSync features through the loop (as ext would, asynchronously)."""

    def sender(to: Node, name: str) -> Any:
        def send(kind: str, body: Mapping[str, object]) -> None:
            asyncio.get_running_loop().call_soon(
                to.hosts.sync.ext_message, name, kind, dict(body), T0
            )

        return send

    a.hosts.sync.ext_up("fo", sender(b, "fo"), T0)
    b.hosts.sync.ext_up("fo", sender(a, "fo"), T0)


def test_replicated_to_the_peer_and_deleted_from_the_peer(tmp_path: Path) -> None:
    async def scenario() -> None:
        p = Node(tmp_path / "p.leases", FakeLinks())
        s = Node(tmp_path / "s.leases", FakeLinks())
        join(p, s)
        added = await p.arun("reservation-add", ADD)
        assert added == {"result": 0, "text": "Host added. Failover peer fo has it."}
        assert s.served(mac(1)) == A("192.0.2.105")
        assert "host printer {" in (tmp_path / "s.leases").read_text()
        deleted = await s.arun("reservation-del", {"ip-address": "192.0.2.105"})
        assert deleted["result"] == 0
        got = await p.arun("reservation-get", {"ip-address": "192.0.2.105"})
        assert got["result"] == 3
        assert p.served(mac(1)) == A("192.0.2.100")

    asyncio.run(scenario())


def test_refused_by_the_peer_is_undone_locally(tmp_path: Path) -> None:
    async def scenario() -> None:
        p = Node(tmp_path / "p.leases", FakeLinks())
        s = Node(tmp_path / "s.leases", FakeLinks())
        FakeClient(s.server, mac(5)).dora(T0)  # the secondary leased 192.0.2.100
        join(p, s)
        res = {**ADD["reservation"], "ip-address": "192.0.2.100"}  # type: ignore[dict-item]
        answer = await p.arun("reservation-add", {"reservation": res})
        assert answer == {
            "result": 1,
            "text": "Host not added: failover peer fo refused it: "
            "address 192.0.2.100 is leased to 52:54:00:00:00:05",
        }
        assert p.hosts.table.live() == [] and p.served(mac(1)) != A("192.0.2.100")
        p.journal.close()
        assert hostcmds_hosts(tmp_path / "p.leases") == {}

    asyncio.run(scenario())


def hostcmds_hosts(path: Path) -> dict[str, object]:
    j = LeaseJournal(path, fsync=False)
    live = {n: r for n, r in j.load().hosts.items() if not r.deleted}
    j.close()
    return live


def test_dhcpd_partner_and_link_down_are_said_in_the_reply(tmp_path: Path) -> None:
    dhcpd = Node(tmp_path / "d.leases", FakeLinks("up"))  # up, never identified as Tandem
    answer = dhcpd.run("reservation-add", ADD)
    assert answer["result"] == 0
    assert "The partner of failover peer fo is ISC dhcpd: it does not have this" in answer["text"]
    down = Node(tmp_path / "x.leases", FakeLinks("down"))
    answer = down.run("reservation-add", ADD)
    assert answer["result"] == 0
    assert (
        "Failover peer fo is not connected: the change is sent when the link is back"
        in (answer["text"])
    )


def test_offline_changes_meet_on_reconnect(tmp_path: Path) -> None:
    async def scenario() -> None:
        p = Node(tmp_path / "p.leases", FakeLinks("down"))
        s = Node(tmp_path / "s.leases", FakeLinks("down"))
        await p.arun("reservation-add", ADD)
        join(p, s)
        for _ in range(5):
            await asyncio.sleep(0)
        assert s.served(mac(1)) == A("192.0.2.105")

    asyncio.run(scenario())


def test_a_reload_keeps_serving_the_reservations(tmp_path: Path) -> None:
    node = Node(tmp_path / "a.leases")
    node.run("reservation-add", ADD)
    text = CONF + "host cfg2 { hardware ethernet 52:54:00:00:00:78; fixed-address 192.0.2.8; }\n"
    new_config = parse_text(text)
    server, _ = rebuild(node.server, new_config, {}, plan(node.server.config, new_config), now=T0)
    hostcmds.bind(node.hosts.table, server)  # what Runtime._apply does after the swap
    off = FakeClient(server, mac(1)).send(1, T0)
    assert off.reply is not None and off.reply.packet.yiaddr == A("192.0.2.105")
    other = FakeClient(server, mac(2)).send(1, T0, requested="192.0.2.105")
    assert other.reply is not None and other.reply.packet.yiaddr != A("192.0.2.105")
