"""Hypothesis strategies for the fuzz tests: real seeds mutated, and structured inputs.

The oracles themselves live in fuzz/fuzzlib.py (shared with the atheris harnesses); this
module puts fuzz/ on sys.path and builds inputs. Structured strategies aim past the first
length check: well-formed headers with hostile option lists, configs assembled from real
statements with random nesting, lease records from real lines, JSON of random shape.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

from hypothesis import strategies as st

FUZZ_DIR = Path(__file__).resolve().parents[2] / "fuzz"
if str(FUZZ_DIR) not in sys.path:
    sys.path.insert(0, str(FUZZ_DIR))

import fuzzlib  # noqa: E402

from tandem.wire.witness import WitnessAnswer, WitnessRequest  # noqa: E402
from tandem.wire.witness import encode as encode_witness  # noqa: E402

__all__ = ["fuzzlib", "mutated", "structured"]

_ops = st.lists(st.tuples(st.integers(0, 7), st.floats(0, 1), st.integers(0, 1 << 16)), max_size=8)


def mutated(target: str) -> st.SearchStrategy[bytes]:
    """A seed of ``target``'s committed corpus after up to 8 libFuzzer-like mutations."""
    seeds = fuzzlib.load_corpus(target)
    assert seeds, f"empty corpus for {target}: run fuzz/build_corpus.py"
    return st.builds(
        lambda seed, ops: fuzzlib.mutate(seed, ops, seeds), st.sampled_from(seeds), _ops
    )


# --- DHCP ------------------------------------------------------------------------------------

_HEADER = struct.Struct("!BBBBIHHIIII16s64s128s")
_ADDRS = [0, 0xC0000201, 0xC0000264, 0xC00002C8, 0x0A090001, 0x0A09000A, 0xC6336401, 0xFFFFFFFF]
_CODES = [1, 3, 12, 50, 51, 52, 53, 54, 55, 57, 60, 61, 81, 82, 118, 119, 121, 124, 125, 0, 255]


@st.composite
def _option(draw: st.DrawFn) -> bytes:
    code = draw(st.one_of(st.sampled_from(_CODES), st.integers(0, 255)))
    if code in (0, 255):
        return bytes([code])
    if code == 53:
        value = bytes([draw(st.integers(0, 20))])
    elif code in (50, 54):
        value = struct.pack("!I", draw(st.sampled_from(_ADDRS)))
    elif code == 82:  # relay agent sub-options, sometimes truncated
        subs = draw(st.lists(st.tuples(st.integers(0, 12), st.binary(max_size=20)), max_size=4))
        value = b"".join(bytes([c, len(v)]) + v for c, v in subs)
        value = value[: draw(st.integers(0, len(value)))]
    else:
        value = draw(st.binary(max_size=70))
    length = draw(st.one_of(st.just(len(value)), st.integers(0, 255)))  # sometimes a lie
    return bytes([code, length]) + value


def _area(draw: st.DrawFn, size: int) -> bytes:
    raw = b"".join(draw(st.lists(_option(), max_size=5)))
    return (raw + bytes(size))[:size]


@st.composite
def dhcp_packet(draw: st.DrawFn) -> bytes:
    """A BOOTP header with plausible addresses, then a hostile option area."""
    hlen = draw(st.sampled_from([6, 6, 6, 0, 16, 17, 255]))
    chaddr = draw(st.sampled_from([b"\x52\x54\x00\x00\x00\x01", b"\x52\x54\x00\x00\x00\x02"]))
    header = _HEADER.pack(
        draw(st.sampled_from([1, 1, 1, 2, 0])),
        draw(st.sampled_from([1, 1, 6, 0, 255])),
        hlen,
        draw(st.integers(0, 255)),
        draw(st.integers(0, 0xFFFFFFFF)),
        draw(st.integers(0, 0xFFFF)),
        draw(st.sampled_from([0, 0x8000, 0xFFFF])),
        *(draw(st.sampled_from(_ADDRS)) for _ in range(4)),
        chaddr.ljust(16, b"\0"),
        _area(draw, 64) if draw(st.booleans()) else bytes(64),
        _area(draw, 128) if draw(st.booleans()) else bytes(128),
    )
    if draw(st.integers(0, 9)) == 0:
        return header + draw(st.binary(max_size=8))  # no cookie / torn cookie
    body = b"".join(draw(st.lists(_option(), max_size=12)))
    end = draw(st.sampled_from([b"\xff", b"", b"\xff\x00\x00\x00"]))
    return header + b"\x63\x82\x53\x63" + body + end


