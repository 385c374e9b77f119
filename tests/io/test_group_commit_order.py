"""Actions queued behind the journal run in the order they were queued, even when an action
queues another while its group runs (the failover link relies on it: a reordered send looked
like a failed commit and dropped the link under load)."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from tandem.config import parse_text
from tandem.core.lease import BindingState, Lease
from tandem.core.server import DhcpServer
from tandem.io import dhcp_socket
from tandem.io.dhcp_socket import DhcpEndpoint
from tandem.store.journal import LeaseJournal


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
