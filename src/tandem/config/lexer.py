"""The dhcpd.conf tokenizer, behaving like ISC dhcpd's ``common/conflex.c``.

dhcpd's lexer is tiny and knows no dotted quads or hex strings: ``192.0.2.1`` is the
four numbers 192, 0, 2, 1 separated by ``.`` tokens and ``01:ab`` is a number, ``:`` and a
"number or name". The parser glues those pieces together, which is why dhcpd accepts the
netmask ``255.255.255.00`` (the last part is simply the number 0). We keep exactly that
token model so that what dhcpd accepts, we accept, and vice versa.

Input is handled as bytes (decoded as latin-1 so that one character is one byte): dhcpd
counts columns in bytes, and string constants are byte strings on the wire.

Columns follow dhcpd's own bookkeeping, so that our ``line:col`` matches the caret that
``dhcpd -t`` prints. dhcpd records a token's column *before* re-reading a character it had
pushed back, and a pushed-back character was already counted; so a token that directly
follows whitespace or a name/number is reported one column to the right of where it
starts, while a token after punctuation, a string or a comment is reported where it starts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tandem.config.errors import ConfigError
from tandem.config.model import Location

#: dhcpd's token buffer (``struct parse.tokbuf``) is 1500 bytes; longer tokens are errors.
TOKEN_BUFFER = 1500

_SPACE = frozenset(" \t\n\v\f\r")
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_ALPHA = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NAME_CHARS = _ALPHA | _DIGITS | frozenset("-_")
_SIMPLE_ESCAPES = {"t": "\t", "r": "\r", "n": "\n", "b": "\b"}


class Kind(enum.Enum):
    """Token classes. Keywords are NAME/NUMBER_OR_NAME tokens; the parser decides."""

    NUMBER = "number"  # only digits (or a leading '-')
    NUMBER_OR_NAME = "number-or-name"  # only hex digits, e.g. "ab", "1f", "0x1f"
    NAME = "name"
    STRING = "string"
    PUNCT = "punct"  # one character: ; { } ( ) , . : = ! ~ + - * / % & | ^ and others
    EOF = "eof"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # for STRING: the unescaped value, one char per byte (latin-1)
    loc: Location
    #: Offsets of the token's first character and just past its last, in the file's text
    #: (one character per byte): what config/sides.py rewrites a peer block by.
    start: int = 0
    end: int = 0

    @property
    def is_identifier(self) -> bool:
        """dhcpd's ``is_identifier``: names, keywords and hex-looking words, not numbers."""
        return self.kind in (Kind.NAME, Kind.NUMBER_OR_NAME)

    @property
    def word(self) -> str:
        """The lower-cased text, for case-insensitive keyword comparison (dhcpd's intern)."""
        return self.text.lower() if self.is_identifier else ""

    def is_punct(self, char: str) -> bool:
        return self.kind is Kind.PUNCT and self.text == char

    @property
    def raw(self) -> bytes:
        """The token text as the bytes that were written in the file."""
        return self.text.encode("latin-1")

    def describe(self) -> str:
        if self.kind is Kind.EOF:
            return "end of file"
        if self.kind is Kind.STRING:
            return f'string "{self.text}"'
        return f"'{self.text}'"


