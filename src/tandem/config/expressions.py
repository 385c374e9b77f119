"""dhcpd's expression language (``if``, ``match if``, ``option X = ...``), parsed into ``Expr``.

The grammar and its oddities follow common/parse.c (parse_non_binary / parse_expression):

* Operators group by dhcpd's own table, not by school arithmetic: ``=`` ``!=`` ``~=``
  ``~~`` bind tightest of the common ones, then ``and``/``or`` (equal rank, left to right),
  then ``+``, then ``*`` ``/`` ``%``; ``&`` ``|`` ``^`` bind tighter than all of them.
* A bare number is an integer where a number is expected (``substring(x, 0, 3)``) and a
  one-byte hex string otherwise (``option foo = 5`` is the byte 0x05), like ``01:02``.
* Types are checked as dhcpd checks them: ``and`` needs booleans, ``=`` cannot compare a
  number with a string, ``~=`` needs a string on the right.
"""

from __future__ import annotations

from typing import Literal

from tandem.config.cursor import Cursor
from tandem.config.lexer import Kind, Token
from tandem.config.model import Expr
from tandem.config.registry import Registry
from tandem.config.values import convert_number, hex_list

Context = Literal["any", "data", "numeric", "boolean"]

DATA_OPS = frozenset(
    {
        "const-data", "substring", "suffix", "lcase", "ucase", "concat", "option",
        "config-option", "hardware", "packet", "binary-to-ascii", "encode-int",
        "pick-first-value", "host-lookup", "leased-address", "filename", "server-name",
        "reverse", "host-decl-name", "gethostname", "gethostbyname", "v6relay", "null",
    }
)  # fmt: skip
NUMERIC_OPS = frozenset(
    {
        "const-int", "extract-int", "lease-time", "client-state", "add", "subtract",
        "multiply", "divide", "remainder", "binary-and", "binary-or", "binary-xor",
    }
)  # fmt: skip
BOOLEAN_OPS = frozenset(
    {
        "equal", "not-equal", "regex", "iregex", "and", "or", "not", "exists", "known",
        "static", "check", "variable-exists", "const-bool",
    }
)  # fmt: skip

#: dhcpd's op_val(): a *higher* value binds *tighter* here.
_RANK = {
    "equal": 4, "not-equal": 4, "regex": 4, "iregex": 4,
    "and": 3, "or": 3,
    "add": 2, "subtract": 2,
    "multiply": 1, "divide": 1, "remainder": 1,
    "binary-and": 100, "binary-or": 100, "binary-xor": 100,
}  # fmt: skip

_PUNCT_OPS = {"=": "equal", "+": "add", "/": "divide", "*": "multiply", "%": "remainder",
              "&": "binary-and", "|": "binary-or", "^": "binary-xor"}  # fmt: skip

#: Words that stand for a constant number (DNS rcodes, client states), as in dhcpd.
_CONSTANTS = {
    "formerr": 1, "noerror": 0, "notauth": 9, "notimp": 4, "notzone": 10, "nxdomain": 3,
    "nxrrset": 8, "refused": 5, "servfail": 2, "yxdomain": 6, "yxrrset": 7,
    "booting": 0, "reboot": 1, "select": 2, "request": 3, "bound": 4, "renew": 5,
    "rebind": 6,
}  # fmt: skip

_NULLARY = {"known": "known", "static": "static", "hardware": "hardware",
            "leased-address": "leased-address", "client-state": "client-state",
            "filename": "filename", "server-name": "server-name", "lease-time": "lease-time",
            "null": "null", "host-decl-name": "host-decl-name"}  # fmt: skip

#: Functions with a fixed argument list: word -> argument contexts.
_FUNCTIONS: dict[str, tuple[Context, ...]] = {
    "substring": ("data", "numeric", "numeric"),
    "suffix": ("data", "numeric"),
    "lcase": ("data",),
    "ucase": ("data",),
    "binary-to-ascii": ("numeric", "numeric", "data", "data"),
    "reverse": ("numeric", "data"),
    "packet": ("numeric", "numeric"),
    "v6relay": ("numeric", "data"),
}


def context_of(expr: Expr) -> Context:
    if expr.op in DATA_OPS:
        return "data"
    if expr.op in NUMERIC_OPS:
        return "numeric"
    if expr.op in BOOLEAN_OPS:
        return "boolean"
    return "any"  # variables and function calls


