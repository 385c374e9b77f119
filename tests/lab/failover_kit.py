"""Helpers for the failover lab tests: the seed's two configs, pairs of servers, state polling,
lease-file comparison, and the many-MAC probe.

Seed configs come from tests/configs/seed-{primary,secondary}.conf: the blog post's text,
verbatim (its ``255.255.255.00`` typo and the commented-out range included). Derived configs
(fast timers, split 128) change only the failover block's numbers, by exact textual edits that
fail loudly if the seed line is not there.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tandem.core.failover.loadbalance import client_key, hba_from_split, lb_hash, primary_serves
from tandem.core.lease import BindingState
from tandem.io.control import ControlUnavailable, control_path_for, request
from tandem.lab.netns import Host, Lab, LabError
from tandem.lab.servers import Server, run_dhcpd, run_tandem
from tandem.store.leasefile import parse_leases

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SEED_PRIMARY = (CONFIGS / "seed-primary.conf").read_text(encoding="utf-8")
SEED_SECONDARY = (CONFIGS / "seed-secondary.conf").read_text(encoding="utf-8")
NAME = "failover-example"
PRIMARY_ADDR = "192.0.2.1/24"
SECONDARY_ADDR = "192.0.2.2/24"
PRIMARY_IP = "192.0.2.1"
SECONDARY_IP = "192.0.2.2"
PROBE_ADDR = "192.0.2.50/24"  # outside the pool (100-200)


def edit(conf: str, old: str, new: str) -> str:
    """Replace one exact line fragment; LabError if the seed does not contain it."""
    if old not in conf:
        raise LabError(f"config has no {old!r}")
    return conf.replace(old, new, 1)


def derive(
    conf: str,
    *,
    mclt: int | None = None,
    mrd: int | None = None,
    split: int | None = None,
    extra_global: str = "",
) -> str:
    """The seed with other numbers: mclt (primary only), max-response-delay, split."""
    if mclt is not None:
        conf = edit(conf, "mclt 3600;", f"mclt {mclt};")
    if mrd is not None:
        conf = edit(conf, "max-response-delay 60;", f"max-response-delay {mrd};")
    if split is not None:
        conf = edit(conf, "split 256;", f"split {split};")
    if extra_global:
        conf = extra_global.rstrip("\n") + "\n" + conf
    return conf


@dataclass
class Node:
    """One server of the pair (Tandem or dhcpd), restartable with the same files."""

    kind: str
    host: Host
    conf: str
    server: Server | None = None
    runs: int = 0
    args: tuple[str, ...] = ()  # extra command-line flags (Tandem only)

    @property
    def leases_path(self) -> Path:
        return self.host.workdir / f"{self.kind}.leases"

    @property
    def pid_path(self) -> Path:
        return self.host.workdir / f"{self.kind}.pid"

    def start(self) -> Server:
        self.runs += 1
        if self.server is not None:
            # Keep the previous run's log: run_* truncates the log file.
            old = self.server.proc.log_path
            if old.exists():
                old.rename(old.with_name(f"{old.stem}-run{self.runs - 1}{old.suffix}"))
        if self.kind == "tandem":
            self.server = run_tandem(
                self.host, self.conf, self.leases_path, self.args, ready_timeout=20
            )
        elif self.kind == "dhcpd":
            self.server = run_dhcpd(self.host, self.conf, self.leases_path, ready_timeout=20)
        else:
            raise LabError(f"unknown server kind {self.kind!r}")
        return self.server

    def kill(self) -> None:
        assert self.server is not None
        self.server.stop(signal.SIGKILL)

    def log(self) -> str:
        return self.server.log() if self.server is not None else ""

    def all_logs(self) -> str:
        logs = sorted(self.host.workdir.glob(f"{self.kind}-run*.log"))
        return "".join(p.read_text(errors="replace") for p in logs) + self.log()

    # --- failover state --------------------------------------------------------------

    def status(self) -> dict[str, object]:
        """Tandem: the relationship's status from the control socket."""
        assert self.kind == "tandem"
        answer = request(control_path_for(str(self.pid_path)), {"command": "status"})
        if not answer.get("ok"):
            raise LabError(f"status failed: {answer}")
        result = answer["result"]
        assert isinstance(result, dict)
        failover = result["failover"]
        assert isinstance(failover, dict)
        info = failover[NAME]
        assert isinstance(info, dict)
        return info

    def full_status(self) -> dict[str, object]:
        answer = request(control_path_for(str(self.pid_path)), {"command": "status"})
        result = answer["result"]
        assert isinstance(result, dict)
        return result

    def my_state(self) -> str | None:
        if self.kind == "tandem":
            try:
                return str(self.status()["my_state"])
            except (ControlUnavailable, KeyError):
                return None
        moves = re.findall(rf"failover peer {NAME}: I move from \S+ to (\S+)", self.log())
        return moves[-1] if moves else None

    def wait_state(self, state: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.my_state() == state:
                return
            if self.server is not None and not self.server.proc.running():
                raise LabError(f"{self.kind} on {self.host.name} exited:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise LabError(
                    f"{self.kind} on {self.host.name}: not {state} after {timeout} s "
                    f"(now {self.my_state()}); log tail:\n{self.log()[-3000:]}"
                )
            time.sleep(0.1)

    def bindings(self) -> dict[str, tuple[str, str | None]]:
        """Address -> (binding state, MAC) from the lease file (last record wins)."""
        text = self.leases_path.read_text(encoding="latin-1")
        contents = parse_leases(text, str(self.leases_path))
        out: dict[str, tuple[str, str | None]] = {}
        for addr, lease in contents.leases.items():
            mac = lease.hardware[1].hex(":") if lease.hardware is not None else None
            out[str(addr)] = (lease.binding_state.keyword, mac)
        return out

    def active(self) -> dict[str, str | None]:
        return {a: m for a, (s, m) in self.bindings().items() if s == "active"}

    def in_state(self, state: str) -> set[str]:
        return {a for a, (s, _m) in self.bindings().items() if s == state}


def pair_lab(lab: Lab) -> tuple[Host, Host]:
    return lab.add_host("srv1", PRIMARY_ADDR), lab.add_host("srv2", SECONDARY_ADDR)


def wait_for(pred: object, timeout: float, what: str) -> None:
    assert callable(pred)
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def wait_agree(a: Node, b: Node, timeout: float) -> None:
    """Both lease files agree on every ACTIVE binding (address and MAC)."""

    def agree() -> bool:
        return a.active() == b.active()

    deadline = time.monotonic() + timeout
    while not agree():
        if time.monotonic() > deadline:
            raise LabError(
                f"lease files disagree:\n{a.kind}@{a.host.name}: {sorted(a.active().items())}\n"
                f"{b.kind}@{b.host.name}: {sorted(b.active().items())}"
            )
        time.sleep(0.2)


def assert_unique_clients(*nodes: Node) -> None:
    """No address held by two clients, no client holding two addresses, across the files."""
    owner: dict[str, str | None] = {}
    for node in nodes:
        for addr, mac in node.active().items():
            if addr in owner and owner[addr] != mac:
                raise AssertionError(f"{addr} held by {owner[addr]} and {mac}")
            owner[addr] = mac
    by_mac: dict[str | None, set[str]] = {}
    for addr, mac in owner.items():
        by_mac.setdefault(mac, set()).add(addr)
    doubles = {m: a for m, a in by_mac.items() if len(a) > 1}
    assert not doubles, f"clients with two active addresses: {doubles}"


# --- the many-MAC probe ------------------------------------------------------------------


def run_probe(
    host: Host,
    *,
    count: int,
    base: str,
    secs: int = 0,
    wait: float = 4.0,
    bind: bool = False,
) -> dict[str, dict[str, object]]:
    cmd = [
        sys.executable,
        "-m",
        "tandem.lab.lbprobe",
        "--count",
        str(count),
        "--base",
        base,
        "--secs",
        str(secs),
        "--wait",
        str(wait),
    ]
    if bind:
        cmd.append("--bind")
    res = host.run(cmd, timeout=wait + 30)
    clients = json.loads(res.stdout)["clients"]
    assert isinstance(clients, dict)
    return clients


def offered_by(entry: dict[str, object]) -> set[str]:
    offers = entry["offers"]
    assert isinstance(offers, list)
    return {str(o[0]) for o in offers}


def expected_owner(mac: str, split: int) -> str:
    """Which server's IP should answer a DISCOVER without option 61 from ``mac``."""
    chaddr = bytes.fromhex(mac.replace(":", ""))
    bucket = lb_hash(client_key(None, chaddr))
    return PRIMARY_IP if primary_serves(bucket, hba_from_split(split)) else SECONDARY_IP


def dhcpd_rejections(log: str) -> list[str]:
    """dhcpd's lines for refused binding updates, in either direction."""
    return [
        line
        for line in log.splitlines()
        if re.search(r"bind update on \S+ (from \S+ rejected|got ack from \S+: )", line)
    ]


__all__ = [
    "NAME",
    "PRIMARY_IP",
    "PROBE_ADDR",
    "SECONDARY_IP",
    "SEED_PRIMARY",
    "SEED_SECONDARY",
    "BindingState",
    "Node",
    "assert_unique_clients",
    "derive",
    "dhcpd_rejections",
    "expected_owner",
    "offered_by",
    "pair_lab",
    "run_probe",
    "wait_agree",
    "wait_for",
]
