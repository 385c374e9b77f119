"""Statements and declarations -> the frozen model."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from tandem.config import ConfigError, load, parse_text
from tandem.config.model import (
    Conditional,
    Config,
    OptionSet,
    Param,
    Permit,
    Statement,
    Unimplemented,
)

SEEDS = Path(__file__).resolve().parent.parent / "configs"


def params(stmts: tuple[Statement, ...]) -> dict[str, object]:
    return {s.name: s.value for s in stmts if isinstance(s, Param)}


def options(stmts: tuple[Statement, ...]) -> dict[str, bytes | None]:
    return {s.name: s.data for s in stmts if isinstance(s, OptionSet)}


def test_seed_primary_verbatim() -> None:
    cfg = load(str(SEEDS / "seed-primary.conf"))
    (peer,) = cfg.failover_peers
    assert peer.name == "failover-example"
    assert peer.role == "primary"
    assert (peer.address, peer.port) == (IPv4Address("192.0.2.1"), 519)
    assert (peer.peer_address, peer.peer_port) == (IPv4Address("192.0.2.2"), 520)
    assert (peer.max_response_delay, peer.max_unacked_updates) == (60, 10)
    assert (peer.mclt, peer.split, peer.hba) == (3600, 256, None)
    assert peer.load_balance_max_seconds == 3
    (subnet,) = cfg.subnets
    assert subnet.network == IPv4Network("192.0.2.0/24")
    (pool,) = subnet.pools  # the commented-out range is not a pool
    assert pool.failover_peer == "failover-example"
    assert [(r.low, r.high) for r in pool.ranges] == [
        (IPv4Address("192.0.2.100"), IPv4Address("192.0.2.200"))
    ]
    opts = options(subnet.chain[-1])
    assert opts["subnet-mask"] == bytes.fromhex("ffffff00")  # "255.255.255.00", as dhcpd
    assert opts["routers"] == bytes.fromhex("c0000205")
    assert opts["ntp-servers"] == bytes.fromhex("c0000206")
    assert opts["time-offset"] == bytes.fromhex("00000002")
    assert opts["broadcast-address"] == bytes.fromhex("c00002ff")
    assert pool.chain == (subnet.chain[-1], pool.chain[-1])
    assert cfg.warnings == ()


def test_seed_secondary_defaults() -> None:
    cfg = load(str(SEEDS / "seed-secondary.conf"))
    (peer,) = cfg.failover_peers
    assert peer.role == "secondary"
    assert (peer.mclt, peer.split, peer.hba) == (None, None, None)
    # dhcpd's defaults for what the file leaves out
    assert (peer.max_lease_misbalance, peer.max_lease_ownership) == (15, 10)
    assert (peer.min_balance, peer.max_balance, peer.auto_partner_down) == (60, 3600, 0)


def test_failover_defaults_and_hba() -> None:
    hba = ":".join(["f0"] * 32)
    cfg = parse_text(
        f'failover peer "p" {{ primary; peer address 10.0.0.2; mclt 60; hba {hba}; }}\n'
        'subnet 10.0.0.0 netmask 255.255.255.0 { pool { failover peer "p"; '
        "range 10.0.0.5 10.0.0.9; } }"
    )
    (peer,) = cfg.failover_peers
    assert peer.hba == bytes([0xF0] * 32) and peer.split is None
    assert (peer.port, peer.peer_port) == (647, 647)
    assert (peer.max_response_delay, peer.max_unacked_updates) == (20, 100)
    assert peer.address == IPv4Address("0.0.0.0")
    assert peer.load_balance_max_seconds == 0
    assert any("load balancing is disabled" in w.message for w in cfg.warnings)


def test_global_parameters() -> None:
    cfg = load(str(SEEDS / "global-params.conf"))
    p = params(cfg.statements)
    assert p["authoritative"] is True
    assert p["ddns-update-style"] == "none"
    assert p["ddns-updates"] is False
    assert p["log-facility"] == "local6"
    assert p["server-identifier"] == IPv4Address("10.70.0.2")
    assert p["next-server"] == IPv4Address("10.70.0.5")
    assert p["filename"] == "pxelinux.0"
    assert p["ping-check"] is True and p["ping-timeout"] == 2
    assert p["unknown-clients"] == "allow"  # boot-unknown-clients true, allow unknown-clients
    assert (p["duplicates"], p["client-updates"], p["bootp"]) == ("deny", "ignore", "deny")
    assert p["max-lease-time"] == 0xFFFFFFFF  # infinite
    assert p["delayed-ack"] == 28 and p["max-ack-delay"] == 250000
    assert p["min-secs"] == 2
    assert p["local-port"] == 67 and p["omapi-port"] == 7911
    (subnet,) = cfg.subnets
    assert params(subnet.chain[-1]) == {"authoritative": False}


def test_shared_network_chains_and_pools() -> None:
    cfg = load(str(SEEDS / "campus-failover-primary.conf"))
    (shared,) = cfg.shared_networks
    assert shared.name == "campus"
    assert [s.network for s in shared.subnets] == [
        IPv4Network("10.20.0.0/24"),
        IPv4Network("10.20.8.0/21"),
    ]
    second = shared.subnets[1]
    assert second.shared_network == "campus"
    assert second.chain[0] is shared.chain[0]  # shared-network block first, then the subnet
    assert options(shared.chain[0])["domain-name"] == b"campus.example.org"
    voip, rest = second.pools
    assert voip.permits == (Permit(True, "members", "voip", loc=voip.permits[0].loc),)
    assert rest.permits[0].allow is False
    assert options(voip.chain[-1])["tftp-server-name"] == b"10.20.0.69"
    assert voip.chain[:-1] == second.chain
    (peer,) = cfg.failover_peers
    assert peer.hba == bytes([0xFF] * 16 + [0] * 16)
    assert (peer.auto_partner_down, peer.min_balance, peer.max_balance) == (3600, 120, 7200)
    (cls,) = cfg.classes
    assert cls.name == "voip" and cls.match_if is not None and cls.match_if.op == "or"


def test_pool_in_shared_network_inherits_peer_and_no_failover() -> None:
    cfg = parse_text(
        'failover peer "p" { primary; peer address 10.0.0.2; mclt 60; split 128; }\n'
        'shared-network s { failover peer "p";\n'
        "  subnet 10.0.0.0 netmask 255.255.255.0 { }\n"
        '  pool { failover peer "p"; range 10.0.0.10 10.0.0.20; }\n'
        "  pool { no failover peer; range 10.0.0.30 10.0.0.40; }\n"
        "  pool { range 10.0.0.50 10.0.0.60; }\n"
        "}"
    )
    pools = cfg.shared_networks[0].pools
    assert [p.failover_peer for p in pools] == ["p", None, "p"]


def test_ranges_written_in_subnet_form_implicit_pools() -> None:
    cfg = load(str(SEEDS / "bootp-dynamic.conf"))
    (subnet,) = cfg.subnets
    plain, bootp = subnet.pools
    assert [r.low for r in plain.ranges] == [
        IPv4Address("192.168.40.100"),
        IPv4Address("192.168.40.250"),
    ]
    assert plain.ranges[1].high == IPv4Address("192.168.40.250")  # single-address range
    assert bootp.ranges[0].dynamic_bootp
    # dhcpd's implicit pools: plain ranges deny dynamic BOOTP, dynamic-bootp ones allow all
    assert [(p.allow, p.kind) for p in plain.permits] == [(False, "dynamic-bootp-clients")]
    assert [(p.allow, p.kind) for p in bootp.permits] == [(True, "all-clients")]
    assert plain.chain == subnet.chain
    assert params(cfg.statements)["dynamic-bootp-lease-cutoff"] == 0xFFFFFFFF


def test_permits() -> None:
    cfg = load(str(SEEDS / "permits.conf"))
    kinds = [[(p.allow, p.kind) for p in pool.permits] for pool in cfg.subnets[0].pools]
    assert kinds == [
        [(True, "known-clients")],
        [(True, "unknown-clients"), (False, "members")],
        [(True, "members"), (True, "known-clients")],
        [(False, "dynamic-bootp-clients"), (True, "after")],
        [
            (True, "all-clients"),
            (False, "unknown-clients"),
            (True, "authenticated-clients"),
            (False, "unauthenticated-clients"),
        ],
    ]
    assert cfg.subnets[0].pools[3].permits[1].after == 1924992000  # 2031-01-01 UTC


def test_hosts() -> None:
    cfg = load(str(SEEDS / "client-ids.conf"))
    hosts = {h.name: h for h in cfg.hosts}
    assert hosts["by-uid-hex"].client_id == bytes.fromhex("01005056112233")
    assert hosts["by-uid-string"].client_id == b"client-0042"
    assert hosts["by-option"].client_id == b"router-7"
    assert hosts["by-option"].fixed_addresses == (
        IPv4Address("10.140.0.12"),
        IPv4Address("10.140.0.13"),
    )
    assert hosts["tr"].hardware == (6, bytes.fromhex("00a0c9123456"))
    assert hosts["ib"].hardware is not None and hosts["ib"].hardware[0] == 32
    assert hosts["bare-name.example.com"].hardware == (1, bytes.fromhex("005056000099"))


def test_fixed_address_host_names_are_kept_with_a_warning() -> None:
    cfg = parse_text("host a { fixed-address printer.example.com, 10.0.0.7; }")
    (host,) = cfg.hosts
    assert host.fixed_addresses == (IPv4Address("10.0.0.7"),)
    assert host.fixed_hostnames == ("printer.example.com",)
    assert any("printer.example.com" in w.message for w in cfg.warnings)


def test_groups_are_in_chains_where_they_stand() -> None:
    cfg = load(str(SEEDS / "groups.conf"))
    build = next(h for h in cfg.hosts if h.name == "build-01")
    assert len(build.chain) == 3  # outer group, inner group, the host
    assert options(build.chain[0])["domain-name"] == b"eng.example.com"
    assert params(build.chain[1]) == {"filename": "eng/pxelinux.0"}
    (subnet,) = cfg.subnets
    assert subnet.chain[0] is build.chain[0]


def test_classes_and_subclasses() -> None:
    cfg = load(str(SEEDS / "hardware-subclass.conf"))
    printers = cfg.classes[0]
    assert printers.match is not None and printers.match.op == "hardware"
    keys = [s.key for s in printers.subclasses]
    assert keys[0] == bytes.fromhex("01001ba9112233")
    assert options(printers.subclasses[2].chain[-1])["host-name"] == b"floor3-color"
    assert printers.subclasses[2].chain[0] is printers.chain[0]

    cfg = load(str(SEEDS / "option82-circuit.conf"))
    port = cfg.classes[0]
    assert port.match is not None and port.match.value == "agent.circuit-id"
    assert port.lease_limit == 1
    assert [s.key for s in port.subclasses][:2] == [b"sw1-ge-0/0/1", b"sw1-ge-0/0/2"]

    cfg = load(str(SEEDS / "spawn-lease-limit.conf"))
    (cpe,) = cfg.classes
    assert cpe.spawn is not None and cpe.spawn.value == "agent.remote-id"
    assert cpe.lease_limit == 2


def test_conditionals() -> None:
    cfg = parse_text(
        "subnet 10.0.0.0 netmask 255.255.255.0 {\n"
        '  if known { filename "a"; } elsif static { filename "b"; }\n'
        '  else if exists host-name { filename "c"; } else { filename "d"; }\n'
        "}"
    )
    (cond,) = cfg.subnets[0].chain[-1]
    assert isinstance(cond, Conditional)
    assert [c.op for c, _ in cond.branches] == ["known", "static", "exists"]
    assert [params(b)["filename"] for _, b in cond.branches] == ["a", "b", "c"]
    assert params(cond.otherwise) == {"filename": "d"}


def test_unimplemented_statements_warn_once() -> None:
    cfg = load(str(SEEDS / "ddns-events.conf"))
    kinds = [s.keyword for s in cfg.subnets[0].chain[-1] if isinstance(s, Unimplemented)]
    assert kinds == ["ddns-hostname"]  # the two `on` blocks are lease events (OnEvent) now
    keywords = [s.keyword for s in cfg.statements if isinstance(s, Unimplemented)]
    assert keywords == ["ddns-domainname", "ddns-rev-domainname", "update-conflict-detection",
                        "key", "zone", "zone"]  # fmt: skip
    messages = [w.message for w in cfg.warnings]
    assert sum("'zone'" in m for m in messages) == 1
    assert not any("'on'" in m or "'execute'" in m or "'log'" in m for m in messages)
    assert all(w.severity == "warning" for w in cfg.warnings)


def test_includes_relative_to_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SEEDS)
    cfg = load("includes-main.conf")
    assert cfg.files == (
        "includes-main.conf",
        "inc/globals.conf",
        "inc/classes.conf",
        "inc/subnet-50-options.conf",
        "inc/hosts/lab.conf",
    )
    assert params(cfg.statements)["default-lease-time"] == 3600
    assert options(cfg.subnets[0].chain[-1])["routers"] == bytes.fromhex("0a320001")
    nas = next(h for h in cfg.hosts if h.name == "lab-nas")
    assert nas.loc.file == "inc/hosts/lab.conf" and nas.loc.line == 2
    assert options(nas.chain[0])["domain-name"] == b"lab.example.com"


def test_include_from_elsewhere_fails_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SEEDS.parent)
    with pytest.raises(ConfigError) as info:
        load("configs/includes-main.conf")
    assert (info.value.loc.file, info.value.loc.line) == ("configs/includes-main.conf", 3)
    assert "can't open inc/globals.conf" in str(info.value)


def test_whole_corpus_is_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SEEDS)
    cfg: Config = load("includes-main.conf")
    with pytest.raises(AttributeError):
        cfg.hosts = ()  # type: ignore[misc]
    assert isinstance(cfg.statements, tuple)


def test_lease_file_constructs_and_rare_statements_are_unimplemented() -> None:
    cfg = parse_text(
        'failover peer "p" { primary; peer address 10.0.0.2; mclt 60; split 128; }\n'
        'failover peer "p" state { my state normal at 1 2024/01/01 00:00:00; }\n'
        'vendor-class "MSFT" { option domain-name "ms"; }\n'
        "option server.default-lease-time 900;\n"
        'subnet 10.0.0.0 netmask 255.255.255.0 { pool { failover peer "p"; '
        "range 10.0.0.5 10.0.0.9; } }"
    )
    kinds = [s.keyword for s in cfg.statements if isinstance(s, Unimplemented)]
    assert kinds == ["vendor-class"]
    assert params(cfg.statements) == {"default-lease-time": 900}
    texts = " ".join(w.message for w in cfg.warnings)
    assert "'failover peer state'" in texts and "'vendor-class'" in texts


def test_pool_permit_words_are_checked() -> None:
    with pytest.raises(ConfigError, match="expecting permit type"):
        parse_text("subnet 10.0.0.0 netmask 255.255.255.0 { pool { allow booting; } }")