class ExpressionParser:
    def __init__(self, cur: Cursor, reg: Registry) -> None:
        self.cur = cur
        self.reg = reg

    # --- typed entry points ---------------------------------------------------------------

    def boolean(self) -> Expr:
        return self._typed("boolean", "expecting a boolean expression")

    def data(self) -> Expr:
        return self._typed("data", "expecting a data expression")

    def numeric(self) -> Expr:
        return self._typed("numeric", "expecting a numeric expression")

    def _typed(self, context: Context, message: str) -> Expr:
        expr = self.expression(context)
        if expr is None:
            tok = self.cur.peek()
            raise self._fail(tok, f"{message}, found {tok.describe()}")
        if context_of(expr) not in (context, "any"):
            raise self.cur.error(f"{message} here, not a {context_of(expr)} one")
        return expr

    def _fail(self, tok: Token, message: str) -> Exception:
        """Blame the last consumed token, as dhcpd does when it only peeked at ``tok``."""
        if tok.kind is Kind.EOF:
            return self.cur.error(f"unexpected end of file: {message}")
        return self.cur.error(message)

    # --- binary operators -----------------------------------------------------------------

    def expression(self, context: Context) -> Expr | None:
        """dhcpd's parse_expression; None if no expression starts here.

        dhcpd recurses whenever the next operator binds tighter, and the recursive call
        then consumes the rest of the expression; its caller only wraps the result. That
        wrapping is kept on an explicit stack here, so that a long ``a = b or c = d or ...``
        (a common way to list many MAC prefixes) cannot exhaust the Python stack.
        """
        with self.cur.nested():
            pending: list[tuple[str, Expr]] = []
            lhs: Expr | None = None
            binop = ""
            while True:
                rhs = self.non_binary(context)
                if rhs is None:
                    if lhs is None:
                        return None
                    tok = self.cur.peek()
                    raise self._fail(tok, f"expecting right-hand side, found {tok.describe()}")
                next_op = self._peek_operator()
                if lhs is None:
                    if next_op is None:
                        return rhs
                    lhs, binop = rhs, self._take_operator(next_op)
                    context = context_of(rhs)
                    continue
                if next_op is not None and _RANK[binop] < _RANK[next_op]:
                    pending.append((binop, lhs))
                    lhs, binop = rhs, self._take_operator(next_op)
                    context = _op_context(next_op)
                    continue
                self._check_operands(binop, lhs, rhs)
                combined = _combine(binop, lhs, rhs)
                if next_op is None:
                    for outer_op, outer_lhs in reversed(pending):
                        self._check_operands(outer_op, outer_lhs, combined)
                        combined = _combine(outer_op, outer_lhs, combined)
                    return combined
                lhs, binop = combined, self._take_operator(next_op)
                context = context_of(rhs)

    def _peek_operator(self) -> str | None:
        tok = self.cur.peek()
        if tok.kind is Kind.PUNCT:
            if tok.text in _PUNCT_OPS:
                return _PUNCT_OPS[tok.text]
            if tok.text == "!":
                return "not-equal"
            if tok.text == "~":
                return "regex"
        elif tok.word in ("and", "or"):
            return tok.word
        return None

    def _take_operator(self, op: str) -> str:
        tok = self.cur.next()
        if tok.is_punct("!"):
            if not self.cur.at_punct("="):
                raise self.cur.error("'!' without '=': write != to compare")
            self.cur.next()
        elif tok.is_punct("~"):
            second = self.cur.next()
            if second.is_punct("~"):
                return "iregex"
            if not second.is_punct("="):
                raise self.cur.error("expecting ~= or ~~ operator")
        return op

    def _check_operands(self, op: str, lhs: Expr, rhs: Expr) -> None:
        lc, rc = context_of(lhs), context_of(rhs)
        if "any" not in (lc, rc) and lc != rc:
            raise self.cur.error(f"illegal expression relating different types ({lc} {op} {rc})")
        if op in ("equal", "not-equal") and rc == "boolean":
            raise self.cur.error("expecting data/numeric expression on both sides of =")
        if op in ("and", "or") and rc not in ("boolean", "any"):
            raise self.cur.error(f"expecting boolean expressions on both sides of '{op}'")
        if op in _RANK and _RANK[op] in (1, 2, 100) and rc not in ("numeric", "any"):
            raise self.cur.error(f"expecting numeric expressions on both sides of '{op}'")

    # --- operands ---------------------------------------------------------------------------

    def non_binary(self, context: Context) -> Expr | None:
        cur = self.cur
        tok = cur.peek()
        loc = tok.loc
        if tok.kind is Kind.STRING:
            cur.next()
            return Expr("const-data", value=tok.raw, loc=loc)
        if tok.kind is Kind.NUMBER and context == "numeric":
            cur.next()
            return Expr("const-int", value=_atoi(tok.text), loc=loc)
        if tok.kind in (Kind.NUMBER, Kind.NUMBER_OR_NAME):
            return Expr("const-data", value=hex_list(cur), loc=loc)
        if tok.is_punct("("):
            cur.next()
            inner = self.expression(context)
            if inner is None:
                raise self._fail(cur.peek(), "expression expected after '('")
            close = cur.next()
            if not close.is_punct(")"):
                raise self._fail(close, "right paren expected")
            return inner
        word = tok.word
        if not word:
            return None
        if word in _NULLARY:
            cur.next()
            return Expr(_NULLARY[word], loc=loc)
        if word in _CONSTANTS:
            cur.next()
            return Expr("const-int", value=_CONSTANTS[word], loc=loc)
        if word in _FUNCTIONS:
            cur.next()
            return Expr(word, self._arguments(_FUNCTIONS[word]), loc=loc)
        handler = _SPECIAL.get(word)
        if handler is not None:
            cur.next()
            return handler(self, loc)
        if tok.kind is Kind.NAME:
            return self._variable_or_call(loc)
        return None

    def _arguments(self, contexts: tuple[Context, ...]) -> tuple[Expr, ...]:
        self.cur.expect_punct("(", "left parenthesis expected")
        args: list[Expr] = []
        for i, context in enumerate(contexts):
            if i:
                self.cur.expect_punct(",", "comma expected")
            args.append(self._typed(context, f"expecting a {context} expression"))
        self.cur.expect_punct(")", "right parenthesis expected")
        return tuple(args)

    def _data_list(self) -> tuple[Expr, ...]:
        self.cur.expect_punct("(", "left parenthesis expected")
        args = [self.data()]
        while self.cur.take_punct(","):
            args.append(self.data())
        self.cur.expect_punct(")", "right parenthesis expected")
        return tuple(args)

    def _option_name(self) -> str:
        _space, _name, ref = self.reg.resolve(self.cur, allow_new=False)
        assert ref is not None
        return f"{ref.space}.{ref.name}"

    def _width(self) -> int:
        tok = self.cur.next()
        if tok.kind is not Kind.NUMBER or tok.text not in ("8", "16", "32"):
            raise self.cur.error_at(tok, "unsupported integer size: use 8, 16 or 32")
        return int(tok.text)

    def _not(self, loc: object) -> Expr:
        with self.cur.nested():
            operand = self.non_binary("boolean")
        if operand is None:
            raise self._fail(self.cur.peek(), "expression expected after 'not'")
        if context_of(operand) != "boolean":
            raise self.cur.error("boolean expression expected after 'not'")
        return Expr("not", (operand,), loc=operand.loc)

    def _variable_or_call(self, loc: object) -> Expr:
        name_tok = self.cur.next()
        if not self.cur.take_punct("("):
            return Expr("variable", value=name_tok.text, loc=name_tok.loc)
        args: list[Expr] = []
        while True:
            arg = self.expression("any")
            if arg is None:
                raise self._fail(self.cur.peek(), "expecting expression")
            args.append(arg)
            tok = self.cur.next()
            if tok.is_punct(")"):
                return Expr("funcall", tuple(args), value=name_tok.text, loc=name_tok.loc)
            if not tok.is_punct(","):
                raise self._fail(tok, "Right parenthesis expected")


