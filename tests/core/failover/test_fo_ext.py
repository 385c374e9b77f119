"""The Tandem extension channel between two engines back to back (tandem.core.failover.ext)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import struct
from collections.abc import Mapping
from ipaddress import IPv4Interface

import pytest
from fokit import PRIMARY_CONF, SECONDARY_CONF, T0, Node
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem.config import parse_text
from tandem.core.failover.engine import FailoverSetup
from tandem.core.failover.ext import ExtSetup, Send
from tandem.core.server import DhcpServer
from tandem.lab.failover_pair import Pair
from tandem.wire.failover import decode_message
from tandem.wire.framing import FrameBuffer
from tandem.wire.tandem_ext import (
    EXT_MESSAGE_TYPE,
    MAX_BODY,
    ExtDecodeError,
    ExtEncodeError,
    decode_body,
    decode_envelope,
    encode_ext,
)


class Recorder:
    """A feature that records what the channel tells it and can send."""

    kinds = frozenset({"note", "echo"})

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []
        self.send: Send | None = None

    def ext_up(self, peer: str, send: Send, now: int) -> None:
        self.events.append(("up", peer))
        self.send = send

    def ext_message(self, peer: str, kind: str, body: Mapping[str, object], now: int) -> None:
        self.events.append(("msg", peer, kind, dict(body)))
        if kind == "echo" and self.send is not None:
            self.send("note", {"echoed": body.get("n")})

    def ext_down(self, peer: str, now: int) -> None:
        self.events.append(("down", peer))
        self.send = None


def nonces(seed: int):  # type: ignore[no-untyped-def]
    n = [0]

    def draw() -> bytes:
        n[0] += 1
        return bytes([seed]) * 8 + n[0].to_bytes(8, "big")

    return draw


def node(role: str, ext: ExtSetup | None, now: int = T0, text: str | None = None) -> Node:
    conf = text or (PRIMARY_CONF if role == "primary" else SECONDARY_CONF)
    cfg = parse_text(conf)
    ip = IPv4Interface("192.0.2.1/24" if role == "primary" else "192.0.2.2/24")
    setup = FailoverSetup(cfg, {}, now, ext=ext)
    srv = DhcpServer(cfg, leases=[], interfaces={"eth0": (ip,)}, failover=setup)
    (engine,) = setup.engines.values()
    return Node(role, conf, srv, engine, ip)


def pair_of(
    sec_p: bytes | None = None, sec_s: bytes | None = None
) -> tuple[Node, Node, Pair, Recorder, Recorder]:
    fp, fs = Recorder(), Recorder()
    p = node("primary", ExtSetup((fp,), sec_p, nonces(1)))
    s = node("secondary", ExtSetup((fs,), sec_s, nonces(2)))
    pair = Pair(p.engine, s.engine, T0)
    pair.connect()
    pair.advance(2)
    return p, s, pair, fp, fs


def ext_status(n: Node) -> dict[str, object]:
    st = n.engine.status()["extension"]
    assert isinstance(st, dict)
    return st


def lines(n: Node) -> list[str]:
    return n.engine.take_log()


def test_two_tandems_bring_the_channel_up_and_exchange_messages() -> None:
    p, s, pair, fp, fs = pair_of()
    assert p.state() == s.state() == "normal"
    assert fp.events == [("up", "failover-example")]
    assert fs.events == [("up", "failover-example")]
    assert ext_status(p)["state"] == ext_status(s)["state"] == "up"
    assert "unauthenticated" in str(ext_status(p)["mode"])
    assert fp.send is not None
    fp.send("echo", {"n": 7})
    pair.pump()
    assert ("msg", "failover-example", "echo", {"n": 7}) in fs.events
    assert ("msg", "failover-example", "note", {"echoed": 7}) in fp.events
    assert any("Tandem extension up with tandem-" in x for x in lines(p))
    old = fp.send
    pair.disconnect()
    assert fp.events[-1] == ("down", "failover-example")
    assert fs.events[-1] == ("down", "failover-example")
    pair.connect()
    pair.advance(1)
    assert fp.events[-1] == ("up", "failover-example")
    # A send() handed out on the previous connection sends nothing on this one.
    before = ext_status(s)["received"]
    old("note", {"stale": True})
    pair.pump()
    assert ext_status(s)["received"] == before
    assert ext_status(p)["dropped"] == {"not-sent": 1}


def test_equal_secrets_authenticate() -> None:
    p, s, pair, fp, fs = pair_of(b"s3cret", b"s3cret")
    assert ext_status(p)["state"] == ext_status(s)["state"] == "up"
    assert ext_status(s)["mode"] == "authenticated (--peer-secret)"
    assert fs.send is not None
    fs.send("note", {"a": "b"})
    pair.pump()
    assert ("msg", "failover-example", "note", {"a": "b"}) in fp.events


def test_wrong_secret_refuses_the_extension_and_failover_goes_on() -> None:
    p, s, _pair, fp, fs = pair_of(b"one", b"two")
    assert p.state() == s.state() == "normal"
    assert fp.events == fs.events == []
    for n in (p, s):
        st = ext_status(n)
        assert st["state"] == "refused"
        assert "bad MAC" in str(st["refused"])
        assert st["refusals"] == 1
    text = "\n".join(lines(p))
    assert "failover peer failover-example: Tandem extension refused" in text
    assert "ISC failover continues" in text


def test_secret_on_one_side_only_is_refused_on_both() -> None:
    p, s, _pair, fp, fs = pair_of(b"only-here", None)
    assert p.state() == s.state() == "normal"
    assert "configured on this side only" in str(ext_status(p)["refused"])
    assert "configured on the peer only" in str(ext_status(s)["refused"])
    assert fp.events == fs.events == []


def test_a_peer_that_is_not_tandem_is_sent_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A primary whose CONNECT says it is ISC: the secondary speaks only ISC's protocol, and
    an extension message from that peer is a counted drop with one line, not a crash."""
    import tandem.core.failover.link as link_mod

    fs = Recorder()
    p = node("primary", None)
    s = node("secondary", ExtSetup((fs,), None, nonces(2)))
    monkeypatch.setattr(link_mod, "VENDOR_CLASS", "isc-V4.4.3-P1")
    seen: list[int] = []
    real = s.engine.data_to_send

    def spy() -> bytes:
        data = real()
        seen.extend(frames(data))
        return data

    s.engine.data_to_send = spy  # type: ignore[method-assign]
    pair = Pair(p.engine, s.engine, T0)
    pair.connect()
    pair.advance(2)
    assert p.state() == s.state() == "normal"
    assert seen and EXT_MESSAGE_TYPE not in seen
    st = ext_status(s)
    assert st["state"] == "not-tandem" and st["peer_is_tandem"] is False
    assert st["peer_vendor"] == "isc-V4.4.3-P1"
    for seq in (0, 1):
        s.engine.receive_data(encode_ext("hello", seq, {"v": 1}, time=T0, key=None), T0)
    assert s.engine.close_reason() is None
    assert ext_status(s)["dropped"] == {"peer-not-tandem": 2}
    said = [x for x in lines(s) if "non-Tandem peer" in x]
    assert said == [
        "failover peer failover-example: dropped an extension message from a non-Tandem "
        "peer (isc-V4.4.3-P1)"
    ]
    assert fs.events == []