class Lexer:
    """Turns one file's text into tokens; see the module docstring for the rules."""

    def __init__(self, text: str, filename: str) -> None:
        self._text = text
        self._file = filename
        self._pos = 0
        self._line = 1
        self._lpos = 1  # dhcpd's column counter
        self._pushed_back = False  # dhcpd's ugflag
        self._last_loc = Location(filename, 1, 1)

    def _get(self) -> str:
        """Read one character ('' at end of input), keeping dhcpd's line/column counters."""
        if self._pos >= len(self._text):
            return ""
        c = self._text[self._pos]
        self._pos += 1
        if self._pushed_back:
            self._pushed_back = False
        elif c == "\n":
            self._line += 1
            self._lpos = 1
        else:
            self._lpos += 1
        return c

    def _unget(self, c: str) -> None:
        if c:
            self._pos -= 1
            self._pushed_back = True

    def _error(self, loc: Location, message: str) -> ConfigError:
        return ConfigError.at(loc, message)

    def next(self) -> Token:
        """The next token; at the end, EOF tokens forever (placed at the last token)."""
        while True:
            loc = Location(self._file, self._line, self._lpos)
            start = self._pos
            c = self._get()
            if c == "":
                return Token(Kind.EOF, "", self._last_loc)
            if c in _SPACE:
                self._skip_space()
                continue
            if c == "#":
                while c not in ("", "\n"):
                    c = self._get()
                continue
            if c == '"':
                kind, text = Kind.STRING, self._read_string(loc)
            elif c in _DIGITS or c == "-":
                kind, text = self._read_number(c, loc)
            elif c in _ALPHA:
                kind, text = self._read_name(c, loc)
            else:
                kind, text = Kind.PUNCT, c
            self._last_loc = loc
            return Token(kind, text, loc, start, self._pos)

    def _skip_space(self) -> None:
        while True:
            c = self._get()
            if c == "":
                return
            if c not in _SPACE:
                self._unget(c)
                return

    def _read_string(self, loc: Location) -> str:
        out: list[str] = []
        while True:
            if len(out) >= TOKEN_BUFFER:
                raise self._error(loc, "string constant is longer than 1500 bytes")
            c = self._get()
            if c == "":
                raise self._error(loc, "unterminated string: end of file in string constant")
            if c == '"':
                return "".join(out)
            if c != "\\":
                out.append(c)
                continue
            c = self._get()
            if c == "":
                raise self._error(loc, "unterminated string: end of file in string constant")
            if c in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[c])
            elif c == "x":
                out.append(self._read_hex_escape(loc))
            elif c in "0123":
                out.append(self._read_octal_escape(c, loc))
            else:
                out.append(c)

    def _read_hex_escape(self, loc: Location) -> str:
        value = 0
        for _ in range(2):
            c = self._get()
            if c not in _HEX:
                raise self._error(loc, f"invalid hex digit {c!r} in \\x escape: write \\xHH")
            value = value * 16 + int(c, 16)
        return chr(value)

    def _read_octal_escape(self, first: str, loc: Location) -> str:
        value = int(first)
        for _ in range(2):
            c = self._get()
            if c == "" or c not in "01234567":  # "" (end of file) is "in" every str
                # dhcpd warns here, or (after a bare "\0") silently eats the next
                # characters in an odd way; both are mistakes worth stopping on.
                raise self._error(
                    loc, f"invalid octal escape before {c!r}: write three octal digits (\\ooo)"
                )
            value = value * 8 + int(c)
        return chr(value & 0xFF)

    def _read_number(self, first: str, loc: Location) -> tuple[Kind, str]:
        """dhcpd's read_number: NUMBER -> NUMBER_OR_NAME -> NAME, never demoted."""
        buf = [first]
        kind = Kind.NUMBER
        while True:
            c = self._get()
            if c == "":
                break
            if kind is Kind.NUMBER and c in _DIGITS:
                pass
            elif (kind is not Kind.NAME and c in _HEX) or (
                len(buf) == 2 and c in _HEX and buf[0] == "0" and buf[1] in "xX"
            ):
                kind = Kind.NUMBER_OR_NAME
            elif c in _NAME_CHARS:
                kind = Kind.NAME
            else:
                self._unget(c)
                break
            buf.append(c)
            if len(buf) >= TOKEN_BUFFER:
                raise self._error(loc, "numeric token is longer than 1500 bytes")
        return kind, "".join(buf)

    def _read_name(self, first: str, loc: Location) -> tuple[Kind, str]:
        buf = [first]
        kind = Kind.NUMBER_OR_NAME if first in _HEX else Kind.NAME
        while True:
            c = self._get()
            if c == "" or c not in _NAME_CHARS:
                self._unget(c)
                break
            if c not in _HEX:
                kind = Kind.NAME
            buf.append(c)
            if len(buf) >= TOKEN_BUFFER:
                raise self._error(loc, "name is longer than 1500 bytes")
        return kind, "".join(buf)


def tokenize(text: str, filename: str = "<string>") -> list[Token]:
    """All tokens of ``text`` up to and including the EOF token (handy for tests)."""
    lexer = Lexer(text, filename)
    out: list[Token] = []
    while True:
        tok = lexer.next()
        out.append(tok)
        if tok.kind is Kind.EOF:
            return out
