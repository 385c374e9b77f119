"""``option`` statements: values in every dhcpd format, definitions and option spaces.

A value is read atom by atom along the option's dhcpd format string, using the wire
layer's compiled ``FormatSpec`` (``tandem.wire.optformat``) so that parsing and encoding
agree on what each letter means, and then encoded with ``optformat.encode``: the model
holds the payload exactly as it goes on the wire. Host names where an address is expected
cannot be encoded now (dhcpd resolves them when it answers); such options keep an ``Expr``.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from tandem.config.cursor import Cursor
from tandem.config.expressions import ExpressionParser
from tandem.config.lexer import Kind, Token
from tandem.config.model import Expr, Location, OptionDefinition, OptionSet, OptionSpace
from tandem.config.registry import ENUMERATIONS as SERVER_ENUMERATIONS
from tandem.config.registry import OptionRef, Registry
from tandem.config.values import address_or_host_name, convert_number, hex_list, host_name
from tandem.wire import optformat
from tandem.wire.errors import WireError

INFINITE = 0xFFFFFFFF
_BITS = {"l": 32, "L": 32, "T": 32, "s": 16, "S": 16, "b": 8, "B": 8}
_SIGNED = frozenset("lsb")
_FLAGS = {"true": True, "on": True, "false": False, "off": False}


@dataclass(frozen=True, slots=True)
class HostName:
    """A host name written where an address was expected (resolved by dhcpd at run time)."""

    name: str


Value = object  # one atom value: IPv4Address, int, bool, str, bytes, HostName, "ignore"


def text_of(tok: Token) -> str:
    """A string token as str that re-encodes (UTF-8, surrogateescape) to the file's bytes."""
    return tok.raw.decode("utf-8", "surrogateescape")


