"""Option table: dhcpd names/codes/formats, user definitions, and dhcpd's own parser as oracle."""

from __future__ import annotations

import shutil
import subprocess
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from tandem.wire import optformat, options
from tandem.wire.options import MessageType, OptionInfo, OptionTable, default_table


@pytest.mark.parametrize(
    ("name", "code", "fmt"),
    [
        ("subnet-mask", 1, "I"),
        ("time-offset", 2, "l"),
        ("routers", 3, "IA"),
        ("host-name", 12, "t"),
        ("domain-name", 15, "t"),
        ("broadcast-address", 28, "I"),
        ("static-routes", 33, "IIA"),
        ("ntp-servers", 42, "IA"),
        ("vendor-encapsulated-options", 43, "E."),
        ("dhcp-lease-time", 51, "L"),
        ("dhcp-parameter-request-list", 55, "BA"),
        ("vendor-class-identifier", 60, "X"),
        ("dhcp-client-identifier", 61, "X"),
        ("slp-directory-agent", 78, "fIa"),
        ("slp-service-scope", 79, "fto"),
        ("fqdn", 81, "Efqdn."),
        ("relay-agent-information", 82, "Eagent."),
        ("pxe-client-id", 97, "BX"),
        ("subnet-selection", 118, "I"),
        ("domain-search", 119, "Dc"),
        ("vivso", 125, "Evendor."),
        ("rdnss-selection", 146, "BIID"),
        ("option-6rd", 212, "BB6Ia"),
        ("v4-access-domain", 213, "d"),
    ],
)
def test_dhcp_space_rows(name: str, code: int, fmt: str) -> None:
    t = default_table()
    info = t.by_name("dhcp", name)
    assert info == OptionInfo("dhcp", name, code, fmt)
    assert t.by_code("dhcp", code) is info
    assert t.by_name("dhcp", name.upper()) is info  # dhcpd's name hash ignores case


def test_spaces_and_sizes() -> None:
    t = default_table()
    assert t.spaces() == {"dhcp", "agent", "fqdn", "nwip", "vendor-class", "vendor", "isc"}
    assert len(t.options("dhcp")) == 119  # tables.c dhcp_options[], #if 0 rows excluded
    assert [i.name for i in t.options("agent")] == [
        "circuit-id",
        "remote-id",
        "agent-id",
        "DOCSIS-device-class",
        "link-selection",
        "relay-port",
    ]
    assert t.by_code("vendor", 2495) == OptionInfo("vendor", "isc", 2495, "Eisc.")
    assert t.by_name("dhcp", "server-identifier") is None  # a server-universe parameter
    assert t.by_name("dhcp", "default-lease-time") is None
    assert t.by_code("dhcp", 80) is None  # rapid-commit: unknown to dhcpd
    assert default_table() is t


def test_every_builtin_format_compiles() -> None:
    t = default_table()
    for space in t.spaces():
        for info in t.options(space):
            optformat.atom_kinds(info.format)


def test_with_definitions_extends_and_replaces() -> None:
    base = default_table()
    new = base.with_definitions(
        [
            OptionInfo("dhcp", "my-option", 224, "t"),
            OptionInfo("dhcp", "ntp-servers", 42, "t"),  # redefine a builtin's format
            OptionInfo("dhcp", "routers-too", 3, "I"),  # take over a builtin's code
            OptionInfo("local", "thing", 1, "B"),
        ],
        spaces=["empty-space"],
    )
    assert new.by_code("dhcp", 224) == OptionInfo("dhcp", "my-option", 224, "t")
    assert new.by_name("dhcp", "ntp-servers") == OptionInfo("dhcp", "ntp-servers", 42, "t")
    assert new.by_code("dhcp", 3) == OptionInfo("dhcp", "routers-too", 3, "I")
    assert new.by_name("dhcp", "routers") is None
    assert {"local", "empty-space"} <= new.spaces()
    # the original is untouched
    assert base.by_code("dhcp", 224) is None and base.by_name("dhcp", "routers") is not None
    assert len(new) == len(base) + 2