def _combine(op: str, lhs: Expr, rhs: Expr) -> Expr:
    """A binary node. ``~=``/``~~`` with a constant pattern keep it in ``value`` (model doc)."""
    if op in ("regex", "iregex") and rhs.op == "const-data" and isinstance(rhs.value, bytes):
        return Expr(op, (lhs,), value=rhs.value.decode("latin-1"), loc=lhs.loc)
    return Expr(op, (lhs, rhs), loc=lhs.loc)


def _op_context(op: str) -> Context:
    if op in ("equal", "not-equal", "regex", "iregex"):
        return "data"
    if op in ("and", "or"):
        return "boolean"
    return "numeric"


def _atoi(text: str) -> int:
    digits = text.lstrip("-")
    return (-1 if text.startswith("-") else 1) * int(digits) if digits.isdigit() else 0


# --- keyword handlers (the keyword token is already consumed) ------------------------------


def _check(p: ExpressionParser, loc: object) -> Expr:
    tok = p.cur.next()
    if tok.kind is not Kind.STRING:
        raise p.cur.error_at(tok, "string expected after 'check'")
    if tok.text != "default":
        raise p.cur.error('unknown collection: only "default" exists')
    return Expr("check", value=tok.text, loc=tok.loc)


def _exists(p: ExpressionParser, loc: object) -> Expr:
    return Expr("exists", value=p._option_name(), loc=p.cur.last.loc)


