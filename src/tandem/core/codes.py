"""Option codes the core's hot path uses, and option names for expressions.

The one table of option names, codes and formats is :mod:`tandem.wire.options` (dhcpd's
common/tables.c and server/stables.c); ``name_table`` builds ``option NAME`` lookups from it.
The integer constants below stay plain literals here because this module is compiled and the
core reads them on every packet; tests/core/test_core_codes.py holds each one to its name in
the wire table.
"""

from __future__ import annotations

from tandem.config.model import Config
from tandem.wire.options import BUILTIN_SPACES

SUBNET_MASK = 1
TIME_OFFSET = 2
ROUTERS = 3
DOMAIN_NAME_SERVERS = 6
HOST_NAME = 12
DOMAIN_NAME = 15
BROADCAST_ADDRESS = 28
VENDOR_ENCAPSULATED_OPTIONS = 43
REQUESTED_ADDRESS = 50
LEASE_TIME = 51
OPTION_OVERLOAD = 52
MESSAGE_TYPE = 53
SERVER_IDENTIFIER = 54
PARAMETER_REQUEST_LIST = 55
MESSAGE = 56
MAX_MESSAGE_SIZE = 57
RENEWAL_TIME = 58
REBINDING_TIME = 59
VENDOR_CLASS_IDENTIFIER = 60
CLIENT_IDENTIFIER = 61
USER_CLASS = 77
FQDN = 81
RELAY_AGENT_INFORMATION = 82
ASSOCIATED_IP = 92
SUBNET_SELECTION = 118
END = 255
PAD = 0

# Relay agent information (option 82) sub-options, RFC 3046 / RFC 3527.
AGENT_CIRCUIT_ID = 1
AGENT_REMOTE_ID = 2
AGENT_LINK_SELECTION = 5

# DHCP message types (RFC 2132 §9.6).
DHCPDISCOVER = 1
DHCPOFFER = 2
DHCPREQUEST = 3
DHCPDECLINE = 4
DHCPACK = 5
DHCPNAK = 6
DHCPRELEASE = 7
DHCPINFORM = 8
# RFC 4388 leasequery.
DHCPLEASEQUERY = 10
DHCPLEASEUNASSIGNED = 11
DHCPLEASEUNKNOWN = 12
DHCPLEASEACTIVE = 13

MESSAGE_NAMES = {
    DHCPDISCOVER: "DHCPDISCOVER",
    DHCPOFFER: "DHCPOFFER",
    DHCPREQUEST: "DHCPREQUEST",
    DHCPDECLINE: "DHCPDECLINE",
    DHCPACK: "DHCPACK",
    DHCPNAK: "DHCPNAK",
    DHCPRELEASE: "DHCPRELEASE",
    DHCPINFORM: "DHCPINFORM",
    DHCPLEASEQUERY: "DHCPLEASEQUERY",
    DHCPLEASEUNASSIGNED: "DHCPLEASEUNASSIGNED",
    DHCPLEASEUNKNOWN: "DHCPLEASEUNKNOWN",
    DHCPLEASEACTIVE: "DHCPLEASEACTIVE",
}
# Counter names per message type, built once (the hot path counts every packet).
RX_COUNTERS = {code: "rx." + name for code, name in MESSAGE_NAMES.items()}
TX_COUNTERS = {code: "tx." + name for code, name in MESSAGE_NAMES.items()}


def name_table(config: Config) -> dict[str, tuple[str, int]]:
    """Map ``"space.name"`` to ``(space, code)``: built-ins plus ``option ... code N`` lines."""
    out: dict[str, tuple[str, int]] = {}
    for space, rows in BUILTIN_SPACES.items():
        for name, _fmt, code in rows:
            out[f"{space}.{name}"] = (space, code)
    for d in config.option_definitions:
        out[f"{d.space}.{d.name}"] = (d.space, d.code)
    return out
