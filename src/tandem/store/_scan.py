"""Lexical layer of the lease-file reader: tokens, quoted strings, dates, hex lists.

dhcpd's lexer (common/conflex.c) splits ``2026/11/28`` into NUMBER SLASH NUMBER ...; we read
such runs as one *atom* (a run of characters that are not blanks, braces, semicolons, quotes,
``=``, ``,`` or ``#``) and check its shape with a regular expression. Every dhcpd-written lease
file reads the same either way, and it keeps the reader small and fast.

Bounds (the CVE-2021-25217 lesson: a lease file is input, not trusted memory): a quoted
string or hex list may decode to at most ``MAX_DATA`` bytes, an atom may be at most
``MAX_ATOM`` characters long. Every failure is a ``ScanError`` carrying the offsets of the
offending text, which the parser turns into ``file:line:col`` and uses to tell a torn last
record (the error reaches the end of the file) from garbage in the middle.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

MAX_DATA: Final = 1024
"""Longest decoded string / hex list accepted (bytes)."""
MAX_ATOM: Final = 3 * MAX_DATA
"""Longest bare word accepted (a 1024-byte hex list is 3071 characters)."""

NEVER: Final = 0x7FFFFFFF
"""dhcpd's MAX_TIME: the value it writes as ``never;`` and reads back from it."""

_SKIP = re.compile(r"(?:[ \t\r\n\f\v]+|#[^\n]*)*")
_ATOM = re.compile(r"[^ \t\r\n\f\v{};=,#\"]+")
# The hot path matches "skip blanks/comments, then the token" in one regex call.
_WS_ATOM = re.compile(r"(?:[ \t\r\n\f\v]+|#[^\n]*)*([^ \t\r\n\f\v{};=,#\"]+)")
_WS_CHAR = re.compile(r"(?:[ \t\r\n\f\v]+|#[^\n]*)*(.?)", re.DOTALL)
# dhcpd's own date spelling, read in one step (anything else takes the general path).
_FAST_DATE = re.compile(
    r" ?[0-6] ([0-9]{4})/([0-9]{2})/([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2});"
)
_STRING_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_ESCAPE = re.compile(r"\\(?:([0-3][0-7][0-7])|x([0-9a-fA-F]{2})|(.))", re.DOTALL)
_SIMPLE_ESCAPES: Final = {"t": "\t", "r": "\r", "n": "\n", "b": "\b"}
_HEXLIST = re.compile(r"[0-9a-fA-F]{1,2}(?::[0-9a-fA-F]{1,2})*")
_DAY = re.compile(r"([0-9]{1,6})/([0-9]{1,2})/([0-9]{1,2})")
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})")
_NUMBER = re.compile(r"[0-9]{1,12}")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_SECOND: Final = 253402300799  # 9999-12-31 23:59:59, the last time datetime can hold
_TAIL_JUNK: Final = " \t\r\n\f\v\x00"
_WEEKDAYS: Final = frozenset("0123456")


class ScanError(Exception):
    """A problem at ``text[start:end]``; ``end`` is where the offending token stops."""

    def __init__(self, start: int, end: int, message: str) -> None:
        super().__init__(message)
        self.start = start
        self.end = end
        self.message = message


