"""The core driven from dhcpd.conf text (tandem.config.parse_text), seed subnet verbatim."""

from __future__ import annotations

from corekit import A, FakeClient, mac

from tandem.config import parse_text
from tandem.config.seed import SEED_SUBNET
from tandem.core.server import DhcpServer

T0 = 1_000_000

# The seed blog post's subnet, verbatim (including the 255.255.255.00 typo), without failover.
SEED = SEED_SUBNET


def test_seed_subnet_offer_matches_dhcpd_capture() -> None:
    """Same options, same order as dhcpd 4.4.3's OFFER in vectors/isc-dhcpd-pair (frame 2)."""
    srv = DhcpServer(parse_text(SEED), default_t1_t2=False)
    # dhclient's parameter request list in that capture: 1, 28, 2, 3, 42
    off = FakeClient(srv, mac(0x101)).send(1, T0, prl=bytes([1, 28, 2, 3, 42]))
    assert off.reply is not None
    opts = off.reply.packet.options
    assert list(opts) == [53, 54, 51, 1, 28, 2, 3, 42]
    assert opts[1] == bytes([255, 255, 255, 0])
    assert opts[28] == A("192.0.2.255").packed
    assert opts[2] == (2).to_bytes(4, "big")
    assert opts[3] == A("192.0.2.5").packed and opts[42] == A("192.0.2.6").packed
    assert opts[51] == (43200).to_bytes(4, "big")  # not authoritative, no failover: default
    assert A("192.0.2.100") <= off.reply.packet.yiaddr <= A("192.0.2.200")


def test_text_config_with_hosts_classes_and_relay() -> None:
    cfg = parse_text(
        """
        authoritative;
        default-lease-time 600;
        max-lease-time 7200;
        use-host-decl-names on;
        class "voip" { match if substring(option vendor-class-identifier, 0, 4) = "VOIP"; }
        subnet 192.0.2.0 netmask 255.255.255.0 {
          option routers 192.0.2.5;
          pool { allow members of "voip"; range 192.0.2.10 192.0.2.19; }
          pool { deny members of "voip"; range 192.0.2.100 192.0.2.200; }
        }
        subnet 10.9.0.0 netmask 255.255.255.0 {
          range 10.9.0.10 10.9.0.20;
          if exists agent.circuit-id { option domain-name "relayed.example"; }
        }
        host printer { hardware ethernet 52:54:00:00:00:05; fixed-address 192.0.2.9; }
        """
    )
    srv = DhcpServer(cfg)
    phone = FakeClient(srv, mac(1)).send(1, T0, extra={60: b"VOIP-1"})
    assert phone.reply is not None and phone.reply.packet.yiaddr <= A("192.0.2.19")
    assert phone.reply.packet.options[51] == (600).to_bytes(4, "big")
    printer = FakeClient(srv, mac(5)).send(1, T0, prl=bytes([12]))
    assert printer.reply is not None and printer.reply.packet.yiaddr == A("192.0.2.9")
    assert printer.reply.packet.options[12] == b"printer"
    relayed = FakeClient(srv, mac(2)).send(
        1, T0, giaddr="10.9.0.1", extra={82: b"\x01\x02ab"}, prl=bytes([15])
    )
    assert relayed.reply is not None and relayed.reply.dest_ip == A("10.9.0.1")
    assert relayed.reply.packet.options[15] == b"relayed.example"
    assert relayed.reply.packet.options[82] == b"\x01\x02ab"
    wrong = FakeClient(srv, mac(3)).send(3, T0, requested="10.9.0.15")
    assert wrong.reply is not None and wrong.reply.packet.options[53] == b"\x06"
