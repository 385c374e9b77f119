"""The DHCP endpoint on the group commit: a batch's ACKs leave after its records are on disk, a
batch that changed no lease does not pump the failover links, and log lines go out together.
The scheduler itself (order, windows, failures) is tests/io/test_commit.py's."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address as A
from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from tandem.config import parse_text
from tandem.core.server import DhcpServer
from tandem.io import commit as commit_module
from tandem.io import dhcp_socket
from tandem.io.commit import GroupCommit
from tandem.io.dhcp_socket import DhcpEndpoint, _Port
from tandem.io.netif import Interface
from tandem.store.journal import LeaseJournal
from tandem.wire.dhcp import Packet, decode, encode


class _SentSocket:
    """Stands in for the UDP socket: records each reply and the bound leases on disk then."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sent: list[tuple[bytes, int]] = []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        self.sent.append((data, self.path.read_text().count("binding state active;")))
        return len(data)


def _relayed(mtype: int, mac: bytes, extra: dict[int, bytes]) -> bytes:
    opts = {53: bytes([mtype]), 61: b"\x01" + mac, **extra}
    p = Packet(1, 1, 6, 1, 7, 0, 0, A(0), A(0), A(0), A("10.0.0.254"),
               mac.ljust(16, b"\0"), options=opts)  # fmt: skip
    return encode(p)


@pytest.mark.parametrize("inline_max", [1.0, 0.0])
def test_a_dhcp_batch_is_durable_before_its_ack_on_either_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inline_max: float
) -> None:
    """A fast disk syncs the batch on the loop (ACK sent before process_batch returns); a slow
    disk hands it to the worker (ACK sent later). Either way the ACK leaves after its record
    is written and synced."""
    monkeypatch.setattr(commit_module, "INLINE_SYNC_MAX", inline_max)
    conf = "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.20; }"
    iface = Interface("eth0", 2, bytes(6), (IPv4Interface("10.0.0.1/24"),))

    async def scenario() -> tuple[int, list[tuple[bytes, int]], int]:
        journal = LeaseJournal(tmp_path / f"dhcpd-{inline_max}.leases")
        journal.load()
        server = DhcpServer(parse_text(conf), interfaces={"eth0": iface.addrs})
        commit = GroupCommit(journal)
        endpoint = DhcpEndpoint(server, commit, [], emit=lambda _lines: None)
        commit.start(asyncio.get_running_loop())
        endpoint.start(asyncio.get_running_loop())
        sock = _SentSocket(tmp_path / f"dhcpd-{inline_max}.leases")
        port = _Port(iface, sock)  # type: ignore[arg-type]
        relay = ("10.0.0.254", 67)
        mac = b"\x02\x00\x00\x00\x00\x01"
        endpoint.process_batch(port, [(_relayed(1, mac, {}), True, relay)])
        offer = decode(sock.sent[-1][0])
        ask = {50: offer.yiaddr.packed, 54: offer.options[54]}
        endpoint.process_batch(port, [(_relayed(3, mac, ask), True, relay)])
        sent_at_return = len(sock.sent)
        for _ in range(200):
            if len(sock.sent) == 2:
                break
            await asyncio.sleep(0.01)
        endpoint.close()
        commit.close()
        return sent_at_return, sock.sent, commit.commits

    sent_at_return, sent, commits = asyncio.run(scenario())
    assert [decode(d).options[53] for d, _ in sent] == [b"\x02", b"\x05"]  # OFFER, ACK
    assert sent[0][1] == 0 and sent[1][1] == 1  # the ACK left after its record was written
    assert commits == 1
    assert sent_at_return == (2 if inline_max else 1)


