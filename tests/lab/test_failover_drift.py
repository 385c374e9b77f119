"""Drift detection and the extension channel's secret between two real Tandems (issue 11).

A secondary whose range is one address longer, or which has one host reservation more, is
reported on both peers with the file:line of the difference: in the log (one loud line per
connection), in failover-get's ``drift`` section and as ``tandem_failover_config_drift`` = 1.
Equal files report none. With ``--peer-secret``: the same secret brings the authenticated
channel up; a different one refuses the extension while failover stays NORMAL.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from failover_kit import NAME, SEED_PRIMARY, SEED_SECONDARY, Node, edit, pair_lab, wait_for
from test_api import call, metrics

from tandem.lab.netns import Host, Lab
from tandem.lab.servers import tandem_command

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("lab_prerequisites"),
]

RANGE = "range 192.0.2.100 192.0.2.200;"
HOST = """
host extra-printer {
  hardware ethernet 52:54:00:aa:bb:cc;
  fixed-address 192.0.2.50;
}
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, x in enumerate(text.splitlines(), 1) if x.strip() == needle)


def start_pair(
    lab: Lab, secondary_conf: str, args: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
) -> tuple[Node, Node]:
    h1, h2 = pair_lab(lab)
    primary = Node("tandem", h1, SEED_PRIMARY, args=args[0])
    secondary = Node("tandem", h2, secondary_conf, args=args[1])
    secondary.start()
    primary.start()
    primary.wait_state("normal", 60)
    secondary.wait_state("normal", 60)
    return primary, secondary


def drift_of(node: Node) -> dict[str, object]:
    answer = call(node.host, "failover-get")
    assert answer["result"] == 0, answer
    args = answer["arguments"]
    assert isinstance(args, dict)
    (rel,) = [r for r in args["relationships"] if r["name"] == NAME]  # type: ignore[index, union-attr]
    drift = rel["drift"]
    assert isinstance(drift, dict)
    return drift


def drift_metric(node: Node) -> float:
    (value,) = [v for labels, v in metrics(node.host)["tandem_failover_config_drift"]
                if labels["peer"] == NAME]  # fmt: skip
    return value


def check_peer(host: Host, conf: str) -> tuple[int, str]:
    """``tandem check --peer`` run inside ``host`` against the server on its loopback."""
    path = host.workdir / "checked.conf"
    path.write_text(conf, encoding="utf-8")
    cmd = [*tandem_command(), "check", "--peer", "http://127.0.0.1:8067", "-cf", str(path)]
    res = host.run(cmd, check=False)
    return res.returncode, res.stdout + res.stderr


def conf_path(node: Node) -> str:
    assert node.server is not None
    return str(node.server.conf_path)


def wait_compared(node: Node) -> dict[str, object]:
    got: dict[str, object] = {}

    def done() -> bool:
        got.update(drift_of(node))
        return got.get("state") in ("agree", "drift")

    wait_for(done, 20, "the drift comparison")
    return got


