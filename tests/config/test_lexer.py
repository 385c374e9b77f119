"""The tokenizer: dhcpd's token classes, string escapes and its column bookkeeping."""

from __future__ import annotations

import pytest

from tandem.config import ConfigError
from tandem.config.lexer import Kind, tokenize


def kinds(text: str) -> list[tuple[Kind, str]]:
    return [(t.kind, t.text) for t in tokenize(text)[:-1]]


def test_dotted_quad_is_numbers_and_dots() -> None:
    # dhcpd's lexer has no address token; "00" is just the number 0 later on.
    assert kinds("255.255.255.00") == [
        (Kind.NUMBER, "255"),
        (Kind.PUNCT, "."),
        (Kind.NUMBER, "255"),
        (Kind.PUNCT, "."),
        (Kind.NUMBER, "255"),
        (Kind.PUNCT, "."),
        (Kind.NUMBER, "00"),
    ]


def test_number_name_promotion() -> None:
    assert kinds("42 -5 1a ab 0x1F 0xZ 7up deny foo-bar_9") == [
        (Kind.NUMBER, "42"),
        (Kind.NUMBER, "-5"),
        (Kind.NUMBER_OR_NAME, "1a"),
        (Kind.NUMBER_OR_NAME, "ab"),
        (Kind.NUMBER_OR_NAME, "0x1F"),
        (Kind.NAME, "0xZ"),
        (Kind.NAME, "7up"),
        (Kind.NAME, "deny"),
        (Kind.NAME, "foo-bar_9"),
    ]


def test_colon_hex_list_tokens() -> None:
    assert kinds("00:1a:ff") == [
        (Kind.NUMBER, "00"),
        (Kind.PUNCT, ":"),
        (Kind.NUMBER_OR_NAME, "1a"),
        (Kind.PUNCT, ":"),
        (Kind.NUMBER_OR_NAME, "ff"),
    ]


def test_string_escapes() -> None:
    (tok,) = tokenize(r'"a\tb\n\x41\101\"q\\z\r\b\0000"')[:-1]
    assert tok.kind is Kind.STRING
    assert tok.raw == b'a\tb\nAA"q\\z\r\x08\x000'


def test_string_keeps_non_ascii_bytes() -> None:
    (tok,) = tokenize('"caf\xc3\xa9"')[:-1]  # UTF-8 bytes as latin-1 characters
    assert tok.raw == "café".encode()


def test_comments_and_punctuation() -> None:
    assert kinds("x; # b c\n{ } = ! ~ ,") == [
        (Kind.NAME, "x"),
        (Kind.PUNCT, ";"),
        (Kind.PUNCT, "{"),
        (Kind.PUNCT, "}"),
        (Kind.PUNCT, "="),
        (Kind.PUNCT, "!"),
        (Kind.PUNCT, "~"),
        (Kind.PUNCT, ","),
    ]


def test_columns_follow_dhcpd() -> None:
    # Checked against the caret of `dhcpd -t`: a token right after whitespace or a
    # name/number is one column to the right; after punctuation, strings or comments
    # it is where it starts. The first token of a file is exact.
    toks = tokenize('subnet 10.0.0.x netmask\n  option "a";;\n# c\nx')
    where = [(t.text, t.loc.line, t.loc.col) for t in toks]
    assert where[0] == ("subnet", 1, 1)
    assert where[1] == ("10", 1, 9)  # starts at 8
    assert where[2] == (".", 1, 11)  # starts at 10, after a number
    assert where[7] == ("x", 1, 15)  # after punctuation: exact
    assert ("option", 2, 4) in where  # starts at 3
    assert (";", 2, 13) in where and (";", 2, 14) in where  # after a string: exact
    assert where[-2] == ("x", 4, 1)  # after a comment line: exact


def test_eof_is_placed_at_last_token() -> None:
    toks = tokenize("a {\n")
    assert toks[-1].kind is Kind.EOF
    assert toks[-1].loc == toks[-2].loc


@pytest.mark.parametrize(
    ("text", "col"),
    [('x "never closed', 4), (r'"bad \xg"', 1), (r'"\08"', 1), ("a" * 1600, 1)],
)
def test_lexical_errors(text: str, col: int) -> None:
    with pytest.raises(ConfigError) as info:
        tokenize(text, "f.conf")
    assert info.value.loc.line == 1
    assert info.value.loc.col == col
    assert str(info.value).startswith(f"f.conf:1:{col}: error: ")
