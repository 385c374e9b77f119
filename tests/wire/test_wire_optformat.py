"""Format-string codec: one table row per atom/modifier, errors, and round-trip properties."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.wire import optformat
from tandem.wire.errors import FormatError, WireError
from tandem.wire.optformat import FormatSpec, atom_kinds, decode, encode, to_text
from tandem.wire.options import default_table

A = IPv4Address

# (format, values, wire hex, dhcpd text)
CASES: list[tuple[str, list[object], str, str]] = [
    ("I", [A("192.0.2.6")], "c0000206", "192.0.2.6"),
    ("IA", [A("192.0.2.1"), A("192.0.2.2")], "c0000201c0000202", "192.0.2.1,192.0.2.2"),
    ("Ia", [A("10.0.0.1")], "0a000001", "10.0.0.1"),
    ("IIA", [A("10.0.0.0"), A("10.0.0.1"), A("10.1.0.0"), A("10.1.0.1")],
     "0a0000000a0000010a0100000a010001", "10.0.0.0 10.0.0.1,10.1.0.0 10.1.0.1"),
    ("6", [IPv6Address("2001:db8::1")], "20010db8000000000000000000000001", "2001:db8::1"),
    ("l", [2], "00000002", "2"),
    ("l", [-1], "ffffffff", "-1"),
    ("L", [3600], "00000e10", "3600"),
    ("T", [0xFFFFFFFF], "ffffffff", "infinite"),
    ("T", [600], "00000258", "600"),
    ("s", [-2], "fffe", "-2"),
    ("S", [1500], "05dc", "1500"),
    ("SA", [68, 296, 1500], "004401280" + "5dc", "68,296,1500"),
    ("b", [-128], "80", "-128"),
    ("B", [255], "ff", "255"),
    ("BA", [1, 28, 2, 3, 42], "011c02032a", "1,28,2,3,42"),
    ("BBB", [1, 2, 3], "010203", "1 2 3"),
    ("f", [True], "01", "true"),
    ("f", [False], "00", "false"),
    ("t", ["example.org"], "6578616d706c652e6f7267", '"example.org"'),
    ("t", ['a"b$'], "61226224", '"a\\"b\\$"'),
    ("t", ["x\x01"], "7801", '"x\\001"'),
    ("k", ["key.example"], "6b65792e6578616d706c65", '"key.example"'),
    ("X", [b"\x01\x02\x0a"], "01020a", "1:2:a"),
    ("X", [b"MSFT 5.0"], "4d53465420352e30", '"MSFT 5.0"'),
    ("X", [b"ab\x00"], "616200", '"ab"'),
    ("E.", [b"\x01\x04abcd"], "010461626364", "1:4:61:62:63:64"),
    ("Eagent.", [b"\x01\x03eth"], "0103657468", "1:3:65:74:68"),
    ("d", ["example.com"], "076578616d706c6503636f6d00", "example.com."),
    ("D", ["a.example", "b.example"], "0161076578616d706c65000162076578616d706c6500",
     '"a.example.", "b.example."'),
    # RFC 3397 section 3 example: the second name points at offset 4 ("apple.com").
    ("Dc", ["eng.apple.com", "marketing.apple.com"],
     "03656e67056170706c6503636f6d00096d61726b6574696e67c004",
     '"eng.apple.com.", "marketing.apple.com."'),
    ("Nstatus-codes.", [2], "0002", "NoAddrsAvail"),
    ("Ndhcpv6-messages.", [1], "01", "SOLICIT"),
    ("Z", [], "", ""),
    ("F", [], "", "true"),
    ("fIa", [True, A("192.0.2.1"), A("192.0.2.2")], "01c0000201c0000202",
     "true 192.0.2.1,192.0.2.2"),
    ("fto", [True], "01", "true"),
    ("fto", [False, "scope"], "0073636f7065", 'false "scope"'),
    # dhcpd decides "text or hex" on the whole option, leading atoms included.
    ("BX", [65, b"AB"], "414142", '65 "AB"'),
    ("BX", [1, b"AB"], "014142", "1 41:42"),
    ("BB6Ia", [1, 2, IPv6Address("2001:db8::"), A("192.0.2.1")],
     "010220010db8000000000000000000000000c0000201", "1 2 2001:db8:: 192.0.2.1"),
    ("BIID", [1, A("192.0.2.1"), A("192.0.2.2"), "example.com"],
     "01c0000201c0000202076578616d706c6503636f6d00",
     '1 192.0.2.1 192.0.2.2 "example.com."'),
]  # fmt: skip


@pytest.mark.parametrize(("fmt", "values", "wire", "text"), CASES)
def test_format_table(fmt: str, values: list[object], wire: str, text: str) -> None:
    data = bytes.fromhex(wire)
    assert encode(fmt, values) == data
    assert decode(fmt, data) == values
    assert to_text(fmt, data) == text


def test_every_atom_code_is_covered_by_the_table() -> None:
    seen = {a.code for fmt, *_ in CASES for a in atom_kinds(fmt).atoms}
    assert seen >= set("I6lLsSbBtTfXEdDNkZF") - {"U"}
    assert {a.compress for fmt, *_ in CASES for a in atom_kinds(fmt).atoms} == {True, False}


def test_dhcpd_bytes_from_reference_offer() -> None:
    """Values of the seed config, as dhcpd put them in its OFFER (dhcp-udp.pcap frame 2)."""
    assert encode("l", [2]) == b"\x00\x00\x00\x02"  # time-offset 2
    assert encode("IA", [A("192.0.2.6")]) == bytes.fromhex("c0000206")  # ntp-servers
    assert encode("I", [A("192.0.2.255")]) == bytes.fromhex("c00002ff")  # broadcast-address


def test_compression_reuses_earlier_suffixes_case_insensitively() -> None:
    data = encode("Dc", ["a.Example.com", "b.example.COM", "example.com", "a.example.com"])
    # a.Example.com at 0; b + ptr(2); ptr(2); ptr(0)
    assert data.hex() == ("0161074578616d706c6503636f6d00" + "0162c002" + "c002" + "c000")
    assert decode("Dc", data) == ["a.Example.com", "b.Example.com", "Example.com", "a.Example.com"]


def test_atom_kinds_describes_parsing() -> None:
    spec = atom_kinds("fIa")
    assert isinstance(spec, FormatSpec)
    assert [a.code for a in spec.atoms] == ["f", "I"]
    assert spec.array == "a"
    it = spec.walk()
    assert [next(it).code for _ in range(4)] == ["f", "I", "I", "I"]
    rec = atom_kinds("IIA")
    it = rec.walk()
    assert [next(it).code for _ in range(4)] == ["I", "I", "I", "I"] and rec.array == "A"
    opt = atom_kinds("fto")
    assert [(a.code, a.optional) for a in opt.atoms] == [("f", False), ("t", True)]
    enc = atom_kinds("Eagent.")
    assert enc.atoms[0].code == "E" and enc.atoms[0].name == "agent" and enc.atoms[0].to_end
    assert atom_kinds("Dc").atoms[0].compress
    assert not atom_kinds("Z").atoms[0].has_value
    assert atom_kinds("IA").min_length == 4 and atom_kinds("fto").min_length == 1


@pytest.mark.parametrize("fmt", ["Q", "A", "oI", "tI", "XA", "c", "Ic", "Nfoo", "Efoo", "IAI"])
def test_bad_formats_are_rejected(fmt: str) -> None:
    with pytest.raises(FormatError):
        atom_kinds(fmt)


@pytest.mark.parametrize(
    ("fmt", "values"),
    [
        ("I", ["192.0.2.1"]),
        ("I", []),
        ("I", [A("1.2.3.4"), A("1.2.3.4")]),
        ("IIA", [A("1.2.3.4"), A("1.2.3.4"), A("1.2.3.4")]),
        ("B", [256]),
        ("b", [128]),
        ("S", [-1]),
        ("l", [2**31]),
        ("L", [True]),
        ("f", [1]),
        ("X", ["text"]),
        ("t", [5]),
        ("6", [A("1.2.3.4")]),
        ("d", ["a" * 64 + ".com"]),
        ("D", ["x." * 128 + "com"]),
        ("D", ["a..b"]),
        ("D", [b"bytes"]),
        ("Nstatus-codes.", ["NoSuchCode"]),
        ("Nstatus-codes.", [70000]),
        ("fto", []),
    ],
)
def test_encode_rejects_bad_values(fmt: str, values: list[object]) -> None:
    with pytest.raises(FormatError):
        encode(fmt, values)


@pytest.mark.parametrize(
    ("fmt", "wire"),
    [
        ("I", "c00002"),
        ("I", "c000020101"),
        ("IA", ""),
        ("IA", "c0000201c000"),
        ("IIA", "c0000201"),
        ("S", "01"),
        ("f", ""),
        ("Z", "00"),
        ("d", "03616263"),  # no root label
        ("d", "c000"),  # pointer in an uncompressed name
        ("D", "4061"),  # label type 01 (reserved)
        ("D", "40" + "61" * 64 + "00"),  # label of 64
        ("Dc", "c000"),  # pointer to itself
        ("Dc", "0161c004" + "0162c000"),  # two pointers chasing each other
        ("Dc", "0161c010"),  # pointer outside the data
        ("Dc", "01"),  # label past the end
        ("Dc", "3f" + "61" * 63 + "c000"),  # pointer loop making a long name
    ],
)
def test_decode_rejects_bad_data(fmt: str, wire: str) -> None:
    with pytest.raises(FormatError):
        decode(fmt, bytes.fromhex(wire))


def test_name_over_255_octets_is_rejected_on_decode() -> None:
    label = b"\x3f" + b"a" * 63
    data = label * 4 + b"\x00"  # 4*64+1 = 257 octets
    with pytest.raises(FormatError):
        decode("D", data)
    assert decode("D", label * 3 + b"\x3d" + b"a" * 61 + b"\x00")  # 255 exactly


def test_name_escapes_round_trip() -> None:
    names = ["a\\.b.example", "sp\\032ace.example", "."]
    data = encode("D", names)
    assert data.startswith(b"\x03a.b\x07example\x00\x06sp ace")
    assert decode("D", data) == names


# --------------------------------------------------------------------------
# properties over every format in the option table

_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
_name = st.lists(_label, min_size=1, max_size=4).map(".".join)
_text = st.text(max_size=40)


def _atom_strategy(code: str, name: str) -> st.SearchStrategy[object]:
    ints = {
        "l": (-(2**31), 2**31 - 1),
        "L": (0, 2**32 - 1),
        "T": (0, 2**32 - 1),
        "s": (-(2**15), 2**15 - 1),
        "S": (0, 2**16 - 1),
        "b": (-128, 127),
        "B": (0, 255),
    }
    if code in ints:
        lo, hi = ints[code]
        return st.integers(lo, hi)
    if code == "N":
        enum = optformat.ENUMERATIONS.get(name)
        width = enum.width if enum else 1
        return st.integers(0, (1 << (8 * width)) - 1)
    return {
        "I": st.builds(IPv4Address, st.integers(0, 2**32 - 1)),
        "6": st.builds(IPv6Address, st.integers(0, 2**128 - 1)),
        "f": st.booleans(),
        "t": _text,
        "k": _text,
        "U": _text,
        "X": st.binary(max_size=40),
        "E": st.binary(max_size=40),
        "d": _name,
    }[code]


@st.composite
def _values(draw: st.DrawFn, fmt: str) -> list[object]:
    spec = atom_kinds(fmt)
    out: list[object] = []
    for atom in spec.atoms:
        if atom.optional and draw(st.booleans()):
            return out
        if not atom.has_value:
            continue
        if atom.code == "D":
            out.extend(draw(st.lists(_name, max_size=5)))
            continue
        value = draw(_atom_strategy(atom.code, atom.name))
        if atom.optional and atom.to_end and not value:
            return out  # an empty optional tail is the same octets as no tail
        out.append(value)
    extra = draw(st.integers(0, 4)) if spec.array else 0
    for _ in range(extra):
        repeat = spec.atoms if spec.array == "A" else spec.atoms[-1:]
        out.extend(draw(_atom_strategy(a.code, a.name)) for a in repeat)
    return out


ALL_FORMATS = sorted(
    {info.format for s in default_table().spaces() for info in default_table().options(s)}
)
EXTRA_FORMATS = ["Nstatus-codes.", "Nduid-types.", "D", "6", "T", "k", "U", "F", "fIa", "Sa"]


@pytest.mark.parametrize("fmt", ALL_FORMATS + EXTRA_FORMATS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip_every_table_format(fmt: str, data: st.DataObject) -> None:
    values = data.draw(_values(fmt))
    wire = encode(fmt, values)
    assert decode(fmt, wire) == values
    assert encode(fmt, decode(fmt, wire)) == wire
    assert isinstance(to_text(fmt, wire), str)


@pytest.mark.parametrize("fmt", ALL_FORMATS + EXTRA_FORMATS)
@settings(max_examples=80, deadline=None)
@given(blob=st.binary(max_size=64))
def test_decode_random_bytes_raises_only_format_error(fmt: str, blob: bytes) -> None:
    try:
        values = decode(fmt, blob)
    except FormatError:
        return
    # Whatever decodes must print and re-encode to something that decodes the same.
    assert isinstance(to_text(fmt, blob), str)
    assert decode(fmt, encode(fmt, values)) == values


def test_format_error_is_a_wire_error() -> None:
    assert issubclass(FormatError, WireError)
