"""``option agent.agent-id`` in a class reads relay agent sub-option 3, as dhcpd does.

dhcpd's server/stables.c names agent sub-option 3 "agent-id" and 4 "DOCSIS-device-class".
core once kept its own name table that put agent-id at 4, so this class matched the wrong
sub-option; now the core takes names from tandem.wire.options.
"""

from __future__ import annotations

from corekit import A, FakeClient, mac

from tandem.config import parse_text
from tandem.core.server import DhcpServer

T0 = 1_000_000

CONF = """
authoritative;
class "relay-7" {
  match if option agent.agent-id = "sw-7";
  option domain-name "relay-7.example";
}
subnet 10.9.0.0 netmask 255.255.255.0 {
  option routers 10.9.0.1;
  pool { allow members of "relay-7"; range 10.9.0.10 10.9.0.19; }
  pool { deny members of "relay-7"; range 10.9.0.100 10.9.0.200; }
}
"""


def _discover(n: int, agent_info: bytes) -> tuple[A, dict[int, bytes]]:
    srv = DhcpServer(parse_text(CONF))
    off = FakeClient(srv, mac(n)).send(
        1, T0, giaddr="10.9.0.1", extra={82: agent_info}, prl=bytes([1, 3, 15])
    )
    assert off.reply is not None
    assert off.reply.packet.options[53] == b"\x02"  # DHCPOFFER
    return off.reply.packet.yiaddr, off.reply.packet.options


def test_agent_id_in_sub_option_3_matches_the_class() -> None:
    yiaddr, opts = _discover(1, b"\x01\x03ge1" + b"\x03\x04sw-7")
    assert A("10.9.0.10") <= yiaddr <= A("10.9.0.19")
    assert opts[15] == b"relay-7.example"


def test_sub_option_4_is_not_agent_id() -> None:
    # the same bytes as DOCSIS-device-class (sub-option 4): not a member
    yiaddr, opts = _discover(2, b"\x01\x03ge1" + b"\x04\x04sw-7")
    assert A("10.9.0.100") <= yiaddr <= A("10.9.0.200")
    assert 15 not in opts


def test_other_agent_id_does_not_match() -> None:
    yiaddr, opts = _discover(3, b"\x03\x04sw-8")
    assert A("10.9.0.100") <= yiaddr <= A("10.9.0.200")
    assert 15 not in opts