def frames(data: bytes) -> list[int]:
    fb = FrameBuffer()
    fb.feed(data)
    return [decode_message(f).type if f[2] != EXT_MESSAGE_TYPE else EXT_MESSAGE_TYPE for f in fb]


def test_a_body_too_big_is_refused_to_the_sender() -> None:
    p, _s, pair, fp, fs = pair_of()
    assert fp.send is not None
    try:
        fp.send("note", {"x": "y" * MAX_BODY})
    except ExtEncodeError as exc:
        assert "chunk it" in str(exc)
    else:
        raise AssertionError("an oversized body was sent")
    fp.send("note", {"x": "y" * (MAX_BODY - 20)})  # the largest that fits does
    pair.pump()
    assert fs.events[-1][2] == "note"
    assert p.state() == "normal"


def test_envelope_fits_one_failover_frame() -> None:
    frame = encode_ext("note", 1, {"x": "y" * (MAX_BODY - 8)}, time=T0, key=b"k" * 32)
    assert len(frame) <= 2048


# --- hostile peers: counted drops and refusals, never a crash; ISC failover goes on --------


def raw_frame(
    kind: str, seq: int, body: bytes, key: bytes | None, *, blen: int | None = None
) -> bytes:
    """An extension frame with any body bytes (and, given ``blen``, a lying body length)."""
    kb = kind.encode()
    env = struct.pack("!BBQB", 1, 1 if key else 0, seq, len(kb)) + kb
    env += struct.pack("!H", len(body) if blen is None else blen) + body
    if key:
        env += hmac.new(key, env, hashlib.sha256).digest()
    size = 12 + 4 + len(env)
    return (
        struct.pack("!HBBII", size, EXT_MESSAGE_TYPE, 12, T0, seq)
        + struct.pack("!HH", 29, len(env))
        + env
    )


