"""The command layer (tandem.io.commands): Kea's envelope, each command with good and bad
arguments, and lease4-del through the journal and the group commit."""

from __future__ import annotations

import asyncio
import json
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from tandem.config import parse_text
from tandem.core.lease import BindingState, Lease
from tandem.core.server import DhcpServer
from tandem.io.command_views import format_status
from tandem.io.commands import (
    MAX_BODY,
    WRITE_COMMANDS,
    CommandError,
    Commands,
    Request,
    parse_command,
)
from tandem.io.commit import GroupCommit
from tandem.io.control import MAX_DEPTH
from tandem.io.dhcp_socket import Counters
from tandem.io.reload import ReloadResult
from tandem.store.journal import LeaseJournal

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000
CONF = """
default-lease-time 600;
max-lease-time 7200;
subnet 192.0.2.0 netmask 255.255.255.0 {
  range 192.0.2.100 192.0.2.109;
}
subnet 198.51.100.0 netmask 255.255.255.0 {
  range 198.51.100.10 198.51.100.14;
}
"""
MAC1 = bytes.fromhex("525400000001")
MAC2 = bytes.fromhex("525400000002")


def _lease(addr: str, mac: bytes, state: BindingState = BindingState.ACTIVE) -> Lease:
    return Lease(
        IPv4Address(addr),
        state,
        starts=T0 - 100,
        ends=T0 + 500,
        cltt=T0 - 100,
        hardware=(1, mac),
        uid=b"\x01" + mac,
        client_hostname="pc1",
    )


def _server() -> DhcpServer:
    leases = [
        _lease("192.0.2.105", MAC1),
        _lease("192.0.2.107", MAC2, BindingState.ABANDONED),
        _lease("198.51.100.12", bytes.fromhex("525400000003")),
        Lease(IPv4Address("192.0.2.101"), BindingState.FREE),
    ]
    return DhcpServer(
        parse_text(CONF),
        leases=leases,
        interfaces={"eth0": (IPv4Interface("192.0.2.1/24"),)},
    )


def _commands(tmp_path: Path | None = None) -> Commands:
    commit = None
    if tmp_path is not None:
        journal = LeaseJournal(tmp_path / "dhcpd.leases", fsync=False)
        journal.load()
        commit = GroupCommit(journal)
    counters = Counters(received=7, replied=5)
    counters.drops["bad-cookie"] = 2
    return Commands(
        _server(),
        commit=commit,
        counters=counters,
        config_path="/etc/dhcp/dhcpd.conf",
        check_config=lambda path: [],
        started=T0 - 60,
        clock=lambda: float(T0),
    )


def run(cmd: Commands, command: str, arguments: dict[str, object] | None = None) -> dict:
    req = Request(command, arguments or {})
    return asyncio.run(cmd.execute(req, may_write=True))


# --- the envelope ------------------------------------------------------------------------------


def test_parse_accepts_kea_requests() -> None:
    req = parse_command(b'{"command": "lease4-get", "arguments": {"ip-address": "192.0.2.1"}}')
    assert req == Request("lease4-get", {"ip-address": "192.0.2.1"})
    req = parse_command(b'{"command": "status-get", "service": ["dhcp4"]}')
    assert req.service == ("dhcp4",) and req.arguments == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not valid JSON"),
        (b"status-get", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"arguments": {}}', 'string "command"'),
        (b'{"command": 5}', 'string "command"'),
        (b'{"command": "x", "arguments": [1]}', '"arguments" must be a JSON object'),
        (b'{"command": "x", "service": "dhcp4"}', '"service" must be a list'),
        (b'{"command": "x", "service": ["dhcp6"]}', "DHCPv4 server"),
        (b'{"command": "x", "a": ' + b"[" * 50 + b"]" * 50 + b"}", "nested deeper"),
        (b" " * (MAX_BODY + 1), "longer than"),
    ],
)
def test_parse_refuses_with_a_message(data: bytes, message: str) -> None:
    with pytest.raises(CommandError, match=message) as info:
        parse_command(data)
    assert info.value.result == 1


def test_nesting_limit_is_the_control_socket_one() -> None:
    ok = '{"command": "x", "a": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"
    assert parse_command(ok.encode()).command == "x"


