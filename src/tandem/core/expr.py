"""Evaluating dhcpd expressions (``if``, ``match if``, ``match``, ``option X = ...``).

An expression is evaluated against one received packet plus what the server knows about the
client at that point (is it a known host, which address is being leased). Results are dhcpd's
three kinds: data (``bytes``), numbers (``int``) and booleans (``bool``); ``None`` is dhcpd's
"no value" (an option the client did not send), which makes ``=`` false, as dhcpd does.
A function of a value that failed fails too (``concat``, ``binary-to-ascii``, ...), as in
common/tree.c; ``pick-first-value`` takes its first argument that has a value.

Lease events (core.events) evaluate without a packet at expiry (``packet`` None): then
``hardware`` is the lease's, as in dhcpd, and ``option ...`` has no value; ``lease-time``,
the lease's ``set`` variables and ``host-decl-name`` come from the lease.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from tandem.config.model import Expr, ExprValue
from tandem.core import codes
from tandem.wire.dhcp import Packet, encode


class ExprError(Exception):
    """An expression the core cannot evaluate (unknown op): treated as false / no value."""


@dataclass(slots=True)
class ExprContext:
    """What an expression can look at while one packet is handled."""

    packet: Packet | None
    names: dict[str, tuple[str, int]]
    known: bool = False
    static: bool = False
    host_name: str | None = None
    leased_address: IPv4Address | None = None
    client_state: int = 0
    config_options: dict[tuple[str, int], bytes] = field(default_factory=dict)
    lease_time: int | None = None  # seconds left of the lease (``lease-time``), events only
    variables: dict[str, str] | None = None  # the lease's ``set`` variables, events only
    hardware: tuple[int, bytes] | None = None  # the lease's, when there is no packet
    _agent: dict[int, bytes] | None = None

    def agent_options(self) -> dict[int, bytes]:
        """Option 82's sub-options (parsed once; a malformed tail is ignored)."""
        if self._agent is None:
            p = self.packet
            self._agent = parse_suboptions(
                None if p is None else p.options.get(codes.RELAY_AGENT_INFORMATION)
            )
        return self._agent

    def client_option(self, spacename: str) -> bytes | None:
        """The payload of option ``space.name`` in the client's packet, or None."""
        found = self.names.get(spacename)
        if found is None or self.packet is None:
            return None
        space, code = found
        if space == "dhcp":
            return self.packet.options.get(code)
        if space == "agent":
            return self.agent_options().get(code)
        return None


def parse_suboptions(data: bytes | None) -> dict[int, bytes]:
    """Split a code/length/value block (option 82, 43) into a dict; stops at a bad length."""
    out: dict[int, bytes] = {}
    if not data:
        return out
    i, end = 0, len(data)
    while i + 2 <= end:
        code, length = data[i], data[i + 1]
        if i + 2 + length > end:
            break
        out[code] = data[i + 2 : i + 2 + length]
        i += 2 + length
    return out


def _data(v: ExprValue) -> bytes | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    if isinstance(v, bool):
        return b"\x01" if v else b"\x00"
    return v.to_bytes(4, "big", signed=v < 0)


def _num(v: ExprValue) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, bytes):
        return int.from_bytes(v, "big") if v else None
    return None


def truthy(v: ExprValue) -> bool:
    """dhcpd's notion of a true boolean result (no value is false)."""
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v != 0
    return len(v) > 0


def _fmt_int(n: int, base: int) -> str:
    if base == 16:
        return f"{n:x}"
    if base == 8:
        return f"{n:o}"
    if base == 2:
        return f"{n:b}"
    return str(n)


