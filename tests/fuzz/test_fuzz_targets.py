"""Short fuzzing budget for `make test`: every parser target, three kinds of input each.

* mutated: the committed seed corpus (real dhcpd traffic, lease files, the config corpus)
  after bit flips, truncation, splicing, inserted/overwritten/repeated runs;
* structured: inputs built from each format's grammar, to get past the first length check;
* raw: plain random bytes.

The verdicts come from fuzz/fuzzlib.py, the same oracles the long atheris runs use (only
the parser's own error type may escape; round trips and the server core must hold). Also
here: the size and nesting extremes a random search rarely reaches.
"""

from __future__ import annotations

import contextlib
import time

import pytest
from fuzzkit import fuzzlib, mutated, structured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem.config import ConfigError
from tandem.io.control import MAX_DEPTH, ControlError, parse_request
from tandem.store.leasefile import LeaseFileError, parse_leases
from tandem.wire.failover import MAX_MESSAGE_SIZE, FailoverProtocolError
from tandem.wire.framing import DEFAULT_MAX_BUFFERED, FrameBuffer

pytestmark = pytest.mark.timeout(120)

TARGETS = fuzzlib.TARGETS
BUDGET = {
    "dhcp": 1200,
    "failover": 1500,
    "config": 1200,
    "leases": 1200,
    "control": 1500,
    "command": 1000,
    "witness": 1500,
}


