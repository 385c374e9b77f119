"""Option names: dhcpd's built-in tables, the server parameter table, and user definitions.

The wire layer owns the table of DHCP options (``tandem.wire.options``). The "server"
option space is dhcpd's table of server parameters (``server/stables.c``): it is not on the
wire, so it lives here. ``option space`` and ``option NAME code N = TYPE`` declarations are
layered on top as the file is read, exactly when dhcpd would see them: an option used
before its definition is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tandem.config.cursor import Cursor
from tandem.config.model import OptionDefinition, OptionSpace


class OptionInfoLike(Protocol):
    @property
    def space(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def code(self) -> int: ...
    @property
    def format(self) -> str: ...


class OptionTableLike(Protocol):
    def by_name(self, space: str, name: str) -> OptionInfoLike | None: ...


@dataclass(frozen=True, slots=True)
class OptionRef:
    """What the parser knows about one option name."""

    space: str
    name: str
    code: int
    format: str


#: Option spaces dhcpd -4 knows without being told (common/tables.c, server/stables.c).
BUILTIN_SPACES = frozenset(
    {"dhcp", "agent", "server", "fqdn", "vendor-class", "vendor", "nwip", "isc"}
)

#: dhcpd's server parameters: name -> (code, format). From server/stables.c (4.4), without
#: the LDAP and compile-time-optional entries except delayed-ack/max-ack-delay, which
#: Debian's build has.
SERVER_OPTIONS: dict[str, tuple[int, str]] = {
    "default-lease-time": (1, "T"),
    "max-lease-time": (2, "T"),
    "min-lease-time": (3, "T"),
    "dynamic-bootp-lease-cutoff": (4, "T"),
    "dynamic-bootp-lease-length": (5, "L"),
    "boot-unknown-clients": (6, "f"),
    "dynamic-bootp": (7, "f"),
    "allow-bootp": (8, "f"),
    "allow-booting": (9, "f"),
    "one-lease-per-client": (10, "f"),
    "get-lease-hostnames": (11, "f"),
    "use-host-decl-names": (12, "f"),
    "use-lease-addr-for-default-route": (13, "f"),
    "min-secs": (14, "B"),
    "filename": (15, "t"),
    "server-name": (16, "t"),
    "next-server": (17, "I"),
    "authoritative": (18, "f"),
    "vendor-option-space": (19, "U"),
    "always-reply-rfc1048": (20, "f"),
    "site-option-space": (21, "X"),
    "always-broadcast": (22, "f"),
    "ddns-domainname": (23, "t"),
    "ddns-hostname": (24, "t"),
    "ddns-rev-domainname": (25, "t"),
    "lease-file-name": (26, "t"),
    "pid-file-name": (27, "t"),
    "duplicates": (28, "f"),
    "declines": (29, "f"),
    "ddns-updates": (30, "f"),
    "omapi-port": (31, "S"),
    "local-port": (32, "S"),
    "limited-broadcast-address": (33, "I"),
    "remote-port": (34, "S"),
    "local-address": (35, "I"),
    "omapi-key": (36, "k"),
    "stash-agent-options": (37, "f"),
    "ddns-ttl": (38, "T"),
    "ddns-update-style": (39, "Nddns-styles."),
    "client-updates": (40, "f"),
    "update-optimization": (41, "f"),
    "ping-check": (42, "f"),
    "update-static-leases": (43, "f"),
    "log-facility": (44, "Nsyslog-facilities."),
    "do-forward-updates": (45, "f"),
    "ping-timeout": (46, "T"),
    "infinite-is-reserved": (47, "f"),
    "update-conflict-detection": (48, "f"),
    "leasequery": (49, "f"),
    "adaptive-lease-time-threshold": (50, "B"),
    "do-reverse-updates": (51, "f"),
    "fqdn-reply": (52, "f"),
    "preferred-lifetime": (53, "T"),
    "dhcpv6-lease-file-name": (54, "t"),
    "dhcpv6-pid-file-name": (55, "t"),
    "limit-addrs-per-ia": (56, "L"),
    "limit-prefs-per-ia": (57, "L"),
    "delayed-ack": (58, "S"),
    "max-ack-delay": (59, "L"),
    "dhcp-cache-threshold": (78, "B"),
    "dont-use-fsync": (79, "f"),
    "ddns-local-address4": (80, "I"),
    "ddns-local-address6": (81, "6"),
    "ignore-client-uids": (82, "f"),
    "log-threshold-low": (83, "B"),
    "log-threshold-high": (84, "B"),
    "echo-client-id": (85, "f"),
    "server-id-check": (86, "f"),
    "prefix-length-mode": (87, "Nprefix_length_modes."),
    "dhcpv6-set-tee-times": (88, "f"),
    "abandon-lease-time": (89, "T"),
    "check-secs-byte-order": (92, "f"),
    "ddns-dual-stack-mixed-mode": (93, "f"),
    "ddns-guard-id-must-match": (94, "f"),
    "ddns-other-guard-is-dynamic": (95, "f"),
    "release-on-roam": (96, "f"),
    "local-address6": (97, "6"),
    "bind-local-address6": (98, "f"),
    "ping-cltt-secs": (99, "T"),
    "ping-timeout-ms": (100, "T"),
}

#: Enumerations used by server parameters: name -> {word: value} (one byte each).
ENUMERATIONS: dict[str, dict[str, int]] = {
    "ddns-styles": {"none": 0, "ad-hoc": 1, "interim": 2, "standard": 3},
    "syslog-facilities": {
        "kern": 0,
        "user": 1,
        "mail": 2,
        "daemon": 3,
        "auth": 4,
        "syslog": 5,
        "lpr": 6,
        "news": 7,
        "uucp": 8,
        "cron": 9,
        "authpriv": 10,
        "ftp": 11,
        "local0": 16,
        "local1": 17,
        "local2": 18,
        "local3": 19,
        "local4": 20,
        "local5": 21,
        "local6": 22,
        "local7": 23,
    },
    "prefix_length_modes": {"ignore": 0, "prefer": 1, "exact": 2, "minimum": 3, "maximum": 4},
}


class Registry:
    """Option spaces and names as known at the current point of the file."""

    def __init__(self, table: OptionTableLike) -> None:
        self._table = table
        self.spaces: dict[str, OptionSpace] = {}
        self.definitions: list[OptionDefinition] = []
        self._by_name: dict[tuple[str, str], OptionRef] = {}
        self._hidden: set[tuple[str, str]] = set()  # built-ins whose code was redefined

    def has_space(self, name: str) -> bool:
        return name in BUILTIN_SPACES or name in self.spaces

    def space_widths(self, name: str) -> tuple[int, int]:
        space = self.spaces.get(name)
        return (space.code_width, space.length_width) if space else (1, 1)

    def lookup(self, space: str, name: str) -> OptionRef | None:
        key = (space, name.lower())
        ref = self._by_name.get(key)
        if ref is not None:
            return ref
        if key in self._hidden:
            return None
        if space == "server":
            entry = SERVER_OPTIONS.get(key[1])
            return OptionRef("server", key[1], entry[0], entry[1]) if entry else None
        info = self._table.by_name(space, key[1])
        if info is None:
            return None
        return OptionRef(info.space, info.name, info.code, info.format)

    def lookup_code(self, space: str, code: int) -> OptionRef | None:
        for ref in self._by_name.values():
            if ref.space == space and ref.code == code:
                return ref
        return None

    def declare_space(self, space: OptionSpace) -> None:
        self.spaces[space.name] = space

    def define(self, definition: OptionDefinition) -> None:
        """``option NAME code N = TYPE;`` replaces any option of that name or code."""
        for key, ref in list(self._by_name.items()):
            if ref.space == definition.space and ref.code == definition.code:
                del self._by_name[key]
        key = (definition.space, definition.name.lower())
        self._by_name[key] = OptionRef(
            definition.space, definition.name, definition.code, definition.format
        )
        self.definitions.append(definition)

    def resolve(self, cur: Cursor, *, allow_new: bool) -> tuple[str, str, OptionRef | None]:
        """dhcpd's parse_option_name: ``NAME`` or ``SPACE.NAME`` after ``option``.

        Returns (space, name, ref). ``ref`` is None only when ``allow_new`` is set and the
        name is unknown (it may be about to be defined with ``code N``).
        """
        tok = cur.next()
        if not tok.is_identifier:
            raise cur.error_at(
                tok, f"expecting an option name after 'option', found {tok.describe()}"
            )
        space, name = "dhcp", tok.text
        if cur.take_punct("."):
            name_tok = cur.next()
            if not name_tok.is_identifier:
                raise cur.error_at(name_tok, "expecting an option name after '.'")
            space, name = tok.text, name_tok.text
            if not self.has_space(space):
                raise cur.error(
                    f"no option space named {space}: declare it first with 'option space {space};'"
                )
        ref = self.lookup(space, name)
        if ref is not None:
            return space, name, ref
        if name.lower().startswith("unknown-"):
            digits = name[8:]
            code = int(digits) if digits.isdigit() else 0
            if not 0 < code < 255:
                raise cur.error(f"option codes 0 and 255 are illegal in the {space} space")
            known = self.lookup_code(space, code)
            return space, name, known or OptionRef(space, name, code, "X")
        if allow_new:
            return space, name, None
        raise cur.error(f"no option named {name} in space {space}")
