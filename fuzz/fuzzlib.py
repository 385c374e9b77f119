"""The fuzz oracles shared by the atheris harnesses (fuzz/fuzz_*.py) and tests/fuzz/.

Each ``check_<target>(data)`` feeds one input to a Tandem parser and returns normally when
the outcome is one the parser documents: a value, or its own domain error. Anything else
escapes: a built-in exception (IndexError, struct.error, RecursionError, ...) is a crash,
and a broken invariant (round trip, bounded buffer, server outcome) is an AssertionError.
One oracle for both runners means a crash the long atheris run finds replays in pytest
with the same verdict, and vice versa.

Also here: the seed corpus loader and a small mutation engine (bit flips, truncation,
splicing, byte runs, duplication) that the hypothesis tests use to mutate real seeds the
way libFuzzer does in the long run.
"""

from __future__ import annotations

import json
import re
import signal
import zlib
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from random import Random
from types import FrameType

from tandem.config import ConfigError, _parse, parse_text
from tandem.config.model import Config
from tandem.config.resolve import Unresolved
from tandem.config.seed import SEED_SUBNET
from tandem.core.lease import BindingState, Lease
from tandem.core.server import DhcpServer
from tandem.core.types import Outcome, RxMeta
from tandem.io.commands import CommandError, Commands, parse_command
from tandem.io.control import ControlError, json_depth, parse_request
from tandem.store.leasefile import LeaseFileError, format_lease, parse_leases
from tandem.wire.dhcp import Packet, decode, decode_ip_udp, encode
from tandem.wire.errors import FormatError, MalformedPacket
from tandem.wire.failover import (
    MAX_MESSAGE_SIZE,
    FailoverEncodeError,
    FailoverProtocolError,
    decode_message,
    encode_message,
)
from tandem.wire.fqdn import decode_fqdn
from tandem.wire.framing import FrameBuffer
from tandem.wire.suboptions import decode_suboptions
from tandem.wire.witness import MAX_DATAGRAM, WitnessDropped
from tandem.wire.witness import decode as decode_witness
from tandem.wire.witness import encode as encode_witness

FUZZ_DIR = Path(__file__).resolve().parent
CORPUS_DIR = FUZZ_DIR / "corpus"
REPO = FUZZ_DIR.parent
TARGETS = ("dhcp", "failover", "config", "leases", "control", "command", "witness")

_REASON = re.compile(r"[a-z0-9][a-z0-9-]*")

# Largest input worth decoding: a DHCP datagram cannot exceed 64 KiB, and libFuzzer's
# default -max_len is far below the text caps; the text parsers get 1 MiB to show that a
# big input costs time linear in its size, not more.
MAX_TEXT = 1 << 20


class InputTimeout(Exception):
    """One input ran past the per-input time guard (a hang, reported as a crash)."""


def guarded(check: Callable[[bytes], None], seconds: int) -> Callable[[bytes], None]:
    """``check`` with a per-input time limit: SIGALRM turns a hang into an exception.

    The handler is installed once (run libFuzzer with -timeout=0 so it does not install
    its own); each input only arms and disarms the alarm. Only for the atheris harnesses:
    inside pytest, pytest-timeout owns SIGALRM.
    """

    def _fire(_signum: int, _frame: FrameType | None) -> None:
        raise InputTimeout(f"input still running after {seconds} s")

    signal.signal(signal.SIGALRM, _fire)

    def run(data: bytes) -> None:
        signal.alarm(seconds)
        try:
            check(data)
        finally:
            signal.alarm(0)

    return run


def _reason_ok(reason: object) -> None:
    # Drop counters are keyed by reason: it must be a short constant, never packet data.
    assert isinstance(reason, str) and _REASON.fullmatch(reason), f"bad drop reason {reason!r}"
    assert len(reason) <= 40, f"drop reason too long: {reason!r}"


# --- 1. DHCP: decode_ip_udp + decode + encode round trip + the server core ------------------

T0 = 1_700_000_000
SERVER_IF = IPv4Interface("192.0.2.1/24")

# The seed's subnet (tandem.config.seed, verbatim, standalone), answered authoritatively.
SEED_CONFIG = "authoritative;\n" + SEED_SUBNET

