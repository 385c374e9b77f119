"""The Tandem extension channel of a running Tandem secondary against a hostile "primary".

A fake primary (tandem.lab.hostile.fake_primary) connects from the peer's address and speaks
ISC's CONNECT, then extension messages out of place: from a peer that said it is ISC, before
the CONNECT, with a replayed sequence number, a body that is not JSON, a lying length, a MAC
nobody agreed on, an unknown kind. Each is a counted drop or a refused extension with one line
naming the peer; the connection stays up (ISC's protocol goes on) and the server never
crashes; the real primary then brings the pair to NORMAL and a client is served.
"""

from __future__ import annotations

import pytest
from failover_kit import (
    NAME,
    PRIMARY_IP,
    SECONDARY_IP,
    SEED_PRIMARY,
    SEED_SECONDARY,
    Node,
    pair_lab,
)

from tandem.lab.clients import Dhclient
from tandem.lab.hostile import fake_primary
from tandem.lab.netns import Lab
from tandem.lab.scenarios import ip_in_range
from tandem.wire.tandem_ext import EXT_MESSAGE_TYPE

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("lab_prerequisites"),
]

PORT = 520  # the seed secondary's failover port


def ext_of(node: Node) -> dict[str, object]:
    ext = node.status()["extension"]
    assert isinstance(ext, dict)
    return ext


def test_extension_messages_from_a_hostile_peer(lab: Lab) -> None:
    h1, h2 = pair_lab(lab)
    secondary = Node("tandem", h2, SEED_SECONDARY)
    secondary.start()

    def play(steps: list[str], vendor: str = "tandem-0.1") -> dict[str, object]:
        got = fake_primary(h1, SECONDARY_IP, PORT, NAME, steps, vendor=vendor, hold=1.0)
        assert secondary.server is not None and secondary.server.proc.running()
        return got

    # 1. A peer that says it is ISC dhcpd: nothing of the extension is sent to it, and its
    #    extension message is a counted drop; the link stays up.
    got = play(["connect", "wait", "ext", "wait"], vendor="isc-V4.4.3-P1")
    assert got["closed"] is False and 6 in got["types"], got  # CONNECTACK
    assert EXT_MESSAGE_TYPE not in got["types"], got
    ext = ext_of(secondary)
    # (the fake peer has hung up: the channel is "off" again, what it learnt stays)
    assert ext["peer_vendor"] == "isc-V4.4.3-P1" and ext["peer_is_tandem"] is False, ext
    assert ext["dropped"] == {"peer-not-tandem": 1}, ext
    assert "dropped an extension message from a non-Tandem peer (isc-V4.4.3-P1)" in secondary.log()

    # 2. A Tandem peer: the server says hello (only now); an unknown kind is dropped and
    #    counted, a replayed sequence number refuses the extension; the link stays up.
    got = play(["connect", "wait", "hello", "ready", "unknown", "replay", "wait"])
    assert got["closed"] is False and EXT_MESSAGE_TYPE in got["types"], got
    ext = ext_of(secondary)
    assert ext["refusals"] == 1 and "replayed sequence number" in str(ext["refused"]), ext
    assert ext["dropped"].get("unknown-kind:future-thing") == 1  # type: ignore[union-attr]
    log = secondary.log()
    assert "dropped an extension message of unknown kind 'future-thing'" in log
    assert "Tandem extension refused for this connection: replayed sequence number" in log

    # 3-5. Not JSON, a lying body length, a MAC nobody agreed on: refused, link up.
    for steps, words in (
        (["connect", "wait", "hello", "ready", "badjson", "wait"], "malformed body"),
        (["connect", "wait", "hello", "ready", "liar", "wait"], "oversize"),
        (["connect", "wait", "hello", "mac", "wait"], "although neither side has a secret"),
    ):
        before = int(ext_of(secondary)["refusals"])  # type: ignore[call-overload]
        got = play(steps)
        assert got["closed"] is False, (steps, got)
        ext = ext_of(secondary)
        assert ext["refusals"] == before + 1 and words in str(ext["refused"]), (steps, ext)
        line = [x for x in secondary.log().splitlines() if words in x]
        assert line and "(peer tandem-0.1)" in line[-1] and NAME in line[-1], line

    # 6. An extension message before the CONNECT: dropped, then the CONNECT still works.
    got = play(["ext", "connect", "wait"])
    assert got["closed"] is False and 6 in got["types"], got
    assert ext_of(secondary)["dropped"].get("before-link-up") == 1  # type: ignore[union-attr]

    # The real primary: NORMAL with the channel up, and a client is served.
    primary = Node("tandem", h1, SEED_PRIMARY)
    primary.start()
    primary.wait_state("normal", 30)
    secondary.wait_state("normal", 30)
    assert ext_of(secondary)["state"] == "up" and ext_of(primary)["state"] == "up"
    cli = Dhclient(lab.add_host("cli"))
    cli.start()
    ev = cli.wait_lease(30)
    assert ip_in_range(ev.address) and ev.server_id in (PRIMARY_IP, SECONDARY_IP)
