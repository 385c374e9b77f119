"""Actions queued behind the journal run in the order they were queued, even when an action
queues another while its group runs (the failover link relies on it: a reordered send looked
like a failed commit and dropped the link under load)."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address, IPv4Interface
from ipaddress import IPv4Address as A
from pathlib import Path

import pytest

from tandem.config import parse_text
from tandem.core.lease import BindingState, Lease
from tandem.core.server import DhcpServer
from tandem.io import dhcp_socket
from tandem.io.dhcp_socket import DhcpEndpoint, _Port
from tandem.io.netif import Interface
from tandem.store.journal import LeaseJournal
from tandem.wire.dhcp import Packet, decode, encode


def test_actions_never_overtake_their_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow disk: every sync goes to the worker, so A really waits for one in flight.
    monkeypatch.setattr(dhcp_socket, "INLINE_SYNC_MAX", 0.0)

    async def scenario() -> list[str]:
        journal = LeaseJournal(tmp_path / "dhcpd.leases")
        journal.load()
        server = DhcpServer(parse_text("subnet 10.0.0.0 netmask 255.255.255.0 { }"))
        endpoint = DhcpEndpoint(server, journal, [], emit=lambda _lines: None)
        endpoint.start(asyncio.get_running_loop())
        order: list[str] = []
        journal.append(Lease(IPv4Address("10.0.0.1"), BindingState.ACTIVE, ends=1))
        endpoint.after_durable(lambda: order.append("A"))  # waits for the sync in flight

        def b() -> None:
            order.append("B")
            endpoint.after_durable(lambda: order.append("C"))  # queued after D

        endpoint.after_durable(b)
        endpoint.after_durable(lambda: order.append("D"))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(order) == 4:
                break
        endpoint.close()
        return order

    assert asyncio.run(scenario()) == ["A", "B", "D", "C"]


def test_a_fast_commit_without_a_dhcp_batch_runs_on_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No worker hand-off for a failover-only commit on a fast disk; the worker otherwise."""

    async def scenario(inline_max: float) -> tuple[list[int], list[int]]:
        monkeypatch.setattr(dhcp_socket, "INLINE_SYNC_MAX", inline_max)
        journal = LeaseJournal(tmp_path / f"dhcpd-{inline_max}.leases", fsync=False)
        journal.load()
        server = DhcpServer(parse_text("subnet 10.0.0.0 netmask 255.255.255.0 { }"))
        endpoint = DhcpEndpoint(server, journal, [], emit=lambda _lines: None)
        endpoint.start(asyncio.get_running_loop())
        at_return: list[int] = []
        ran: list[int] = []
        journal.append(Lease(IPv4Address("10.0.0.1"), BindingState.ACTIVE, ends=1))
        endpoint.after_durable(lambda: ran.append(journal.pending))
        at_return.append(len(ran))
        for _ in range(100):
            if ran:
                break
            await asyncio.sleep(0.01)
        endpoint.close()
        return at_return, ran

    assert asyncio.run(scenario(1.0)) == ([1], [0])  # ran, committed, before returning
    assert asyncio.run(scenario(0.0)) == ([0], [0])  # a slow disk: behind the worker's sync


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
    monkeypatch.setattr(dhcp_socket, "INLINE_SYNC_MAX", inline_max)
    conf = "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.20; }"
    iface = Interface("eth0", 2, bytes(6), (IPv4Interface("10.0.0.1/24"),))

    async def scenario() -> tuple[int, list[tuple[bytes, int]], int]:
        journal = LeaseJournal(tmp_path / f"dhcpd-{inline_max}.leases")
        journal.load()
        server = DhcpServer(parse_text(conf), interfaces={"eth0": iface.addrs})
        endpoint = DhcpEndpoint(server, journal, [], emit=lambda _lines: None)
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
        return sent_at_return, sock.sent, endpoint.counters.commits

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
    endpoint = DhcpEndpoint(
        server, journal, [], emit=lambda _l: None, after_commit=lambda: pumped.append(1)
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


def test_log_lines_of_close_batches_go_out_in_one_write_soon_after(tmp_path: Path) -> None:
    """Within LOG_MIN_INTERVAL of a write, the next batches' lines wait and leave together."""
    conf = "subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.10 10.0.0.20; }"
    iface = Interface("eth0", 2, bytes(6), (IPv4Interface("10.0.0.1/24"),))

    async def scenario() -> list[list[str]]:
        journal = LeaseJournal(tmp_path / "dhcpd.leases", fsync=False)
        journal.load()
        server = DhcpServer(parse_text(conf), interfaces={"eth0": iface.addrs})
        writes: list[list[str]] = []
        endpoint = DhcpEndpoint(server, journal, [], emit=writes.append)
        endpoint.start(asyncio.get_running_loop())
        port = _Port(iface, _SentSocket(tmp_path / "dhcpd.leases"))  # type: ignore[arg-type]
        relay = ("10.0.0.254", 67)
        for i in range(3):
            mac = bytes([2, 0, 0, 0, 0, 10 + i])
            endpoint.process_batch(port, [(_relayed(1, mac, {}), True, relay)])
        assert len(writes) == 1  # the first batch at once; the next two wait
        await asyncio.sleep(dhcp_socket.LOG_MIN_INTERVAL * 5)
        endpoint.close()
        return writes

    writes = asyncio.run(scenario())
    assert [len(w) for w in writes] == [2, 4]  # DISCOVER + OFFER lines per batch
    assert all(line.startswith(("DHCPDISCOVER", "DHCPOFFER")) for w in writes for line in w)
