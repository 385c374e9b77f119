"""The option table: dhcpd's option names, codes and format strings, as data.

The rows are the ones ISC dhcpd 4.4 compiles in (common/tables.c with every
``RFCxxxx_OPTIONS`` switch of includes/site.h turned on, plus the relay agent
space from server/stables.c). Names and format strings are dhcpd's, letter
for letter, because dhcpd.conf and dhcpd.leases refer to options by these
names and :mod:`tandem.wire.optformat` interprets these format strings. The
"server" universe of server/stables.c is left out on purpose: those names are
configuration parameters, not options, and the config layer owns them.

Spaces (dhcpd calls them universes) carried here: ``dhcp``, ``agent``,
``fqdn``, ``nwip``, ``vendor-class`` (the vivco enterprise space),
``vendor`` (the vivso enterprise space) and ``isc``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Final


@dataclass(frozen=True, slots=True)
class OptionInfo:
    """One option: its space, dhcpd name, code and dhcpd format string."""

    space: str
    name: str
    code: int
    format: str


# (name, format, code) per space. Order follows common/tables.c.
_DHCP: tuple[tuple[str, str, int], ...] = (
    ("subnet-mask", "I", 1),
    ("time-offset", "l", 2),
    ("routers", "IA", 3),
    ("time-servers", "IA", 4),
    ("ien116-name-servers", "IA", 5),
    ("domain-name-servers", "IA", 6),
    ("log-servers", "IA", 7),
    ("cookie-servers", "IA", 8),
    ("lpr-servers", "IA", 9),
    ("impress-servers", "IA", 10),
    ("resource-location-servers", "IA", 11),
    ("host-name", "t", 12),
    ("boot-size", "S", 13),
    ("merit-dump", "t", 14),
    ("domain-name", "t", 15),
    ("swap-server", "I", 16),
    ("root-path", "t", 17),
    ("extensions-path", "t", 18),
    ("ip-forwarding", "f", 19),
    ("non-local-source-routing", "f", 20),
    ("policy-filter", "IIA", 21),
    ("max-dgram-reassembly", "S", 22),
    ("default-ip-ttl", "B", 23),
    ("path-mtu-aging-timeout", "L", 24),
    ("path-mtu-plateau-table", "SA", 25),
    ("interface-mtu", "S", 26),
    ("all-subnets-local", "f", 27),
    ("broadcast-address", "I", 28),
    ("perform-mask-discovery", "f", 29),
    ("mask-supplier", "f", 30),
    ("router-discovery", "f", 31),
    ("router-solicitation-address", "I", 32),
    ("static-routes", "IIA", 33),
    ("trailer-encapsulation", "f", 34),
    ("arp-cache-timeout", "L", 35),
    ("ieee802-3-encapsulation", "f", 36),
    ("default-tcp-ttl", "B", 37),
    ("tcp-keepalive-interval", "L", 38),
    ("tcp-keepalive-garbage", "f", 39),
    ("nis-domain", "t", 40),
    ("nis-servers", "IA", 41),
    ("ntp-servers", "IA", 42),
    ("vendor-encapsulated-options", "E.", 43),
    ("netbios-name-servers", "IA", 44),
    ("netbios-dd-server", "IA", 45),
    ("netbios-node-type", "B", 46),
    ("netbios-scope", "t", 47),
    ("font-servers", "IA", 48),
    ("x-display-manager", "IA", 49),
    ("dhcp-requested-address", "I", 50),
    ("dhcp-lease-time", "L", 51),
    ("dhcp-option-overload", "B", 52),
    ("dhcp-message-type", "B", 53),
    ("dhcp-server-identifier", "I", 54),
    ("dhcp-parameter-request-list", "BA", 55),
    ("dhcp-message", "t", 56),
    ("dhcp-max-message-size", "S", 57),
    ("dhcp-renewal-time", "L", 58),
    ("dhcp-rebinding-time", "L", 59),
    ("vendor-class-identifier", "X", 60),
    ("dhcp-client-identifier", "X", 61),
    ("nwip-domain", "t", 62),
    ("nwip-suboptions", "Enwip.", 63),
    ("nisplus-domain", "t", 64),
    ("nisplus-servers", "IA", 65),
    ("tftp-server-name", "t", 66),
    ("bootfile-name", "t", 67),
    ("mobile-ip-home-agent", "IA", 68),
    ("smtp-server", "IA", 69),
    ("pop-server", "IA", 70),
    ("nntp-server", "IA", 71),
    ("www-server", "IA", 72),
    ("finger-server", "IA", 73),
    ("irc-server", "IA", 74),
    ("streettalk-server", "IA", 75),
    ("streettalk-directory-assistance-server", "IA", 76),
    ("user-class", "t", 77),
    ("slp-directory-agent", "fIa", 78),
    ("slp-service-scope", "fto", 79),
    ("fqdn", "Efqdn.", 81),
    ("relay-agent-information", "Eagent.", 82),
    ("nds-servers", "IA", 85),
    ("nds-tree-name", "t", 86),
    ("nds-context", "t", 87),
    ("bcms-controller-names", "D", 88),
    ("bcms-controller-address", "Ia", 89),
    ("client-last-transaction-time", "L", 91),
    ("associated-ip", "Ia", 92),
    ("pxe-system-type", "Sa", 93),
    ("pxe-interface-id", "BBB", 94),
    ("pxe-client-id", "BX", 97),
    ("uap-servers", "t", 98),
    ("geoconf-civic", "X", 99),
    ("pcode", "t", 100),
    ("tcode", "t", 101),
    ("v6-only-preferred", "L", 108),
    ("netinfo-server-address", "Ia", 112),
    ("netinfo-server-tag", "t", 113),
    ("default-url", "t", 114),
    ("auto-config", "B", 116),
    ("name-service-search", "Sa", 117),
    ("subnet-selection", "I", 118),
    ("domain-search", "Dc", 119),
    ("vivco", "Evendor-class.", 124),
    ("vivso", "Evendor.", 125),
    ("pana-agent", "Ia", 136),
    ("v4-lost", "d", 137),
    ("capwap-ac-v4", "Ia", 138),
    ("sip-ua-cs-domains", "Dc", 141),
    ("ipv4-address-andsf", "IA", 142),
    ("rdnss-selection", "BIID", 146),
    ("tftp-server-address", "Ia", 150),
    ("v4-portparams", "BBS", 159),
    ("v4-captive-portal", "t", 160),
    ("loader-configfile", "t", 209),
    ("loader-pathprefix", "t", 210),
    ("loader-reboottime", "L", 211),
    ("option-6rd", "BB6Ia", 212),
    ("v4-access-domain", "d", 213),
)

# server/stables.c agent_options[]: sub-options of option 82 (RFC 3046 and later).
_AGENT: tuple[tuple[str, str, int], ...] = (
    ("circuit-id", "X", 1),
    ("remote-id", "X", 2),
    ("agent-id", "I", 3),
    ("DOCSIS-device-class", "L", 4),
    ("link-selection", "I", 5),
    ("relay-port", "Z", 19),
)

# The fqdn space is dhcpd's "virtual" view of option 81's fixed fields.
_FQDN: tuple[tuple[str, str, int], ...] = (
    ("no-client-update", "f", 1),
    ("server-update", "f", 2),
    ("encoded", "f", 3),
    ("rcode1", "B", 4),
    ("rcode2", "B", 5),
    ("hostname", "t", 6),
    ("domainname", "t", 7),
    ("fqdn", "t", 8),
)

_NWIP: tuple[tuple[str, str, int], ...] = (
    ("illegal-1", "", 1),
    ("illegal-2", "", 2),
    ("illegal-3", "", 3),
    ("illegal-4", "", 4),
    ("nsq-broadcast", "f", 5),
    ("preferred-dss", "IA", 6),
    ("nearest-nwip-server", "IA", 7),
    ("autoretries", "B", 8),
    ("autoretry-secs", "B", 9),
    ("nwip-1-1", "f", 10),
    ("primary-dss", "I", 11),
)

_VENDOR_CLASS: tuple[tuple[str, str, int], ...] = (("isc", "X", 2495),)
_VENDOR: tuple[tuple[str, str, int], ...] = (("isc", "Eisc.", 2495),)
_ISC: tuple[tuple[str, str, int], ...] = (("media", "t", 1), ("update-assist", "X", 2))

BUILTIN_SPACES: dict[str, tuple[tuple[str, str, int], ...]] = {
    "dhcp": _DHCP,
    "agent": _AGENT,
    "fqdn": _FQDN,
    "nwip": _NWIP,
    "vendor-class": _VENDOR_CLASS,
    "vendor": _VENDOR,
    "isc": _ISC,
}


class OptionTable:
    """An immutable name/code index over :class:`OptionInfo` rows.

    Lookups are by ``(space, name)`` and ``(space, code)``. Names are matched
    case-insensitively, as dhcpd's option name hash does (``do_case_hash``).
    """

    __slots__ = ("_by_code", "_by_name", "_spaces")

    def __init__(self, infos: Iterable[OptionInfo] = (), spaces: Iterable[str] = ()) -> None:
        by_code: dict[tuple[str, int], OptionInfo] = {}
        by_name: dict[tuple[str, str], OptionInfo] = {}
        names: set[str] = set(spaces)
        for info in infos:
            _insert(by_code, by_name, info)
            names.add(info.space)
        self._by_code = by_code
        self._by_name = by_name
        self._spaces = frozenset(names)

    def by_name(self, space: str, name: str) -> OptionInfo | None:
        return self._by_name.get((space, name.lower()))

    def by_code(self, space: str, code: int) -> OptionInfo | None:
        return self._by_code.get((space, code))

    def spaces(self) -> set[str]:
        return set(self._spaces)

    def options(self, space: str) -> list[OptionInfo]:
        """All options of one space, by code."""
        return sorted(
            (i for (s, _), i in self._by_code.items() if s == space), key=lambda i: i.code
        )

    def with_definitions(
        self, defs: Iterable[OptionInfo], spaces: Iterable[str] = ()
    ) -> OptionTable:
        """A copy extended by user definitions (``option NAME code N = TYPE;``).

        A definition replaces any builtin with the same space and code, and any
        builtin with the same space and name (dhcpd lets a site redefine a
        standard option's format or move a name to a new code).
        """
        new = OptionTable.__new__(OptionTable)
        by_code = dict(self._by_code)
        by_name = dict(self._by_name)
        names = set(self._spaces) | set(spaces)
        for info in defs:
            _insert(by_code, by_name, info)
            names.add(info.space)
        new._by_code = by_code
        new._by_name = by_name
        new._spaces = frozenset(names)
        return new

    def __len__(self) -> int:
        return len(self._by_code)


def _insert(
    by_code: dict[tuple[str, int], OptionInfo],
    by_name: dict[tuple[str, str], OptionInfo],
    info: OptionInfo,
) -> None:
    key_name = (info.space, info.name.lower())
    old = by_code.pop((info.space, info.code), None)
    if old is not None and by_name.get((old.space, old.name.lower())) is old:
        del by_name[(old.space, old.name.lower())]
    old = by_name.pop(key_name, None)
    if old is not None and by_code.get((old.space, old.code)) is old:
        del by_code[(old.space, old.code)]
    by_code[(info.space, info.code)] = info
    by_name[key_name] = info


@cache
def default_table() -> OptionTable:
    """The builtin table (cached: build it once per process)."""
    return OptionTable(
        (
            OptionInfo(space, name, code, fmt)
            for space, rows in BUILTIN_SPACES.items()
            for name, fmt, code in rows
        ),
        BUILTIN_SPACES,
    )


# Codes the server itself reads or writes (RFC 2132 unless noted), for code that must not
# look names up per packet. Final literals: mypyc inlines them into compiled callers such as
# wire/dhcp.py. tests/wire/test_wire_options.py holds them to the rows above.
PAD: Final = 0
SUBNET_MASK: Final = 1
TIME_OFFSET: Final = 2
ROUTERS: Final = 3
DOMAIN_NAME_SERVERS: Final = 6
HOST_NAME: Final = 12
DOMAIN_NAME: Final = 15
BROADCAST_ADDRESS: Final = 28
NTP_SERVERS: Final = 42
VENDOR_ENCAPSULATED_OPTIONS: Final = 43
REQUESTED_ADDRESS: Final = 50
LEASE_TIME: Final = 51
OVERLOAD: Final = 52
DHCP_MESSAGE_TYPE: Final = 53
SERVER_IDENTIFIER: Final = 54
PARAMETER_REQUEST_LIST: Final = 55
MESSAGE: Final = 56
MAX_MESSAGE_SIZE: Final = 57
RENEWAL_TIME: Final = 58
REBINDING_TIME: Final = 59
VENDOR_CLASS_ID: Final = 60
CLIENT_IDENTIFIER: Final = 61
TFTP_SERVER_NAME: Final = 66
BOOTFILE_NAME: Final = 67
USER_CLASS: Final = 77
CLIENT_FQDN: Final = 81  # RFC 4702
RELAY_AGENT_INFO: Final = 82  # RFC 3046
CLIENT_LAST_TRANSACTION_TIME: Final = 91  # RFC 4388
ASSOCIATED_IP: Final = 92  # RFC 4388
SUBNET_SELECTION: Final = 118  # RFC 3011
DOMAIN_SEARCH: Final = 119  # RFC 3397
VIVCO: Final = 124  # RFC 3925
VIVSO: Final = 125  # RFC 3925
END: Final = 255

# Relay agent sub-options (space "agent").
AGENT_CIRCUIT_ID: Final = 1
AGENT_REMOTE_ID: Final = 2
AGENT_LINK_SELECTION: Final = 5  # RFC 3527
AGENT_RELAY_PORT: Final = 19  # RFC 8357


class MessageType(enum.IntEnum):
    """Option 53 values (RFC 2132 9.6, RFC 4388 leasequery, RFC 6926 bulk, RFC 7724)."""

    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8
    FORCERENEW = 9
    LEASEQUERY = 10
    LEASEUNASSIGNED = 11
    LEASEUNKNOWN = 12
    LEASEACTIVE = 13
    BULKLEASEQUERY = 14
    LEASEQUERYDONE = 15
    ACTIVELEASEQUERY = 16
    LEASEQUERYSTATUS = 17
    TLS = 18
