"""dhcpd option format strings: bytes <-> Python values <-> dhcpd's text.

A format string (common/tables.c, legend at the top of that file) describes
one option's payload as a sequence of *atoms*, possibly followed by an array
marker:

=====  ===========================================  ======================
atom   wire                                          Python value
=====  ===========================================  ======================
I      4-byte IPv4 address                           ipaddress.IPv4Address
6      16-byte IPv6 address                          ipaddress.IPv6Address
l L    32-bit signed / unsigned, network order       int
s S    16-bit signed / unsigned                      int
b B    8-bit signed / unsigned                       int
T      32-bit unsigned lease time (all ones: inf.)   int
f      one byte, 0 = false                           bool
N      enumeration (``Nname.``), width from table    int
t k U  text up to the end of the option              str (bytes accepted)
X      octets up to the end of the option            bytes
E      encapsulation (``Espace.``), rest of option   bytes (raw sub-options)
d      one RFC 1035 name, uncompressed               str
D      RFC 1035 names to the end (``Dc``: compress)  one str per name
F Z    nothing on the wire                           no value
=====  ===========================================  ======================

Modifiers: ``o`` after an atom makes it optional; a trailing ``A`` repeats the
whole record ("IIA": pairs of addresses), a trailing ``a`` repeats the last
atom ("fIa": a flag, then addresses); ``e`` only marks "encapsulation later"
and is skipped. Arrays hold at least one element, as dhcpd requires.

Values are a FLAT list in wire order: "IA" with three routers is three
IPv4Address values, "IIA" with two routes is four values, "Dc" with two
search domains is two strings.

Text (``str``) atoms are encoded as UTF-8 with ``surrogateescape``, so a str
read from a config file with the same error handler yields exactly the bytes
dhcpd would send, and any received bytes decode to a str that re-encodes to
the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address

from tandem.wire import dnsname
from tandem.wire.errors import FormatError

__all__ = [
    "ENUMERATIONS",
    "Atom",
    "Enumeration",
    "FormatError",
    "FormatSpec",
    "atom_kinds",
    "decode",
    "encode",
    "to_text",
]


@dataclass(frozen=True, slots=True)
class Enumeration:
    """A named set of values for the ``N`` atom (dhcpd's ``struct enumeration``)."""

    name: str
    width: int
    values: tuple[tuple[str, int], ...]

    def name_of(self, value: int) -> str | None:
        for n, v in self.values:
            if v == value:
                return n
        return None

    def value_of(self, name: str) -> int | None:
        for n, v in self.values:
            if n == name:
                return v
        return None


# The enumerations dhcpd registers with add_enumeration() (common/tables.c).
# The DHCPv4 option table itself has no N atoms; these serve user definitions
# and the v6-style names dhcpd knows.
ENUMERATIONS: dict[str, Enumeration] = {
    e.name: e
    for e in (
        Enumeration(
            "duid-types", 2, (("duid-llt", 1), ("duid-en", 2), ("duid-ll", 3), ("duid-uuid", 4))
        ),
        Enumeration(
            "status-codes",
            2,
            (
                ("success", 0),
                ("UnspecFail", 1),
                ("NoAddrsAvail", 2),
                ("NoBinding", 3),
                ("NotOnLink", 4),
                ("UseMulticast", 5),
                ("NoPrefixAvail", 6),
                ("UnknownQueryType", 7),
                ("MalformedQuery", 8),
                ("NotConfigured", 9),
                ("NotAllowed", 10),
                ("QueryTerminated", 11),
            ),
        ),
        Enumeration(
            "dhcpv6-messages",
            1,
            tuple(
                (n, i + 1)
                for i, n in enumerate(
                    [
                        "SOLICIT",
                        "ADVERTISE",
                        "REQUEST",
                        "CONFIRM",
                        "RENEW",
                        "REBIND",
                        "REPLY",
                        "RELEASE",
                        "DECLINE",
                        "RECONFIGURE",
                        "INFORMATION-REQUEST",
                        "RELAY-FORW",
                        "RELAY-REPL",
                        "LEASEQUERY",
                        "LEASEQUERY-REPLY",
                        "LEASEQUERY-DONE",
                        "LEASEQUERY-DATA",
                        "RECONFIGURE-REQUEST",
                        "RECONFIGURE-REPLY",
                        "DHCPV4-QUERY",
                        "DHCPV4-RESPONSE",
                    ]
                )
            ),
        ),
    )
}

# Fixed-width integer atoms: (struct, min, max).
_INT_ATOMS: dict[str, tuple[struct.Struct, int, int]] = {
    "l": (struct.Struct("!i"), -(2**31), 2**31 - 1),
    "L": (struct.Struct("!I"), 0, 2**32 - 1),
    "T": (struct.Struct("!I"), 0, 2**32 - 1),
    "s": (struct.Struct("!h"), -(2**15), 2**15 - 1),
    "S": (struct.Struct("!H"), 0, 2**16 - 1),
    "b": (struct.Struct("!b"), -128, 127),
    "B": (struct.Struct("!B"), 0, 255),
}
_ENUM_STRUCTS = {1: struct.Struct("!B"), 2: struct.Struct("!H"), 4: struct.Struct("!I")}
_WIDTHS = {"I": 4, "6": 16, "l": 4, "L": 4, "T": 4, "s": 2, "S": 2, "b": 1, "B": 1, "f": 1}
_REST_ATOMS = frozenset("tkUXED")  # consume everything up to the end of the option
_NO_VALUE = frozenset("FZ")
INFINITE_TIME = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Atom:
    """One atom of a compiled format.

    ``code``: the atom letter (see the module table). ``optional``: followed by
    ``o``. ``compress``: a ``D`` followed by ``c``. ``name``: the space of an
    ``E`` atom (``""`` = the vendor space of "E.") or the enumeration of an
    ``N`` atom. ``width``: fixed wire width, 0 for variable-length atoms and
    for atoms without wire data (``F``, ``Z``). ``has_value``: False for
    ``F``/``Z``, which take no value. ``to_end``: the atom consumes the rest of
    the option (t, k, U, X, E, D).
    """

    code: str
    optional: bool = False
    compress: bool = False
    name: str = ""
    width: int = 0

    @property
    def has_value(self) -> bool:
        return self.code not in _NO_VALUE

    @property
    def to_end(self) -> bool:
        return self.code in _REST_ATOMS


@dataclass(frozen=True, slots=True)
class FormatSpec:
    """A compiled format string: what a config parser walks to read an option.

    How to parse ``option NAME v1 v2, v3 ...;`` with it:

    1. Take ``atoms`` in order; for each atom with ``has_value``, read one
       value token of that kind (``I``: address or host name, ``t``: string,
       ``X``/``E``: string or colon-hex, ``f``: true/false/on/off/ignore, ...).
       If ``atom.optional`` and the next token is ``;``, stop: the option is
       complete.
    2. A ``D`` atom reads a comma-separated list of quoted names by itself:
       each name is one value; the commas belong to it.
    3. After the last atom: if ``array == "A"`` and the next token is ``,``,
       consume it and go back to step 1 with the whole record; if
       ``array == "a"`` and the next token is ``,``, consume it and read one
       more value of ``atoms[-1]`` (repeat). Otherwise the option is complete.

    :meth:`walk` yields the atoms in that order for callers that prefer an
    iterator: ``it.send(True)`` is not used; just call ``next(it)`` each time
    a comma says the array continues.
    """

    text: str
    atoms: tuple[Atom, ...]
    array: str  # "", "A" (repeat the whole record) or "a" (repeat the last atom)

    @property
    def min_length(self) -> int:
        """Fewest payload octets a valid option of this format can have."""
        total = 0
        for a in self.atoms:
            if a.optional:
                break
            total += a.width
            if a.code == "d":
                total += 1
        return total

    def walk(self) -> Iterator[Atom]:
        """Atoms in parse order; infinite when the format is an array."""
        yield from self.atoms
        if self.array == "A":
            while True:
                yield from self.atoms
        elif self.array == "a":
            last = self.atoms[-1]
            while True:
                yield last


def atom_kinds(fmt: str) -> FormatSpec:
    """Compile ``fmt`` (cached); raises :class:`FormatError` for a format we cannot handle."""
    return _compile(fmt)


@lru_cache(maxsize=1024)
def _compile(fmt: str) -> FormatSpec:
    atoms: list[Atom] = []
    array = ""
    i = 0
    n = len(fmt)
    while i < n:
        c = fmt[i]
        if array:
            raise FormatError(f"format {fmt!r}: array marker must be last")
        if c == "e":
            i += 1
            continue
        if c in "Aa":
            if not atoms or atoms[-1].to_end or not atoms[-1].has_value:
                raise FormatError(f"format {fmt!r}: array of nothing or of a variable atom")
            array = c
            i += 1
            continue
        if c == "o":
            if not atoms:
                raise FormatError(f"format {fmt!r}: 'o' without an atom")
            last = atoms[-1]
            atoms[-1] = Atom(last.code, True, last.compress, last.name, last.width)
            i += 1
            continue
        if c == "c":
            if not atoms or atoms[-1].code != "D":
                raise FormatError(f"format {fmt!r}: 'c' must follow 'D'")
            last = atoms[-1]
            atoms[-1] = Atom("D", last.optional, True, "", 0)
            i += 1
            continue
        if atoms and atoms[-1].to_end:
            raise FormatError(f"format {fmt!r}: {atoms[-1].code!r} must be the last atom")
        if c in "EN":
            dot = fmt.find(".", i + 1)
            if dot < 0:
                raise FormatError(f"format {fmt!r}: {c} without a terminating '.'")
            name = fmt[i + 1 : dot]
            width = 0
            if c == "N":
                enum = ENUMERATIONS.get(name)
                width = enum.width if enum is not None else 1
            atoms.append(Atom(c, name=name, width=width))
            i = dot + 1
            continue
        if c in _WIDTHS or c in "tkUXdDFZ":
            atoms.append(Atom(c, width=_WIDTHS.get(c, 0)))
            i += 1
            continue
        raise FormatError(f"format {fmt!r}: unknown format code {c!r}")
    return FormatSpec(fmt, tuple(atoms), array)


# --------------------------------------------------------------------------
# decoding


def _decode_walk(fmt: str, data: bytes) -> list[tuple[Atom, object, bool]]:
    """(atom, value, starts_new_array_element) for every atom found in ``data``."""
    spec = _compile(fmt)
    out: list[tuple[Atom, object, bool]] = []
    n = len(data)
    pos = 0
    atoms = spec.atoms
    for atom in atoms:
        if pos == n and atom.optional:
            return out
        pos = _decode_atom(atom, data, pos, out, False)
    if spec.array == "A":
        while pos < n:
            first = True
            for atom in atoms:
                pos = _decode_atom(atom, data, pos, out, first)
                first = False
    elif spec.array == "a":
        last = atoms[-1]
        while pos < n:
            pos = _decode_atom(last, data, pos, out, True)
    if pos != n:
        raise FormatError(f"format {fmt!r}: {n - pos} unexpected octets at the end")
    return out


def _decode_atom(
    atom: Atom, data: bytes, pos: int, out: list[tuple[Atom, object, bool]], new: bool
) -> int:
    code = atom.code
    n = len(data)
    width = atom.width
    if width:
        end = pos + width
        if end > n:
            raise FormatError(f"atom {code!r} needs {width} octets, {n - pos} left")
        value: object
        if code == "I":
            value = IPv4Address(data[pos:end])
        elif code == "6":
            value = IPv6Address(data[pos:end])
        elif code == "f":
            value = data[pos] != 0
        elif code == "N":
            value = _ENUM_STRUCTS[width].unpack_from(data, pos)[0]
        else:
            value = _INT_ATOMS[code][0].unpack_from(data, pos)[0]
        out.append((atom, value, new))
        return end
    if code in "tkU":
        out.append((atom, data[pos:].decode("utf-8", "surrogateescape"), new))
        return n
    if code in "XE":
        out.append((atom, bytes(data[pos:]), new))
        return n
    if code == "d":
        labels, end = dnsname.decode_name(data, pos, allow_pointers=False)
        out.append((atom, dnsname.text_from_labels(labels), new))
        return end
    if code == "D":
        while pos < n:
            labels, pos = dnsname.decode_name(data, pos)
            out.append((atom, dnsname.text_from_labels(labels), new))
            new = False
        return n
    if code == "F":  # implicit flag: no octets, printed as "true"
        out.append((atom, True, new))
    return pos


def decode(fmt: str, data: bytes) -> list[object]:
    """Option payload -> flat value list; :class:`FormatError` on bad length or content."""
    return [v for a, v, _ in _decode_walk(fmt, data) if a.has_value]


# --------------------------------------------------------------------------
# encoding


def encode(fmt: str, values: Sequence[object]) -> bytes:
    """Flat value list -> option payload, byte for byte as dhcpd builds it."""
    spec = _compile(fmt)
    buf = bytearray()
    atoms = spec.atoms
    n = len(values)
    idx = 0
    for k, atom in enumerate(atoms):
        if atom.optional and idx == n:
            if any(a.has_value and not a.optional for a in atoms[k:]):
                raise FormatError(f"format {fmt!r}: missing values after an optional atom")
            return bytes(buf)
        idx = _encode_atom(atom, values, idx, buf, fmt)
    if spec.array == "A":
        while idx < n:
            for atom in atoms:
                idx = _encode_atom(atom, values, idx, buf, fmt)
    elif spec.array == "a":
        last = atoms[-1]
        while idx < n:
            idx = _encode_atom(last, values, idx, buf, fmt)
    if idx != n:
        raise FormatError(f"format {fmt!r}: {n - idx} values too many")
    return bytes(buf)


def _encode_atom(atom: Atom, values: Sequence[object], idx: int, buf: bytearray, fmt: str) -> int:
    code = atom.code
    if not atom.has_value:
        return idx
    if code == "D":
        names = values[idx:]
        for name in names:
            if not isinstance(name, str):
                raise FormatError(f"format {fmt!r}: domain names must be str, got {name!r}")
        buf += dnsname.encode_names(names, compress=atom.compress)  # type: ignore[arg-type]
        return len(values)
    if idx >= len(values):
        raise FormatError(f"format {fmt!r}: missing value for atom {code!r}")
    value = values[idx]
    if code == "I":
        if not isinstance(value, IPv4Address):
            raise FormatError(f"atom 'I' wants an IPv4Address, got {value!r}")
        buf += value.packed
    elif code == "6":
        if not isinstance(value, IPv6Address):
            raise FormatError(f"atom '6' wants an IPv6Address, got {value!r}")
        buf += value.packed
    elif code == "f":
        if not isinstance(value, bool):
            raise FormatError(f"atom 'f' wants a bool, got {value!r}")
        buf.append(1 if value else 0)
    elif code in _INT_ATOMS:
        st, lo, hi = _INT_ATOMS[code]
        if not isinstance(value, int) or isinstance(value, bool):
            raise FormatError(f"atom {code!r} wants an int, got {value!r}")
        if not lo <= value <= hi:
            raise FormatError(f"atom {code!r}: {value} out of range {lo}..{hi}")
        buf += st.pack(value)
    elif code == "N":
        enum = ENUMERATIONS.get(atom.name)
        if isinstance(value, str):
            v = enum.value_of(value) if enum is not None else None
            if v is None:
                raise FormatError(f"unknown value {value!r} of enumeration {atom.name!r}")
            value = v
        if not isinstance(value, int) or isinstance(value, bool):
            raise FormatError(f"atom 'N' wants an int or a name, got {value!r}")
        if not 0 <= value < 1 << (8 * atom.width):
            raise FormatError(f"enumeration {atom.name!r}: {value} does not fit")
        buf += _ENUM_STRUCTS[atom.width].pack(value)
    elif code in "tkU":
        if isinstance(value, str):
            try:
                buf += value.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError as exc:
                raise FormatError(f"atom {code!r}: cannot encode {value!r}") from exc
        elif isinstance(value, bytes | bytearray):
            buf += value
        else:
            raise FormatError(f"atom {code!r} wants a str, got {value!r}")
    elif code in "XE":
        if not isinstance(value, bytes | bytearray):
            raise FormatError(f"atom {code!r} wants bytes, got {value!r}")
        buf += value
    elif code == "d":
        if not isinstance(value, str):
            raise FormatError(f"atom 'd' wants a str, got {value!r}")
        buf += dnsname.encode_names((value,), compress=False)
    else:  # pragma: no cover - _compile admits no other codes
        raise FormatError(f"atom {code!r} cannot be encoded")
    return idx + 1


# --------------------------------------------------------------------------
# dhcpd's printed form


def _printable(b: int) -> bool:
    return 0x20 <= b <= 0x7E


def _escape(data: bytes) -> str:
    """pretty_escape(): octal for non-printables, backslash before shell-ish specials."""
    out: list[str] = []
    last = len(data) - 1
    for i, b in enumerate(data):
        if not _printable(b):
            if i == last and b == 0:
                continue  # dhcpd drops one trailing NUL
            out.append(f"\\{b:03o}")
        elif b in b"\"'$`\\|&":
            out.append("\\" + chr(b))
        else:
            out.append(chr(b))
    return "".join(out)


def _hex(data: bytes) -> str:
    return ":".join(f"{b:x}" for b in data)


def _looks_textual(data: bytes) -> bool:
    """dhcpd prints X/E data as text when all octets are printable (bar one final NUL)."""
    body = data[:-1] if data[-1:] == b"\x00" else data
    return all(_printable(b) for b in body)


def _name_text(name: str, *, quoted: bool) -> str:
    labels = dnsname.labels_from_text(name)
    body = "".join(_escape(label) + "." for label in labels)
    return f'"{body}"' if quoted else body


def to_text(fmt: str, data: bytes) -> str:
    """The option value as dhcpd prints it (pretty_print_option with commas and quotes).

    That is the form dhcpd writes into dhcpd.leases and accepts in an
    ``option`` statement: ``192.0.2.1,192.0.2.2`` for "IA", ``"example.org"``
    for text, ``1:2:3`` (unpadded hex) for non-printable X/E data,
    ``"a.example.", "b.example."`` for domain lists, ``infinite`` for an
    all-ones T. Raises :class:`FormatError` where dhcpd would print "<error>".
    """
    items = _decode_walk(fmt, data)
    textual = _looks_textual(data)
    parts: list[str] = []
    prev_d = False
    for idx, (atom, value, new) in enumerate(items):
        code = atom.code
        if code == "D":
            if prev_d:
                parts.append(", ")
            elif idx:
                parts.append(" ")
            assert isinstance(value, str)
            parts.append(_name_text(value, quoted=True))
            prev_d = True
            continue
        prev_d = False
        if idx:
            parts.append("," if new else " ")
        if code in "XE":
            assert isinstance(value, bytes)
            parts.append(f'"{_escape(value)}"' if textual else _hex(value))
        elif code in "tkU":
            assert isinstance(value, str)
            parts.append(f'"{_escape(value.encode("utf-8", "surrogateescape"))}"')
        elif code == "d":
            assert isinstance(value, str)
            parts.append(_name_text(value, quoted=False))
        elif code == "f":
            parts.append("true" if value else "false")
        elif code == "F":
            parts.append("true")
        elif code == "T" and value == INFINITE_TIME:
            parts.append("infinite")
        elif code == "N":
            enum = ENUMERATIONS.get(atom.name)
            assert isinstance(value, int)
            label = enum.name_of(value) if enum is not None else None
            parts.append(label if label is not None else str(value))
        else:
            parts.append(str(value))
    return "".join(parts)