def test_unknown_command_is_result_2_and_listed_commands_are_kea_names() -> None:
    cmd = _commands()
    answer = run(cmd, "lease6-get")
    assert answer == {"result": 2, "text": "'lease6-get' command not supported."}
    listed = run(cmd, "list-commands")
    assert listed["result"] == 0
    names = listed["arguments"]
    assert isinstance(names, list)
    for name in (
        "lease4-get",
        "lease4-get-all",
        "lease4-get-page",
        "lease4-del",
        "stat-lease4-get",
        "statistic-get-all",
        "status-get",
        "config-get",
        "config-test",
        "config-reload",
        "failover-get",
        "failover-partner-down",
    ):
        assert name in names


def test_unknown_argument_is_an_error() -> None:
    answer = run(_commands(), "status-get", {"verbose": True})
    assert answer["result"] == 1 and "unknown argument 'verbose'" in str(answer["text"])


def test_writes_refused_when_not_allowed() -> None:
    cmd = _commands()
    for name in WRITE_COMMANDS:
        req = Request(name, {"ip-address": "192.0.2.105"})
        answer = asyncio.run(cmd.execute(req, may_write=False))
        assert answer["result"] == 1 and "read-only" in str(answer["text"]), answer
    assert cmd.server.db.by_addr[int(IPv4Address("192.0.2.105"))].binding_state is (
        BindingState.ACTIVE
    )


def test_a_read_only_command_never_awaits() -> None:
    """The fuzz oracle drives execute() by hand: a read-only command completes at once."""
    coro = _commands().execute(Request("status-get", {}), may_write=False)
    with pytest.raises(StopIteration) as done:
        coro.send(None)
    assert done.value.value["result"] == 0


# --- leases -------------------------------------------------------------------------------------


def test_lease4_get_by_address_hw_and_client_id() -> None:
    cmd = _commands()
    by_ip = run(cmd, "lease4-get", {"ip-address": "192.0.2.105"})
    assert by_ip["result"] == 0 and by_ip["text"] == "IPv4 lease found."
    lease = by_ip["arguments"]
    assert isinstance(lease, dict)
    assert lease["ip-address"] == "192.0.2.105"
    assert lease["hw-address"] == "52:54:00:00:00:01"
    assert lease["client-id"] == "01:52:54:00:00:00:01"
    assert lease["subnet-id"] == 1 and lease["state"] == 0
    assert lease["valid-lft"] == 600 and lease["cltt"] == T0 - 100
    assert lease["hostname"] == "pc1"
    by_hw = run(
        cmd, "lease4-get", {"identifier-type": "hw-address", "identifier": "52:54:00:00:00:01"}
    )
    assert by_hw["arguments"] == lease
    by_id = run(cmd, "lease4-get", {"identifier-type": "client-id", "identifier": "01525400000001"})
    assert by_id["arguments"] == lease
    declined = run(cmd, "lease4-get", {"ip-address": "192.0.2.107"})
    assert declined["arguments"]["state"] == 1  # type: ignore[index]
    in_subnet_2 = run(
        cmd,
        "lease4-get",
        {"identifier-type": "hw-address", "identifier": "52:54:00:00:00:01", "subnet-id": 2},
    )
    assert in_subnet_2 == {"result": 3, "text": "Lease not found."}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "needs 'ip-address'"),
        ({"ip-address": "192.0.2.300"}, "not an IPv4 address"),
        ({"ip-address": 5}, "must be a string"),
        ({"ip-address": "192.0.2.105", "identifier": "aa"}, "either 'ip-address'"),
        ({"identifier-type": "duid", "identifier": "aa"}, "not supported"),
        ({"identifier-type": "hw-address", "identifier": "zz"}, "not hexadecimal"),
        ({"identifier-type": "hw-address", "identifier": ""}, "1 to 255 bytes"),
        ({"identifier-type": "hw-address"}, "must be a string"),
        ({"ip-address": "192.0.2.105", "subnet-id": "1"}, "'subnet-id' must be an integer"),
        ({"ip-address": "192.0.2.105", "bogus": 1}, "unknown argument 'bogus'"),
    ],
)
def test_lease4_get_bad_arguments(args: dict[str, object], message: str) -> None:
    answer = run(_commands(), "lease4-get", args)
    assert answer["result"] == 1 and message in str(answer["text"]), answer


def test_free_address_is_not_a_lease() -> None:
    cmd = _commands()
    assert run(cmd, "lease4-get", {"ip-address": "192.0.2.101"})["result"] == 3
    assert run(cmd, "lease4-get", {"ip-address": "192.0.2.102"})["result"] == 3
    assert run(cmd, "lease4-get", {"ip-address": "10.1.1.1"})["result"] == 3


