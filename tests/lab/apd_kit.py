"""Helpers for the auto-partner-down lab tests: the seed pair with ``auto-partner-down N;``,
a ``tandem witness`` process, a packet filter on the failover ports, questions to the witness
as either peer, and every DHCPACK the servers sent, read from captures on their interfaces.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

from failover_kit import SEED_PRIMARY, SEED_SECONDARY, Node, derive, edit

from tandem.lab.crash_check import ACK_FIELDS, Ack, check_overlaps, parse_acks
from tandem.lab.netns import Host, LabError, Proc
from tandem.lab.servers import start_capture, stop_capture, tandem_command, tshark_fields

WITNESS_ADDR = "192.0.2.60/24"
WITNESS_IP = "192.0.2.60"
WITNESS_PORT = 5419
SECRET = "lab witness secret\n"


def apd_conf(seed: str, n: int, mclt: int | None = None) -> str:
    """The seed with ``authoritative;`` (the probes need it), a 5 s max-response-delay and
    ``auto-partner-down N;`` in the peer block."""
    conf = derive(seed, mclt=mclt, mrd=5, extra_global="authoritative;")
    return edit(
        conf,
        "load balance max seconds 3;",
        f"load balance max seconds 3;\n        auto-partner-down {n};",
    )


def apd_pair(h1: Host, h2: Host, n: int, mclt: int, *, witness: bool = True) -> tuple[Node, Node]:
    """The seed pair with auto-partner-down N (and the witness flags)."""
    args: tuple[str, ...] = ()
    if witness:
        secret = write_secret(h1)
        args = ("--witness", f"{WITNESS_IP}:{WITNESS_PORT}", "--witness-secret", str(secret))
    primary = Node("tandem", h1, apd_conf(SEED_PRIMARY, n, mclt), args=args)
    secondary = Node("tandem", h2, apd_conf(SEED_SECONDARY, n), args=args)
    return primary, secondary


def write_secret(host: Host) -> Path:
    """The shared secret file (namespaces share the file system: one file for all)."""
    path = host.lab.workdir / "witness.secret"
    path.write_text(SECRET, encoding="ascii")
    path.chmod(0o600)
    return path


class Witness:
    """``tandem witness`` on ``host``, restartable on the same state file."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.state = host.workdir / "witness.state"
        self.secret = write_secret(host)
        self.proc: Proc | None = None
        self.runs = 0

    def start(self) -> Proc:
        self.runs += 1
        cmd = [
            *tandem_command(),
            "witness",
            "--listen",
            f"{WITNESS_IP}:{WITNESS_PORT}",
            "--state",
            str(self.state),
            "--witness-secret",
            str(self.secret),
        ]
        log = self.host.workdir / f"witness-run{self.runs}.log"
        self.proc = self.host.spawn(cmd, log, name="witness", env={"PYTHONUNBUFFERED": "1"})
        self.proc.wait_for_log("Witness starting service.", 20)
        return self.proc

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.stop(signal.SIGKILL)

    def log(self) -> str:
        return "".join(
            p.read_text(errors="replace")
            for p in sorted(self.host.workdir.glob("witness-run*.log"))
        )


_ASK = r"""
import json, socket, sys, time
from tandem.wire import witness as w
host, port, rel, role, want, secret = sys.argv[1:7]
key = w.read_secret(open(secret, "rb").read())
rid = time.time_ns() // 1000
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2.0)
s.sendto(w.encode(w.WitnessRequest(rel, role, rid, want == "1"), key), (host, int(port)))
try:
    data, _ = s.recvfrom(2048)
except OSError:
    print(json.dumps(None)); sys.exit(0)
a = w.decode(data, key)
print(json.dumps({"id_ok": a.request_id == rid, "ticket_ms": a.ticket_ms, "grant_ms": a.grant_ms,
                  "hold_ms": a.hold_ms, "partner_alive": a.partner_alive,
                  "partner_granted": a.partner_granted}))
"""


def ask_witness(
    host: Host, role: str, *, want_partner_down: bool, relationship: str = "failover-example"
) -> dict[str, object] | None:
    """One request to the witness from ``host`` as ``role``; its answer (None: no answer)."""
    secret = host.lab.workdir / "witness.secret"
    cmd = [
        sys.executable,
        "-c",
        _ASK,
        WITNESS_IP,
        str(WITNESS_PORT),
        relationship,
        role,
        "1" if want_partner_down else "0",
        str(secret),
    ]
    res = host.run(cmd, timeout=15)
    answer = json.loads(res.stdout)
    assert answer is None or isinstance(answer, dict)
    return answer


# --- the failover ports blocked (nft, in one namespace) ----------------------------------------


def block_failover(host: Host, ports: tuple[int, ...] = (519, 520)) -> None:
    """Drop (silently) every TCP segment to or from the failover ports in ``host``'s namespace:
    a firewall change that cuts the failover link and nothing else."""
    plist = ", ".join(str(p) for p in ports)
    rules = f"""
table inet apdcut {{
    chain input {{
        type filter hook input priority 0; policy accept;
        tcp dport {{ {plist} }} drop
        tcp sport {{ {plist} }} drop
    }}
    chain output {{
        type filter hook output priority 0; policy accept;
        tcp dport {{ {plist} }} drop
        tcp sport {{ {plist} }} drop
    }}
}}
"""
    path = host.workdir / "apdcut.nft"
    path.write_text(rules, encoding="ascii")
    host.run(["nft", "-f", str(path)])


def unblock_failover(host: Host) -> None:
    host.run(["nft", "delete", "table", "inet", "apdcut"])


# --- every DHCPACK on the wire ------------------------------------------------------------------


class AckCapture:
    """dumpcap on each server's eth0 (what it sends, udp source port 67)."""

    def __init__(self, *hosts: Host) -> None:
        self.procs: list[tuple[Proc, Path]] = []
        for host in hosts:
            pcap = host.workdir / "acks.pcapng"
            self.procs.append((start_capture(host, "eth0", pcap, "udp src port 67"), pcap))

    def acks(self) -> list[Ack]:
        """Stop the captures and return every DHCPACK that carried an address."""
        out: list[Ack] = []
        for proc, pcap in self.procs:
            if proc.running():
                stop_capture(proc)
            out += parse_acks(tshark_fields(pcap, ACK_FIELDS, "dhcp.option.dhcp == 5"))
        out.sort(key=lambda a: a.time)
        return out


def assert_no_double_acks(acks: list[Ack]) -> None:
    """No address ACKed to a second MAC while another's ACKed lease still ran."""
    verdict = check_overlaps(acks)
    if verdict.findings:
        raise AssertionError("\n".join(f.detail for f in verdict.findings))


def watch_states(nodes: tuple[Node, ...], seconds: float) -> list[tuple[str, ...]]:
    """Each node's failover state every 0.25 s for ``seconds`` (None while unreadable)."""
    seen: list[tuple[str, ...]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(tuple(str(n.my_state()) for n in nodes))
        time.sleep(0.25)
    return seen


def apd_status(node: Node) -> dict[str, object]:
    """The relationship's auto-partner-down block of ``status`` (probes, witness, fencing)."""
    block = node.status().get("auto_partner_down")
    if not isinstance(block, dict):
        raise LabError(f"no auto_partner_down in the status of {node.host.name}: {node.status()}")
    return block


__all__ = [
    "WITNESS_ADDR",
    "WITNESS_IP",
    "AckCapture",
    "Witness",
    "apd_conf",
    "apd_pair",
    "apd_status",
    "ask_witness",
    "assert_no_double_acks",
    "block_failover",
    "unblock_failover",
    "watch_states",
]