# --- failover --------------------------------------------------------------------------------


@st.composite
def failover_message(draw: st.DrawFn) -> bytes:
    """A failover header (length sometimes lying) with TLV options of any code 0..31."""
    opts = b""
    for _ in range(draw(st.integers(0, 8))):
        code = draw(st.integers(0, 31))
        value = draw(st.binary(max_size=40))
        olen = draw(st.one_of(st.just(len(value)), st.integers(0, 0xFFFF)))
        opts += struct.pack("!HH", code, olen) + value
    payoff = draw(st.sampled_from([12, 12, 12, 8, 16, 0, 255]))
    pad = bytes(max(0, payoff - 12))
    total = 12 + len(pad) + len(opts)
    length = draw(st.one_of(st.just(total), st.integers(0, 0xFFFF)))
    mtype = draw(st.one_of(st.integers(1, 12), st.integers(0, 255)))
    time_, xid = draw(st.integers(0, 0xFFFFFFFF)), draw(st.integers(0, 0xFFFFFFFF))
    return struct.pack("!HBBII", length & 0xFFFF, mtype, payoff, time_, xid) + pad + opts


@st.composite
def failover_stream(draw: st.DrawFn) -> bytes:
    return b"".join(draw(st.lists(failover_message(), min_size=1, max_size=6)))


# --- dhcpd.conf ------------------------------------------------------------------------------

_STATEMENTS = [
    "authoritative;",
    "default-lease-time 600;",
    "max-lease-time -1;",
    "option routers 192.0.2.5;",
    'option domain-name "example.org";',
    "option domain-name-servers 192.0.2.53, 192.0.2.54;",
    "option subnet-mask 255.255.255.00;",
    "range 192.0.2.100 192.0.2.200;",
    "range dynamic-bootp 192.0.2.10;",
    'failover peer "fo";',
    'allow members of "c";',
    "deny unknown-clients;",
    "hardware ethernet 52:54:00:00:00:01;",
    "fixed-address 192.0.2.7;",
    'match if substring(option vendor-class-identifier, 0, 4) = "PXE\\"";',
    'if exists agent.circuit-id { option domain-name "r"; } else { }',
    "option space foo; option foo.bar code 1 = array of { ip-address, text };",
    "option x code 250 = string; option x 01:02:ff;",
    'include "/dev/zero";',
    'filename "\\x41\\101";',
    "next-server 999.1.1.1;",
]
_BLOCKS = [
    "subnet 192.0.2.0 netmask 255.255.255.0",
    "subnet 10.9.0.0 netmask 255.255.0.0",
    "shared-network s",
    "pool",
    "group",
    "host h",
    'class "c"',
    'subclass "c" 1:52:54:00:00:00:01',
    'failover peer "fo"',
]


@st.composite
def config_text(draw: st.DrawFn, depth: int = 0) -> str:
    """Statements and blocks from real dhcpd.conf, nested at random, sometimes cut short."""
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        if depth < 6 and draw(st.integers(0, 3)) == 0:
            inner = draw(config_text(depth + 1))
            close = draw(st.sampled_from(["}", "}", "", "}}", ";"]))
            parts.append(f"{draw(st.sampled_from(_BLOCKS))} {{ {inner} {close}")
        else:
            parts.append(draw(st.sampled_from(_STATEMENTS)))
    text = "\n".join(parts)
    if depth == 0 and draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text


# --- dhcpd.leases ----------------------------------------------------------------------------

_LEASE_LINES = [
    "starts 3 2024/01/03 10:00:00;",
    "ends never;",
    "ends 4 2024/01/04 10:00:00;",
    "ends epoch 1704362400; # Thu Jan 04 10:00:00 2024",
    "tstp 4 2024/01/04 10:00:00;",
    "cltt 3 2024/01/03 10:00:00;",
    "binding state active;",
    "binding state backup;",
    "next binding state free;",
    "rewind binding state free;",
    "hardware ethernet 52:54:00:12:34:56;",
    "hardware token-ring 01:02;",
    'uid "\\001RT\\000\\0224V";',
    "uid 01:52:54:00:12:34:56;",
    'client-hostname "a\\"b";',
    'set vendor-class-identifier = "x";',
    'set ddns-fwd-name = "h.example";',
    "dynamic-bootp;",
    "abandoned;",
    'option agent.circuit-id "eth0";',
    "on expiry { }",
]


