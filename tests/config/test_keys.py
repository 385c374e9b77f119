"""``key`` blocks, checked as dhcpd 4.4.3 checks them (common/parse.c parse_key, parse_base64).

Each rejected case names the line and column ``dhcpd -t`` printed for the same text (checked
by hand, and for one case by the corpus: tests/configs/broken/key-secret-not-base64.conf).
"""

from __future__ import annotations

import pytest

from tandem.config import ConfigError, parse_text
from tandem.config.cursor import Cursor
from tandem.config.keys import base64_secret


def key(body: str) -> str:
    return f"key k1 {{ {body} }}\n"


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ('key k1 {\n  algorithm hmac-md5;\n  secret "not base64!";\n}\n', 3, 11,
         "invalid base64 character ' '"),
        ("key k1 {\n  algorithm hmac-md5;\n  secret not-base64;\n}\n", 3, 11,
         "invalid base64 character '-'"),
        ("key k1 {\n  algorithm hmac-md5;\n  secret YWJjZ;\n}\n", 3, 11,
         "partial base64 value left over: 25"),
        ("key k1 {\n  secret YW=Jj;\n}\n", 2, 13, "stuff after base64 '=' terminator: Jj"),
        ("key k1 {\n  secret YWJj;\n  secret YWJj;\n}\n", 3, 4, "key k1: too many secrets"),
        (key("algorithm hmac-sha256; algorithm hmac-md5; secret YWJj;"), 1, 34,
         "key k1: too many algorithms"),
        (key("algorithm hmac-md5; secret ;"), 1, 38, "invalid base64 character ';'"),
        (key("algorithm hmac-md5; secret YWJj"), 1, 43, "semicolon expected"),
        (key("algorithm hmac-md5; secret YWJj; bogus;"), 1, 44, "expecting right brace"),
        (key('algorithm "hmac-md5"; secret YWJj;'), 1, 11, "expecting key algorithm name"),
        (key("algorithm hmac-md5; secret YWJj@;"), 1, 42, "semicolon expected"),
        (key("algorithm hmac-md5; secret YW|Jj;"), 1, 38, "partial base64 value left over: 6"),
        ("subnet 10.0.0.0 netmask 255.0.0.0 { " + key("algorithm hmac-md5; secret YW.Jj;")
         + "}", 1, 74, "partial base64 value left over: 6"),
        # dhcpd drops a key whose secret decodes to nothing, but the "};" then has a stray ';'.
        (key("algorithm hmac-md5; secret A;").rstrip() + ";\n", 1, 41,
         "expecting a parameter or declaration"),
    ],
)  # fmt: skip
def test_rejected_where_dhcpd_blames_it(text: str, line: int, col: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_text(text, "k.conf")
    err = info.value
    assert message in str(err)
    assert (err.loc.file, err.loc.line, err.loc.col) == ("k.conf", line, col), str(err)


@pytest.mark.parametrize(
    "body",
    [
        "algorithm hmac-md5; secret abc+def/ghi=;",  # several tokens to dhcpd's lexer
        "algorithm hmac-sha256; secret YWJj YWJj;",  # glued, as dhcpd glues them
        "algorithm hmac-sha256; secret YWJj\nYWJj;",
        "algorithm hmac-sha256; secret YWJjA;",  # a left-over group of zero bits is fine
        "algorithm hmac-sha256; secret YWJj==;",
        'algorithm hmac-sha256; secret "c2VjcmV0IGtleSBmb3IgdGVzdGluZyBvbmx5IQ==";',
        "algorithm hmac-md5.sig-alg.reg.int; secret YWJj;",
        "algorithm HMAC-SHA512.SIG-ALG.REG.INT.; secret YWJj;",
    ],
)
def test_accepted_as_dhcpd_accepts(body: str) -> None:
    cfg = parse_text(key(body), "k.conf")
    assert not [w for w in cfg.warnings if "key k1" in w.message]


def test_bind8_semicolon_after_the_block() -> None:
    parse_text(key("algorithm hmac-md5; secret YWJj;").rstrip() + ";\n")


def test_unknown_algorithm_is_a_warning_with_dhcpd_words() -> None:
    cfg = parse_text(key("algorithm bogus-alg; secret YWJj;"), "k.conf")
    (warning,) = [w for w in cfg.warnings if "key k1" in w.message]
    assert (warning.loc.line, warning.loc.col) == (1, 21)
    assert "unknown algorithm bogus-alg" in warning.message
    assert "Unable to create tsec structure for k1" in warning.message
    assert "hmac-sha256" in warning.message  # what to use instead


def test_secret_decoding_to_nothing_is_dropped_with_a_warning() -> None:
    cfg = parse_text(
        key("algorithm hmac-md5; secret A; anything { goes; }")
        + "subnet 10.0.0.0 netmask 255.0.0.0 { }\n",
        "k.conf",
    )
    assert any("decodes to no bytes" in w.message for w in cfg.warnings)
    assert len(cfg.subnets) == 1  # dhcpd skips to the key's '}' and reads on


@pytest.mark.parametrize(
    ("body", "missing"),
    [("algorithm hmac-md5;", "secret"), ("secret YWJj;", "algorithm")],
)
def test_key_without_secret_or_algorithm_is_an_error(body: str, missing: str) -> None:
    """dhcpd 4.4.3 crashes on these (segmentation fault, also under -t)."""
    with pytest.raises(ConfigError) as info:
        parse_text(key(body), "k.conf")
    assert f"key k1 (from k.conf:1:9) has no {missing}: add '{missing}" in str(info.value)
    assert info.value.loc.line == 1


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        ("YWJj;", b"abc"),
        ("YWJjZA;", b"abcd"),
        ("YWJjZGU=;", b"abcde"),
        ("YW Jj;", b"abc"),
        ("c2VjcmV0IGtleQ==;", b"secret key"),
        ("+/+/;", bytes([0xFB, 0xFF, 0xBF])),
    ],
)
def test_base64_decodes_as_dhcpd(text: str, decoded: bytes) -> None:
    cur = Cursor(text, "k.conf")
    assert base64_secret(cur) == decoded
    assert cur.peek().is_punct(";")  # the statement's end is left for parse_semi
