"""The failover port and the control socket of a running Tandem under unfriendly input.

A stranger's connection is closed at once and counted; the peer's address speaking garbage
loses its connection; a silent connection from the peer's address is dropped after the 15 s
link-startup time; a second connection while the link is up is refused without disturbing it;
nested JSON on the control socket gets an error answer, and the server keeps serving.

The Tandem extension channel (issue 11 item 4) against a fake primary
(tandem.lab.hostile.fake_primary) that speaks ISC's CONNECT, then extension messages out of
place: from a peer that said it is ISC, before the CONNECT, with a replayed sequence number, a
body that is not JSON, a lying length, a MAC nobody agreed on, an unknown kind. Each is a
counted drop or a refused extension with one line naming the peer; the connection stays up
(ISC's protocol goes on), the server never crashes; the real primary then brings the pair to
NORMAL and a client is served.
"""

from __future__ import annotations

import json
import sys
import time

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

from tandem.io.control import control_path_for
from tandem.lab.clients import Dhclient
from tandem.lab.hostile import fake_primary
from tandem.lab.netns import Host, Lab
from tandem.lab.scenarios import ip_in_range
from tandem.wire.tandem_ext import EXT_MESSAGE_TYPE

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("lab_prerequisites"),
]

# Connects to HOST:PORT (from the namespace's address), sends PAYLOAD (hex), then reports how
# the connection ended and after how long: "closed <seconds> <bytes received>".
_TCP_CLIENT = """
import socket, sys, time
host, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[4])
payload = bytes.fromhex(sys.argv[3])
s = socket.create_connection((host, port), timeout=5)
s.settimeout(limit)
t0 = time.monotonic()
if payload:
    s.sendall(payload)
got = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            print("closed", round(time.monotonic() - t0, 2), len(got))
            break
        got += chunk
except (TimeoutError, socket.timeout):
    print("open", round(time.monotonic() - t0, 2), len(got))
except ConnectionResetError:
    print("closed", round(time.monotonic() - t0, 2), len(got))
"""


def tcp(host: Host, payload: bytes, limit: float, port: int = 520) -> tuple[str, float, int]:
    res = host.run(
        [sys.executable, "-c", _TCP_CLIENT, SECONDARY_IP, str(port), payload.hex(), str(limit)],
        timeout=limit + 20,
    )
    how, secs, n = res.stdout.split()
    return how, float(secs), int(n)


def test_failover_port_and_control_socket_under_hostile_input(lab: Lab) -> None:
    h1, h2 = pair_lab(lab)
    secondary = Node("tandem", h2, SEED_SECONDARY)
    secondary.start()

    stranger = lab.add_host("evil", "192.0.2.9/24")
    assert tcp(stranger, b"", 5)[0] == "closed"
    listeners = secondary.full_status()["failover_listeners"]
    assert isinstance(listeners, list) and listeners[0]["refused_foreign"] == 1

    # From the peer's own address (the primary is not running yet): garbage, then silence.
    how, _secs, got = tcp(h1, b"\xff\xff" + b"\x00" * 64, 10)
    assert how == "closed" and got == 0
    t0 = time.monotonic()
    how, secs, _ = tcp(h1, b"", 30)
    assert how == "closed" and 13 <= secs <= 20, (how, secs)  # the 15 s link-startup time
    assert time.monotonic() - t0 < 25
    counters = secondary.status()["tcp"]["counters"]  # type: ignore[index]
    assert counters["accepted"] >= 2 and counters["pending_timeouts"] == 1

    # Now the real primary: a second connection while the link is up is refused, link intact.
    primary = Node("tandem", h1, SEED_PRIMARY)
    primary.start()
    primary.wait_state("normal", 30)
    secondary.wait_state("normal", 30)
    before = secondary.status()["tcp"]["counters"]  # type: ignore[index]
    assert tcp(h1, b"", 5)[0] == "closed"
    after = secondary.status()
    assert after["my_state"] == "normal" and after["link"] == "up"
    assert after["tcp"]["counters"]["refused_duplicate"] > before["refused_duplicate"]  # type: ignore[index]
    assert after["tcp"]["counters"]["lost"] == before["lost"]  # type: ignore[index]

    # The control socket: too deep, too long, not JSON -> error answers; still serving.
    ctl = control_path_for(str(secondary.pid_path))
    script = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
        "s.sendall(b'[' * 50 + b']' * 50 + b'\\n' + b'{' * 100000 + b'\\n')\n"
        "print(s.makefile('rb').read().decode())\n"
    )
    res = h2.run([sys.executable, "-c", script, ctl], timeout=20)
    answers = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    assert [a["ok"] for a in answers] == [False, False]
    assert "nested deeper" in answers[0]["error"] and "longer than" in answers[1]["error"]
    assert secondary.server is not None and secondary.server.proc.running()
    assert secondary.status()["name"] == NAME

    # Clients are served all the same: the pair is still NORMAL and answers a new client.
    cli = Dhclient(lab.add_host("cli"))
    cli.start()
    ev = cli.wait_lease(30)
    assert ip_in_range(ev.address) and ev.server_id in (PRIMARY_IP, SECONDARY_IP)
    assert secondary.status()["link"] == "up"


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