def test_lease4_get_all_and_by_subnet() -> None:
    cmd = _commands()
    answer = run(cmd, "lease4-get-all")
    assert answer["result"] == 0 and answer["text"] == "3 IPv4 lease(s) found."
    leases = answer["arguments"]["leases"]  # type: ignore[index]
    assert [x["ip-address"] for x in leases] == ["192.0.2.105", "192.0.2.107", "198.51.100.12"]
    two = run(cmd, "lease4-get-all", {"subnets": [2]})
    assert [x["ip-address"] for x in two["arguments"]["leases"]] == ["198.51.100.12"]  # type: ignore[index]
    none = run(cmd, "lease4-get-all", {"subnets": [9]})
    assert none == {"result": 3, "text": "0 IPv4 lease(s) found.", "arguments": {"leases": []}}
    bad = run(cmd, "lease4-get-all", {"subnets": "1"})
    assert bad["result"] == 1


def test_lease4_get_page_walks_in_address_order() -> None:
    cmd = _commands()
    first = run(cmd, "lease4-get-page", {"from": "start", "limit": 2})
    assert first["result"] == 0
    body = first["arguments"]
    assert isinstance(body, dict) and body["count"] == 2
    last = body["leases"][-1]["ip-address"]  # type: ignore[index]
    second = run(cmd, "lease4-get-page", {"from": last, "limit": 2})
    assert [x["ip-address"] for x in second["arguments"]["leases"]] == ["198.51.100.12"]  # type: ignore[index]
    end = run(cmd, "lease4-get-page", {"from": "198.51.100.12", "limit": 2})
    assert end["result"] == 3 and end["text"] == "0 IPv4 lease(s) found."
    for args, message in (
        ({"limit": 2}, "'from' is required"),
        ({"from": "start"}, "'limit' is required"),
        ({"from": "start", "limit": 0}, "'limit' must be an integer"),
        ({"from": "start", "limit": True}, "'limit' must be an integer"),
        ({"from": "next", "limit": 1}, "not an IPv4 address"),
    ):
        answer = run(cmd, "lease4-get-page", args)
        assert answer["result"] == 1 and message in str(answer["text"]), (args, answer)


def test_lease4_del_commits_before_it_answers(tmp_path: Path) -> None:
    cmd = _commands(tmp_path)
    lines: list[str] = []
    cmd.emit = lines.extend
    assert cmd.commit is not None
    before = cmd.commit.commits
    answer = run(cmd, "lease4-del", {"ip-address": "192.0.2.105"})
    assert answer == {"result": 0, "text": "IPv4 lease deleted."}
    assert cmd.commit.commits == before + 1
    text = (tmp_path / "dhcpd.leases").read_text()
    block = text[text.rindex("lease 192.0.2.105 {") :]
    assert "binding state free;" in block
    assert lines == ["lease 192.0.2.105 state changed from active to free"]
    assert run(cmd, "lease4-get", {"ip-address": "192.0.2.105"})["result"] == 3
    again = run(cmd, "lease4-del", {"ip-address": "192.0.2.105"})
    assert again == {"result": 3, "text": "IPv4 lease not found."}
    by_mac = run(
        cmd, "lease4-del", {"identifier-type": "hw-address", "identifier": "52:54:00:00:00:02"}
    )
    assert by_mac["result"] == 0
    assert run(cmd, "lease4-del", {"ip-address": "nope"})["result"] == 1


def test_lease4_del_without_a_lease_file_is_an_error() -> None:
    answer = run(_commands(), "lease4-del", {"ip-address": "192.0.2.105"})
    assert answer["result"] == 1 and "no lease file" in str(answer["text"])


# --- statistics, status, config -------------------------------------------------------------


def test_stat_lease4_get_rows() -> None:
    cmd = _commands()
    answer = run(cmd, "stat-lease4-get")
    assert answer["text"] == "stat-lease4-get[all subnets]: 2 rows found"
    rs = answer["arguments"]["result-set"]  # type: ignore[index]
    assert rs["columns"] == [
        "subnet-id",
        "total-addresses",
        "assigned-addresses",
        "declined-addresses",
    ]
    assert rs["rows"] == [[1, 10, 1, 1], [2, 5, 1, 0]]
    assert rs["timestamp"].startswith("2023-11-14 22:13:20")
    one = run(cmd, "stat-lease4-get", {"subnet-id": 2})
    assert one["arguments"]["result-set"]["rows"] == [[2, 5, 1, 0]]  # type: ignore[index]
    assert run(cmd, "stat-lease4-get", {"subnet-id": 7})["result"] == 3
    rng = run(cmd, "stat-lease4-get", {"subnet-range": {"first-subnet-id": 2}})
    assert rng["arguments"]["result-set"]["rows"] == [[2, 5, 1, 0]]  # type: ignore[index]
    assert run(cmd, "stat-lease4-get", {"subnet-id": -1})["result"] == 1
    assert run(cmd, "stat-lease4-get", {"subnet-range": 3})["result"] == 1