# A second server with the features the seed lacks: relays (giaddr), option 82 matching,
# classes, hosts, dynamic BOOTP, a small pool that runs out.
RICH_CONFIG = """
default-lease-time 600;
max-lease-time 7200;
class "voip" { match if substring(option vendor-class-identifier, 0, 4) = "VOIP"; }
class "relayed" { match if exists agent.circuit-id; }
host fixed1 { hardware ethernet 52:54:00:00:00:01; fixed-address 192.0.2.50; }
host byid { option dhcp-client-identifier "fuzz"; fixed-address 192.0.2.51; }
subnet 192.0.2.0 netmask 255.255.255.0 {
  option routers 192.0.2.5;
  option domain-name "example.org";
  pool { allow members of "voip"; range 192.0.2.10 192.0.2.12; }
  pool { deny members of "voip"; range 192.0.2.100 192.0.2.103; }
}
subnet 10.9.0.0 netmask 255.255.255.0 {
  authoritative;
  range dynamic-bootp 10.9.0.10 10.9.0.12;
  if exists agent.circuit-id { option domain-name "relayed.example"; }
}
"""

_CONFIGS = {"seed": SEED_CONFIG, "rich": RICH_CONFIG}
_servers: dict[str, DhcpServer] = {}
_handled: dict[str, int] = {}
_clock = [T0]
RESET_EVERY = 2000


def _server(name: str) -> DhcpServer:
    """A long-lived server per config (state accumulates, as in a running daemon).

    Rebuilt every ``RESET_EVERY`` packets so the small pools do not stay exhausted and a
    crash stays close to the inputs that built the state it needs.
    """
    server = _servers.get(name)
    count = _handled.get(name, 0) + 1
    if server is None or count > RESET_EVERY:
        server = _servers[name] = DhcpServer(parse_text(_CONFIGS[name]))
        count = 1
    _handled[name] = count
    return server


def _metas(pkt: Packet) -> list[RxMeta]:
    """How the I/O layer could have received this packet: broadcast, and unicast to us."""
    src = pkt.ciaddr if int(pkt.ciaddr) else IPv4Address(0)
    return [
        RxMeta("eth0", (SERVER_IF,), src, 68, unicast=False),
        RxMeta("eth0", (SERVER_IF,), pkt.giaddr if int(pkt.giaddr) else src, 67, unicast=True),
    ]


def _check_outcome(out: object, pkt: Packet) -> None:
    assert isinstance(out, Outcome), f"handle() returned {type(out).__name__}"
    if out.drop is not None:
        assert isinstance(out.drop, str) and out.drop, "empty drop reason"
        assert out.reply is None, "a dropped packet got a reply"
    if out.reply is not None:
        # What the I/O layer does next: encode within the client's size; must always work.
        size = pkt.max_message_size
        wire = encode(out.reply.packet, max_size=size)
        again = decode(wire)
        assert again.xid == pkt.xid, "reply xid differs from the request's"
        if 82 not in out.reply.packet.options:
            assert len(wire) <= max(size - 28, 300), f"reply of {len(wire)} octets > {size}"


def check_packet(pkt: Packet) -> None:
    """Round trips and the server core for one decoded packet."""
    # Round trip 1: with room for everything, decode(encode(p)) is p (option 52 is layout,
    # empty option 12 is dropped at decode, so neither can differ here).
    big = encode(pkt, max_size=0xFFFF)
    assert decode(big) == pkt, "decode(encode(p)) != p"
    # Round trip 2: within 576 octets options may be dropped or moved into file/sname,
    # but what arrives is byte-identical to what was sent.
    small = encode(pkt)
    back = decode(small)
    for code, value in back.options.items():
        assert pkt.options.get(code) == value, f"option {code} changed in a 576-octet encode"
    for name in ("seed", "rich"):
        server = _server(name)
        for meta in _metas(pkt):
            _clock[0] += 1
            out = server.handle(pkt, meta, _clock[0])
            _check_outcome(out, pkt)
            if out.ping is not None:  # ping-check: nobody answers; the held OFFER must encode
                assert out.reply is None, "an OFFER both sent and held for its ping"
                _check_outcome(server.ping_timed_out(out.ping.address, now=_clock[0]), pkt)
    # Option helpers the server calls on received data: only their domain errors.
    helpers: tuple[tuple[int, Callable[[bytes], object]], ...] = (
        (81, decode_fqdn),
        (82, decode_suboptions),
    )
    for code, fn in helpers:
        raw = pkt.options.get(code)
        if raw is not None:
            try:
                fn(raw)
            except (MalformedPacket, FormatError) as exc:
                if isinstance(exc, MalformedPacket):
                    _reason_ok(exc.reason)


