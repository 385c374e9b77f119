"""The Tandem extension channel between two engines back to back (tandem.core.failover.ext)."""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Interface

import pytest
from fokit import PRIMARY_CONF, SECONDARY_CONF, T0, Node

from tandem.config import parse_text
from tandem.core.failover.engine import FailoverSetup
from tandem.core.failover.ext import ExtSetup, Send
from tandem.core.server import DhcpServer
from tandem.lab.failover_pair import Pair
from tandem.wire.failover import decode_message
from tandem.wire.framing import FrameBuffer
from tandem.wire.tandem_ext import EXT_MESSAGE_TYPE, MAX_BODY, ExtEncodeError, encode_ext


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
