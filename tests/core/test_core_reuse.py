"""dhcp-cache-threshold: dhcpd's reuse_lease (server/dhcp.c), as core.reuse follows it.

tests/lab/test_departures.py holds the same to a running dhcpd (same packets, same replies,
the same lease-file records and dhcpd's log line).
"""

from __future__ import annotations

from corekit import SEED_BLOCK, FakeClient, Param, config, mac, subnet

from tandem.core.server import DhcpServer, Outcome

T0 = 1_000_000
SID = "192.0.2.1"


def _server(*params: Param) -> DhcpServer:
    block = (*SEED_BLOCK, Param("default-lease-time", 600), *params)
    return DhcpServer(config(subnet(block=block)))


def _time(out: Outcome) -> int:
    assert out.reply is not None, out.log
    return int.from_bytes(out.reply.packet.options[51], "big")


def _bound(srv: DhcpServer, **kw: object) -> tuple[FakeClient, str]:
    c = FakeClient(srv, mac(1))
    ack = c.dora(T0, **kw)
    assert ack.writes and _time(ack) == 600
    return c, str(c.address)


def test_a_young_lease_is_acked_unaltered_with_dhcpds_line_and_nothing_written() -> None:
    srv = _server()
    c, addr = _bound(srv)
    lease = srv.db.by_addr[int(c.address)]  # type: ignore[arg-type]
    before = (lease.starts, lease.ends, lease.cltt)
    again = c.send(3, T0 + 150, requested=addr)  # 150 = 25 % of 600: still under
    assert _time(again) == 450 and again.writes == []
    assert (lease.starts, lease.ends, lease.cltt) == before
    assert again.log == [
        "reuse_lease: lease age 150 (secs) under 25% threshold, reply with unaltered, "
        f"existing lease for {addr}",
        f"DHCPREQUEST for {addr} from 52:54:00:00:00:01 via eth0",
        f"DHCPACK on {addr} to 52:54:00:00:00:01 via eth0",
    ]


def test_an_older_lease_is_renewed() -> None:
    srv = _server()
    c, addr = _bound(srv)
    late = c.send(3, T0 + 151, requested=addr)
    assert _time(late) == 600 and len(late.writes) == 1
    assert not any(line.startswith("reuse_lease") for line in late.log)


def test_a_discover_is_offered_the_rest_and_its_request_reuses_too() -> None:
    srv = _server()
    c, addr = _bound(srv)
    off = c.send(1, T0 + 10)
    assert _time(off) == 590 and off.log[0].startswith("reuse_lease: lease age 10 ")
    assert off.log[1].startswith("DHCPDISCOVER from ")
    ack = c.send(3, T0 + 11, requested=addr, server_id=SID)
    assert _time(ack) == 589 and ack.writes == []


def test_after_a_discover_that_could_not_reuse_the_request_does_not_either() -> None:
    """dhcpd updated the lease for that OFFER (cannot_reuse): the REQUEST renews."""
    srv = _server()
    c, addr = _bound(srv, extra={12: b"alpha"})
    off = c.send(1, T0 + 10, extra={12: b"beta"})  # a new host name: no reuse
    assert _time(off) == 600
    ack = c.send(3, T0 + 11, requested=addr, server_id=SID, extra={12: b"beta"})
    assert _time(ack) == 600 and len(ack.writes) == 1
    # the flag lasts one answer: now the lease is young and the name the same
    again = c.send(3, T0 + 12, requested=addr, extra={12: b"beta"})
    assert _time(again) == 599 and again.writes == []


def test_a_changed_or_nul_terminated_host_name_renews() -> None:
    srv = _server()
    c, addr = _bound(srv, extra={12: b"alpha"})
    same = c.send(3, T0 + 5, requested=addr, extra={12: b"alpha"})
    assert same.writes == []
    nul = c.send(3, T0 + 6, requested=addr, extra={12: b"alpha\x00"})
    assert len(nul.writes) == 1  # dhcpd compares strlen with the option's length


def test_threshold_zero_turns_reuse_off_and_100_or_more_keeps_the_default() -> None:
    srv = _server(Param("dhcp-cache-threshold", 0))
    c, addr = _bound(srv)
    assert _time(c.send(3, T0 + 1, requested=addr)) == 600
    srv = _server(Param("dhcp-cache-threshold", 150))
    c, addr = _bound(srv)
    assert _time(c.send(3, T0 + 150, requested=addr)) == 450
    srv = _server(Param("dhcp-cache-threshold", 50))
    c, addr = _bound(srv)
    assert _time(c.send(3, T0 + 300, requested=addr)) == 300


def test_another_client_identifier_is_not_the_same_client() -> None:
    srv = _server()
    c = FakeClient(srv, mac(1), client_id=b"\x01one")
    c.dora(T0)
    addr = str(c.address)
    c.client_id = b"\x01two"
    out = c.send(3, T0 + 5, requested=addr)
    assert not any(line.startswith("reuse_lease") for line in out.log)