def check_dhcp(data: bytes) -> None:
    payloads = [data]
    for verify in (False, True):
        try:
            _src, _sport, _dst, _dport, payload = decode_ip_udp(data, verify_udp_checksum=verify)
        except MalformedPacket as exc:
            _reason_ok(exc.reason)
            continue
        assert len(payload) <= len(data) - 28, "UDP payload longer than the frame allows"
        if not verify:
            payloads.append(payload)
    for raw in payloads:
        try:
            pkt = decode(raw)
        except MalformedPacket as exc:
            _reason_ok(exc.reason)
            continue
        check_packet(pkt)


# --- 2. failover: decode_message + encode round trip, FrameBuffer in random chunks --------


def check_failover_message(data: bytes) -> None:
    try:
        msg = decode_message(data)
    except FailoverProtocolError as exc:
        _reason_ok(exc.reason)
        return
    try:
        wire = encode_message(msg)
    except FailoverEncodeError:
        return  # documented: some decodable messages are not ours to send
    assert decode_message(wire) == msg, "decode(encode(m)) != m"


def check_failover(data: bytes) -> None:
    check_failover_message(data)
    # The same bytes as a TCP stream, cut where a seeded RNG says (reproducible per input).
    rng = Random(zlib.crc32(data))
    for cap in (MAX_MESSAGE_SIZE, 4 * MAX_MESSAGE_SIZE):
        fb = FrameBuffer(max_buffered=cap)
        pos = 0
        failed: FailoverProtocolError | None = None
        drain = rng.random() < 0.8  # sometimes never drain: the cap must hold
        while pos < len(data):
            step = rng.choice((1, 2, 3, 7, 64, 512, 4096))
            chunk = data[pos : pos + step]
            pos += len(chunk)
            try:
                fb.feed(chunk)
                if drain:
                    for message in fb:
                        assert 12 <= len(message) <= MAX_MESSAGE_SIZE
                        assert int.from_bytes(message[:2], "big") == len(message)
                        check_failover_message(message)
            except FailoverProtocolError as exc:
                _reason_ok(exc.reason)
                failed = exc
                break
            assert len(fb) <= cap, f"framer holds {len(fb)} bytes over its cap {cap}"
        if failed is not None:
            # Sticky: the stream cannot be resynchronised, every later call refuses.
            try:
                fb.feed(b"\x00\x0c")
            except FailoverProtocolError:
                pass
            else:
                raise AssertionError("framer accepted data after a protocol error")


# --- 3. dhcpd.conf ------------------------------------------------------------------------


def _no_include(path: str) -> str:
    """Includes in fuzzed text must not read the machine's files (/dev/zero, ...)."""
    raise FileNotFoundError(2, "No such file or directory (fuzzing)", path)


def _no_lookup(name: str) -> list[IPv4Address]:
    """Failover host names in fuzzed text must not reach DNS: none resolves."""
    raise Unresolved("no name lookups while fuzzing")


def parse_config_sandboxed(text: str) -> Config:
    """``tandem.config.parse_text`` with every include and name lookup refused."""
    raw = text.encode("utf-8", "surrogateescape").decode("latin-1")
    return _parse(raw, "fuzz.conf", _no_include, None, _no_lookup)


def check_config(data: bytes) -> None:
    text = data[:MAX_TEXT].decode("latin-1")
    try:
        cfg = parse_config_sandboxed(text)
    except ConfigError as exc:
        assert exc.diagnostics, "ConfigError without a diagnostic"
        loc = exc.loc
        assert loc.line >= 0 and loc.col >= 0, f"bad error location {loc}"
        return
    # An accepted configuration must be servable: building the core may not crash.
    DhcpServer(cfg)


# --- 4. dhcpd.leases ----------------------------------------------------------------------


def check_leases(data: bytes) -> None:
    text = data[:MAX_TEXT].decode("latin-1")
    try:
        contents = parse_leases(text, "fuzz.leases")
    except LeaseFileError as exc:
        assert exc.line >= 1 and exc.col >= 0, f"bad error location {exc}"
        return
    for addr, lease in contents.leases.items():
        # The writer never emits what the reader refuses, and the reader's own output
        # round-trips (store/leasefile.py promise).
        written = format_lease(lease)
        again = parse_leases(written, "rewritten.leases")
        assert list(again.leases) == [addr], f"rewrite of {addr} lost the lease"


# --- 5. control socket --------------------------------------------------------------------


def check_control(data: bytes) -> None:
    try:
        obj = parse_request(data)
    except ControlError:
        return
    assert isinstance(obj, dict) and isinstance(obj.get("command"), str)
    json_depth(data.decode("utf-8"), 8)


# --- 6. the command layer (HTTP POST / and the control socket) ------------------------------

_commands: list[Commands] = []