class OptionReader:
    def __init__(self, cur: Cursor, reg: Registry) -> None:
        self.cur = cur
        self.reg = reg

    # --- values ------------------------------------------------------------------------------

    def values(self, ref: OptionRef, *, allow_ignore: bool = False) -> list[Value]:
        """dhcpd's parse_option_data: the atom values of one option, flat, in format order."""
        try:
            spec = optformat.atom_kinds(ref.format)
        except WireError as exc:
            raise self.cur.error(f"option {ref.space}.{ref.name}: unusable format: {exc}") from exc
        out: list[Value] = []
        while True:
            for atom in spec.atoms:
                if not atom.has_value:
                    continue
                if atom.optional and self.cur.at_punct(";"):
                    return out
                self._atom(atom, ref, out, allow_ignore)
            if not spec.array or not self.cur.at_punct(","):
                return out
            self.cur.next()
            if spec.array == "a":
                while True:
                    self._atom(spec.atoms[-1], ref, out, allow_ignore)
                    if not self.cur.take_punct(","):
                        return out

    def _atom(self, atom: optformat.Atom, ref: OptionRef, out: list[Value], ignore: bool) -> None:
        cur = self.cur
        code = atom.code
        if code == "I":
            value = address_or_host_name(cur)
            out.append(value if isinstance(value, IPv4Address) else HostName(value))
        elif code in _BITS:
            out.append(self._integer(code))
        elif code == "f":
            out.append(self._flag(ignore))
        elif code in "tU":
            tok = cur.next()
            if not (tok.kind is Kind.STRING or tok.is_identifier):
                raise cur.error_at(tok, f"expecting string, found {tok.describe()}")
            out.append(text_of(tok))
        elif code == "k":
            tok = cur.peek()
            name = text_of(cur.next()) if tok.kind is Kind.STRING else host_name(cur)
            if name is None:
                raise cur.error("not a valid key name")
            out.append(name)
        elif code in "XE":
            out.append(self.string_or_hex())
        elif code == "d":
            name = host_name(cur)
            if name is None:
                raise cur.error("not a valid domain name")
            out.append(name)
        elif code == "D":
            while True:
                tok = cur.next()
                if tok.kind is not Kind.STRING:
                    raise cur.error_at(tok, f"expecting a domain string, found {tok.describe()}")
                out.append(text_of(tok))
                if not cur.take_punct(","):
                    break
        elif code == "N":
            out.append(self._enumeration(atom.name))
        elif code == "6":
            out.append(self._ip6())
        else:
            raise cur.error(f"option {ref.name}: format atom {code!r} is not supported")

    def string_or_hex(self) -> bytes:
        tok = self.cur.peek()
        if tok.kind in (Kind.NUMBER, Kind.NUMBER_OR_NAME):
            return hex_list(self.cur)
        self.cur.next()
        if tok.kind is not Kind.STRING:
            raise self.cur.error_at(
                tok, f"expecting string or hexadecimal data, found {tok.describe()}"
            )
        return tok.raw

    def _integer(self, code: str) -> int:
        tok = self.cur.next()
        if code == "T" and tok.word == "infinite":
            return INFINITE
        if tok.kind not in (Kind.NUMBER, Kind.NUMBER_OR_NAME):
            raise self.cur.error_at(tok, f"expecting number, found {tok.describe()}")
        bits = _BITS[code]
        value = convert_number(self.cur, tok, 0, bits)
        if code in _SIGNED and value >= 1 << (bits - 1):
            value -= 1 << bits  # dhcpd keeps the bit pattern; the encoder wants the signed value
        return value

    def _flag(self, allow_ignore: bool) -> bool | str:
        tok = self.cur.next()
        if not tok.is_identifier:
            raise self.cur.error_at(tok, f"expecting boolean, found {tok.describe()}")
        if tok.word in _FLAGS:
            return _FLAGS[tok.word]
        if tok.word == "ignore" and allow_ignore:
            return "ignore"
        raise self.cur.error_at(tok, f"expecting boolean (true/false/on/off), found {tok.text!r}")

    def _enumeration(self, name: str) -> str:
        tok = self.cur.next()
        if not tok.is_identifier:
            raise self.cur.error_at(tok, "identifier expected")
        words = SERVER_ENUMERATIONS.get(name)
        if words is None:
            enum = optformat.ENUMERATIONS.get(name)
            words = dict(enum.values) if enum is not None else {}
        if tok.text not in words and tok.word not in words:
            allowed = ", ".join(sorted(words))
            raise self.cur.error_at(tok, f"unknown value {tok.text!r}: expecting one of {allowed}")
        return tok.text if tok.text in words else tok.word

    def _ip6(self) -> IPv6Address:
        tok = self.cur.peek()
        text = ""
        if tok.kind is Kind.STRING:
            text = self.cur.next().text
        else:
            while tok.kind in (Kind.NUMBER, Kind.NUMBER_OR_NAME) or tok.is_punct(":"):
                text += self.cur.next().text
                tok = self.cur.peek()
        try:
            return IPv6Address(text)
        except ValueError as exc:
            raise self.cur.error(f"expecting an IPv6 address, found {text!r}") from exc

    # --- whole statements ------------------------------------------------------------------

    def option_set(self, ref: OptionRef, name_tok: Token) -> OptionSet | None:
        """The rest of ``option NAME ...;`` after the name. None for a bare ``option NAME;``."""
        cur = self.cur
        if cur.at_punct(";") and not ref.format.startswith("Z"):
            cur.next()
            return None
        if cur.take_punct("="):
            expr = ExpressionParser(cur, self.reg).data()
            cur.semi()
            return OptionSet(ref.space, ref.code, ref.name, None, expr, name_tok.loc)
        values = self.values(ref)
        cur.semi()
        hosts = [v for v in values if isinstance(v, HostName)]
        if hosts:
            return OptionSet(
                ref.space, ref.code, ref.name, None, self._lookup_expr(ref, values), name_tok.loc
            )
        try:
            data = optformat.encode(ref.format, values)
        except WireError as exc:
            raise cur.error_at(name_tok, f"option {ref.name}: {exc}") from exc
        return OptionSet(ref.space, ref.code, ref.name, data, None, name_tok.loc)

    def _lookup_expr(self, ref: OptionRef, values: list[Value]) -> Expr:
        if ref.format.rstrip("Aa").strip("I"):
            raise self.cur.error(
                f"option {ref.name}: host names are only supported in address-list options"
            )
        parts = [
            Expr("host-lookup", value=v.name)
            if isinstance(v, HostName)
            else Expr("const-data", value=v.packed if isinstance(v, IPv4Address) else b"")
            for v in values
        ]
        return parts[0] if len(parts) == 1 else Expr("concat", tuple(parts))

    def space_declaration(self, loc: Location) -> OptionSpace:
        """``option space NAME [code width N] [length width N] [hash size N];``"""
        cur = self.cur
        name_tok = cur.next()
        if not name_tok.is_identifier:
            raise cur.error_at(name_tok, "expecting an option space name")
        code_width, length_width = 1, 1
        while True:
            tok = cur.next()
            if tok.is_punct(";"):
                break
            if tok.word in ("code", "length"):
                cur.expect_word("width", "expecting 'width'")
                num = cur.next()
                allowed = ("1", "2", "4") if tok.word == "code" else ("1", "2")
                if num.kind is not Kind.NUMBER or num.text not in allowed:
                    raise cur.error_at(
                        num, f"invalid {tok.word} width: expecting {' or '.join(allowed)}"
                    )
                if tok.word == "code":
                    code_width = int(num.text)
                else:
                    length_width = int(num.text)
            elif tok.word == "hash":
                cur.expect_word("size", "expecting 'size'")
                num = cur.next()
                if num.kind is not Kind.NUMBER:
                    raise cur.error_at(num, "expecting a 10base number for the hash size")
            else:
                raise cur.error_at(tok, f"unexpected {tok.describe()} in option space declaration")
        space = OptionSpace(name_tok.text, code_width, length_width, loc)
        self.reg.declare_space(space)
        return space

    def definition(self, space: str, name: str, loc: Location) -> OptionDefinition:
        """The rest of ``option NAME code N = TYPE;`` after ``code``."""
        cur = self.cur
        num = cur.next()
        if num.kind is not Kind.NUMBER or not num.text.isdigit():
            raise cur.error_at(num, "expecting option code number")
        code = int(num.text)
        code_width, _ = self.reg.space_widths(space)
        if code >= 1 << (8 * code_width):
            raise cur.error_at(num, f"option code {code} does not fit the {space} space")
        cur.expect_punct("=", 'expecting "="')
        fmt = TypeReader(cur, self.reg).format()
        definition = OptionDefinition(space, name, code, fmt, loc)
        self.reg.define(definition)
        return definition


