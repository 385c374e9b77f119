"""Host names in ``failover peer`` blocks, resolved by ``config.load`` through a resolver.

Pure: every test passes its own resolver, so nothing here asks DNS or /etc/hosts (except the
two that check the default resolver on "localhost", which every machine resolves).
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from tandem.config import ConfigError, load, parse_text
from tandem.config.model import HostRef, Location
from tandem.config.resolve import Unresolved, system_resolver

PAIR = """failover peer "pair" {
  primary;
  address dhcp01.example.net;
  peer address dhcp02;
  mclt 600;
  split 128;
}
subnet 10.13.0.0 netmask 255.255.255.0 {
  pool { failover peer "pair"; range 10.13.0.10 10.13.0.20; }
}
"""

NAMES = {
    "dhcp01.example.net": [IPv4Address("10.13.0.2")],
    "dhcp02": [IPv4Address("10.13.0.3")],
}


class FakeResolver:
    """A table of names; records what was asked."""

    def __init__(self, table: dict[str, list[IPv4Address]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def __call__(self, name: str) -> Sequence[IPv4Address]:
        self.asked.append(name)
        if name not in self.table:
            raise Unresolved("Name or service not known")
        return self.table[name]


def test_host_names_resolve_into_the_peer_addresses() -> None:
    resolver = FakeResolver(NAMES)
    cfg = parse_text(PAIR, "pair.conf", resolver=resolver)
    (peer,) = cfg.failover_peers
    assert peer.address == IPv4Address("10.13.0.2")
    assert peer.peer_address == IPv4Address("10.13.0.3")
    # The names are kept, with where they were written.
    assert peer.address_name == HostRef("dhcp01.example.net", Location("pair.conf", 3, 12))
    assert peer.peer_address_name == HostRef("dhcp02", Location("pair.conf", 4, 17))
    assert sorted(resolver.asked) == ["dhcp01.example.net", "dhcp02"]


def test_addresses_need_no_resolver() -> None:
    text = PAIR.replace("dhcp01.example.net", "10.13.0.2").replace("dhcp02", "10.13.0.3")
    resolver = FakeResolver({})
    (peer,) = parse_text(text, resolver=resolver).failover_peers
    assert resolver.asked == []
    assert (peer.address, peer.peer_address) == (IPv4Address("10.13.0.2"), IPv4Address("10.13.0.3"))
    assert peer.address_name is None and peer.peer_address_name is None


def test_unresolvable_name_is_an_error_at_the_name() -> None:
    resolver = FakeResolver({"dhcp01.example.net": [IPv4Address("10.13.0.2")]})
    with pytest.raises(ConfigError) as info:
        parse_text(PAIR, "pair.conf", resolver=resolver)
    err = info.value
    assert (err.loc.file, err.loc.line, err.loc.col) == ("pair.conf", 4, 17)
    message = err.diagnostics[0].message
    assert "failover peer pair: peer address dhcp02 does not resolve" in message
    assert "Name or service not known" in message
    assert "/etc/hosts" in message and "IPv4 address" in message  # what to do


def test_a_name_without_ipv4_addresses_is_an_error() -> None:
    resolver = FakeResolver({**NAMES, "dhcp01.example.net": []})
    with pytest.raises(ConfigError) as info:
        parse_text(PAIR, "pair.conf", resolver=resolver)
    assert (info.value.loc.line, info.value.loc.col) == (3, 12)
    assert "address dhcp01.example.net does not resolve (it has no IPv4 address)" in str(info.value)


def test_several_addresses_take_the_first_as_dhcpd_and_warn() -> None:
    two = [IPv4Address("10.13.0.3"), IPv4Address("10.13.0.4")]
    cfg = parse_text(PAIR, "pair.conf", resolver=FakeResolver({**NAMES, "dhcp02": two}))
    assert cfg.failover_peers[0].peer_address == IPv4Address("10.13.0.3")
    (warning,) = [w for w in cfg.warnings if "several addresses" in w.message]
    assert (warning.loc.line, warning.loc.col) == (4, 17)
    assert "uses the first, 10.13.0.3" in warning.message and "10.13.0.4" in warning.message


def test_load_passes_its_resolver(tmp_path: Path) -> None:
    path = tmp_path / "pair.conf"
    path.write_text(PAIR)
    resolver = FakeResolver(NAMES)
    cfg = load(str(path), resolver=resolver)
    assert cfg.failover_peers[0].peer_address == IPv4Address("10.13.0.3")
    assert resolver.asked


def test_numeric_looking_name_is_a_name() -> None:
    """dhcpd's lookahead: a lone number is a host name, not an address."""
    text = PAIR.replace("peer address dhcp02;", "peer address 7;")
    resolver = FakeResolver({**NAMES, "7": [IPv4Address("10.13.0.7")]})
    (peer,) = parse_text(text, resolver=resolver).failover_peers
    assert peer.peer_address == IPv4Address("10.13.0.7")
    assert peer.peer_address_name is not None and peer.peer_address_name.name == "7"


def test_default_resolver_is_the_system_one() -> None:
    assert system_resolver("localhost") == [IPv4Address("127.0.0.1")]
    text = PAIR.replace("dhcp01.example.net", "localhost").replace("dhcp02", "localhost")
    (peer,) = parse_text(text).failover_peers
    assert peer.address == peer.peer_address == IPv4Address("127.0.0.1")


def test_system_resolver_reports_why() -> None:
    with pytest.raises(Unresolved) as info:
        system_resolver("no-such-host.invalid")  # RFC 6761: never resolves
    assert str(info.value)