def _command_layer() -> Commands:
    """A command layer over a long-lived seed server with two leases (read-only use)."""
    if not _commands:
        server = DhcpServer(parse_text(SEED_CONFIG), interfaces={"eth0": (SERVER_IF,)})
        for n, state in ((100, BindingState.ACTIVE), (101, BindingState.ABANDONED)):
            mac = bytes([0x52, 0x54, 0, 0, 0, n])
            lease = Lease(IPv4Address(f"192.0.2.{n}"), state, starts=T0, ends=T0 + 600)
            lease.hardware, lease.uid = (1, mac), b"\x01" + mac
            server.db.load(lease)
        _commands.append(Commands(server, started=T0, clock=lambda: float(T0)))
    return _commands[0]


def check_command(data: bytes) -> None:
    """``parse_command`` raises only ``CommandError``; an accepted request gets a Kea answer
    (result 0-3, text, JSON-encodable) from a read-only execution that never awaits."""
    try:
        req = parse_command(data)
    except CommandError as exc:
        assert exc.result == 1 and exc.text, exc
        return
    coro = _command_layer().execute(req, may_write=False)
    try:
        coro.send(None)
    except StopIteration as done:
        answer = done.value
    else:
        coro.close()
        raise AssertionError(f"{req.command}: a read-only execution awaited")
    assert isinstance(answer, dict) and answer.get("result") in (0, 1, 2, 3), answer
    assert isinstance(answer.get("text"), str), answer
    text = str(answer.get("text"))
    assert "Traceback" not in text and not text.startswith("internal error"), answer
    json.dumps(answer)


# --- 7. the witness datagrams (tandem witness, --witness) ----------------------------------

#: The key fuzzed datagrams are checked with (the corpus signs some with it).
WITNESS_KEY = b"fuzz witness secret"


def check_witness(data: bytes) -> None:
    """``wire.witness.decode`` raises only ``WitnessDropped`` (a short reason), with and
    without a secret; what it accepts is canonical: it encodes back to the same bytes."""
    for secret in (None, WITNESS_KEY):
        try:
            msg = decode_witness(data, secret)
        except WitnessDropped as exc:
            assert _REASON.fullmatch(exc.reason), exc.reason
            continue
        assert len(data) <= MAX_DATAGRAM
        assert encode_witness(msg, secret) == data


CHECKS: dict[str, Callable[[bytes], None]] = {
    "dhcp": check_dhcp,
    "failover": check_failover,
    "config": check_config,
    "leases": check_leases,
    "control": check_control,
    "command": check_command,
    "witness": check_witness,
}


# --- corpus and mutation --------------------------------------------------------------------


def load_corpus(target: str) -> list[bytes]:
    """The committed seed corpus of ``target`` (fuzz/corpus/<target>/), sorted by name."""
    folder = CORPUS_DIR / target
    return [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()]


INTERESTING = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\x01", b"\xff\xff", b"\x00\x00", b"\x08")

# One mutation: (kind, position fraction, size/argument). Positions are fractions of the
# current length so the same op list means something on any seed.
Op = tuple[int, float, int]


def mutate(data: bytes, ops: Sequence[Op], donors: Sequence[bytes] = ()) -> bytes:
    """Apply libFuzzer-like mutations: flip, truncate, splice, insert, overwrite, repeat."""
    buf = bytearray(data)
    for kind, frac, arg in ops:
        n = len(buf)
        pos = min(int(frac * n), n)
        k = kind % 8
        if k == 0 and n:  # bit flip
            i = min(pos, n - 1)
            buf[i] ^= 1 << (arg % 8)
        elif k == 1:  # truncate
            del buf[pos:]
        elif k == 2 and donors:  # splice: our head + a donor's tail
            donor = donors[arg % len(donors)]
            cut = min(int(frac * len(donor)), len(donor))
            buf = buf[:pos] + bytearray(donor[cut:])
        elif k == 3:  # insert random-ish bytes
            buf[pos:pos] = Random(arg).randbytes(1 + arg % 16)
        elif k == 4:  # overwrite with an interesting value
            value = INTERESTING[arg % len(INTERESTING)]
            buf[pos : pos + len(value)] = value
        elif k == 5:  # repeat a slice (length fields vs. real data)
            piece = buf[pos : pos + 1 + arg % 64]
            buf[pos:pos] = piece * (1 + arg % 4)
        elif k == 6 and n:  # set one byte
            buf[min(pos, n - 1)] = arg & 0xFF
        elif k == 7:  # delete a run
            del buf[pos : pos + 1 + arg % 32]
    return bytes(buf)
