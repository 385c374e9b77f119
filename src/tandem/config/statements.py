"""Executable statements: what may appear inside ``if``, ``on`` and in every scope.

This is dhcpd's parse_executable_statement. Statements Tandem acts on become ``Param``,
``OptionSet``, ``Conditional``, ``OnEvent`` and ``SetVar`` (``set``/``unset``), and inside an
``on`` block also ``Execute`` and ``LogStatement`` (core.events runs them); valid dhcpd
statements it does not act on (``execute`` and ``log`` outside ``on`` among them) are still
parsed with their real syntax (so mistakes inside them are still caught) and become
``Unimplemented`` with a warning given once per keyword.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address

from tandem.config.expressions import ExpressionParser
from tandem.config.keys import parse_key
from tandem.config.lexer import Kind
from tandem.config.model import (
    Conditional,
    Execute,
    Expr,
    Location,
    LogStatement,
    OnEvent,
    Param,
    SetVar,
    Statement,
    Unimplemented,
)
from tandem.config.optionstmt import HostName, OptionReader, Value
from tandem.config.registry import SERVER_OPTIONS
from tandem.config.state import State

#: ``allow X`` / ``deny X`` / ``ignore X`` keys (dhcpd's parse_allow_deny).
ALLOW_KEYS = frozenset(
    {
        "bootp", "booting", "dynamic-bootp", "unknown-clients", "duplicates", "declines",
        "client-updates", "leasequery",
    }
)  # fmt: skip

#: Server parameters that are the same switch as an ``allow``/``deny`` key.
FLAG_ALIASES = {
    "boot-unknown-clients": "unknown-clients",
    "allow-booting": "booting",
    "allow-bootp": "bootp",
    "dynamic-bootp": "dynamic-bootp",
    "duplicates": "duplicates",
    "declines": "declines",
    "client-updates": "client-updates",
    "leasequery": "leasequery",
}


@dataclass(frozen=True, slots=True)
class Gap:
    """A dhcpd.conf keyword Tandem parses but does not act on, and what that means."""

    note: str  # for README's list
    warned: bool = True  # the parser warns once per keyword and keeps an ``Unimplemented``


_DDNS = "DNS updates (DDNS): Tandem sends none"
_V6 = "DHCPv6 only: Tandem serves DHCPv4"

#: Everything of dhcpd.conf that Tandem parses (with dhcpd's syntax, so mistakes are still
#: errors) but does not act on: keyword -> ``Gap``. The statements (``on``, ``execute``, ...)
#: and the ``warned`` parameters become ``Unimplemented`` with a warning; the other parameters
#: stay ``Param``s nothing reads, silently, as their usual values change nothing here. README's
#: list is rendered from this table (scripts/render_tables.py; a test keeps it current).
NOT_ACTED_ON: dict[str, Gap] = {
    # statements
    "execute": Gap("`execute()` outside an `on commit`/`release`/`expiry` block runs nothing"),
    "log": Gap("`log()` outside an `on` block writes nothing"),
    "set": Gap("`set NAME(...) { ... }` (a function) is not defined; `set NAME = ...;` works"),
    "define": Gap("not evaluated (`set NAME = ...;` works)"),
    "eval": Gap("the expression is not evaluated"),
    "return": Gap("not evaluated"),
    "add": Gap("`add` (join a class) is ignored"),
    "break": Gap("ignored"),
    "switch": Gap("`switch`/`case` blocks are not evaluated"),
    "default": Gap("option defaults are not applied"),
    "prepend": Gap("options are not prepended"),
    "append": Gap("options are not appended"),
    "send": Gap("ignored (a dhclient statement)"),
    "parse-vendor-option": Gap("ignored"),
    "db-time-format": Gap("lease-file times are always written as dhcpd's default, UTC"),
    "key": Gap("checked as dhcpd checks it, then used for nothing (no DDNS, no OMAPI)"),
    "zone": Gap(_DDNS),
    # parameters Tandem warns about
    **{
        name: Gap(_DDNS)
        for name in (
            "ddns-domainname", "ddns-hostname", "ddns-rev-domainname", "ddns-ttl",
            "ddns-local-address4", "ddns-local-address6", "ddns-dual-stack-mixed-mode",
            "ddns-guard-id-must-match", "ddns-other-guard-is-dynamic", "do-forward-updates",
            "do-reverse-updates", "fqdn-reply", "update-conflict-detection",
            "update-optimization",
        )
    },
    "omapi-key": Gap("no OMAPI: `tandem status` and `tandem partner-down` instead"),
    **{
        name: Gap(_V6)
        for name in (
            "preferred-lifetime", "dhcpv6-lease-file-name", "dhcpv6-pid-file-name",
            "limit-addrs-per-ia", "limit-prefs-per-ia", "prefix-length-mode",
            "dhcpv6-set-tee-times", "local-address6", "bind-local-address6", "release-on-roam",
        )
    },
    "check-secs-byte-order": Gap("the secs field is read as sent"),
    # parameters kept silently
    "adaptive-lease-time-threshold": Gap("lease times do not shrink as a pool fills",
                                         warned=False),
    "ddns-updates": Gap(_DDNS, warned=False),
    "ddns-update-style": Gap(_DDNS, warned=False),
    "client-updates": Gap(_DDNS, warned=False),
    "update-static-leases": Gap(_DDNS, warned=False),
    "get-lease-hostnames": Gap("no reverse lookups for host names", warned=False),
    "use-lease-addr-for-default-route": Gap("routers are sent as configured", warned=False),
    "always-reply-rfc1048": Gap("not read", warned=False),
    "stash-agent-options": Gap("relay agent options are not kept with the lease",
                               warned=False),
    "ignore-client-uids": Gap("client identifiers always identify a client", warned=False),
    "infinite-is-reserved": Gap("no reserved leases", warned=False),
    "dynamic-bootp": Gap("the parameter and `allow`/`deny dynamic-bootp` are not read (a "
                         "range's `dynamic-bootp` is)", warned=False),
    "min-secs": Gap("not read: the secs field never delays an answer", warned=False),
    "server-id-check": Gap("not read", warned=False),
    "delayed-ack": Gap("ACKs leave after their batch's fsync (group commit)", warned=False),
    "max-ack-delay": Gap("as `delayed-ack`", warned=False),
    "dont-use-fsync": Gap("the lease file is always fsynced", warned=False),
    "lease-file-name": Gap("give `-lf`", warned=False),
    "pid-file-name": Gap("give `-pf`", warned=False),
    "local-port": Gap("give `-p`", warned=False),
    "remote-port": Gap("not read", warned=False),
    "local-address": Gap("not read: Tandem binds per interface", warned=False),
    "limited-broadcast-address": Gap("not read", warned=False),
    "omapi-port": Gap("no OMAPI", warned=False),
    "log-threshold-low": Gap("no pool-usage log lines", warned=False),
    "log-threshold-high": Gap("no pool-usage log lines", warned=False),
}  # fmt: skip

#: Server parameters Tandem warns about and keeps as ``Unimplemented``.
UNIMPLEMENTED_PARAMS = frozenset(
    name for name, gap in NOT_ACTED_ON.items() if gap.warned and name in SERVER_OPTIONS
)

_LOG_LEVELS = frozenset({"fatal", "error", "debug", "info"})
_EVENTS = frozenset({"commit", "release", "expiry", "transmission"})


class NotAStatement(Exception):
    """The next token does not start an executable statement (nothing was consumed)."""


class StatementParser:
    def __init__(self, st: State) -> None:
        self.st = st

    @property
    def exprs(self) -> ExpressionParser:
        return ExpressionParser(self.st.cur, self.st.reg)

    @property
    def options(self) -> OptionReader:
        return OptionReader(self.st.cur, self.st.reg)

    def block(self) -> tuple[Statement, ...]:
        """``{ executable statements }`` after the ``{`` was consumed; eats the ``}``."""
        cur = self.st.cur
        out: list[Statement] = []
        with cur.nested():
            while True:
                tok = cur.peek()
                if tok.is_punct("}"):
                    cur.next()
                    return tuple(out)
                if tok.kind is Kind.EOF:
                    raise cur.error("unexpected end of file: right brace expected")
                try:
                    stmt = self.executable()
                except NotAStatement:
                    cur.next()
                    raise cur.error_at(
                        tok, f"right brace expected: {tok.describe()} is not allowed here"
                    ) from None
                if stmt is not None:
                    out.append(stmt)

    def executable(self) -> Statement | None:
        """One statement; None if it yields nothing. Raises NotAStatement if none starts."""
        cur = self.st.cur
        tok = cur.peek()
        word = tok.word
        loc = tok.loc
        if word == "if":
            cur.next()
            return self._if(loc)
        if word in ("option", "supersede"):
            cur.next()
            _space, _name, ref = self.st.reg.resolve(cur, allow_new=False)
            assert ref is not None
            name_tok = cur.last
            if ref.space == "server":
                return self.param_rest(ref.name, name_tok.loc)
            return self.options.option_set(ref, name_tok)
        if word in ("allow", "deny", "ignore"):
            cur.next()
            return self.allow_deny(word, loc)
        if word in SERVER_OPTIONS:
            cur.next()
            return self.param_rest(word, loc)
        acted = _ACTED.get(word)
        if acted is not None:
            cur.next()
            stmt = acted(self, loc)
            if stmt is None:  # execute/log outside an `on` block
                self.st.unimplemented(word, loc)
                return Unimplemented(word, loc)
            return stmt
        handler = _UNIMPLEMENTED.get(word)
        if handler is not None:
            cur.next()
            self.st.unimplemented(word, loc)
            handler(self)
            return Unimplemented(word, loc)
        if tok.kind is Kind.NAME:
            cur.next()
            raise cur.error_at(
                tok,
                f"unknown statement {tok.text!r}: not a dhcpd keyword or parameter "
                "(check the spelling)",
            )
        raise NotAStatement

    # --- if / elsif / else --------------------------------------------------------------

    def _if(self, loc: Location) -> Conditional:
        cur = self.st.cur
        branches: list[tuple[Expr, tuple[Statement, ...]]] = []
        while True:
            paren = cur.take_punct("(")
            cond = self.exprs.boolean()
            if paren:
                cur.expect_punct(")", "expecting right paren")
            cur.expect_punct("{", "left brace expected")
            branches.append((cond, self.block()))
            if cur.take_word("elsif"):
                continue
            if not cur.take_word("else"):
                return Conditional(tuple(branches), (), loc)
            if cur.take_word("if"):
                continue
            cur.expect_punct("{", "left brace or if expected after else")
            return Conditional(tuple(branches), self.block(), loc)

    # --- allow / deny / ignore and server parameters ------------------------------------

    def allow_deny(self, verb: str, loc: Location) -> Param:
        cur = self.st.cur
        tok = cur.next()
        if tok.word not in ALLOW_KEYS:
            raise cur.error_at(
                tok,
                f"expecting allow/deny key ({', '.join(sorted(ALLOW_KEYS))}), "
                f"found {tok.describe()}",
            )
        cur.semi()
        return Param(tok.word, verb, loc)

    def param_rest(self, name: str, loc: Location) -> Statement | None:
        """The rest of a server parameter statement (``default-lease-time 600;``)."""
        cur = self.st.cur
        ref = self.st.reg.lookup("server", name)
        assert ref is not None
        if cur.take_punct(";"):
            self.st.warn(loc, f"'{name};' without a value has no effect")
            return None
        value: object
        if cur.take_punct("="):
            value = self.exprs.data()
        else:
            values = self.options.values(ref, allow_ignore=True)
            value = _param_value(ref.format, values)
        cur.semi()
        if name in UNIMPLEMENTED_PARAMS:
            self.st.unimplemented(name, loc)
            return Unimplemented(name, loc)
        if name in FLAG_ALIASES and isinstance(value, bool | str):
            verb = {True: "allow", False: "deny"}.get(value, "ignore") if value in (
                True, False) else str(value)  # fmt: skip
            return Param(FLAG_ALIASES[name], verb, loc)
        if name == "authoritative" and value == "ignore":
            value = True
        assert isinstance(value, bool | int | str | bytes | IPv4Address | tuple | Expr)
        return Param(name, value, loc)

    # --- statements Tandem parses but does not act on ---------------------------------

    def _on(self, loc: Location) -> Statement | None:
        cur = self.st.cur
        events: list[str] = []
        while True:
            tok = cur.next()
            if tok.word not in _EVENTS:
                raise cur.error_at(tok, f"expecting a lease event type, found {tok.describe()}")
            events.append(tok.word)
            if not cur.take_word("or"):
                break
        if cur.take_punct(";"):
            return OnEvent(tuple(events), (), loc)
        cur.expect_punct("{", "left brace expected")
        self.st.on_depth += 1
        try:
            body = self.block()
        finally:
            self.st.on_depth -= 1
        return OnEvent(tuple(events), body, loc)

    def _set(self, loc: Location) -> Statement | None:
        cur = self.st.cur
        name = cur.next()
        if name.kind not in (Kind.NAME, Kind.NUMBER_OR_NAME):
            raise cur.error_at(name, f"{name.text} can't be a variable name")
        if cur.take_punct("("):
            self._function_rest()
            self.st.unimplemented("set NAME(...) { ... }", loc)
            return Unimplemented("set", loc)
        cur.expect_punct("=", "expecting '=' in set statement")
        return SetVar(name.text, self._expression_statement(), loc)

    def _define(self) -> None:
        cur = self.st.cur
        name = cur.next()
        if name.kind not in (Kind.NAME, Kind.NUMBER_OR_NAME):
            raise cur.error_at(name, f"{name.text} can't be a variable name")
        if cur.take_punct("("):
            self._function_rest()
            return
        cur.expect_punct("=", "expecting '=' in set statement")
        self._expression_statement()

    def _function_rest(self) -> None:
        """``(ARG, ...) { statements }`` of a function definition (parsed, not acted on)."""
        cur = self.st.cur
        if not cur.take_punct(")"):
            while True:
                arg = cur.next()
                if arg.kind not in (Kind.NAME, Kind.NUMBER_OR_NAME):
                    raise cur.error_at(arg, "expecting argument name")
                close = cur.next()
                if close.is_punct(")"):
                    break
                if not close.is_punct(","):
                    raise cur.error_at(close, "expecting right paren")
        cur.expect_punct("{", "expecting left brace")
        self.block()

    def _unset(self, loc: Location) -> Statement | None:
        cur = self.st.cur
        name = cur.next()
        if name.kind not in (Kind.NAME, Kind.NUMBER_OR_NAME):
            raise cur.error_at(name, f"{name.text} can't be a variable name")
        cur.semi()
        return SetVar(name.text, None, loc)

    def _expression_statement(self) -> Expr:
        expr = self.exprs.expression("any")
        if expr is None:
            tok = self.st.cur.peek()
            raise self.st.cur.error_at(tok, f"expecting expression, found {tok.describe()}")
        self.st.cur.semi()
        return expr

    def _eval(self) -> None:
        self._expression_statement()

    def _data_statement(self) -> None:
        self.exprs.data()
        self.st.cur.semi()

    def _log(self, loc: Location) -> Statement | None:
        cur = self.st.cur
        cur.expect_punct("(", "left parenthesis expected")
        level = "debug"  # dhcpd's default priority
        if cur.peek().word in _LOG_LEVELS:
            level = cur.next().word
            cur.expect_punct(",", "comma expected")
        expr = self.exprs.data()
        cur.expect_punct(")", "right parenthesis expected")
        cur.semi()
        return LogStatement(level, expr, loc) if self.st.on_depth else None

    def _execute(self, loc: Location) -> Statement | None:
        cur = self.st.cur
        cur.expect_punct("(", "left parenthesis expected")
        tok = cur.next()
        if tok.kind is not Kind.STRING:
            raise cur.error_at(tok, "expecting a quoted string (the program to run)")
        args: list[Expr] = []
        while cur.take_punct(","):
            args.append(self.exprs.data())
        cur.expect_punct(")", "right parenthesis expected")
        cur.semi()
        return Execute(tok.text, tuple(args), loc) if self.st.on_depth else None

    def _add(self) -> None:
        cur = self.st.cur
        tok = cur.next()
        if tok.kind is not Kind.STRING:
            raise cur.error_at(tok, "expecting class name")
        if tok.text not in self.st.class_names:
            raise cur.error_at(tok, f"class {tok.text}: not found")
        cur.semi()

    def _semi_only(self) -> None:
        self.st.cur.semi()

    def _option_like(self) -> None:
        """``default``/``prepend``/``append``/``send`` OPTION VALUE;"""
        cur = self.st.cur
        _space, _name, ref = self.st.reg.resolve(cur, allow_new=False)
        assert ref is not None
        self.options.option_set(ref, cur.last)

    def _db_time_format(self) -> None:
        cur = self.st.cur
        tok = cur.next()
        if tok.word not in ("default", "local"):
            raise cur.error_at(tok, "expecting 'local' or 'default'")
        cur.semi()

    def _key(self) -> None:
        parse_key(self.st)

    def _skip_braced(self) -> None:
        cur = self.st.cur
        cur.skip_statement()
        if not cur.last.is_punct("}"):
            raise cur.error("expecting a { ... } block")


def _param_value(fmt: str, values: list[Value]) -> object:
    """Atom values of a server parameter -> the ``Param.value`` the model documents."""
    if not values:
        return True
    if len(values) == 1:
        value = values[0]
        if isinstance(value, HostName):
            return Expr("host-lookup", value=value.name)
        if isinstance(value, bytes):
            return value.decode("utf-8", "surrogateescape")
        if isinstance(value, IPv4Address | bool | int | str):
            return value
        return str(value)
    addresses = [v for v in values if isinstance(v, IPv4Address)]
    if len(addresses) == len(values):
        return tuple(addresses)
    return " ".join(str(v) for v in values)


#: Statements Tandem acts on (core.events); a handler returns None when not acted on here.
_ACTED: dict[str, Callable[[StatementParser, Location], Statement | None]] = {
    "on": StatementParser._on,
    "set": StatementParser._set,
    "unset": StatementParser._unset,
    "log": StatementParser._log,
    "execute": StatementParser._execute,
}

_UNIMPLEMENTED = {
    "define": StatementParser._define,
    "eval": StatementParser._eval,
    "return": StatementParser._data_statement,
    "add": StatementParser._add,
    "break": StatementParser._semi_only,
    "parse-vendor-option": StatementParser._semi_only,
    "default": StatementParser._option_like,
    "prepend": StatementParser._option_like,
    "append": StatementParser._option_like,
    "send": StatementParser._option_like,
    "db-time-format": StatementParser._db_time_format,
    "key": StatementParser._key,
    "zone": StatementParser._skip_braced,
    "switch": StatementParser._skip_braced,
}