class Scanner:
    """A cursor over the whole file text with typed ``expect_*`` readers."""

    __slots__ = ("pos", "text", "tok_start")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tok_start = 0  # where the last atom began (for error locations)

    # --- primitives ---------------------------------------------------------------------

    def skip(self) -> int:
        """Skip blanks and ``#`` comments; return the new position."""
        m = _SKIP.match(self.text, self.pos)
        assert m is not None  # the pattern matches the empty string
        self.pos = m.end()
        return self.pos

    def at_eof(self) -> bool:
        return self.skip() >= len(self.text)

    def peek(self) -> str:
        """The next significant character ('' at end of file); moves to it."""
        m = _WS_CHAR.match(self.text, self.pos)
        assert m is not None  # matches the empty string
        self.pos = m.start(1)
        return m.group(1)

    def fail(self, what: str) -> ScanError:
        """An error at the next token: 'expected WHAT, found ...'."""
        pos = self.skip()
        text = self.text
        if pos >= len(text):
            return ScanError(pos, pos, f"unexpected end of file, expected {what}")
        m = _ATOM.match(text, pos)
        end = m.end() if m is not None else pos + 1
        shown = text[pos:end]
        if len(shown) > 40:
            shown = shown[:40] + "..."
        return ScanError(pos, end, f"expected {what}, found {shown!r}")

    def punct(self, char: str, what: str | None = None) -> None:
        """Consume one of ``{ } ; =``."""
        if self.text.startswith(char, self.pos):  # the usual case: no blank before it
            self.pos += 1
            return
        pos = self.skip()
        if self.text.startswith(char, pos):
            self.pos = pos + 1
            return
        raise self.fail(what or repr(char))

    def atom(self, what: str) -> str:
        """Consume a bare word (keyword, number, address, date part, hex list)."""
        m = _WS_ATOM.match(self.text, self.pos)
        if m is None:
            raise self.fail(what)
        start, end = m.span(1)
        if end - start > MAX_ATOM:
            raise ScanError(start, end, f"{what} is longer than {MAX_ATOM} characters")
        self.pos = end
        self.tok_start = start
        return m.group(1)

    def word(self, what: str, choices: frozenset[str] | dict[str, object]) -> str:
        """Consume an atom that must be one of ``choices``."""
        value = self.atom(what)
        if value not in choices:
            raise ScanError(self.tok_start, self.pos, f"expected {what}, found {value[:40]!r}")
        return value

    def semi(self) -> None:
        self.punct(";", "';'")

    def string(self, what: str) -> bytes:
        """Consume a ``"..."`` string, decoding dhcpd's escapes; at most MAX_DATA bytes."""
        pos = self.skip()
        text = self.text
        if not text.startswith('"', pos):
            raise self.fail(what)
        m = _STRING_BODY.match(text, pos + 1)
        assert m is not None  # matches the empty string
        end = m.end()
        if not text.startswith('"', end):  # only the end of the file stops the body early
            raise ScanError(pos, len(text), f"unexpected end of file inside {what}")
        raw = m.group()
        if len(raw) > 4 * MAX_DATA:
            raise ScanError(pos, end + 1, f"{what} is longer than {MAX_DATA} bytes")
        data = _unescape(raw, pos + 1)
        if len(data) > MAX_DATA:
            raise ScanError(pos, end + 1, f"{what} is longer than {MAX_DATA} bytes")
        self.pos = end + 1
        return data

    def hexlist(self, what: str, limit: int = MAX_DATA) -> bytes:
        """Consume ``aa:bb:cc`` (one or two hex digits per octet)."""
        value = self.atom(what)
        start = self.tok_start
        if _HEXLIST.fullmatch(value) is None:
            raise ScanError(start, self.pos, f"expected {what} (hex octets like 01:aa:ff)")
        data = bytes(int(part, 16) for part in value.split(":"))
        if len(data) > limit:
            raise ScanError(start, self.pos, f"{what} is longer than {limit} bytes")
        return data

    def number(self, what: str) -> int:
        value = self.atom(what)
        if _NUMBER.fullmatch(value) is None:
            raise ScanError(self.tok_start, self.pos, f"expected {what} (a decimal number)")
        return int(value)

    def date(self) -> int:
        """Read what dhcpd's print_time writes, including the final ``;``.

        ``W YYYY/MM/DD HH:MM:SS;`` in UTC (the weekday is ignored, as dhcpd does),
        ``never;`` (-> NEVER) or ``epoch N;`` (``db-time-format local``; the comment after it
        is skipped like any comment).
        """
        fast = _FAST_DATE.match(self.text, self.pos)
        if fast is not None:
            key = fast.group()
            value = _date_cache.get(key)
            if value is None:
                value = self._calendar(fast.start(1), fast.end(6), fast.groups())
                if len(_date_cache) >= 4096:
                    _date_cache.clear()
                _date_cache[key] = value
            self.pos = fast.end()
            return value
        first = self.atom("a date")
        start = self.tok_start
        if first == "never":
            self.semi()
            return NEVER
        if first == "epoch":
            value = self.number("seconds since the epoch")
            self.semi()
            return value
        if first not in _WEEKDAYS:
            raise ScanError(start, self.pos, f"expected a weekday digit 0-6, found {first!r}")
        day = _DAY.fullmatch(self.atom("a date YYYY/MM/DD"))
        day_at = self.tok_start
        if day is None:
            raise ScanError(day_at, self.pos, "expected a date YYYY/MM/DD")
        clock = _CLOCK.fullmatch(self.atom("a time HH:MM:SS"))
        if clock is None:
            raise ScanError(self.tok_start, self.pos, "expected a time HH:MM:SS")
        value = self._calendar(day_at, self.pos, day.groups() + clock.groups())
        self.semi()
        return value

    @staticmethod
    def _calendar(start: int, end: int, fields: tuple[str | Any, ...]) -> int:
        year, month, mday, hour, minute, second = (int(f) for f in fields)
        if year <= 1900:  # dhcpd's Y2K workaround: 126/11/28 is 2026/11/28
            year += 1900
        try:
            when = datetime(year, month, mday, hour, minute, second, tzinfo=UTC)
        except ValueError as exc:
            raise ScanError(start, end, f"impossible date or time ({exc})") from None
        value = int((when - _EPOCH).total_seconds())
        if value < 0:
            raise ScanError(start, end, "date before 1970 (lease times count from 1970)")
        return value

    def skip_statement(self, what: str) -> None:
        """Skip one statement we do not model: up to ``;`` or through a balanced ``{...}``.

        Iterative (a depth counter, no recursion), so nesting depth costs nothing.
        """
        depth = 0
        while True:
            char = self.peek()
            if char == "":
                raise self.fail(f"the end of {what}")
            if char == '"':
                self.string("a string")
                continue
            if char in "=,":
                self.pos += 1
                continue
            if char == "{":
                depth += 1
                self.pos += 1
                continue
            if char == "}":
                if depth == 0:
                    raise self.fail(f"the end of {what}")
                depth -= 1
                self.pos += 1
                if depth == 0:
                    return
                continue
            if char == ";":
                self.pos += 1
                if depth == 0:
                    return
                continue
            self.atom("a word")


