"""The lease file's ``host NAME { dynamic; ... }`` blocks: dynamic reservations, as dhcpd's
OMAPI writes host objects (server/db.c ``write_host``), and read back.

Written::

    host printer-3 {
      dynamic;
      # tandem-stamp 1764892800 4 192.0.2.1
      hardware ethernet 52:54:00:12:34:56;
      fixed-address 192.0.2.150;
            supersede host-name = "printer-3";
    }

and a deletion as ``host NAME {\\n  dynamic;\\n  deleted;\\n}``. Options are written as
``write_statements`` writes a host's group (indent 8, ``supersede NAME = DATA;`` with the
data as a quoted string when it is printable ASCII, colon-hex otherwise). The stamp (the
order of writers between two Tandem peers, ``core.reservations.Stamp``) is a comment, which
dhcpd's lexer skips: dhcpd 4.4 reads the file (``dhcpd -t -lf FILE``) and serves these hosts.
The reader takes what dhcpd writes too (no stamp: it loses against any stamped change).
"""

from __future__ import annotations

import re
from ipaddress import AddressValueError, IPv4Address
from typing import Final

from tandem.core.reservations import HOST_NAME_CODE, NO_STAMP, Reservation, Stamp, valid_name
from tandem.store._scan import MAX_DATA, ScanError, Scanner, printable, quote
from tandem.wire.options import default_table

__all__ = ["format_host", "read_host"]

_HW_NAMES: Final = {1: "ethernet", 6: "token-ring", 8: "fddi", 32: "infiniband"}
_HW_TYPES: Final = {name: code for code, name in _HW_NAMES.items()}
_STAMP = re.compile(r"[ \t\r\n]*# tandem-stamp ([0-9]{1,12}) ([0-9]{1,12}) ([^\s]{0,64})[ \t]*\n")
_OPTION_WORDS: Final = frozenset({"supersede", "option", "default", "send", "prepend", "append"})


def format_host(rec: Reservation) -> str:
    """One ``host`` block as ``write_host`` prints a dynamic host object."""
    parts = [f"host {rec.name} {{", "\n  dynamic;"]
    if rec.stamp != NO_STAMP:
        t, seq, origin = rec.stamp
        parts.append(f"\n  # tandem-stamp {t} {seq} {origin}")
    if rec.deleted:
        parts.append("\n  deleted;")
    else:
        if rec.hardware is not None:
            htype, chaddr = rec.hardware
            parts.append(f"\n  hardware {_HW_NAMES.get(htype, f'unknown-{htype}')} ")
            parts.append(f"{chaddr.hex(':')};")
        if rec.client_id is not None:
            uid = rec.client_id
            parts.append(f"\n  uid {quote(uid)};" if printable(uid) else f"\n  uid {uid.hex(':')};")
        if rec.address is not None:
            parts.append(f"\n  fixed-address {rec.address};")
        options = list(rec.options)
        if rec.hostname is not None and all(c != HOST_NAME_CODE for c, _ in options):
            options.insert(0, (HOST_NAME_CODE, rec.hostname.encode()))
        table = default_table()
        for code, data in options:
            info = table.by_code("dhcp", code)
            name = info.name if info is not None else f"option-{code}"
            value = f'"{data.decode()}"' if data and printable(data) else data.hex(":")
            parts.append(f"\n        supersede {name} = {value};")
    parts.append("\n}\n")
    return "".join(parts)


def read_host(scan: Scanner, warn: list[tuple[int, str]]) -> Reservation:
    """The body of a ``host`` record (after the keyword); ``warn`` gets (offset, text) for
    statements skipped. Raises ``ScanError``."""
    name_at = scan.skip()
    name = _text(scan.string("host name")) if scan.peek() == '"' else scan.atom("a host name")
    if not valid_name(name):
        raise ScanError(name_at, scan.pos, f"host name {name[:40]!r} cannot be read back")
    scan.punct("{")
    stamp: Stamp = NO_STAMP
    deleted = False
    hardware: tuple[int, bytes] | None = None
    uid: bytes | None = None
    address: IPv4Address | None = None
    options: list[tuple[int, bytes]] = []
    table = default_table()
    while True:
        m = _STAMP.match(scan.text, scan.pos)
        if m is not None:
            stamp = (int(m.group(1)), int(m.group(2)), m.group(3))
            scan.pos = m.end()
        if scan.peek() == "}":
            break
        word = scan.atom("a host statement or '}'")
        at = scan.tok_start
        if word in ("dynamic", "deleted"):
            deleted = deleted or word == "deleted"
            scan.semi()
        elif word == "hardware":
            kind = scan.atom("a hardware type")
            htype = _HW_TYPES.get(kind)
            if htype is None:
                raise ScanError(scan.tok_start, scan.pos, f"unknown hardware type {kind[:40]!r}")
            hardware = (htype, scan.hexlist("hardware address", 16))
            scan.semi()
        elif word == "uid":
            uid = scan.string("uid") if scan.peek() == '"' else scan.hexlist("uid")
            scan.semi()
        elif word == "fixed-address":
            first = scan.atom("an IPv4 address")
            try:
                address = IPv4Address(first)
            except AddressValueError:
                raise ScanError(
                    scan.tok_start, scan.pos, f"{first[:40]!r} is not an IPv4 address"
                ) from None
            while scan.peek() == ",":
                scan.punct(",")
                scan.atom("an IPv4 address")  # dhcpd allows several; a reservation has one
                warn.append((at, f"host {name}: only the first fixed-address is used"))
            scan.semi()
        elif word in _OPTION_WORDS:
            opt = scan.atom("an option name")
            info = table.by_name("dhcp", opt)
            if scan.peek() == "=":
                scan.punct("=")
            data = (
                scan.string("option data")
                if scan.peek() == '"'
                else scan.hexlist("option data", MAX_DATA)
            )
            scan.semi()
            if info is None:
                warn.append((at, f"host {name}: option {opt[:40]!r} is not known: skipped"))
            else:
                options.append((info.code, data))
        else:
            scan.skip_statement(f"the {word} statement")
            warn.append(
                (at, f"host {name}: '{word[:40]}' statement skipped: tandem does not use it")
            )
    scan.punct("}")
    if deleted:
        return Reservation(name, deleted=True, stamp=stamp)
    hostname: str | None = None
    kept: list[tuple[int, bytes]] = []
    for code, data in options:
        if code == HOST_NAME_CODE and hostname is None:
            hostname = _text(data)
        else:
            kept.append((code, data))
    return Reservation(name, hardware, uid, address, hostname, tuple(kept), False, stamp)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")
