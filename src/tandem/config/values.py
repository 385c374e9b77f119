"""Numbers, addresses, host names, hex lists and dates, read the way dhcpd reads them.

dhcpd builds these from several tokens (see ``lexer``): an address is four numbers with
``.`` between them, a MAC is hex numbers with ``:`` between them. ``convert_number`` keeps
dhcpd's rules for bases and widths (``0x`` means hex and a leading ``0`` octal where no
base is implied; a value must fit the width, and negative values are two's complement).
"""

from __future__ import annotations

import calendar
from ipaddress import IPv4Address

from tandem.config.cursor import Cursor
from tandem.config.lexer import Kind, Token

#: dhcpd's MAX_TIME: dates in 2038 or later are "forever".
MAX_TIME = 0x7FFFFFFF


def convert_number(cur: Cursor, tok: Token, base: int, bits: int) -> int:
    """dhcpd's convert_num: the token's value as an unsigned ``bits``-wide integer.

    ``base`` 0 means "decide from the text" (``0x1f`` hex, ``017`` octal, else decimal).
    Values that do not fit are errors, as in dhcpd ("exceeds max for precision"): up to
    2**bits - 1, or down to -2**(bits-1).
    """
    text = tok.text
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    if base == 0:
        if digits.startswith("0x"):
            base, digits = 16, digits[2:]
        elif len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
            base, digits = 8, digits[1:]
        else:
            base = 10
    if not digits:
        raise cur.error_at(tok, f"bogus number {text!r}: write a decimal or 0x-hex number")
    value = 0
    for ch in digits:
        digit = _digit_value(ch)
        if digit is None or digit >= base:
            raise cur.error_at(tok, f"bogus number {text!r}: {ch!r} is not a base-{base} digit")
        value = value * base + digit
    limit = (1 << (bits - 1)) if negative else (1 << bits) - 1
    if value > limit:
        raise cur.error_at(tok, f"{text} does not fit in {bits} bits (maximum {limit})")
    if negative:
        value = (-value) & ((1 << bits) - 1)
    return value


def _digit_value(ch: str) -> int | None:
    if "0" <= ch <= "9":
        return ord(ch) - ord("0")
    if "a" <= ch <= "z":
        return ord(ch) - ord("a") + 10
    if "A" <= ch <= "Z":
        return ord(ch) - ord("A") + 10
    return None


def decimal(cur: Cursor, tok: Token, what: str) -> int:
    """A plain non-negative decimal NUMBER token (dhcpd uses atoi() for these)."""
    if tok.kind is not Kind.NUMBER or not tok.text.isdigit():
        raise cur.error_at(tok, f"expecting a number for {what}, found {tok.describe()}")
    return int(tok.text)


def numeric_aggregate(
    cur: Cursor, separator: str, base: int, bits: int, count: int = 0
) -> list[int]:
    """Numbers separated by ``separator``: exactly ``count`` of them, or any number if 0."""
    out: list[int] = []
    while True:
        if out:
            if not cur.at_punct(separator):
                if count == 0:
                    return out
                tok = cur.peek()
                if not (tok.is_punct("{") or tok.is_punct("}")):
                    cur.next()
                raise cur.error(f"too few numbers: expected {count} separated by '{separator}'")
            cur.next()
        tok = cur.next()
        if tok.kind is Kind.EOF:
            raise cur.error("unexpected end of file: expecting a number")
        if tok.kind is not Kind.NUMBER and not (base == 16 and tok.kind is Kind.NUMBER_OR_NAME):
            raise cur.error_at(tok, f"expecting numeric value, found {tok.describe()}")
        out.append(convert_number(cur, tok, base, bits))
        if len(out) == count:
            return out


def ip_address(cur: Cursor) -> IPv4Address:
    """``N.N.N.N`` (each part a decimal 0..255; ``00`` is fine, as in dhcpd)."""
    parts = numeric_aggregate(cur, ".", 10, 8, 4)
    return IPv4Address(bytes(parts))


def host_name(cur: Cursor) -> str | None:
    """A dotted name of identifiers/numbers (``tftp.example.com``, trailing dot kept)."""
    labels: list[str] = []
    trailing_dot = False
    while True:
        tok = cur.peek()
        if not (tok.is_identifier or tok.kind is Kind.NUMBER):
            break
        cur.next()
        labels.append(tok.text)
        trailing_dot = cur.take_punct(".")
        if not trailing_dot:
            break
    if not labels:
        return None
    return ".".join(labels) + ("." if trailing_dot else "")


def address_or_host_name(cur: Cursor) -> IPv4Address | str:
    """dhcpd's parse_ip_addr_or_hostname: an address, or a host name to look up later."""
    tok = cur.peek()
    if tok.kind is Kind.NUMBER and _is_dotted_quad_ahead(cur):
        return ip_address(cur)
    if tok.is_identifier or tok.kind is Kind.NUMBER:
        name = host_name(cur)
        if name is not None:
            return name
    if not (tok.is_punct("{") or tok.is_punct("}")):
        cur.next()
    raise cur.error(f"expecting IP address or hostname, found {tok.describe()}")


def _is_dotted_quad_ahead(cur: Cursor) -> bool:
    """dhcpd's lookahead: NUMBER '.' NUMBER starts an address; a lone NUMBER is a name."""
    return cur.peek(1).is_punct(".") and cur.peek(2).kind is Kind.NUMBER


def hex_list(cur: Cursor) -> bytes:
    """dhcpd's colon-separated hex list (``01:00:1a:2b``), each part one byte."""
    out = bytearray()
    while True:
        tok = cur.next()
        if tok.kind not in (Kind.NUMBER, Kind.NUMBER_OR_NAME):
            raise cur.error_at(tok, f"expecting hexadecimal number, found {tok.describe()}")
        out.append(convert_number(cur, tok, 16, 8))
        if not cur.take_punct(":"):
            return bytes(out)


def date(cur: Cursor) -> int:
    """dhcpd's date: ``never``, ``epoch N`` or ``W YYYY/MM/DD HH:MM:SS [tzoff]`` (UTC)."""
    if cur.take_word("never"):
        return MAX_TIME
    if cur.take_word("epoch"):
        return decimal(cur, cur.next(), "seconds since the epoch")
    decimal(cur, cur.next(), "the day of the week")
    year = decimal(cur, cur.next(), "the year")
    cur.expect_punct("/", "expected slash separating year from month")
    month = decimal(cur, cur.next(), "the month")
    cur.expect_punct("/", "expected slash separating month from day")
    day = decimal(cur, cur.next(), "the day of the month")
    hour = decimal(cur, cur.next(), "the hour")
    cur.expect_punct(":", "expected colon separating hour from minute")
    minute = decimal(cur, cur.next(), "the minute")
    cur.expect_punct(":", "expected colon separating minute from second")
    second = decimal(cur, cur.next(), "the second")
    tzoff = 0
    if cur.peek().kind is Kind.NUMBER:
        tzoff = int(cur.next().text)
    elif not cur.at_punct(";"):
        cur.next()
        raise cur.error("time zone offset or semicolon expected")
    if year < 1900:
        year += 1900
    if year >= 2038:
        return MAX_TIME
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise cur.error(f"invalid date {year}/{month}/{day}")
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) + tzoff