def up_pair(
    secret: bytes | None = b"0123456789abcdef",
) -> tuple[Node, Node, Pair, Recorder, Recorder]:
    p, s, pair, fp, fs = pair_of(secret, secret)
    assert ext_status(s)["state"] == "up"
    lines(p), lines(s)
    return p, s, pair, fp, fs


def primary_key(p: Node) -> bytes | None:
    assert p.engine.ext is not None
    return p.engine.ext._tx_key


def inject(s: Node, pair: Pair, frame: bytes) -> None:
    s.engine.receive_data(frame, pair.now)
    pair.pump()


def assert_refused(s: Node, pair: Pair, fs: Recorder, words: str) -> None:
    st = ext_status(s)
    assert st["state"] == "refused", st
    assert words in str(st["refused"]), st["refused"]
    assert fs.events[-1] == ("down", "failover-example")
    said = [x for x in lines(s) if "Tandem extension refused" in x]
    assert len(said) == 1 and words in said[0] and "(peer tandem-0.1)" in said[0], said
    assert s.engine.close_reason() is None
    pair.advance(5)
    assert s.state() == "normal" and s.engine.link.state == "up"


def test_a_replayed_message_is_refused() -> None:
    p, s, pair, fp, fs = up_pair()
    captured: list[bytes] = []
    real = p.engine.data_to_send

    def spy() -> bytes:
        data = real()
        captured.append(data)
        return data

    p.engine.data_to_send = spy  # type: ignore[method-assign]
    assert fp.send is not None
    fp.send("note", {"n": 1})
    pair.pump()
    assert fs.events[-1] == ("msg", "failover-example", "note", {"n": 1})
    frame = next(c for c in captured if c and c[2] == EXT_MESSAGE_TYPE)
    inject(s, pair, frame)
    assert_refused(s, pair, fs, "replayed sequence number")
    inject(s, pair, frame)  # after a refusal: dropped, counted, silent
    assert ext_status(s)["dropped"] == {"refused": 1}
    assert lines(s) == []


def test_a_bad_mac_is_refused() -> None:
    p, s, pair, _fp, fs = up_pair()
    key = primary_key(p)
    assert key is not None
    inject(s, pair, raw_frame("note", 99, b"{}", b"x" * 32))
    assert_refused(s, pair, fs, "bad MAC")


def test_a_missing_mac_is_refused_when_a_secret_is_set() -> None:
    _p, s, pair, _fp, fs = up_pair()
    inject(s, pair, raw_frame("note", 99, b"{}", None))
    assert_refused(s, pair, fs, "no MAC")


def test_malformed_json_is_refused() -> None:
    p, s, pair, _fp, fs = up_pair()
    key = primary_key(p)
    inject(s, pair, raw_frame("note", 99, b'{"a": [1, 2', key))
    assert_refused(s, pair, fs, "malformed body")