@pytest.mark.parametrize("case", ["range", "host"])
def test_drift_is_reported_on_both_peers_with_file_and_line(lab: Lab, case: str) -> None:
    if case == "range":
        # (the seed also has a commented-out range line, farther left: not that one)
        sec = edit(SEED_SECONDARY, " " * 16 + RANGE, " " * 16 + "range 192.0.2.100 192.0.2.201;")
        key = "subnet 192.0.2.0/24 pool 1 range 1"
        sline = line_of(sec, "range 192.0.2.100 192.0.2.201;")
        pline: int | None = line_of(SEED_PRIMARY, RANGE)
    else:
        sec = SEED_SECONDARY + HOST
        key = "host extra-printer"
        sline = line_of(sec, "host extra-printer {")
        pline = None
    primary, secondary = start_pair(lab, sec)
    for node, other, mine, theirs in (
        (primary, secondary, pline, sline),
        (secondary, primary, sline, pline),
    ):
        d = wait_compared(node)
        assert d["state"] == "drift" and d["drift"] is True and d["count"] == 1, d
        (diff,) = d["differences"]  # type: ignore[misc]
        assert diff["key"] == key
        here = None if mine is None else f"{conf_path(node)}:{mine}"
        there = None if theirs is None else f"{conf_path(other)}:{theirs}"
        assert diff["here-loc"] == here and diff["peer-loc"] == there, diff
        assert drift_metric(node) == 1
        log = node.log()
        loud = re.findall(r"failover peer failover-example: CONFIGURATION DRIFT: .*", log)
        assert len(loud) == 1, loud
        detail = [x for x in log.splitlines() if f"drift: {key}:" in x]
        assert len(detail) == 1
        for loc in (here, there):
            if loc is not None:
                assert f"({loc})" in detail[0], detail
    assert primary.my_state() == secondary.my_state() == "normal"
    # tandem check --peer: the primary's file against the running secondary, and back.
    rc, out = check_peer(secondary.host, SEED_PRIMARY)
    assert rc == 1 and "CONFIGURATION DRIFT" in out and key in out, out
    assert f"({conf_path(secondary)}:{sline})" in out, out
    rc, out = check_peer(secondary.host, sec)
    assert rc == 0 and "agrees with the peer" in out, out

    # The secondary's file is fixed and reloaded (SIGHUP): the new digest reaches the
    # primary, both agree, the metric drops to 0.
    assert secondary.server is not None
    secondary.server.conf_path.write_text(SEED_SECONDARY, encoding="utf-8")
    os.kill(secondary.server.proc.pid, signal.SIGHUP)
    for node in (primary, secondary):
        wait_for(lambda n=node: drift_of(n)["state"] == "agree", 20, "agreement after reload")  # type: ignore[misc]
        assert drift_metric(node) == 0
    assert "configuration agrees with the peer's now" in primary.log()


def test_equal_configs_report_no_drift(lab: Lab) -> None:
    primary, secondary = start_pair(lab, SEED_SECONDARY)
    for node in (primary, secondary):
        d = wait_compared(node)
        assert d["state"] == "agree" and d["drift"] is False and d["count"] == 0, d
        assert d["digest"] == d["peer-digest"]
        assert drift_metric(node) == 0
        assert "CONFIGURATION DRIFT" not in node.log()
        ext = node.status()["extension"]
        assert isinstance(ext, dict) and ext["state"] == "up"
        assert "unauthenticated" in str(ext["mode"])
    rc, out = check_peer(primary.host, SEED_SECONDARY)
    assert rc == 0 and "agrees with the peer" in out, out


def secret_file(node_dir: Path, text: str) -> str:
    path = node_dir / "peer.secret"
    path.write_text(text + "\n", encoding="ascii")
    path.chmod(0o600)
    return str(path)


@pytest.mark.parametrize("same", [True, False], ids=["same-secret", "wrong-secret"])
def test_peer_secret(lab: Lab, same: bool) -> None:
    h1, h2 = pair_lab(lab)
    a = secret_file(h1.workdir, "0123456789abcdef0123456789abcdef")
    b = secret_file(h2.workdir, "0123456789abcdef0123456789abcdef" if same else "x" * 32)
    primary = Node("tandem", h1, SEED_PRIMARY, args=("--peer-secret", a))
    secondary = Node("tandem", h2, SEED_SECONDARY, args=("--peer-secret", b))
    secondary.start()
    primary.start()
    primary.wait_state("normal", 60)
    secondary.wait_state("normal", 60)
    want = "up" if same else "refused"
    for node in (primary, secondary):
        wait_for(lambda n=node: n.status()["extension"]["state"] == want, 20, want)  # type: ignore[index, misc]
        ext = node.status()["extension"]
        assert isinstance(ext, dict)
        if same:
            assert ext["mode"] == "authenticated (--peer-secret)"
            assert wait_compared(node)["state"] == "agree"
        else:
            assert "bad MAC" in str(ext["refused"]) and ext["refusals"] == 1
            line = [x for x in node.log().splitlines() if "Tandem extension refused" in x]
            assert len(line) == 1 and "is --peer-secret the same on both peers?" in line[0]
            d = drift_of(node)
            assert "refused" in str(d.get("note")), d
    assert primary.my_state() == secondary.my_state() == "normal"
    assert primary.status()["link"] == "up"
