"""core.allocator on its own: ``find`` names why a requested address cannot be given."""

from __future__ import annotations

from corekit import META, A, FakeClient, config, mac, packet

from tandem.core import codes
from tandem.core.allocator import Found
from tandem.core.client import Client
from tandem.core.server import DhcpServer


def _client(srv: DhcpServer, hw: bytes, mtype: int, now: int) -> Client:
    p = packet(mtype, hw)
    c = Client(p, META, now, mtype, (1, hw), None, META.interface)
    srv.ctx.identify(c)
    return c


def _bound(srv: DhcpServer, hw: bytes) -> A:
    fc = FakeClient(srv, hw)
    offer = fc.send(codes.DHCPDISCOVER, 10)
    assert offer.reply is not None
    yiaddr = offer.reply.packet.yiaddr
    ack = fc.send(codes.DHCPREQUEST, 11, requested=str(yiaddr), server_id="192.0.2.1")
    assert ack.reply is not None and ack.reply.packet.yiaddr == yiaddr
    return yiaddr


def test_find_someone_elses_active_address_is_ours_to_nak() -> None:
    srv = DhcpServer(config())
    taken = _bound(srv, mac(1))
    other = _client(srv, mac(2), codes.DHCPREQUEST, 12)
    share = srv.topo.subnet_of(taken).share  # type: ignore[union-attr]
    found = srv.alloc.find(other, share, taken)
    assert found == Found(None, True, "requested address not available")


def test_find_off_network_request_names_the_bad_subnet() -> None:
    cfg = config()
    srv = DhcpServer(cfg)
    taken = _bound(srv, mac(1))
    c = _client(srv, mac(1), codes.DHCPREQUEST, 12)
    share = srv.topo.subnet_of(taken).share  # type: ignore[union-attr]
    assert srv.alloc.find(c, share, taken).candidate is not None  # its own lease
    outside = A("198.51.100.7")
    found = srv.alloc.find(c, share, outside)
    assert found.candidate is None and not found.ours  # not an address we manage


def test_allocate_gives_a_fresh_address_and_find_returns_it_once_held() -> None:
    srv = DhcpServer(config())
    c = _client(srv, mac(3), codes.DHCPDISCOVER, 5)
    share = srv.topo.shares[0]
    cand = srv.alloc.allocate(c, share)
    assert cand is not None and cand.lease is None and not cand.static
    srv.db.hold(cand.address, c.hw, c.uid, 5)
    again = srv.alloc.find(c, share, None)
    assert again.candidate is not None and again.candidate.address == cand.address