def test_deeply_nested_json_is_refused_not_a_crash() -> None:
    p, s, pair, _fp, fs = up_pair()
    key = primary_key(p)
    inject(s, pair, raw_frame("note", 99, b"[" * 1900 + b"]" * 50, key))
    assert_refused(s, pair, fs, "malformed body")


def test_a_json_array_body_is_refused() -> None:
    p, s, pair, _fp, fs = up_pair()
    inject(s, pair, raw_frame("note", 99, b"[1]", primary_key(p)))
    assert_refused(s, pair, fs, "not-object")


def test_a_lying_body_length_is_refused() -> None:
    p, s, pair, _fp, fs = up_pair()
    inject(s, pair, raw_frame("note", 99, b"{}", primary_key(p), blen=5000))
    assert_refused(s, pair, fs, "oversize")


def test_an_oversized_frame_drops_the_link_as_isc_does() -> None:
    """Over 2048 bytes is not a failover frame at all: ISC's framing closes the link."""
    p, s, pair, _fp, _fs = up_pair()
    big = raw_frame("note", 99, b'{"x":"' + b"y" * 2100 + b'"}', primary_key(p))
    s.engine.receive_data(big, pair.now)
    assert s.engine.close_reason() is not None


def test_an_unknown_kind_is_a_counted_drop_and_the_channel_stays_up() -> None:
    p, s, pair, fp, fs = up_pair()
    key = primary_key(p)
    assert p.engine.ext is not None
    seq = p.engine.ext._tx_seq
    inject(s, pair, raw_frame("future-thing", seq, b"{}", key))
    inject(s, pair, raw_frame("future-thing", seq + 1, b"{}", key))
    st = ext_status(s)
    assert st["state"] == "up"
    assert st["dropped"] == {"unknown-kind:future-thing": 2}
    said = [x for x in lines(s) if "unknown kind" in x]
    assert said == [
        "failover peer failover-example: dropped an extension message of unknown kind "
        "'future-thing'"
    ]
    p.engine.ext._tx_seq = seq + 2  # the injected ones used the primary's numbers
    assert fp.send is not None
    fp.send("note", {"still": "up"})
    pair.pump()
    assert fs.events[-1] == ("msg", "failover-example", "note", {"still": "up"})


def test_a_second_hello_is_refused() -> None:
    _p, s, pair, _fp, fs = up_pair(None)
    body = b'{"auth":false,"nonce":"' + b"00" * 16 + b'","v":1}'
    inject(s, pair, raw_frame("hello", 99, body, None))
    assert_refused(s, pair, fs, "second 'hello'")


def test_an_extension_message_before_the_link_is_up_is_dropped() -> None:
    fs = Recorder()
    s = node("secondary", ExtSetup((fs,), None, nonces(2)))
    s.engine.connection_made(T0)
    s.engine.receive_data(raw_frame("hello", 0, b"{}", None), T0)
    assert s.engine.close_reason() is None
    assert ext_status(s)["dropped"] == {"before-link-up": 1}
    assert any("before the link was up" in x for x in lines(s))
    assert s.engine.link.state == "connecting"


def test_a_feature_that_raises_costs_one_message_not_the_link() -> None:
    _p, s, pair, fp, fs = up_pair()

    def boom(peer: str, kind: str, body: Mapping[str, object], now: int) -> None:
        raise KeyError("nope")

    fs.ext_message = boom  # type: ignore[method-assign]
    assert fp.send is not None
    fp.send("note", {})
    pair.pump()
    st = ext_status(s)
    assert st["state"] == "up" and st["dropped"] == {"feature-error:note": 1}
    assert s.state() == "normal"


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_envelopes_never_raise(data: bytes) -> None:
    frame = struct.pack("!HBBII", 16 + len(data), EXT_MESSAGE_TYPE, 12, T0, 0)
    frame += struct.pack("!HH", 29, len(data)) + data
    try:
        env = decode_envelope(frame)
    except ExtDecodeError:
        return
    with contextlib.suppress(ExtDecodeError):
        decode_body(env.body)
