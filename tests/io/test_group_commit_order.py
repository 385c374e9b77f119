"""Actions queued behind the journal run in the order they were queued, even when an action
queues another while its group runs (the failover link relies on it: a reordered send looked
like a failed commit and dropped the link under load)."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address
from pathlib import Path

from tandem.config import parse_text
from tandem.core.lease import BindingState, Lease
from tandem.core.server import DhcpServer
from tandem.io.dhcp_socket import DhcpEndpoint
from tandem.store.journal import LeaseJournal


def test_actions_never_overtake_their_group(tmp_path: Path) -> None:
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
