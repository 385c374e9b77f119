"""core/codes.py's integer constants and name table agree with tandem.wire.options."""

from __future__ import annotations

from tandem.config.model import Config
from tandem.core import codes
from tandem.wire.options import BUILTIN_SPACES, MessageType, default_table

# core/codes.py constant -> (space, dhcpd name) in the wire table
NAMED = {
    "SUBNET_MASK": ("dhcp", "subnet-mask"),
    "TIME_OFFSET": ("dhcp", "time-offset"),
    "ROUTERS": ("dhcp", "routers"),
    "DOMAIN_NAME_SERVERS": ("dhcp", "domain-name-servers"),
    "HOST_NAME": ("dhcp", "host-name"),
    "DOMAIN_NAME": ("dhcp", "domain-name"),
    "BROADCAST_ADDRESS": ("dhcp", "broadcast-address"),
    "VENDOR_ENCAPSULATED_OPTIONS": ("dhcp", "vendor-encapsulated-options"),
    "REQUESTED_ADDRESS": ("dhcp", "dhcp-requested-address"),
    "LEASE_TIME": ("dhcp", "dhcp-lease-time"),
    "OPTION_OVERLOAD": ("dhcp", "dhcp-option-overload"),
    "MESSAGE_TYPE": ("dhcp", "dhcp-message-type"),
    "SERVER_IDENTIFIER": ("dhcp", "dhcp-server-identifier"),
    "PARAMETER_REQUEST_LIST": ("dhcp", "dhcp-parameter-request-list"),
    "MESSAGE": ("dhcp", "dhcp-message"),
    "MAX_MESSAGE_SIZE": ("dhcp", "dhcp-max-message-size"),
    "RENEWAL_TIME": ("dhcp", "dhcp-renewal-time"),
    "REBINDING_TIME": ("dhcp", "dhcp-rebinding-time"),
    "VENDOR_CLASS_IDENTIFIER": ("dhcp", "vendor-class-identifier"),
    "CLIENT_IDENTIFIER": ("dhcp", "dhcp-client-identifier"),
    "USER_CLASS": ("dhcp", "user-class"),
    "FQDN": ("dhcp", "fqdn"),
    "RELAY_AGENT_INFORMATION": ("dhcp", "relay-agent-information"),
    "ASSOCIATED_IP": ("dhcp", "associated-ip"),
    "SUBNET_SELECTION": ("dhcp", "subnet-selection"),
    "AGENT_CIRCUIT_ID": ("agent", "circuit-id"),
    "AGENT_REMOTE_ID": ("agent", "remote-id"),
    "AGENT_LINK_SELECTION": ("agent", "link-selection"),
}
# Not options: the two framing codes (RFC 2132 3.1, 3.2), with no name in dhcpd's table.
FRAMING = {"PAD": 0, "END": 255}


def _int_constants() -> set[str]:
    return {
        n
        for n, v in vars(codes).items()
        if n.isupper() and type(v) is int and not n.startswith("DHCP")
    }


def test_every_code_constant_is_checked() -> None:
    assert _int_constants() == set(NAMED) | set(FRAMING)


def test_code_constants_match_wire_names() -> None:
    t = default_table()
    for const, (space, name) in NAMED.items():
        info = t.by_name(space, name)
        assert info is not None, name
        assert getattr(codes, const) == info.code, (const, name)
    for const, value in FRAMING.items():
        assert getattr(codes, const) == value
        assert t.by_code("dhcp", value) is None


def test_message_types_match_wire() -> None:
    for code, name in codes.MESSAGE_NAMES.items():
        assert MessageType(code).name == name.removeprefix("DHCP")
        assert getattr(codes, name) == code
    assert codes.RX_COUNTERS[codes.DHCPDISCOVER] == "rx.DHCPDISCOVER"


def test_name_table_is_the_wire_table() -> None:
    names = codes.name_table(Config())
    wire = {
        f"{space}.{name}": (space, code)
        for space, rows in BUILTIN_SPACES.items()
        for name, _fmt, code in rows
    }
    assert names == wire
    assert names["agent.agent-id"] == ("agent", 3)
    assert names["agent.DOCSIS-device-class"] == ("agent", 4)
