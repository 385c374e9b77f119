"""One file on both peers (config/sides.py): which side a host takes, the mirror, the export."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from tandem.config import ConfigError, load, parse_text
from tandem.config.model import FailoverPeer
from tandem.config.sides import choose_side, choose_sides, mirror, partner_block, partner_text
from tandem.io.netif import Interface, local_addresses

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SEED_PRIMARY = CONFIGS / "seed-primary.conf"
SEED_SECONDARY = CONFIGS / "seed-secondary.conf"
P, S = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")


def _peer(path: Path = SEED_PRIMARY) -> FailoverPeer:
    return load(str(path)).failover_peers[0]


def test_mirror_of_the_seed_primary_is_the_seed_secondary_plus_the_primary_numbers() -> None:
    written, secondary = _peer(), _peer(SEED_SECONDARY)
    m = mirror(written)
    assert (m.role, m.address, m.port, m.peer_address, m.peer_port) == (
        "secondary",
        S,
        520,
        P,
        519,
    )
    # Everything the seed's secondary file says, the mirror says too.
    for field in (
        "role",
        "address",
        "peer_address",
        "port",
        "peer_port",
        "max_response_delay",
        "max_unacked_updates",
        "load_balance_max_seconds",
        "max_lease_misbalance",
        "max_lease_ownership",
        "min_balance",
        "max_balance",
        "auto_partner_down",
    ):
        assert getattr(m, field) == getattr(secondary, field), field
    # The primary-only parameters stay the primary's (what CONNECT will tell the secondary).
    assert (m.mclt, m.split, m.hba) == (3600, 256, None)
    assert mirror(m).role == "primary" and mirror(m).address == P  # an involution
    assert mirror(m) == written


def test_host_names_swap_with_their_addresses() -> None:
    text = SEED_PRIMARY.read_text().replace("peer address 192.0.2.2;", "peer address srv2;")
    peer = parse_text(text, "names.conf", resolver=lambda name: [S]).failover_peers[0]
    m = mirror(peer)
    assert m.address == S and m.address_name is not None and m.address_name.name == "srv2"
    assert m.peer_address == P and m.peer_address_name is None
    assert "        address srv2;\n" in partner_block(peer)


def test_the_side_follows_the_local_addresses() -> None:
    peer = _peer()
    primary = choose_side(peer, {P, IPv4Address("127.0.0.1")})
    assert primary.peer is peer and not primary.mirrored
    assert primary.describe() == (
        'failover peer "failover-example": this host is the primary '
        "(its address 192.0.2.1 is the block's address)"
    )
    secondary = choose_side(peer, {S})
    assert secondary.mirrored and secondary.peer == mirror(peer)
    assert secondary.describe() == (
        'failover peer "failover-example": this host is the secondary '
        "(its address 192.0.2.2 is the block's peer address)"
    )


@pytest.mark.parametrize(
    ("local", "words"),
    [
        (set(), "neither its address 192.0.2.1 nor its peer address 192.0.2.2"),
        ({P, S}, "both its address 192.0.2.1 and its peer address 192.0.2.2"),
    ],
    ids=["neither", "both"],
)
def test_neither_or_both_local_is_an_error_at_the_block(
    local: set[IPv4Address], words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        choose_side(_peer(), local)
    text = str(err.value)
    assert text.startswith(f"{SEED_PRIMARY}:3:1: error: "), text
    assert words in text and "--failover-role primary|secondary" in text


@pytest.mark.parametrize("local", [set(), {P, S}, {P}, {S}], ids=["none", "both", "p", "s"])
def test_failover_role_decides(local: set[IPv4Address]) -> None:
    peer = _peer()
    assert choose_side(peer, local, "primary").peer is peer
    assert choose_side(peer, local, "secondary").peer == mirror(peer)
    assert "--failover-role secondary" in choose_side(peer, local, "secondary").describe()


def test_choose_sides_replaces_only_mirrored_peers() -> None:
    config = load(str(SEED_PRIMARY))
    same, sides = choose_sides(config, {P})
    assert same is config and len(sides) == 1
    other, sides = choose_sides(config, {S})
    assert other.failover_peers == (mirror(config.failover_peers[0]),)
    assert other.subnets == config.subnets and sides[0].mirrored


def test_a_secondary_block_cannot_make_a_primary() -> None:
    peer = _peer(SEED_SECONDARY)
    assert choose_side(peer, {S}).peer is peer  # as written: fine
    with pytest.raises(ConfigError, match=r"written for the secondary.*mclt and split"):
        choose_side(peer, {P})


def test_no_address_given() -> None:
    text = SEED_PRIMARY.read_text().replace("        address 192.0.2.1;\n", "")
    peer = parse_text(text, "noaddr.conf").failover_peers[0]
    assert not choose_side(peer, set()).mirrored  # dhcpd's "any address": as written
    with pytest.raises(ConfigError, match=r"no address and its peer address 192\.0\.2\.2"):
        choose_side(peer, {S})


def test_local_addresses_count_loopback_prefixes() -> None:
    ifaces = {
        "lo": Interface("lo", 1, b"", (IPv4Interface("127.0.0.1/8"),)),
        "eth0": Interface("eth0", 2, b"\x02" * 6, (IPv4Interface("192.0.2.2/24"),)),
    }
    local = local_addresses(ifaces)
    assert S in local and IPv4Address("127.0.0.2") in local
    assert P not in local and IPv4Address("192.0.2.3") not in local


# --- the export ------------------------------------------------------------------------------


def test_export_of_the_seed_primary_is_the_seed_secondary() -> None:
    """The seed's two files differ only in the comment on top and the peer block."""
    text = SEED_PRIMARY.read_bytes().decode("latin-1")
    out = partner_text(text, str(SEED_PRIMARY), load(str(SEED_PRIMARY)).failover_peers)
    secondary = SEED_SECONDARY.read_text()
    assert out.split("\n", 2)[2] == secondary.split("\n", 1)[1]
    assert "mclt" not in out and "split" not in out


