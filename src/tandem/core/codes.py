"""Option codes and names the core needs, as data.

The core only needs a handful of codes on its hot path (message type, server identifier,
lease time, ...) and, for ``option NAME`` in expressions, a way to turn dhcpd's option names
into codes. The full option table with formats lives in ``tandem.wire.options``; this module
keeps the core free of a start-up dependency on it and holds only names and codes (facts from
dhcpd's common/tables.c and the RFCs).
"""

from __future__ import annotations

from tandem.config.model import Config

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

MESSAGE_NAMES = {
    DHCPDISCOVER: "DHCPDISCOVER",
    DHCPOFFER: "DHCPOFFER",
    DHCPREQUEST: "DHCPREQUEST",
    DHCPDECLINE: "DHCPDECLINE",
    DHCPACK: "DHCPACK",
    DHCPNAK: "DHCPNAK",
    DHCPRELEASE: "DHCPRELEASE",
    DHCPINFORM: "DHCPINFORM",
}
# Counter names per message type, built once (the hot path counts every packet).
RX_COUNTERS = {code: "rx." + name for code, name in MESSAGE_NAMES.items()}
TX_COUNTERS = {code: "tx." + name for code, name in MESSAGE_NAMES.items()}

# dhcp option space: "code name" per line (dhcpd's names, common/tables.c).
_DHCP_NAMES = """
1 subnet-mask
2 time-offset
3 routers
4 time-servers
5 ien116-name-servers
6 domain-name-servers
7 log-servers
8 cookie-servers
9 lpr-servers
10 impress-servers
11 resource-location-servers
12 host-name
13 boot-size
14 merit-dump
15 domain-name
16 swap-server
17 root-path
18 extensions-path
19 ip-forwarding
20 non-local-source-routing
21 policy-filter
22 max-dgram-reassembly
23 default-ip-ttl
24 path-mtu-aging-timeout
25 path-mtu-plateau-table
26 interface-mtu
27 all-subnets-local
28 broadcast-address
29 perform-mask-discovery
30 mask-supplier
31 router-discovery
32 router-solicitation-address
33 static-routes
34 trailer-encapsulation
35 arp-cache-timeout
36 ieee802-3-encapsulation
37 default-tcp-ttl
38 tcp-keepalive-interval
39 tcp-keepalive-garbage
40 nis-domain
41 nis-servers
42 ntp-servers
43 vendor-encapsulated-options
44 netbios-name-servers
45 netbios-dd-server
46 netbios-node-type
47 netbios-scope
48 font-servers
49 x-display-manager
50 dhcp-requested-address
51 dhcp-lease-time
52 dhcp-option-overload
53 dhcp-message-type
54 dhcp-server-identifier
55 dhcp-parameter-request-list
56 dhcp-message
57 dhcp-max-message-size
58 dhcp-renewal-time
59 dhcp-rebinding-time
60 vendor-class-identifier
61 dhcp-client-identifier
62 nwip-domain
63 nwip-suboptions
64 nisplus-domain
65 nisplus-servers
66 tftp-server-name
67 bootfile-name
68 mobile-ip-home-agent
69 smtp-server
70 pop-server
71 nntp-server
72 www-server
73 finger-server
74 irc-server
75 streettalk-server
76 streettalk-directory-assistance-server
77 user-class
78 slp-directory-agent
79 slp-service-scope
81 fqdn
82 relay-agent-information
85 nds-servers
86 nds-tree-name
87 nds-context
91 client-last-transaction-time
92 associated-ip
93 pxe-system-type
94 pxe-interface-id
97 pxe-client-id
114 default-url
118 subnet-selection
119 domain-search
124 vivco
125 vivso
150 tftp-server-address
"""

_AGENT_NAMES = """
1 circuit-id
2 remote-id
4 agent-id
5 link-selection
6 subscriber-id
"""


def _parse(table: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in table.strip().splitlines():
        code, name = line.split()
        out[name] = int(code)
    return out


BUILTIN_NAMES: dict[str, dict[str, int]] = {
    "dhcp": _parse(_DHCP_NAMES),
    "agent": _parse(_AGENT_NAMES),
}


def name_table(config: Config) -> dict[str, tuple[str, int]]:
    """Map ``"space.name"`` to ``(space, code)``: built-ins plus ``option ... code N`` lines."""
    out: dict[str, tuple[str, int]] = {}
    for space, names in BUILTIN_NAMES.items():
        for name, code in names.items():
            out[f"{space}.{name}"] = (space, code)
    for d in config.option_definitions:
        out[f"{d.space}.{d.name}"] = (d.space, d.code)
    return out