@st.composite
def lease_text(draw: st.DrawFn) -> str:
    records: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 5))
        if kind == 0:
            records.append(
                'failover peer "fo" state {\n my state normal at 3 2024/01/03 10:00:00;\n'
                " partner state recover;\n mclt 3600;\n}"
            )
        elif kind == 1:
            records.append('server-duid "\\000\\001";')
        else:
            addr = draw(st.sampled_from(["192.0.2.100", "192.0.2.101", "0.0.0.0", "1.2.3"]))
            lines = draw(st.lists(st.sampled_from(_LEASE_LINES), max_size=8))
            records.append(f"lease {addr} {{\n  " + "\n  ".join(lines) + "\n}")
    text = "\n".join(records) + "\n"
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text


# --- control ---------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def control_request(draw: st.DrawFn) -> bytes:
    obj = draw(_json)
    if draw(st.booleans()):
        obj = {"command": draw(st.sampled_from(["status", "partner-down", ""])), "x": obj}
    text = json.dumps(obj)
    depth = draw(st.integers(0, 12))
    text = "[" * depth + text + "]" * draw(st.integers(0, depth))
    return text.encode()


_COMMAND_NAMES = [
    "list-commands",
    "status-get",
    "config-get",
    "config-test",
    "lease4-get",
    "lease4-get-all",
    "lease4-get-page",
    "lease4-del",
    "stat-lease4-get",
    "statistic-get-all",
    "failover-get",
    "failover-partner-down",
    "no-such-command",
]
_ARG_KEYS = [
    "ip-address",
    "identifier-type",
    "identifier",
    "subnet-id",
    "subnets",
    "from",
    "limit",
    "subnet-range",
    "name",
]
_ARG_VALUES = st.one_of(
    _json,
    st.sampled_from(
        ["192.0.2.100", "start", "hw-address", "client-id", "52:54:00:00:00:64", "01:52"]
    ),
    st.integers(-2, 1 << 33),
)


@st.composite
def command_request(draw: st.DrawFn) -> bytes:
    obj: dict[str, object] = {"command": draw(st.sampled_from(_COMMAND_NAMES))}
    if draw(st.booleans()):
        args = st.dictionaries(st.sampled_from(_ARG_KEYS), _ARG_VALUES, max_size=4)
        obj["arguments"] = draw(st.one_of(args, _json))
    if draw(st.booleans()):
        obj["service"] = draw(st.sampled_from([["dhcp4"], ["dhcp6"], "dhcp4", []]))
    return json.dumps(obj).encode()


# --- witness ---------------------------------------------------------------------------------


@st.composite
def witness_datagram(draw: st.DrawFn) -> bytes:
    """A well-formed witness datagram (signed or not), then perhaps cut, extended or flipped."""
    name = draw(st.text(min_size=1, max_size=20))
    role = draw(st.sampled_from(["primary", "secondary"]))
    rid = draw(st.integers(0, 2**64 - 1))
    msg: WitnessRequest | WitnessAnswer
    if draw(st.booleans()):
        msg = WitnessRequest(name, role, rid, draw(st.booleans()), draw(st.integers(0, 2**32 - 1)))
    else:
        ms = st.integers(0, 2**32 - 1)
        flags = draw(st.tuples(st.booleans(), st.booleans()))
        msg = WitnessAnswer(name, role, rid, draw(ms), draw(ms), draw(ms), *flags)
    data = bytearray(encode_witness(msg, draw(st.sampled_from([None, fuzzlib.WITNESS_KEY]))))
    edit = draw(st.integers(0, 3))
    if edit == 1:
        del data[draw(st.integers(0, len(data))) :]
    elif edit == 2:
        data += draw(st.binary(max_size=40))
    elif edit == 3:
        data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


def structured(target: str) -> st.SearchStrategy[bytes]:
    """Inputs built from the target's grammar (see the module docstring)."""
    if target == "dhcp":
        return dhcp_packet()
    if target == "failover":
        return st.one_of(failover_message(), failover_stream())
    if target == "config":
        return config_text().map(lambda s: s.encode("latin-1", "replace"))
    if target == "leases":
        return lease_text().map(lambda s: s.encode("latin-1"))
    if target == "command":
        return command_request()
    if target == "witness":
        return witness_datagram()
    return control_request()