def test_statistic_get_all_uses_kea_names() -> None:
    answer = run(_commands(), "statistic-get-all")
    stats = answer["arguments"]
    assert isinstance(stats, dict)
    assert stats["pkt4-received"][0][0] == 7
    assert stats["pkt4-sent"][0][0] == 5
    assert stats["pkt4-receive-drop"][0][0] == 2
    assert stats["subnet[1].total-addresses"][0][0] == 10
    assert stats["subnet[2].assigned-addresses"][0][0] == 1


def test_status_get_and_its_text() -> None:
    answer = run(_commands(), "status-get")
    status = answer["arguments"]
    assert isinstance(status, dict)
    assert status["uptime"] == 60 and status["failover"] == []
    pools = status["pools"]
    assert isinstance(pools, list)
    first = pools[0]
    assert first["pool"] == "192.0.2.0/24 192.0.2.100-192.0.2.109"
    assert sum(first["states"].values()) == first["total"] == 10
    assert first["states"]["active"] == 1 and first["states"]["abandoned"] == 1
    text = format_status(status, [], T0)
    assert f"pid {status['pid']} up 60 s" in text
    assert (
        "192.0.2.0/24 192.0.2.100-192.0.2.109: 10 addresses: free 8, active 1, abandoned 1" in text
    )
    assert "dropped 2 (bad-cookie 2)" in text


def test_config_get_test_and_reload() -> None:
    cmd = _commands()
    got = run(cmd, "config-get")
    subnets = got["arguments"]["Dhcp4"]["subnet4"]  # type: ignore[index]
    assert subnets[0]["subnet"] == "192.0.2.0/24"
    assert subnets[0]["pools"][0]["pool"] == "192.0.2.100-192.0.2.109"
    json.dumps(got)
    ok = run(cmd, "config-test")
    assert ok["result"] == 0 and "seems sane" in str(ok["text"])
    cmd.check_config = lambda path: [f"{path}:3:7: semicolon expected."]
    bad = run(cmd, "config-test")
    assert bad == {"result": 1, "text": "/etc/dhcp/dhcpd.conf:3:7: semicolon expected."}
    reload = run(cmd, "config-reload")
    assert reload["result"] == 2 and "no configuration file to reload" in str(reload["text"])


def test_config_reload_answers_what_the_reload_did() -> None:
    cmd = _commands()
    results = [
        ReloadResult(False, "/etc/dhcp/dhcpd.conf", ["/etc/dhcp/dhcpd.conf:4:1: error: x"]),
        ReloadResult(True, "/etc/dhcp/dhcpd.conf", summary="1 subnet, 1 host"),
    ]
    calls: list[int] = []

    async def reload() -> ReloadResult:
        calls.append(1)
        return results[len(calls) - 1]

    cmd.reload = reload
    refused = run(cmd, "config-reload")
    assert refused["result"] == 1
    assert "dhcpd.conf:4:1: error: x; still serving the previous configuration" in str(
        refused["text"]
    )
    assert refused["arguments"]["errors"] == ["/etc/dhcp/dhcpd.conf:4:1: error: x"]  # type: ignore[index]
    done = run(cmd, "config-reload")
    assert done["result"] == 0 and "Reloaded /etc/dhcp/dhcpd.conf: 1 subnet, 1 host" in str(
        done["text"]
    )
    assert len(calls) == 2
    denied = asyncio.run(cmd.execute(Request("config-reload", {}), may_write=False))
    assert denied["result"] == 1 and len(calls) == 2  # a read-only listener may not reload


def test_failover_commands_without_failover() -> None:
    cmd = _commands()
    assert run(cmd, "failover-get")["result"] == 3
    answer = run(cmd, "failover-partner-down", {"name": "x"})
    assert answer["result"] == 1 and "no failover peer named 'x'" in str(answer["text"])
    assert run(cmd, "failover-get", {"name": 3})["result"] == 1
