"""The lease file's ``billing class "NAME";`` / ``billing subclass "NAME" KEY;`` statement.

dhcpd (db.c write_billing_class) writes it for a lease billed to a ``lease limit`` class while
the lease has not ended, and bills the lease again when it reads the file at start. A subclass
key is written quoted when printable, else as ``aa:bb`` hex (dhcpd's print_hash_string).
"""

from __future__ import annotations

from tandem.store._scan import Scanner, printable, quote

_KINDS = frozenset(("class", "subclass"))


def format_billing(billing: tuple[str, bytes | None]) -> str:
    name, key = billing
    label = quote(name.encode("utf-8", "surrogateescape"))
    if key is None:
        return f"\n  billing class {label};"
    shown = quote(key) if printable(key) and key else key.hex(":")
    return f"\n  billing subclass {label} {shown};"


def read_billing(scan: Scanner) -> tuple[str, bytes | None]:
    """After ``billing``: the class (and subclass key) up to and including the ``;``."""
    sub = scan.word("class or subclass", _KINDS) == "subclass"
    name = scan.string("a class name").decode("utf-8", "surrogateescape")
    key = None
    if sub:
        key = scan.string("a subclass key") if scan.peek() == '"' else scan.hexlist("a key")
    scan.semi()
    return name, key