def test_export_changes_only_the_block(tmp_path: Path) -> None:
    """Odd spacing, tabs, CRLF, comments and a second block: bytes outside the spans stay."""
    head = "# top \u00e9\r\nauthoritative;\r\n"
    block = (
        'failover peer "a" {\r\n\tprimary; address 10.0.0.1;\r\n\tpeer address 10.0.0.2;\r\n'
        "\tmclt 600; hba ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:"
        "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00;\r\n\tmax-balance 7200;\r\n}"
    )
    tail = (
        '\r\n# after\r\nsubnet 10.0.0.0 netmask 255.0.0.0 {\r\n  pool {  failover peer "a";'
        "\r\n    range 10.0.0.10 10.0.0.20;\r\n  }\r\n}\r\n"
    )
    path = tmp_path / "odd.conf"
    path.write_bytes((head + block + tail).encode("latin-1"))
    text = path.read_bytes().decode("latin-1")
    peer = load(str(path)).failover_peers[0]
    assert text[peer.span[0] : peer.span[1]] == block
    out = partner_text(text, str(path), [peer])
    assert out.startswith(head) and out.endswith(tail)
    new_block = out[len(head) : len(out) - len(tail)]
    assert new_block == (
        'failover peer "a" {\r\n\tsecondary;\r\n\taddress 10.0.0.2;\r\n\tport 647;\r\n'
        "\tpeer address 10.0.0.1;\r\n\tpeer port 647;\r\n\tmax-response-delay 20;\r\n"
        "\tmax-unacked-updates 100;\r\n\tmax-balance 7200;\r\n}"
    )
    # Read back, the exported block is the mirror without the primary-only numbers.
    partner = tmp_path / "partner.conf"
    partner.write_bytes(out.encode("latin-1"))
    back = load(str(partner)).failover_peers[0]
    expected = dataclasses.replace(
        mirror(peer), mclt=None, split=None, hba=None, loc=back.loc, span=back.span
    )
    assert back == expected


def test_export_refuses_a_changed_file() -> None:
    peer = _peer()
    with pytest.raises(ConfigError, match="changed while it was read"):
        partner_text("x" * 400, str(SEED_PRIMARY), [peer])


def _dhcpd() -> str:
    found = shutil.which("dhcpd") or "/usr/sbin/dhcpd"
    assert Path(found).exists(), "ISC dhcpd is needed (Debian isc-dhcp-server)"
    return found


@pytest.mark.parametrize(
    "name", ["seed-primary.conf", "reference-pair-primary.conf", "campus-failover-primary.conf"]
)
def test_dhcpd_accepts_the_export(tmp_path: Path, name: str) -> None:
    source = CONFIGS / name
    config = load(str(source))
    out = partner_text(source.read_bytes().decode("latin-1"), str(source), config.failover_peers)
    conf = tmp_path / "partner.conf"
    conf.write_bytes(out.encode("latin-1"))
    res = subprocess.run(
        [_dhcpd(), "-4", "-t", "-cf", str(conf), "-pf", "/dev/null"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=CONFIGS,  # includes, if any, are relative to it
    )
    assert res.returncode == 0, res.stderr
    assert all(p.role == "secondary" for p in load(str(conf)).failover_peers)
