"""dhcpd's expression language -> Expr trees."""

from __future__ import annotations

import pytest

from tandem.config import ConfigError, parse_text
from tandem.config.model import Conditional, Expr


def condition(text: str, prefix: str = "") -> Expr:
    cfg = parse_text(prefix + f"subnet 10.0.0.0 netmask 255.0.0.0 {{ if {text} {{ }} }}")
    stmt = cfg.subnets[0].chain[-1][0]
    assert isinstance(stmt, Conditional)
    return stmt.branches[0][0]


def shape(e: Expr) -> str:
    """A compact rendering: (lhs op rhs) for binary ops, op(args) otherwise."""
    if len(e.args) == 2 and e.op in {"and", "or", "equal", "not-equal", "regex", "iregex",
                                     "add", "multiply", "binary-and"}:  # fmt: skip
        return f"({shape(e.args[0])} {e.op} {shape(e.args[1])})"
    inner = ",".join(shape(a) for a in e.args)
    value = "" if e.value is None else repr(e.value)
    return f"{e.op}{value}({inner})" if inner else f"{e.op}{value}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("known", "known"),
        ("static", "static"),
        ("exists host-name", "exists'dhcp.host-name'"),
        ("exists agent.circuit-id", "exists'agent.circuit-id'"),
        ('option host-name = "a"', "(option'dhcp.host-name' equal const-datab'a')"),
        ('option host-name != "a"', "(option'dhcp.host-name' not-equal const-datab'a')"),
        ('option host-name ~= "^a"', "regex'^a'(option'dhcp.host-name')"),
        ('option host-name ~~ "^a"', "iregex'^a'(option'dhcp.host-name')"),
        ("option host-name ~= option domain-name",
         "(option'dhcp.host-name' regex option'dhcp.domain-name')"),
        ("not known", "not(known)"),
        ("not (known and static)", "not((known and static))"),
        ("substring(hardware, 1, 3) = 00:1a:2b",
         "(substring(hardware,const-int1,const-int3) equal const-datab'\\x00\\x1a+')"),
        ("suffix(option host-name, 4) = \".lan\"",
         "(suffix(option'dhcp.host-name',const-int4) equal const-datab'.lan')"),
        ("extract-int(option dhcp-message-type, 8) = 3",
         "(extract-int8(option'dhcp.dhcp-message-type') equal const-int3)"),
        ("encode-int(1, 16) = 00:01", "(encode-int16(const-int1) equal const-datab'\\x00\\x01')"),
        ('lcase(option host-name) = ucase("x")',
         "(lcase(option'dhcp.host-name') equal ucase(const-datab'x'))"),
        ('concat("a", "b", "c") = "abc"',
         "(concat(const-datab'a',const-datab'b',const-datab'c') equal const-datab'abc')"),
        ('pick-first-value(option host-name, "x") = "x"',
         "(pick-first-value(option'dhcp.host-name',const-datab'x') equal const-datab'x')"),
        ('binary-to-ascii(10, 8, ".", leased-address) = "10.0.0.1"',
         "(binary-to-ascii(const-int10,const-int8,const-datab'.',leased-address) "
         "equal const-datab'10.0.0.1')"),
        ("packet(0, 1) = 01", "(packet(const-int0,const-int1) equal const-datab'\\x01')"),
        ('config-option domain-name = "x"',
         "(config-option'dhcp.domain-name' equal const-datab'x')"),
        ('host-decl-name = "h"', "(host-decl-name equal const-datab'h')"),
        # dhcpd's grouping: '=' binds tighter than and/or, which are equal and go left to right
        ("known or static and known", "((known or static) and known)"),
        ('option host-name = "a" or option host-name = "b" and exists domain-name',
         "((option'dhcp.host-name' equal const-datab'a') or "
         "((option'dhcp.host-name' equal const-datab'b') and exists'dhcp.domain-name'))"),
        ("(known)", "known"),
    ],
)  # fmt: skip
def test_expression_shapes(text: str, expected: str) -> None:
    assert shape(condition(text)) == expected


def test_parenthesised_condition_like_dhcpd() -> None:
    # "if (a) and (b)" fails in dhcpd: the parenthesis belongs to the if.
    assert shape(condition("(known and static)")) == "(known and static)"
    with pytest.raises(ConfigError) as info:
        condition("(known) and (static)")
    assert "left brace expected" in str(info.value)


def test_long_or_chain_does_not_recurse() -> None:
    text = " or ".join(f"substring(hardware, 1, 3) = 00:00:{i % 256:02x}" for i in range(3000))
    expr = condition(text)
    assert expr.op == "or"


def test_match_and_spawn_expressions() -> None:
    cfg = parse_text(
        'class "c" { match if option user-class = "x"; }\n'
        'class "d" { match substring(option vendor-class-identifier, 0, 4); }\n'
        'class "e" { spawn with option agent.remote-id; }'
    )
    c, d, e = cfg.classes
    assert c.match_if is not None and c.match_if.op == "equal"
    assert d.match is not None and d.match.op == "substring"
    assert e.spawn is not None and e.spawn.op == "option"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("known and option host-name", "illegal expression relating different types"),
        ("known = static", "expecting data/numeric expression"),
        ('substring(hardware, "a", 1) = 01', "expecting a numeric expression"),
        ("extract-int(hardware, 12) = 1", "unsupported integer size"),
        ("exists no-such-option", "no option named no-such-option"),
        ("option host-name =", "expecting right-hand side"),
        ("not option host-name", "boolean expression expected"),
        ('option host-name ~ "x"', "expecting ~= or ~~"),
        ('check "nope"', "unknown collection"),
        ('extract-int(option x, 8) = "a"', "no option named x"),
    ],
)
def test_expression_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        condition(text)
    assert message in str(info.value)
