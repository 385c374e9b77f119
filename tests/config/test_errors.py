"""Errors: file:line:col, messages that say what to do, limits, and never a stray exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.config import ConfigError, load, parse_text
from tandem.config.cursor import MAX_DEPTH


def error_of(text: str, filename: str = "t.conf") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_text(text, filename)
    return info.value


def test_error_format_file_line_col() -> None:
    err = error_of("subnet 10.0.0.0 netmask 255.255.255.0 {\n  option routers 10.0.0.1\n}\n")
    assert (err.loc.file, err.loc.line, err.loc.col) == ("t.conf", 3, 2)  # as dhcpd -t
    assert str(err) == f"t.conf:3:2: error: {err.diagnostics[0].message}"
    assert "semicolon expected" in str(err) and "';'" in str(err)
    assert len(err.diagnostics) == 1 and err.diagnostics[0].severity == "error"


# Where dhcpd also rejects, line and column are the ones `dhcpd -t` prints (checked by
# hand against dhcpd 4.4.3); "frobnicate", the non-contiguous netmask and the include
# error are Tandem's own (dhcpd accepts the first two and has no position for the last).
@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("frobnicate;", 1, 1, "unknown statement 'frobnicate'"),
        ("authoritativ;", 1, 1, "unknown statement"),
        ("host a { authoritative; }", 1, 11, "authority makes no sense here"),
        ("subnet 10.0.0.0 netmask 255.0.255.0 { }", 1, 35, "not contiguous"),
        ("subnet 10.0.0.0 netmask 255.0.0.0 {\n pool { pool { } } }", 2, 10,
         "pool declared within"),
        ("pool { range 10.0.0.1 10.0.0.2; }", 1, 1, "pool declared outside of network"),
        ("shared-network s { }", 1, 21, "empty shared-network"),
        ('subclass "nope" "x";', 1, 11, "no class named nope"),
        ('class "a" { class "b" { } }', 1, 14, "class declarations not allowed here"),
        ("host a { hardware ethernet 1:2; hardware ethernet 1:3; }", 1, 34,
         "hardware address already configured"),
        ("host a { fixed-address 10.0.0.1; fixed-address 10.0.0.2; }", 1, 57,
         "Only one fixed address"),
        ("failover peer \"p\" { primary; mclt 1; split 1; }", 1, 48,
         "peer address may not be omitted"),
        ("failover peer \"p\" { primary; peer address 1.2.3.4; split 300; }", 1, 59,
         "split must be between 0 and 256"),
        ("failover peer \"p\" { bogus 1; }", 1, 22, "invalid statement in peer declaration"),
        ("deny frobs;", 1, 7, "expecting allow/deny key"),
        ('include "/nonexistent/x.conf";', 1, 10, "can't open /nonexistent/x.conf"),
        ("ddns-update-style;", 1, 0, ""),  # valid in dhcpd: no effect, only a warning
    ],
)  # fmt: skip
def test_errors_and_positions(text: str, line: int, col: int, message: str) -> None:
    if not message:
        cfg = parse_text(text, "t.conf")
        assert any("no effect" in w.message for w in cfg.warnings)
        return
    err = error_of(text)
    assert message in str(err)
    assert (err.loc.line, err.loc.col) == (line, col), str(err)


def test_errors_in_included_file_name_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.conf").write_text("option routers 10.0.0.1;\noption foo 1;\n")
    (tmp_path / "main.conf").write_text('# top\ninclude "sub/x.conf";\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load("main.conf")
    assert str(info.value).startswith("sub/x.conf:2:9: error: unknown option dhcp.foo")


def test_include_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.conf").write_text('include "b.conf";\n')
    (tmp_path / "b.conf").write_text('include "a.conf";\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="include loop"):
        load("a.conf")


def test_missing_main_file() -> None:
    with pytest.raises(ConfigError, match="can't open"):
        load("/nonexistent/dhcpd.conf")


@pytest.mark.parametrize(
    "text",
    [
        "group { " * 10_000 + "}" * 10_000,
        "subnet 10.0.0.0 netmask 255.0.0.0 { " + "if known { " * 10_000 + "}" * 10_001,
        "option host-name = " + "concat(" * 10_000 + '"a"' + ', "b")' * 10_000 + ";",
        "subnet 10.0.0.0 netmask 255.0.0.0 { if "
        + "(" * 10_000
        + "known"
        + ")" * 10_000
        + " { } }",
        "subnet 10.0.0.0 netmask 255.0.0.0 { if " + "not " * 10_000 + "known { } }",
        "on commit { " * 10_000,
    ],
)
def test_deep_nesting_is_a_clean_error(text: str) -> None:
    err = error_of(text)
    assert f"nesting deeper than {MAX_DEPTH} levels" in str(err)
    assert err.loc.line == 1


def test_nesting_within_the_limit_is_fine() -> None:
    depth = MAX_DEPTH - 2
    cfg = parse_text("group { " * depth + "host h { }" + "}" * depth)
    assert len(cfg.hosts[0].chain) == depth + 1


def test_long_elsif_chain_is_not_nesting() -> None:
    text = "subnet 10.0.0.0 netmask 255.0.0.0 { if known { } " + "elsif static { } " * 5000 + "}"
    cfg = parse_text(text)
    assert len(cfg.subnets[0].chain[-1][0].branches) == 5001  # type: ignore[union-attr]


# --- fuzzing: nothing but ConfigError may escape ------------------------------------------

_WORDS = [
    "subnet", "netmask", "shared-network", "pool", "range", "host", "group", "class",
    "subclass", "option", "code", "space", "failover", "peer", "primary", "secondary",
    "address", "port", "split", "mclt", "hba", "if", "elsif", "else", "and", "or", "not",
    "known", "exists", "substring", "concat", "hardware", "ethernet", "fixed-address",
    "allow", "deny", "members", "of", "dynamic-bootp", "include", "match", "spawn", "with",
    "lease", "limit", "authoritative", "routers", "domain-name", "array", "integer",
    "unsigned", "text", "encapsulate", "on", "commit", "set", "log", "zone", "key",
    "10.0.0.0", "255.255.255.0", "10.0.0.5", "1", "0", "-1", "300", "01:02:ff", '"x"',
    '"PXEClient"', "{", "}", "(", ")", ";", ",", "=", "!=", "~=", ".", ":", "#c\n", "\n",
    "a.b", "ff", "0x10", "infinite", "true", "ignore",
]  # fmt: skip


def _must_not_escape(text: str) -> None:
    try:
        parse_text(text, "fuzz.conf")
    except ConfigError as exc:
        assert exc.diagnostics
        assert exc.loc.line >= 0 and exc.loc.col >= 0


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_random_text_only_raises_config_error(text: str) -> None:
    _must_not_escape(text)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=60))
def test_token_soup_only_raises_config_error(words: list[str]) -> None:
    _must_not_escape(" ".join(words))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_config_error(data: bytes) -> None:
    _must_not_escape(data.decode("latin-1"))