def _option(p: ExpressionParser, loc: object) -> Expr:
    return Expr("option", value=p._option_name(), loc=p.cur.last.loc)


def _config_option(p: ExpressionParser, loc: object) -> Expr:
    return Expr("config-option", value=p._option_name(), loc=p.cur.last.loc)


def _concat(p: ExpressionParser, loc: object) -> Expr:
    args = p._data_list()
    if len(args) < 2:
        raise p.cur.error("concat needs at least two arguments")
    return Expr("concat", args, loc=args[0].loc)


def _pick(p: ExpressionParser, loc: object) -> Expr:
    args = p._data_list()
    return Expr("pick-first-value", args, loc=args[0].loc)


def _extract_int(p: ExpressionParser, loc: object) -> Expr:
    p.cur.expect_punct("(", "left parenthesis expected")
    data = p.data()
    p.cur.expect_punct(",", "comma expected")
    width = p._width()
    p.cur.expect_punct(")", "right parenthesis expected")
    return Expr("extract-int", (data,), value=width, loc=data.loc)


def _encode_int(p: ExpressionParser, loc: object) -> Expr:
    p.cur.expect_punct("(", "left parenthesis expected")
    number = p.numeric()
    p.cur.expect_punct(",", "comma expected")
    width = p._width()
    p.cur.expect_punct(")", "right parenthesis expected")
    return Expr("encode-int", (number,), value=width, loc=number.loc)


def _defined(p: ExpressionParser, loc: object) -> Expr:
    p.cur.expect_punct("(", "left parenthesis expected")
    tok = p.cur.next()
    if tok.kind not in (Kind.NAME, Kind.NUMBER_OR_NAME):
        raise p.cur.error_at(tok, f"{tok.text} can't be a variable name")
    p.cur.expect_punct(")", "right parenthesis expected")
    return Expr("variable-exists", value=tok.text, loc=tok.loc)


def _gethostname(p: ExpressionParser, loc: object) -> Expr:
    p.cur.expect_punct("(", "left parenthesis expected")
    p.cur.expect_punct(")", "right parenthesis expected")
    return Expr("gethostname", loc=p.cur.last.loc)


def _gethostbyname(p: ExpressionParser, loc: object) -> Expr:
    p.cur.expect_punct("(", "left parenthesis expected")
    tok = p.cur.next()
    if tok.kind is not Kind.STRING:
        raise p.cur.error_at(tok, 'expecting quoted literal: "foo.example.com"')
    p.cur.expect_punct(")", "right parenthesis expected")
    return Expr("gethostbyname", value=tok.text, loc=tok.loc)


def _not(p: ExpressionParser, loc: object) -> Expr:
    return p._not(loc)


_SPECIAL = {
    "check": _check,
    "not": _not,
    "exists": _exists,
    "option": _option,
    "config-option": _config_option,
    "concat": _concat,
    "pick-first-value": _pick,
    "pick": _pick,
    "extract-int": _extract_int,
    "encode-int": _encode_int,
    "defined": _defined,
    "gethostname": _gethostname,
    "gethostbyname": _gethostbyname,
}


def convert_hex_byte(cur: Cursor, tok: Token) -> int:
    """One byte of a hex list (exposed for the option parser)."""
    return convert_number(cur, tok, 16, 8)