def _budget(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,  # one slow example is not a bug; the timeout mark catches hangs
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.mark.parametrize("target", TARGETS)
def test_seed_corpus_is_clean(target: str) -> None:
    seeds = fuzzlib.load_corpus(target)
    assert len(seeds) >= 3
    for seed in seeds:
        fuzzlib.CHECKS[target](seed)


@pytest.mark.parametrize("target", TARGETS)
def test_mutated_seeds(target: str) -> None:
    @_budget(BUDGET[target])
    @given(mutated(target))
    def run(data: bytes) -> None:
        fuzzlib.CHECKS[target](data)

    run()


@pytest.mark.parametrize("target", TARGETS)
def test_structured_inputs(target: str) -> None:
    @_budget(BUDGET[target])
    @given(structured(target))
    def run(data: bytes) -> None:
        fuzzlib.CHECKS[target](data)

    run()


@pytest.mark.parametrize("target", TARGETS)
def test_random_bytes(target: str) -> None:
    @_budget(BUDGET[target] // 2)
    @given(st.binary(max_size=1500))
    def run(data: bytes) -> None:
        fuzzlib.CHECKS[target](data)

    run()


def test_mutation_engine_changes_seeds() -> None:
    seed = bytes(range(64))
    assert fuzzlib.mutate(seed, [(0, 0.0, 0)]) == b"\x01" + seed[1:]  # bit flip
    assert fuzzlib.mutate(seed, [(1, 0.5, 0)]) == seed[:32]  # truncation
    assert fuzzlib.mutate(seed, [(2, 0.5, 0)], [b"ABCD"]) == seed[:32] + b"CD"  # splice
    assert fuzzlib.mutate(seed, [(4, 0.25, 1)]) == seed[:16] + b"\xff" + seed[17:]
    assert fuzzlib.mutate(seed, [(7, 0.0, 3)]) == seed[4:]
    assert fuzzlib.mutate(b"", [(0, 0.5, 1), (6, 0.5, 1)]) == b""


# --- extremes ------------------------------------------------------------------------------


def _timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    with contextlib.suppress(ConfigError, LeaseFileError, ControlError):
        fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


@pytest.mark.parametrize(
    "text",
    [
        "group { " * 20_000,
        "if (" * 20_000,
        "if not " * 20_000 + "exists host-name { }",
        "subnet 192.0.2.0 netmask 255.255.255.0 { " + "pool { " * 5_000,
        'option domain-name "' + "a" * 200_000,
        "option x code 250 = " + "array of { " * 5_000,
        'class "c" { match if ' + "concat(" * 10_000 + '"a"' + ")" * 10_000 + "; }",
        "on commit { " * 10_000,
    ],
    ids=["groups", "parens", "nots", "pools", "long-string", "formats", "concat", "on"],
)
def test_config_deep_or_huge_input_is_a_config_error(text: str) -> None:
    # No RecursionError, no hang: a located error (or a parse) in bounded time.
    fuzzlib.check_config(text.encode("latin-1"))
    assert _timed(fuzzlib.parse_config_sandboxed, text) < 20


def test_config_parse_time_is_linear_in_size() -> None:
    seed = (fuzzlib.CORPUS_DIR / "config" / "many-hosts.conf").read_text("latin-1")
    hosts = seed[seed.index("host ") :]
    small = _timed(fuzzlib.parse_config_sandboxed, hosts * 2)
    big = _timed(fuzzlib.parse_config_sandboxed, hosts * 20)
    assert big < 20 * max(small, 0.005) + 2, (small, big)


def test_lease_file_huge_inputs_are_bounded() -> None:
    huge_hex = "lease 192.0.2.1 {\n  uid " + ":".join(["ab"] * 300_000) + ";\n}\n"
    huge_string = 'lease 192.0.2.1 {\n  client-hostname "' + "x" * 1_000_000 + '";\n}\n'
    many = "".join(
        f"lease 192.0.{i // 250}.{i % 250 + 1} {{\n  binding state free;\n}}\n"
        for i in range(20_000)
    )
    for text in (huge_hex, huge_string):
        with pytest.raises(LeaseFileError) as err:
            parse_leases(text, "big.leases")
        assert err.value.line == 2
    assert _timed(parse_leases, many, "many.leases") < 20
    assert len(parse_leases(many, "many.leases").leases) == 20_000


def test_framer_memory_is_bounded_without_draining() -> None:
    fb = FrameBuffer()
    message = MAX_MESSAGE_SIZE.to_bytes(2, "big") + bytes(MAX_MESSAGE_SIZE - 2)
    with pytest.raises(FailoverProtocolError) as err:
        for _ in range(1000):  # 2 MB offered, never drained
            fb.feed(message)
            assert len(fb) <= DEFAULT_MAX_BUFFERED
    assert err.value.reason == "buffer-full"
    assert len(fb) == 0  # the buffer is released on the error


def test_framer_drained_stream_of_many_messages_stays_small() -> None:
    fb = FrameBuffer()
    message = (12).to_bytes(2, "big") + bytes([9]) + bytes([12]) + bytes(8)  # CONTACT
    stream = message * 50_000
    count = 0
    for i in range(0, len(stream), 4093):  # odd chunk size: frames cut everywhere
        fb.feed(stream[i : i + 4093])
        count += sum(1 for _ in fb)
        assert len(fb) < MAX_MESSAGE_SIZE
    assert count == 50_000


def test_framer_refuses_a_bad_length_before_its_body_arrives() -> None:
    fb = FrameBuffer()
    with pytest.raises(FailoverProtocolError) as err:
        fb.feed(b"\xff\xff")  # 65535 > 2048: refused on two bytes, nothing buffered
    assert err.value.reason == "bad-length"
    with pytest.raises(FailoverProtocolError):
        fb.feed(b"\x00\x0c" + bytes(10))


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100, 20_000])
def test_control_deep_nesting_refused_before_json(depth: int) -> None:
    line = ("{" + '"a": ' + "{" * (depth - 1) + "}" * depth).encode()
    with pytest.raises(ControlError, match="nested deeper"):
        parse_request(line[:4096])
    with pytest.raises(ControlError):
        parse_request(b"[" * 20_000)  # over the size cap as well


def test_control_accepts_nesting_up_to_the_limit() -> None:
    line = '{"command": "status", "a": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"
    assert parse_request(line.encode())["command"] == "status"


# --- crashes the fuzzers found (each fixed; the input stays here as a regression) ----------


@pytest.mark.parametrize(
    "text", ['filename "\\1', 'filename "\\12', 'option domain-name "\\x4', 'x "\\']
)
def test_found_escape_cut_by_end_of_file_is_a_config_error(text: str) -> None:
    # Found by test_structured_inputs[config]: an octal escape cut short by the end of the
    # file raised ValueError from the lexer ("" is a substring of every str).
    with pytest.raises(ConfigError) as err:
        fuzzlib.parse_config_sandboxed(text)
    assert err.value.loc.line == 1