def test_failover_links_are_pumped_only_after_a_batch_that_changed_leases(
    tmp_path: Path,
) -> None:
    """A DISCOVER changes no lease (an OFFER is a hold): no pump; the REQUEST's ACK does."""
    conf = "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.20; }"
    iface = Interface("eth0", 2, bytes(6), (IPv4Interface("10.0.0.1/24"),))
    journal = LeaseJournal(tmp_path / "dhcpd.leases", fsync=False)
    journal.load()
    server = DhcpServer(parse_text(conf), interfaces={"eth0": iface.addrs})
    pumped: list[int] = []
    commit = GroupCommit(journal)
    endpoint = DhcpEndpoint(
        server, commit, [], emit=lambda _l: None, after_commit=lambda: pumped.append(1)
    )
    sock = _SentSocket(tmp_path / "dhcpd.leases")
    port = _Port(iface, sock)  # type: ignore[arg-type]
    relay = ("10.0.0.254", 67)
    mac = b"\x02\x00\x00\x00\x00\x02"
    endpoint.process_batch(port, [(_relayed(1, mac, {}), True, relay)])
    assert pumped == []
    offer = decode(sock.sent[-1][0])
    ask = {50: offer.yiaddr.packed, 54: offer.options[54]}
    endpoint.process_batch(port, [(_relayed(3, mac, ask), True, relay)])
    assert pumped == [1]
    endpoint.close()
    commit.close()


def test_log_lines_of_close_batches_go_out_in_one_write_soon_after(tmp_path: Path) -> None:
    """Within LOG_MIN_INTERVAL of a write, the next batches' lines wait and leave together."""
    conf = "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.20; }"
    iface = Interface("eth0", 2, bytes(6), (IPv4Interface("10.0.0.1/24"),))

    async def scenario() -> list[list[str]]:
        journal = LeaseJournal(tmp_path / "dhcpd.leases", fsync=False)
        journal.load()
        server = DhcpServer(parse_text(conf), interfaces={"eth0": iface.addrs})
        writes: list[list[str]] = []
        commit = GroupCommit(journal)
        endpoint = DhcpEndpoint(server, commit, [], emit=writes.append)
        commit.start(asyncio.get_running_loop())
        endpoint.start(asyncio.get_running_loop())
        port = _Port(iface, _SentSocket(tmp_path / "dhcpd.leases"))  # type: ignore[arg-type]
        relay = ("10.0.0.254", 67)
        for i in range(3):
            mac = bytes([2, 0, 0, 0, 0, 10 + i])
            endpoint.process_batch(port, [(_relayed(1, mac, {}), True, relay)])
        assert len(writes) == 1  # the first batch at once; the next two wait
        await asyncio.sleep(dhcp_socket.LOG_MIN_INTERVAL * 5)
        endpoint.close()
        commit.close()
        return writes

    writes = asyncio.run(scenario())
    assert [len(w) for w in writes] == [2, 4]  # DISCOVER + OFFER lines per batch
    assert all(line.startswith(("DHCPDISCOVER", "DHCPOFFER")) for w in writes for line in w)


def test_a_batch_s_log_lines_precede_those_of_the_failover_pump_it_triggers(
    tmp_path: Path,
) -> None:
    """The ACK's lines are written once its sync is done, before the links are pumped (whose
    BNDUPD lines follow them, as in dhcpd's log)."""
    conf = "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.20; }"
    iface = Interface("eth0", 2, bytes(6), (IPv4Interface("10.0.0.1/24"),))
    journal = LeaseJournal(tmp_path / "dhcpd.leases", fsync=False)
    journal.load()
    server = DhcpServer(parse_text(conf), interfaces={"eth0": iface.addrs})
    writes: list[list[str]] = []
    commit = GroupCommit(journal)
    endpoint = DhcpEndpoint(
        server, commit, [], emit=writes.append, after_commit=lambda: writes.append(["pump"])
    )
    sock = _SentSocket(tmp_path / "dhcpd.leases")
    port = _Port(iface, sock)  # type: ignore[arg-type]
    relay = ("10.0.0.254", 67)
    mac = b"\x02\x00\x00\x00\x00\x03"
    endpoint.process_batch(port, [(_relayed(1, mac, {}), True, relay)])
    offer = decode(sock.sent[-1][0])
    ask = {50: offer.yiaddr.packed, 54: offer.options[54]}
    endpoint.process_batch(port, [(_relayed(3, mac, ask), True, relay)])
    assert [w[0].split()[0] for w in writes] == ["DHCPDISCOVER", "DHCPREQUEST", "pump"]
    endpoint.close()
    commit.close()