class TypeReader:
    """``array of``, ``{ ... }`` records and dhcpd's type words -> a dhcpd format string."""

    def __init__(self, cur: Cursor, reg: Registry) -> None:
        self.cur = cur
        self.reg = reg

    def format(self) -> str:
        cur = self.cur
        outer_array = False
        if cur.take_word("array"):
            cur.expect_word("of", 'expecting "of"')
            outer_array = True
        if not cur.take_punct("{"):
            atom, final = self._simple(in_array=outer_array)
            cur.semi()
            if outer_array and atom.startswith("E"):
                raise cur.error("arrays of encapsulations don't make sense")
            return atom + ("a" if outer_array else "")
        parts: list[str] = []
        while True:
            inner_array = False
            if cur.take_word("array"):
                if outer_array:
                    raise cur.error("no nested arrays")
                cur.expect_word("of", 'expecting "of"')
                if cur.at_punct("{"):
                    raise cur.error("only uniform arrays inside a record")
                inner_array = True
            if parts and parts[-1].startswith("E"):
                raise cur.error("encapsulate must always be the last item")
            atom, final = self._simple(in_array=outer_array or inner_array)
            parts.append(atom + ("a" if inner_array else ""))
            tok = cur.next()
            if tok.is_punct("}"):
                break
            if not tok.is_punct(","):
                raise cur.error_at(tok, "expecting right brace or comma in record")
            if final:
                raise cur.error(f"{atom} must be at the end of the record")
        cur.semi()
        fmt = "".join(parts)
        if outer_array and "E" in fmt:
            raise cur.error("arrays of encapsulations don't make sense")
        return fmt + ("A" if outer_array else "")

    def _simple(self, *, in_array: bool) -> tuple[str, bool]:
        """One type word -> (format atom, must-be-last)."""
        cur = self.cur
        tok = cur.next()
        word = tok.word
        if word == "boolean":
            return "f", False
        if word in ("integer", "signed", "unsigned"):
            if word != "integer":
                cur.expect_word("integer", 'expecting "integer" keyword')
            bits = cur.next()
            letters = {"8": "b", "16": "s", "32": "l"}
            if bits.text not in letters or bits.kind is not Kind.NUMBER:
                raise cur.error_at(bits, f"{bits.text} bit precision is not supported")
            letter = letters[bits.text]
            return (letter.upper() if word == "unsigned" else letter), False
        if word == "ip-address":
            return "I", False
        if word == "ip6-address":
            return "6", False
        if word == "zerolen":
            if in_array:
                raise cur.error("array incompatible with zerolen")
            return "Z", True
        if word == "encapsulate":
            space = cur.next()
            if not space.is_identifier:
                raise cur.error_at(space, "expecting option space identifier")
            if not self.reg.has_space(space.text):
                raise cur.error(f"unknown option space {space.text}")
            return f"E{space.text}.", False
        texts = {"text": "t", "string": "X", "domain-name": "d", "domain-list": "D"}
        if word in texts:
            atom = texts[word]
            if word == "domain-list" and cur.take_word("compressed"):
                atom = "Dc"
            if in_array:
                raise cur.error("arrays of text strings are not supported")
            return atom, True
        raise cur.error_at(tok, f"unknown data type {tok.text}")
