"""dhcpd.leases text <-> records, byte-compatible with ISC dhcpd 4.4 (no file I/O here).

The writer reproduces server/db.c (``write_lease``, ``write_failover_state``,
``write_server_duid``, ``new_lease_file``) line for line, so a file we write is one dhcpd,
dhcpd-pools and other tools read, and a file dhcpd wrote formats back to the same bytes.

The reader follows server/confpars.c (``lease_file_subparse``, ``parse_lease_declaration``,
``parse_failover_state_declaration``) with three deliberate differences:

* it is strict: where dhcpd logs "possibly corrupt lease file" and carries on, we stop
  with a ``LeaseFileError`` naming file, line and column;
* except for the last record: a record cut short by the end of the file (a crash during an
  append) is dropped with a warning, and everything before it is kept;
* it is bounded (strings and hex lists of at most 1024 bytes) and iterative.

Strings (client-hostname, ``set`` values) are bytes on disk; the ``Lease`` model holds them
as ``str`` decoded as UTF-8 with ``surrogateescape``, which round-trips any byte string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Final, NamedTuple

from tandem.core.lease import BindingState, FailoverStateRecord, Lease
from tandem.core.reservations import Reservation
from tandem.store._scan import (
    MAX_DATA,
    NEVER,
    ScanError,
    Scanner,
    format_time,
    is_tail,
    printable,
    quote,
)
from tandem.store.leasebilling import format_billing, read_billing
from tandem.store.leasehosts import format_host, read_host

__all__ = [
    "FAILOVER_STATE_NAMES",
    "NEVER",
    "FailoverStateRecord",
    "LeaseFileContents",
    "LeaseFileError",
    "LeaseFileReader",
    "ParsedRecord",
    "ServerDuid",
    "format_failover_state",
    "format_header",
    "format_lease",
    "format_record",
    "format_server_duid",
    "parse_leases",
]

DEFAULT_WRITER: Final = "tandem"
"""What ``format_header`` names as the writer (dhcpd writes ``isc-dhcp-VERSION``)."""

# fmt: off
FAILOVER_STATE_NAMES: Final = frozenset({
    "unknown-state", "partner-down", "normal", "communications-interrupted",
    "resolution-interrupted", "potential-conflict", "recover", "recover-wait", "recover-done",
    "shutdown", "paused", "startup", "conflict-done",
})
# fmt: on
"""The words dhcpd reads after ``my state`` / ``partner state`` (confpars.c)."""

_HW_NAMES: Final = {1: "ethernet", 6: "token-ring", 8: "fddi", 32: "infiniband"}
_HW_TYPES: Final = {name: code for code, name in _HW_NAMES.items()}
_HW_UNKNOWN = re.compile(r"unknown-([0-9]{1,3})")
_MAX_CHADDR: Final = 16  # dhcpd's hbuf holds a type byte + 16 address bytes
_VAR_NAME = re.compile(r"[A-Za-z0-9_-]+")
_VENDOR_CLASS: Final = "vendor-class-identifier"
_STATE_WORDS: Final = {s.keyword: s for s in BindingState}
_LEGACY_STATES: Final = frozenset({"bootp", "reserved"})
_TIME_FIELDS: Final = ("starts", "ends", "tstp", "tsfp", "atsfp", "cltt")
_BYTE_ORDERS: Final = frozenset({"little-endian", "big-endian"})
_SKIPPED_TOP: Final = {
    "group": "group declaration (OMAPI)",
    "class": "class declaration",
    "subclass": "subclass declaration",
    "ia-na": "DHCPv6 ia-na record",
    "ia-ta": "DHCPv6 ia-ta record",
    "ia-pd": "DHCPv6 ia-pd record",
    "lease6": "DHCPv6 lease record",
}


class LeaseFileError(Exception):
    """A lease file that cannot be read safely, located as ``file:line:col``."""

    def __init__(self, filename: str, line: int, col: int, message: str) -> None:
        super().__init__(f"{filename}:{line}:{col}: {message}")
        self.filename = filename
        self.line = line
        self.col = col
        self.message = message


@dataclass(slots=True, frozen=True)
class ServerDuid:
    """The ``server-duid "...";`` record dhcpd 4.4 writes even for DHCPv4."""

    duid: bytes


Record = Lease | FailoverStateRecord | ServerDuid | Reservation


class ParsedRecord(NamedTuple):
    """One record and where it sits in the text (``text[start:end]``)."""

    record: Record
    start: int
    end: int


@dataclass(slots=True)
class LeaseFileContents:
    """What a lease file says once replayed: the last record per address / peer wins."""

    leases: dict[IPv4Address, Lease] = field(default_factory=dict)
    failover_states: dict[str, FailoverStateRecord] = field(default_factory=dict)
    hosts: dict[str, Reservation] = field(default_factory=dict)  # dynamic hosts, last wins
    warnings: list[str] = field(default_factory=list)
    server_duid: bytes | None = None
    byte_order: str | None = None
    records: int = 0
    """Lease records read, superseded ones included (a measure of journal growth)."""
    torn_at: int | None = None
    """Offset where a torn last record starts (the journal truncates the file there)."""


# --- writing ------------------------------------------------------------------------------


def format_header(writer: str = DEFAULT_WRITER, byte_order: str = "little-endian") -> str:
    """The lines ``new_lease_file`` puts at the top of a fresh file."""
    return (
        "# The format of this file is documented in the dhcpd.leases(5) manual page.\n"
        f"# This lease file was written by {writer}\n\n"
        "# authoring-byte-order entry is generated, DO NOT DELETE\n"
        f"authoring-byte-order {byte_order};\n\n"
    )


def _bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate outside the escape range
        return text.encode("utf-8", "replace")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


# ``BindingState.keyword`` is a property (two Python calls); the writer runs per lease.
_KEYWORDS: Final = {state: state.keyword for state in BindingState}


def format_lease(lease: Lease) -> str:
    """A ``lease A.B.C.D { ... }`` block exactly as dhcpd 4.4 ``write_lease`` prints it.

    Times of ``None`` or 0 are omitted (dhcpd writes only non-zero ones); an ACTIVE lease
    whose ``ends`` is ``None`` is infinite and gets ``ends never;``. Next/rewind states are
    written only when set and different from the current state. A client-hostname that
    is not plain printable ASCII is left out, as dhcpd does; so is anything the reader
    would refuse (hardware type > 255, strings over 1024 bytes; chaddr is cut to 16).
    """
    parts = [f"lease {lease.address} {{"]
    if lease.starts is not None and lease.starts > 0:
        parts.append("\n  starts " + format_time(lease.starts))
    ends = lease.ends
    if ends is None:
        if lease.binding_state is BindingState.ACTIVE:
            parts.append("\n  ends never;")
    elif ends > 0:
        parts.append("\n  ends " + format_time(ends))
    for label, stamp in (
        ("tstp", lease.tstp),
        ("tsfp", lease.tsfp),
        ("atsfp", lease.atsfp),
        ("cltt", lease.cltt),
    ):
        if stamp is not None and stamp > 0:
            parts.append(f"\n  {label} {format_time(stamp)}")
    state = lease.binding_state
    parts.append(f"\n  binding state {_KEYWORDS[state]};")
    nxt = lease.next_binding_state
    if nxt is not None and nxt is not state:
        parts.append(f"\n  next binding state {_KEYWORDS[nxt]};")
    rewind = lease.rewind_binding_state
    if rewind is not None and rewind is not state:
        parts.append(f"\n  rewind binding state {rewind.keyword};")
    if lease.bootp:
        parts.append("\n  dynamic-bootp;")
    if lease.billing is not None and state is BindingState.ACTIVE:  # dhcpd: while not ended
        parts.append(format_billing(lease.billing))
    # Guards below: never write what no reader (ours, dhcpd's 17-byte hbuf) takes back.
    # None of it can come from a DHCP packet (chaddr is 16 bytes, options 255).
    if lease.hardware is not None and 0 <= lease.hardware[0] <= 255:
        htype, chaddr = lease.hardware
        name = _HW_NAMES.get(htype) or f"unknown-{htype}"
        octets = chaddr[:_MAX_CHADDR].hex(":")
        parts.append(f"\n  hardware {name} {octets};")
    if lease.uid and len(lease.uid) <= MAX_DATA:
        parts.append(f"\n  uid {quote(lease.uid)};")
    vci = lease.vendor_class_identifier
    if vci is not None:
        parts.append(_set_line(_VENDOR_CLASS, vci))
    for name, value in lease.variables.items():
        if (name == _VENDOR_CLASS and vci is not None) or _VAR_NAME.fullmatch(name) is None:
            continue  # the field wins; a name dhcpd could not read back is never written
        parts.append(_set_line(name, value))
    hostname = lease.client_hostname
    if hostname is not None and len(hostname) <= MAX_DATA and printable(_bytes(hostname)):
        parts.append(f'\n  client-hostname "{hostname}";')
    parts.append("\n}\n")
    return "".join(parts)


def _set_line(name: str, value: str) -> str:
    data = _bytes(value)
    return f"\n  set {name} = {quote(data)};" if len(data) <= MAX_DATA else ""


def _state_line(side: str, state: str, stos: int | None) -> str:
    if stos is None:
        return f"\n  {side} state {state};"
    return f"\n  {side} state {state} at {format_time(stos)}"


def format_failover_state(rec: FailoverStateRecord) -> str:
    """The record ``write_failover_state`` prints (it starts with an empty line)."""
    return (
        f"\nfailover peer {quote(_bytes(rec.name))} state {{"
        + _state_line("my", rec.my_state, rec.my_stos)
        + _state_line("partner", rec.partner_state, rec.partner_stos)
        + (f"\n  mclt {rec.mclt};" if rec.mclt is not None else "")
        + "\n}\n"
    )


def format_server_duid(duid: bytes) -> str:
    """``server-duid "...";`` followed by an empty line, as ``write_server_duid``."""
    return f"server-duid {quote(duid)};\n\n"


def format_record(record: Record) -> str:
    """Format any record ``LeaseFileReader.records`` yields."""
    if isinstance(record, Lease):
        return format_lease(record)
    if isinstance(record, FailoverStateRecord):
        return format_failover_state(record)
    if isinstance(record, Reservation):
        return format_host(record)
    return format_server_duid(record.duid)


# --- reading ------------------------------------------------------------------------------


class LeaseFileReader:
    """Reads records in file order; ``parse_leases`` replays them into final state.

    After ``records()`` is exhausted, ``warnings``, ``torn_at`` and ``byte_order`` say what
    else was found.
    """

    def __init__(self, text: str, filename: str) -> None:
        self._scan = Scanner(text)
        self._text = text
        self.filename = filename
        self.warnings: list[str] = []
        self.torn_at: int | None = None
        self.byte_order: str | None = None
        self._last_state: dict[str, FailoverStateRecord] = {}

    def location(self, pos: int) -> tuple[int, int]:
        """(line, column), both from 1, of a text offset."""
        line = self._text.count("\n", 0, pos) + 1
        col = pos - (self._text.rfind("\n", 0, pos) + 1) + 1
        return line, col

    def _warn(self, pos: int, message: str) -> None:
        line, col = self.location(pos)
        self.warnings.append(f"{self.filename}:{line}:{col}: {message}")

    def records(self) -> Iterator[ParsedRecord]:
        scan = self._scan
        while not scan.at_eof():
            start = scan.pos
            try:
                record = self._top_level(start)
            except ScanError as exc:
                if is_tail(self._text, exc.end):
                    self.torn_at = start
                    self._warn(
                        start,
                        f"last record is incomplete ({exc.message}); a write was cut short "
                        "(crash or full disk): the record is ignored, earlier ones are kept",
                    )
                    return
                line, col = self.location(exc.start)
                hint = (
                    f"; the lease file is damaged here: repair or remove this record "
                    f"(the file before the last rewrite is kept as {self.filename}~)"
                )
                raise LeaseFileError(self.filename, line, col, exc.message + hint) from None
            if record is not None:
                yield ParsedRecord(record, start, scan.pos)

    def _top_level(self, start: int) -> Record | None:
        scan = self._scan
        keyword = scan.atom("a lease-file record (lease, failover, server-duid, ...)")
        if keyword == "lease":
            return self._lease()
        if keyword == "failover":
            return self._failover()
        if keyword == "host":
            notes: list[tuple[int, str]] = []
            host = read_host(scan, notes)
            for at, text in notes:
                self._warn(at, text)
            return host
        if keyword == "server-duid":
            duid = scan.string("server DUID") if scan.peek() == '"' else scan.hexlist("DUID")
            scan.semi()
            if len(duid) <= 2:
                raise ScanError(
                    start, scan.pos, "server-duid is too short (a DUID has at least 3 bytes)"
                )
            return ServerDuid(duid)
        if keyword == "authoring-byte-order":
            self.byte_order = scan.word("little-endian or big-endian", _BYTE_ORDERS)
            scan.semi()
            return None
        what = _SKIPPED_TOP.get(keyword)
        if what is None:
            raise ScanError(
                start,
                scan.pos,
                f"unknown record {keyword[:40]!r} (expected lease, failover peer, "
                "server-duid, authoring-byte-order, host, class, ia-na)",
            )
        scan.skip_statement(what)
        self._warn(start, f"{what} skipped: tandem does not use it")
        return None

    def _failover(self) -> FailoverStateRecord:
        scan = self._scan
        scan.word("'peer'", frozenset({"peer"}))
        if scan.peek() == '"':
            name = _text(scan.string("failover peer name"))
        else:
            name = scan.atom("failover peer name")
        scan.word("'state'", frozenset({"state"}))
        scan.punct("{")
        prev = self._last_state.get(name)
        my, my_at = (prev.my_state, prev.my_stos) if prev else ("unknown-state", None)
        partner, partner_at = (
            (prev.partner_state, prev.partner_stos) if prev else ("unknown-state", None)
        )
        mclt = prev.mclt if prev else None
        while scan.peek() != "}":
            side = scan.word("my, partner, mclt or '}'", frozenset({"my", "partner", "mclt"}))
            if side == "mclt":
                mclt = scan.number("MCLT seconds")
                scan.semi()
                continue
            scan.word("'state'", frozenset({"state"}))
            state = scan.word("a failover state name", FAILOVER_STATE_NAMES)
            if scan.peek() == ";":
                scan.semi()
                stos = None
            else:
                scan.word("'at' or ';'", frozenset({"at"}))
                stos = scan.date()
            if side == "my":
                my, my_at = state, stos
            else:
                partner, partner_at = state, stos
        scan.punct("}")
        rec = FailoverStateRecord(name, my, my_at, partner, partner_at, mclt)
        self._last_state[name] = rec
        return rec

    def _lease(self) -> Lease:
        scan = self._scan
        word = scan.atom("an IPv4 address")
        at = scan.tok_start
        try:
            address = IPv4Address(word)
        except ValueError:
            raise ScanError(at, scan.pos, f"{word[:40]!r} is not an IPv4 address") from None
        scan.punct("{")
        lease = Lease(address)
        seen_state = False
        while scan.peek() != "}":
            keyword = scan.atom("a lease statement or '}'")
            at = scan.tok_start
            handler = _LEASE_STATEMENTS.get(keyword)
            if handler is None:
                raise ScanError(at, scan.pos, f"unknown statement {keyword[:40]!r} in {address}")
            if handler(self, lease, keyword, at):
                seen_state = True
        scan.punct("}")
        _settle(lease, seen_state)
        return lease

    # --- lease statements (each returns True when it set the binding state) -------------

    def _time(self, lease: Lease, keyword: str, at: int) -> bool:
        setattr(lease, keyword, self._scan.date())
        return False

    def _ignored_time(self, lease: Lease, keyword: str, at: int) -> bool:
        self._scan.date()
        return False

    def _binding(self, lease: Lease, keyword: str, at: int) -> bool:
        scan = self._scan
        if keyword != "binding":
            scan.word("'binding'", frozenset({"binding"}))
        scan.word("'state'", frozenset({"state"}))
        word = scan.atom("a binding state")
        word_at = scan.tok_start
        state = _STATE_WORDS.get(word)
        if state is None:
            if word not in _LEGACY_STATES:
                raise ScanError(word_at, scan.pos, f"unknown binding state {word[:40]!r}")
            state = BindingState.ACTIVE
            if word == "bootp":
                lease.bootp = True
            else:
                self._warn(word_at, f"{lease.address}: 'reserved' leases are not supported")
        scan.semi()
        if keyword == "next":
            lease.next_binding_state = state
        elif keyword == "rewind":
            lease.rewind_binding_state = state
        else:
            lease.binding_state = state
            return True
        return False

    def _abandoned(self, lease: Lease, keyword: str, at: int) -> bool:
        self._scan.semi()
        lease.binding_state = BindingState.ABANDONED
        lease.next_binding_state = BindingState.ABANDONED
        return True

    def _flag(self, lease: Lease, keyword: str, at: int) -> bool:
        self._scan.semi()
        if keyword == "dynamic-bootp":
            lease.bootp = True
        else:
            self._warn(at, f"{lease.address}: 'reserved' leases are not supported")
        return False

    def _hardware(self, lease: Lease, keyword: str, at: int) -> bool:
        scan = self._scan
        name = scan.atom("a hardware type")
        type_at = scan.tok_start
        htype = _HW_TYPES.get(name)
        if htype is None:
            m = _HW_UNKNOWN.fullmatch(name)
            if m is None or int(m.group(1)) > 255:
                raise ScanError(type_at, scan.pos, f"unknown hardware type {name[:40]!r}")
            htype = int(m.group(1))
        chaddr = b"" if scan.peek() == ";" else scan.hexlist("hardware address", _MAX_CHADDR)
        scan.semi()
        lease.hardware = (htype, chaddr)
        return False

    def _uid(self, lease: Lease, keyword: str, at: int) -> bool:
        scan = self._scan
        uid = scan.string("uid") if scan.peek() == '"' else scan.hexlist("uid")
        scan.semi()
        lease.uid = uid or None
        return False

    def _hostname(self, lease: Lease, keyword: str, at: int) -> bool:
        scan = self._scan
        if scan.peek() == '"':
            lease.client_hostname = _text(scan.string("client-hostname"))
        else:
            lease.client_hostname = scan.atom("a host name")
        scan.semi()
        return False

    def _set(self, lease: Lease, keyword: str, at: int) -> bool:
        scan = self._scan
        if keyword == "set":
            name = scan.atom("a variable name")
            name_at = scan.tok_start
            if _VAR_NAME.fullmatch(name) is None:
                raise ScanError(name_at, scan.pos, f"{name[:40]!r} can't be a variable name")
            scan.punct("=", "'=' in set statement")
        else:  # the legacy forms `ddns-fwd-name "x";` / `ddns-rev-name "x";`
            name = keyword
        if scan.peek() != '"':
            value_at = scan.pos
            scan.skip_statement("the set statement")
            self._warn(value_at, f"{lease.address}: non-string value of {name!r} skipped")
            return False
        value = _text(scan.string(f"value of {name}"))
        scan.semi()
        if name == _VENDOR_CLASS:
            lease.vendor_class_identifier = value
        else:
            lease.variables[name] = value
        return False

    def _skipped(self, lease: Lease, keyword: str, at: int) -> bool:
        self._scan.skip_statement(f"the {keyword} statement")
        self._warn(at, f"{lease.address}: '{keyword}' statement skipped: tandem does not use it")
        return False

    def _billing(self, lease: Lease, keyword: str, at: int) -> bool:
        lease.billing = read_billing(self._scan)
        return False

    def _class(self, lease: Lease, keyword: str, at: int) -> bool:
        self._scan.atom("a class name")
        self._scan.semi()
        return False


def _settle(lease: Lease, seen_state: bool) -> None:
    """Apply dhcpd's defaults for what the block left out (see module docstring)."""
    if not seen_state:
        # dhcpd compares ends with the current time; the reader has no clock, so an old
        # lease becomes ACTIVE-but-ended and the core's expiry handles it.
        lease.binding_state = (
            BindingState.ACTIVE if lease.ends is not None and lease.ends > 0 else BindingState.FREE
        )
    if lease.binding_state is BindingState.ACTIVE:
        if lease.ends == NEVER:
            lease.ends = None  # the model's spelling of an infinite lease
        elif lease.ends is None:
            lease.ends = 0  # no end written: dhcpd reads 0 (ended), not "never"


