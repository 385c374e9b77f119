"""The HTTP command API and /metrics on the seed's pair, as real processes in namespaces.

The primary runs with ``--http-token-file`` (writes allowed with the bearer token), the
secondary without one (loopback, read-only). A real dhclient gets a lease; then status-get,
failover-get and lease4-get over HTTP give the facts on both peers; lease4-del without the
token (401 on the primary, 403 on the read-only secondary) changes nothing; with it the
lease is gone on both peers. /metrics parses with prometheus-client's own parser, its pool
numbers add up to the pool size on both peers, and after kill -9 of the primary the
secondary's ``tandem_failover_state`` shows communications-interrupted.
"""

from __future__ import annotations

import json

import pytest
from failover_kit import NAME, SEED_PRIMARY, SEED_SECONDARY, Node, pair_lab, wait_for
from prometheus_client.parser import text_string_to_metric_families

from tandem.lab.clients import Dhclient
from tandem.lab.netns import Host, Lab
from tandem.lab.servers import tandem_command

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("lab_prerequisites"),
]

TOKEN = "lab-token-4f1c2a9e7d3b8c60"
URL = "http://127.0.0.1:8067"  # the default --http, on each namespace's own loopback
POOL = "192.0.2.0/24 192.0.2.100-192.0.2.200"
POOL_SIZE = 101


def http(
    host: Host, path: str, body: object | None = None, token: str | None = None
) -> tuple[int, str]:
    """(HTTP status, body) of one request made with curl inside ``host``'s namespace."""
    cmd = ["curl", "-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"]
    if token is not None:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    res = host.run([*cmd, URL + path])
    text, _, code = res.stdout.rpartition("\n")
    return int(code), text


def call(
    host: Host, command: str, arguments: dict[str, object] | None = None, token: str | None = None
) -> dict[str, object]:
    body: dict[str, object] = {"command": command}
    if arguments is not None:
        body["arguments"] = arguments
    status, text = http(host, "/", body, token)
    answer = json.loads(text)
    assert isinstance(answer, dict), text
    answer["http"] = status
    return answer


def metrics(host: Host, token: str | None = None) -> dict[str, list[tuple[dict[str, str], float]]]:
    status, text = http(host, "/metrics", token=token)
    assert status == 200, text
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:  # by sample name: counters end in _total
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def pool_sums(m: dict[str, list[tuple[dict[str, str], float]]]) -> dict[str, float]:
    sums: dict[str, float] = {}
    for labels, value in m["tandem_pool_addresses"]:
        sums[labels["pool"]] = sums.get(labels["pool"], 0) + value
    return sums


def local_state(m: dict[str, list[tuple[dict[str, str], float]]]) -> list[str]:
    return [
        labels["state"]
        for labels, value in m["tandem_failover_state"]
        if labels["side"] == "local" and labels["peer"] == NAME and value == 1
    ]