def _binary_to_ascii(base: int, width: int, sep: bytes, data: bytes) -> bytes | None:
    """dhcpd's binary-to-ascii: widths 8, 16, 32 only, on a whole number of them (else no
    value); numbers unpadded (``binary-to-ascii(16, 8, ":", ...)`` gives ``2:0:5e:0:1:a``)."""
    if width not in (8, 16, 32) or len(data) % (width // 8):
        return None
    step = width // 8
    parts = []
    for i in range(0, len(data), step):
        parts.append(_fmt_int(int.from_bytes(data[i : i + step], "big"), base).encode())
    return sep.join(parts)


def evaluate(e: Expr, ctx: ExprContext) -> ExprValue:
    """Evaluate one expression node; unknown ops raise ExprError."""
    fn = _OPS.get(e.op)
    if fn is None:
        raise ExprError(f"{e.loc}: unsupported expression {e.op!r}")
    return fn(e, ctx)


def evaluate_bool(e: Expr, ctx: ExprContext) -> bool:
    """Evaluate a condition; an expression that cannot be evaluated is false (as in dhcpd)."""
    try:
        return truthy(evaluate(e, ctx))
    except ExprError:
        return False


def evaluate_data(e: Expr, ctx: ExprContext) -> bytes | None:
    """Evaluate to data (numbers become 4 bytes big-endian), None when there is no value."""
    try:
        return _data(evaluate(e, ctx))
    except ExprError:
        return None


def _arg(e: Expr, i: int, ctx: ExprContext) -> ExprValue:
    if i >= len(e.args):
        raise ExprError(f"{e.loc}: {e.op} needs {i + 1} arguments")
    return evaluate(e.args[i], ctx)


def _op_const(e: Expr, ctx: ExprContext) -> ExprValue:
    return e.value


def _op_option(e: Expr, ctx: ExprContext) -> ExprValue:
    return ctx.client_option(str(e.value))


def _op_config_option(e: Expr, ctx: ExprContext) -> ExprValue:
    found = ctx.names.get(str(e.value))
    return None if found is None else ctx.config_options.get(found)


def _op_exists(e: Expr, ctx: ExprContext) -> ExprValue:
    return ctx.client_option(str(e.value)) is not None


def _op_hardware(e: Expr, ctx: ExprContext) -> ExprValue:
    p = ctx.packet
    if p is None:  # the lease's (dhcpd: empty once the lease lost it, e.g. abandoned)
        hw = ctx.hardware
        return b"" if hw is None else bytes([hw[0]]) + hw[1]
    return bytes([p.htype]) + p.chaddr[: min(p.hlen, 16)]


def _op_packet(e: Expr, ctx: ExprContext) -> ExprValue:
    off, length = _num(_arg(e, 0, ctx)), _num(_arg(e, 1, ctx))
    if off is None or length is None or ctx.packet is None:
        return None
    raw = encode(ctx.packet, max_size=65535)
    return raw[off : off + length] if off <= len(raw) else b""


def _op_substring(e: Expr, ctx: ExprContext) -> ExprValue:
    d, off, length = _data(_arg(e, 0, ctx)), _num(_arg(e, 1, ctx)), _num(_arg(e, 2, ctx))
    if d is None or off is None or length is None:
        return None
    return d[off : off + length] if 0 <= off <= len(d) and length >= 0 else b""


def _op_suffix(e: Expr, ctx: ExprContext) -> ExprValue:
    d, length = _data(_arg(e, 0, ctx)), _num(_arg(e, 1, ctx))
    if d is None or length is None:
        return None
    return d[-length:] if 0 < length < len(d) else (d if length > 0 else b"")


def _op_concat(e: Expr, ctx: ExprContext) -> ExprValue:
    parts = []
    for a in e.args:
        d = _data(evaluate(a, ctx))
        if d is None:
            return None  # dhcpd: concat fails when either side does
        parts.append(d)
    return b"".join(parts)


def _op_b2a(e: Expr, ctx: ExprContext) -> ExprValue:
    base, width = _num(_arg(e, 0, ctx)), _num(_arg(e, 1, ctx))
    sep, d = _data(_arg(e, 2, ctx)), _data(_arg(e, 3, ctx))
    if base is None or width is None or d is None:
        return None
    return _binary_to_ascii(base, width, sep or b"", d)


def _op_encode_int(e: Expr, ctx: ExprContext) -> ExprValue:
    n = _num(_arg(e, 0, ctx))
    width = int(e.value) if isinstance(e.value, int) else 32
    if n is None:
        return None
    return (n & ((1 << width) - 1)).to_bytes(width // 8, "big")


def _op_extract_int(e: Expr, ctx: ExprContext) -> ExprValue:
    d = _data(_arg(e, 0, ctx))
    width = int(e.value) if isinstance(e.value, int) else 32
    if d is None or len(d) < width // 8:
        return None
    return int.from_bytes(d[: width // 8], "big")


def _op_lcase(e: Expr, ctx: ExprContext) -> ExprValue:
    d = _data(_arg(e, 0, ctx))
    return None if d is None else d.lower()


def _op_ucase(e: Expr, ctx: ExprContext) -> ExprValue:
    d = _data(_arg(e, 0, ctx))
    return None if d is None else d.upper()


def _op_pick(e: Expr, ctx: ExprContext) -> ExprValue:
    for a in e.args:
        v = evaluate(a, ctx)
        if v is not None:  # dhcpd: the first that evaluates, even to ""
            return v
    return None


def _op_reverse(e: Expr, ctx: ExprContext) -> ExprValue:
    """reverse(WIDTH, DATA): DATA's WIDTH-byte groups in reverse order."""
    width, d = _num(_arg(e, 0, ctx)), _data(_arg(e, 1, ctx))
    if width is None or d is None or width <= 0 or len(d) % width:
        return None
    return b"".join(d[i : i + width] for i in range(len(d) - width, -1, -width))


def _op_variable(e: Expr, ctx: ExprContext) -> ExprValue:
    found = None if ctx.variables is None else ctx.variables.get(str(e.value))
    return None if found is None else found.encode("utf-8", "surrogateescape")


def _numeric(fn: Callable[[int, int], int | None]) -> Callable[[Expr, ExprContext], ExprValue]:
    def op(e: Expr, ctx: ExprContext) -> ExprValue:
        a, b = _num(_arg(e, 0, ctx)), _num(_arg(e, 1, ctx))
        return None if a is None or b is None else fn(a, b)

    return op


def _op_leased(e: Expr, ctx: ExprContext) -> ExprValue:
    a = ctx.leased_address
    return None if a is None else a.packed


def _op_equal(e: Expr, ctx: ExprContext) -> ExprValue:
    a, b = _arg(e, 0, ctx), _arg(e, 1, ctx)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return _data(a) == _data(b)


def _op_regex(e: Expr, ctx: ExprContext) -> ExprValue:
    d = _data(_arg(e, 0, ctx))
    if d is None:
        return False
    flags = re.IGNORECASE if e.op == "iregex" else 0
    try:
        return re.search(str(e.value), d.decode("latin-1"), flags) is not None
    except re.error as exc:
        raise ExprError(f"{e.loc}: bad regex: {exc}") from exc


_OPS: dict[str, Callable[[Expr, ExprContext], ExprValue]] = {
    "const-data": lambda e, c: _data(e.value),
    "const-int": _op_const,
    "const-bool": _op_const,
    "option": _op_option,
    "config-option": _op_config_option,
    "exists": _op_exists,
    "known": lambda e, c: c.known,
    "static": lambda e, c: c.static,
    "hardware": _op_hardware,
    "packet": _op_packet,
    "substring": _op_substring,
    "suffix": _op_suffix,
    "concat": _op_concat,
    "binary-to-ascii": _op_b2a,
    "encode-int": _op_encode_int,
    "extract-int": _op_extract_int,
    "lcase": _op_lcase,
    "ucase": _op_ucase,
    "pick-first-value": _op_pick,
    "leased-address": _op_leased,
    "host-decl-name": lambda e, c: None if c.host_name is None else c.host_name.encode(),
    "lease-time": lambda e, c: c.lease_time,
    "variable": _op_variable,
    "variable-exists": lambda e, c: c.variables is not None and str(e.value) in c.variables,
    "reverse": _op_reverse,
    "null": lambda e, c: None,
    "add": _numeric(lambda a, b: a + b),
    "subtract": _numeric(lambda a, b: a - b),
    "multiply": _numeric(lambda a, b: a * b),
    "divide": _numeric(lambda a, b: a // b if b else None),
    "remainder": _numeric(lambda a, b: a % b if b else None),
    "binary-and": _numeric(lambda a, b: a & b),
    "binary-or": _numeric(lambda a, b: a | b),
    "binary-xor": _numeric(lambda a, b: a ^ b),
    "client-state": lambda e, c: c.client_state,
    "and": lambda e, c: truthy(_arg(e, 0, c)) and truthy(_arg(e, 1, c)),
    "or": lambda e, c: truthy(_arg(e, 0, c)) or truthy(_arg(e, 1, c)),
    "not": lambda e, c: not truthy(_arg(e, 0, c)),
    "equal": _op_equal,
    "not-equal": lambda e, c: not _op_equal(e, c),
    "regex": _op_regex,
    "iregex": _op_regex,
}