def test_constants() -> None:
    t = default_table()
    pairs = {
        options.SUBNET_MASK: "subnet-mask",
        options.ROUTERS: "routers",
        options.HOST_NAME: "host-name",
        options.REQUESTED_ADDRESS: "dhcp-requested-address",
        options.LEASE_TIME: "dhcp-lease-time",
        options.OVERLOAD: "dhcp-option-overload",
        options.DHCP_MESSAGE_TYPE: "dhcp-message-type",
        options.SERVER_IDENTIFIER: "dhcp-server-identifier",
        options.PARAMETER_REQUEST_LIST: "dhcp-parameter-request-list",
        options.MESSAGE: "dhcp-message",
        options.MAX_MESSAGE_SIZE: "dhcp-max-message-size",
        options.RENEWAL_TIME: "dhcp-renewal-time",
        options.REBINDING_TIME: "dhcp-rebinding-time",
        options.VENDOR_CLASS_ID: "vendor-class-identifier",
        options.CLIENT_IDENTIFIER: "dhcp-client-identifier",
        options.RELAY_AGENT_INFO: "relay-agent-information",
        options.SUBNET_SELECTION: "subnet-selection",
        options.DOMAIN_SEARCH: "domain-search",
    }
    for code, name in pairs.items():
        info = t.by_code("dhcp", code)
        assert info is not None and info.name == name
    assert int(MessageType.DISCOVER) == 1 and int(MessageType.INFORM) == 8
    assert MessageType(5).name == "ACK"


# --------------------------------------------------------------------------
# dhcpd itself parses every option statement we print

_SAMPLE: dict[str, object] = {
    "I": IPv4Address("192.0.2.7"),
    "6": IPv6Address("2001:db8::7"),
    "l": -5,
    "L": 7,
    "T": 9,
    "s": -3,
    "S": 300,
    "b": -1,
    "B": 200,
    "f": True,
    "t": "some text",
    "k": "key.example",
    "U": "isc",
    "X": b"\x01\x02\x03",
    "E": b"\x01\x01x",
    "d": "example.com",
    "N": 1,
}


def _statements(table: OptionTable) -> list[str]:
    out = []
    for space in sorted(table.spaces()):
        for info in table.options(space):
            if not info.format:
                continue  # nwip illegal-N: dhcpd cannot configure them either
            spec = optformat.atom_kinds(info.format)
            values: list[object] = []
            for atom in spec.atoms:
                if atom.code == "D":
                    values += ["a.example.com", "b.example.com"]
                elif atom.has_value:
                    values.append(_SAMPLE[atom.code])
            if spec.array:
                repeat = spec.atoms if spec.array == "A" else spec.atoms[-1:]
                values += [_SAMPLE[a.code] for a in repeat]
            text = optformat.to_text(info.format, optformat.encode(info.format, values))
            prefix = "" if space == "dhcp" else space + "."
            out.append(f"option {prefix}{info.name} {text};")
    return out


def _dhcpd_check(tmp_path: Path, statements: list[str]) -> subprocess.CompletedProcess[str]:
    dhcpd = shutil.which("dhcpd") or "/usr/sbin/dhcpd"
    conf = tmp_path / "dhcpd.conf"
    body = "\n".join("  " + s for s in statements)
    conf.write_text(f"subnet 192.0.2.0 netmask 255.255.255.0 {{\n{body}\n}}\n")
    return subprocess.run(
        [dhcpd, "-t", "-cf", str(conf)], capture_output=True, text=True, timeout=30, check=False
    )


def test_dhcpd_accepts_every_name_and_printed_value(tmp_path: Path) -> None:
    statements = _statements(default_table())
    assert len(statements) > 140
    result = _dhcpd_check(tmp_path, statements)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "statement",
    [
        "option no-such-option 1;",
        'option routers "quoted";',
        "option ip-forwarding maybe;",
        'option dhcp-lease-time "text";',
        "option agent.no-such-sub-option 1;",
    ],
)
def test_dhcpd_oracle_rejects_bad_statements(tmp_path: Path, statement: str) -> None:
    """The oracle above can fail: a wrong name or a wrong value kind is refused."""
    assert _dhcpd_check(tmp_path, [statement]).returncode != 0