def test_api_and_metrics_on_the_seed_pair(lab: Lab) -> None:
    h1, h2 = pair_lab(lab)
    token_file = h1.workdir / "api.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    primary = Node("tandem", h1, SEED_PRIMARY, args=("--http-token-file", str(token_file)))
    secondary = Node("tandem", h2, SEED_SECONDARY)
    secondary.start()
    primary.start()
    primary.wait_state("normal", 30)
    secondary.wait_state("normal", 30)

    cli = Dhclient(lab.add_host("cli1"))
    cli.start()
    ev = cli.wait_lease(30)
    addr, mac = str(ev.address), cli.mac()
    wait_for(lambda: secondary.active().get(addr) == mac, 15, "BNDUPD on srv2")

    # status-get: the process and its pool, with the client's lease counted.
    st = call(h1, "status-get", token=TOKEN)
    assert st["result"] == 0, st
    status = st["arguments"]
    assert isinstance(status, dict) and primary.server is not None
    assert status["pid"] == primary.server.proc.pid
    (pool,) = status["pools"]
    assert pool["pool"] == POOL and pool["total"] == POOL_SIZE
    assert sum(pool["states"].values()) == POOL_SIZE and pool["states"]["active"] >= 1

    # failover-get on both: NORMAL on both sides, recent contact, the pool by name.
    for host, token, role in ((h1, TOKEN, "primary"), (h2, None, "secondary")):
        fo = call(host, "failover-get", token=token)
        assert fo["result"] == 0, fo
        (rel,) = fo["arguments"]["relationships"]  # type: ignore[index]
        assert rel["name"] == NAME and rel["role"] == role
        assert rel["local"]["state"] == "normal" and rel["partner"]["state"] == "normal"
        assert isinstance(rel["local"]["since"], int) and rel["link"] == "up"
        assert isinstance(rel["last-contact-age"], int) and 0 <= rel["last-contact-age"] < 60
        assert isinstance(rel["clock-skew"], int) and abs(rel["clock-skew"]) <= 2
        (fpool,) = rel["pools"]
        assert fpool["pool"] == POOL and fpool["total"] == POOL_SIZE
        assert fpool["backup"] > 0  # balancing gave the secondary its share

    # lease4-get on both peers: the real client's binding.
    for host, token in ((h1, TOKEN), (h2, None)):
        got = call(host, "lease4-get", {"ip-address": addr}, token)
        assert got["result"] == 0, got
        lease = got["arguments"]
        assert isinstance(lease, dict)
        assert lease["hw-address"] == mac and lease["state"] == 0 and lease["subnet-id"] == 1
        by_mac = call(
            host, "lease4-get", {"identifier-type": "hw-address", "identifier": mac}, token
        )
        assert by_mac["arguments"] == lease

    # lease4-del without the token: refused, nothing changes.
    delete = {"ip-address": addr}
    for token in (None, "not-the-token-at-all"):
        refused = call(h1, "lease4-del", delete, token)
        assert refused["http"] == 401 and refused["result"] == 1, refused
    read_only = call(h2, "lease4-del", delete)
    assert read_only["http"] == 403 and read_only["result"] == 1, read_only
    assert call(h1, "lease4-get", {"ip-address": addr}, TOKEN)["result"] == 0
    assert call(h2, "lease4-get", {"ip-address": addr})["result"] == 0
    assert primary.active().get(addr) == mac and secondary.active().get(addr) == mac

    # With the token: gone on both peers (the BNDUPD went to the secondary).
    deleted = call(h1, "lease4-del", delete, TOKEN)
    assert deleted["http"] == 200 and deleted["result"] == 0, deleted
    assert addr not in primary.active()  # on disk before the answer
    for host, token in ((h1, TOKEN), (h2, None)):
        wait_for(
            lambda host=host, token=token: (
                call(host, "lease4-get", {"ip-address": addr}, token)["result"] == 3
            ),
            15,
            f"lease gone on {host.name}",
        )
    wait_for(lambda: addr not in secondary.active(), 15, "the secondary's lease file")
    assert f"lease {addr} state changed from active to" in primary.log()

    # /metrics on both peers: parses, the pool adds up, both NORMAL.
    for host, token in ((h1, TOKEN), (h2, None)):
        m = metrics(host, token)
        assert pool_sums(m) == {POOL: POOL_SIZE}
        assert local_state(m) == ["normal"]
        assert any(
            v > 0
            for labels, v in m["tandem_dhcp_received_total"]
            if labels["type"] == "DHCPREQUEST"
        )
        assert m["tandem_lease_commit_seconds_count"][0][1] > 0
    assert http(h1, "/metrics")[0] == 401  # the token guards /metrics too

    # kill -9 the primary: the secondary's metrics say communications-interrupted.
    primary.kill()
    secondary.wait_state("communications-interrupted", 15)
    m = metrics(h2)
    assert local_state(m) == ["communications-interrupted"]
    assert pool_sums(m) == {POOL: POOL_SIZE}
    # `tandem status` (a client of status-get and failover-get) says the same, as text.
    res = h2.run([*tandem_command(), "status", "-pf", str(secondary.pid_path)])
    assert "me      communications-interrupted since" in res.stdout, res.stdout
    assert f"{POOL}: {POOL_SIZE} addresses:" in res.stdout, res.stdout