_Handler = Callable[[LeaseFileReader, Lease, str, int], bool]
_LEASE_STATEMENTS: Final[dict[str, _Handler]] = {
    **{name: LeaseFileReader._time for name in _TIME_FIELDS},
    "timestamp": LeaseFileReader._ignored_time,
    "binding": LeaseFileReader._binding,
    "next": LeaseFileReader._binding,
    "rewind": LeaseFileReader._binding,
    "abandoned": LeaseFileReader._abandoned,
    "dynamic-bootp": LeaseFileReader._flag,
    "reserved": LeaseFileReader._flag,
    "hardware": LeaseFileReader._hardware,
    "uid": LeaseFileReader._uid,
    "client-hostname": LeaseFileReader._hostname,
    "set": LeaseFileReader._set,
    "ddns-fwd-name": LeaseFileReader._set,
    "ddns-rev-name": LeaseFileReader._set,
    "class": LeaseFileReader._class,
    "billing": LeaseFileReader._billing,
    "on": LeaseFileReader._skipped,
    "option": LeaseFileReader._skipped,
    "supersede": LeaseFileReader._skipped,
}


def parse_leases(text: str, filename: str) -> LeaseFileContents:
    """Replay a whole lease file: later records for an address (or peer) replace earlier ones.

    Raises ``LeaseFileError`` (and nothing else) for anything but a torn last record.
    ``text`` should be the file decoded as Latin-1 (one character per byte).
    """
    reader = LeaseFileReader(text, filename)
    contents = LeaseFileContents()
    leases = contents.leases
    states = contents.failover_states
    count = 0
    for record, _start, _end in reader.records():
        if isinstance(record, Lease):
            leases[record.address] = record
            count += 1
        elif isinstance(record, FailoverStateRecord):
            states[record.name] = record
        elif isinstance(record, Reservation):
            contents.hosts[record.name] = record
        else:
            contents.server_duid = record.duid
    contents.records = count
    contents.warnings = reader.warnings
    contents.torn_at = reader.torn_at
    contents.byte_order = reader.byte_order
    return contents