def _unescape(raw: str, offset: int) -> bytes:
    """Decode dhcpd's string escapes (\\t \\r \\n \\b \\ooo \\xHH, \\c -> c) to bytes.

    Characters stand for themselves as Latin-1 (the journal reads files as Latin-1, so
    every byte is one character); anything beyond U+00FF is taken as UTF-8.
    """
    if "\\" not in raw:
        return _latin1(raw)
    out: list[str] = []
    last = 0
    for m in _ESCAPE.finditer(raw):
        out.append(raw[last : m.start()])
        octal, hexa, other = m.groups()
        if octal is not None:
            out.append(chr(int(octal, 8)))
        elif hexa is not None:
            out.append(chr(int(hexa, 16)))
        elif other in "0123":
            raise ScanError(
                offset + m.start(), offset + m.end(), "bad octal escape (use three digits: \\ooo)"
            )
        elif other == "x":
            raise ScanError(
                offset + m.start(), offset + m.end(), "bad hex escape (use two digits: \\xHH)"
            )
        else:
            out.append(_SIMPLE_ESCAPES.get(other, other))
        last = m.end()
    out.append(raw[last:])
    return _latin1("".join(out))


def _latin1(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return b"".join(_char_bytes(c) for c in text)


def _char_bytes(char: str) -> bytes:
    if ord(char) < 256:
        return bytes((ord(char),))
    return char.encode("utf-8", "replace")


def is_tail(text: str, pos: int) -> bool:
    """True when nothing but blanks and NULs (a crash's zero-filled blocks) follows ``pos``."""
    return text[pos:].strip(_TAIL_JUNK) == ""


# --- writing ------------------------------------------------------------------------------

_PRINTABLE: Final = frozenset(range(0x20, 0x7F))
_QUOTE_TABLE: Final = tuple(
    ("\\" + chr(b)) if b in (0x22, 0x5C) else (chr(b) if b in _PRINTABLE else f"\\{b:03o}")
    for b in range(256)
)
_time_cache: dict[int, str] = {}
_date_cache: dict[str, int] = {}


def quote(data: bytes) -> str:
    """dhcpd's quotify_buf: printable ASCII as is, ``"`` and ``\\`` escaped, others ``\\ooo``."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return '"' + "".join([_QUOTE_TABLE[b] for b in data]) + '"'
    if text.isprintable() and '"' not in text and "\\" not in text:
        return '"' + text + '"'
    return '"' + "".join([_QUOTE_TABLE[b] for b in data]) + '"'


def printable(data: bytes) -> bool:
    """dhcpd's db_printable: all printable ASCII, no ``"`` or ``\\``."""
    return all(b in _PRINTABLE and b not in (0x22, 0x5C) for b in data)


def format_time(t: int) -> str:
    """dhcpd's print_time (UTC format) including the final ``;``.

    ``NEVER`` (and anything too far in the future for a calendar) becomes ``never;``.
    Results are cached: a batch of leases shares a handful of distinct times.
    """
    cached = _time_cache.get(t)
    if cached is not None:
        return cached
    if t >= NEVER and (t == NEVER or t > _LAST_SECOND):
        text = "never;"
    else:
        when = _EPOCH + timedelta(seconds=max(t, 0))
        text = (
            f"{when.isoweekday() % 7} {when.year:04d}/{when.month:02d}/{when.day:02d} "
            f"{when.hour:02d}:{when.minute:02d}:{when.second:02d};"
        )
    if len(_time_cache) >= 4096:
        _time_cache.clear()
    _time_cache[t] = text
    return text
