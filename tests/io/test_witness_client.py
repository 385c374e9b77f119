"""io/witness_client.py: requests leave with increasing ids; only an answer to a pending
request of the same relationship and role counts, with the time that request was sent."""

from __future__ import annotations

import pytest

from tandem.io.witness_client import WitnessClient, listen_address
from tandem.wire import witness as wire

KEY = b"k"


class _Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes) -> None:
        self.sent.append(data)


def _client() -> tuple[WitnessClient, _Transport, list[tuple[wire.WitnessAnswer, int]]]:
    clock = iter(range(1000, 100_000, 100))
    client = WitnessClient(("192.0.2.60", 5419), KEY, clock=lambda: next(clock))
    transport = _Transport()
    client.transport = transport  # type: ignore[assignment]
    return client, transport, []


def _answer(req: bytes, **kw: object) -> bytes:
    r = wire.decode(req, KEY)
    assert isinstance(r, wire.WitnessRequest)
    fields: dict[str, object] = {"ticket_ms": 12_000, **kw}
    rel = str(fields.pop("relationship", r.relationship))
    return wire.encode(wire.WitnessAnswer(rel, r.role, r.request_id, **fields), KEY)  # type: ignore[arg-type]


def test_answer_carries_its_request_send_time() -> None:
    client, tr, got = _client()
    a = client.ask("rel", "secondary", True, lambda ans, sent: got.append((ans, sent)))
    b = client.ask("rel", "secondary", True, lambda ans, sent: got.append((ans, sent)))
    assert a is not None and b is not None and b > a
    req = wire.decode(tr.sent[0], KEY)
    assert isinstance(req, wire.WitnessRequest) and req.want_partner_down
    assert client.receive(_answer(tr.sent[1], grant_ms=12_000))
    assert [(ans.grant_ms, sent) for ans, sent in got] == [(12_000, 1100)]
    # The older request is forgotten with it: its late answer cannot count from 1000.
    assert not client.receive(_answer(tr.sent[0]))
    assert client.drops == {"stale-id": 1}


def test_junk_bad_mac_and_foreign_answers_are_counted_drops() -> None:
    client, tr, got = _client()
    client.ask("rel", "primary", False, lambda ans, sent: got.append((ans, sent)))
    assert not client.receive(b"junk")
    forged = bytearray(_answer(tr.sent[0]))
    forged[-1] ^= 1
    assert not client.receive(bytes(forged))
    assert not client.receive(_answer(tr.sent[0], relationship="other"))
    assert not client.receive(tr.sent[0])  # a request reflected back
    assert got == []
    assert client.drops == {
        "short": 1,
        "bad-mac": 1,
        "wrong-relationship": 1,
        "not-an-answer": 1,
    }
    assert client.receive(_answer(tr.sent[0]))


def test_listen_address() -> None:
    assert listen_address("192.0.2.60:5419") == ("192.0.2.60", 5419)
    for bad in ("192.0.2.60", "host:1", "192.0.2.60:0", "1.2.3:5"):
        with pytest.raises(ValueError, match="ADDR:PORT"):
            listen_address(bad)
