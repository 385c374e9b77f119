"""The frozen, validated model a dhcpd.conf parses into.

This is the contract between ``tandem.config`` (which builds it) and ``tandem.core`` (which
serves from it). Everything here is immutable and carries its source ``Location`` so that any
later complaint can still name ``file:line:col``.

Scoping follows dhcpd. Every declaration (shared-network, subnet, pool, host, class) keeps
``chain``: the statement blocks that apply to it, outermost first, *not* including the global
block (that is ``Config.statements``) but including its own block last. Enclosing ``group``
blocks are in the chain where they stand in the file. The core evaluates global statements,
then the chain in order; a later (more specific) setting overrides an earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Literal, TypeAlias


@dataclass(frozen=True, slots=True)
class Location:
    """Where something was written: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NOWHERE = Location("<builtin>", 0, 0)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A warning or error about the configuration, printed as ``file:line:col: message``."""

    loc: Location
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.loc}: {self.severity}: {self.message}"


# --- expressions ---------------------------------------------------------------------------

ExprValue: TypeAlias = bytes | int | str | bool | None


@dataclass(frozen=True, slots=True)
class Expr:
    """A dhcpd expression node (data, boolean or numeric).

    ``op`` names the dhcpd construct; ``args`` are sub-expressions; ``value`` is the constant
    payload where one is needed. The ops the parser produces and what they mean:

    ===================  =====================================================================
    op                   meaning (args / value)
    ===================  =====================================================================
    "const-data"         value: bytes (a quoted string or a colon-separated hex string)
    "const-int"          value: int
    "const-bool"         value: bool (``true``/``false``)
    "option"             value: "space.name" (``option host-name`` -> "dhcp.host-name");
                         the option's raw payload bytes from the client's packet
    "config-option"      value: "space.name": the option as the server would send it
    "exists"             value: "space.name"; true if the client sent the option
    "known"              true if the client matched a host declaration
    "static"             true if the lease is a fixed-address
    "hardware"           htype byte followed by chaddr (hlen bytes)
    "packet"             args: (offset, length) numeric: raw packet bytes
    "substring"          args: (data, offset, length)
    "suffix"             args: (data, length)
    "concat"             args: (data, data, ...)
    "binary-to-ascii"    args: (base, width, separator, data)
    "encode-int"         args: (number,), value: width in bits (8/16/32)
    "extract-int"        args: (data,), value: width in bits (8/16/32)
    "lcase" / "ucase"    args: (data,)
    "pick-first-value"   args: (data, data, ...)
    "leased-address"     the address being leased (4 bytes)
    "host-decl-name"     the matched host's name
    "client-state"       numeric client state
    "and" / "or"         args: (bool, bool)
    "not"                args: (bool,)
    "equal" / "not-equal" args: (a, b)
    "regex"              args: (data,), value: pattern string (``~=``); "iregex" for ``~~``.
                         If the pattern is not a constant: args (data, pattern), value None
    ===================  =====================================================================

    Less common ops the parser also produces (added with the parser; the core may treat
    them as unsupported):

    ===================  =====================================================================
    "host-lookup"        value: host name; its IPv4 address (dhcpd resolves with DNS)
    "variable"           value: variable name (set with ``set``/``define``)
    "variable-exists"    value: variable name (``defined(NAME)``)
    "funcall"            value: function name, args: arguments
    "check"              value: collection name (``check "default"``)
    "filename" / "server-name" / "lease-time" / "null" / "gethostname"   no args
    "gethostbyname"      value: host name
    "reverse"            args: (width, data)
    "v6relay"            args: (number, data)
    "add" "multiply" "divide" "remainder" "binary-and" "binary-or" "binary-xor"
                         args: (number, number)
    ===================  =====================================================================
    Constants such as DNS rcodes (``nxdomain``) and client states (``bound``) are
    "const-int".
    """

    op: str
    args: tuple[Expr, ...] = ()
    value: ExprValue = None
    loc: Location = NOWHERE


# --- executable statements ------------------------------------------------------------------

ParamValue: TypeAlias = bool | int | str | bytes | IPv4Address | tuple[IPv4Address, ...] | Expr


@dataclass(frozen=True, slots=True)
class Param:
    """A server parameter such as ``default-lease-time 600;`` or ``authoritative;``.

    ``name`` is dhcpd's keyword, hyphenated (``default-lease-time``, ``next-server``,
    ``ping-check``). Value types: booleans for flags (``authoritative`` -> True,
    ``not authoritative`` -> False, ``ping-check false`` -> False), int for times and counts,
    IPv4Address for addresses (``next-server``, ``server-identifier``), str for words and
    strings (``filename``, ``ddns-update-style``, ``log-facility``). ``allow``/``deny``/
    ``ignore`` X outside a pool become ``Param(X, "allow" | "deny" | "ignore")`` with X one of
    ``unknown-clients``, ``booting``, ``bootp``, ``duplicates``, ``declines``, ``leasequery``,
    ``client-updates``. A value dhcpd computes from an expression is an ``Expr``.
    """

    name: str
    value: ParamValue
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class OptionSet:
    """``option NAME VALUE;``: an option the server sends.

    ``data`` is the option payload exactly as dhcpd would put it on the wire (already encoded
    with the option's format). ``expr`` is set instead for ``option NAME = EXPRESSION;``.
    """

    space: str
    code: int
    name: str
    data: bytes | None
    expr: Expr | None = None
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class Conditional:
    """``if C1 { ... } elsif C2 { ... } else { ... }``."""

    branches: tuple[tuple[Expr, tuple[Statement, ...]], ...]
    otherwise: tuple[Statement, ...] = ()
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class Unimplemented:
    """A valid dhcpd statement Tandem parses but does not act on yet (warned about once)."""

    keyword: str
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class OnEvent:
    """``on commit { ... }`` (also ``on release or expiry { ... }``): a lease event block.

    ``events`` holds "commit", "release", "expiry" and "transmission" (parsed, never fires on
    a server). Running the scope sets the lease's block for each event, replacing the one an
    outer scope set (dhcpd's on_star); an empty ``body`` clears it.
    """

    events: tuple[str, ...]
    body: tuple[Statement, ...]
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class Execute:
    """``execute("PROGRAM", ARG, ...);`` inside an ``on`` block: ``args`` are data expressions."""

    program: str
    args: tuple[Expr, ...]
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class LogStatement:
    """``log(LEVEL, EXPR);`` inside an ``on`` block; ``level`` is fatal/error/info/debug
    (dhcpd's default, without a level, is debug)."""

    level: str
    expr: Expr
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class SetVar:
    """``set NAME = EXPR;`` (``expr`` None: ``unset NAME;``): a variable of the lease's binding
    scope, written to the lease file as ``set NAME = "VALUE";``."""

    name: str
    expr: Expr | None
    loc: Location = NOWHERE


Statement: TypeAlias = (
    Param | OptionSet | Conditional | Unimplemented | OnEvent | Execute | LogStatement | SetVar
)
Block: TypeAlias = tuple[Statement, ...]


# --- declarations ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Range:
    low: IPv4Address
    high: IPv4Address
    dynamic_bootp: bool = False
    loc: Location = NOWHERE


PermitKind = Literal[
    "known-clients",
    "unknown-clients",
    "all-clients",
    "members",
    "dynamic-bootp-clients",
    "authenticated-clients",
    "unauthenticated-clients",
    "after",
]


@dataclass(frozen=True, slots=True)
class Permit:
    """One ``allow``/``deny`` line inside a pool (``allow members of "voip";``)."""

    allow: bool
    kind: PermitKind
    class_name: str | None = None  # for "members"
    after: int | None = None  # for "after" (epoch seconds)
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class Pool:
    ranges: tuple[Range, ...]
    permits: tuple[Permit, ...] = ()
    failover_peer: str | None = None
    chain: tuple[Block, ...] = ()
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class Subnet:
    network: IPv4Network
    # Ranges written directly in the subnet (dhcpd makes one implicit pool of them) are
    # represented as a Pool with no permits whose chain equals the subnet's chain.
    pools: tuple[Pool, ...] = ()
    shared_network: str | None = None  # name of the enclosing shared-network, if any
    chain: tuple[Block, ...] = ()
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class SharedNetwork:
    name: str
    subnets: tuple[Subnet, ...]
    pools: tuple[Pool, ...] = ()  # pools written directly in the shared-network
    chain: tuple[Block, ...] = ()
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    hardware: tuple[int, bytes] | None = None  # (htype, address): ethernet is 1
    client_id: bytes | None = None  # from `option dhcp-client-identifier` or `uid`
    fixed_addresses: tuple[IPv4Address, ...] = ()
    chain: tuple[Block, ...] = ()
    loc: Location = NOWHERE
    # Host names written in `fixed-address` (dhcpd resolves them with DNS at startup;
    # Tandem does not, and warns). Added after the first draft of the contract.
    fixed_hostnames: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Subclass:
    class_name: str
    key: bytes
    chain: tuple[Block, ...] = ()
    loc: Location = NOWHERE
    lease_limit: int | None = None  # its own `lease limit`; None: the class's


@dataclass(frozen=True, slots=True)
class ClientClass:
    name: str
    match_if: Expr | None = None  # `match if EXPR;`
    match: Expr | None = None  # `match EXPR;` (the subclass key expression)
    spawn: Expr | None = None  # `spawn with EXPR;`
    lease_limit: int | None = None
    subclasses: tuple[Subclass, ...] = ()
    chain: tuple[Block, ...] = ()
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class HostRef:
    """A host name written where dhcpd takes an address or a name (``address dhcp01;``)."""

    name: str
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class FailoverPeer:
    """A ``failover peer "NAME" { ... }`` block with dhcpd's defaults filled in.

    ``address_name`` / ``peer_address_name`` keep a host name written instead of an address;
    ``config.load`` resolves it (``tandem.config.resolve``) into ``address`` / ``peer_address``,
    so every peer a ``Config`` holds has its addresses.
    """

    name: str
    role: Literal["primary", "secondary"]
    address: IPv4Address
    peer_address: IPv4Address
    port: int = 647
    peer_port: int = 647
    max_response_delay: int = 60
    max_unacked_updates: int = 10
    mclt: int | None = None  # required on the primary
    split: int | None = None  # 0..256, or None when hba is given
    hba: bytes | None = None  # 32 bytes
    load_balance_max_seconds: int = 3
    auto_partner_down: int = 0
    max_lease_misbalance: int = 15
    max_lease_ownership: int = 10
    min_balance: int = 60
    max_balance: int = 3600
    loc: Location = NOWHERE
    address_name: HostRef | None = None
    peer_address_name: HostRef | None = None
    #: The block's text in ``loc.file``: offsets of ``failover`` and just past its ``}``
    #: (``tandem export-partner-config`` rewrites only these characters).
    span: tuple[int, int] = (0, 0)


@dataclass(frozen=True, slots=True)
class OptionDefinition:
    """``option NAME code N = TYPE;``: ``format`` is the dhcpd format string (common/tables.c)."""

    space: str
    name: str
    code: int
    format: str
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class OptionSpace:
    """``option space NAME [code width N] [length width N];``."""

    name: str
    code_width: int = 1
    length_width: int = 1
    loc: Location = NOWHERE


@dataclass(frozen=True, slots=True)
class Config:
    """A whole parsed dhcpd.conf (includes resolved)."""

    statements: Block = ()
    subnets: tuple[Subnet, ...] = ()  # every subnet, in file order, shared or not
    shared_networks: tuple[SharedNetwork, ...] = ()
    hosts: tuple[Host, ...] = ()
    classes: tuple[ClientClass, ...] = ()
    failover_peers: tuple[FailoverPeer, ...] = ()
    option_definitions: tuple[OptionDefinition, ...] = ()
    option_spaces: tuple[OptionSpace, ...] = ()
    warnings: tuple[Diagnostic, ...] = ()
    files: tuple[str, ...] = field(default=())  # every file read, the main one first
