"""Crash durability under load: kill -9 the servers of a Tandem failover pair while perfdhcp
runs, and prove from the wire that no DHCPACK was ever sent for a binding the server then lost.

Why this shape. Tandem promises that a lease is on disk (written and fdatasync'd) before its
DHCPACK leaves. Unit tests check the ordering in-process; only a real kill -9 while packets fly
checks the promise end to end: sockets, the group-commit worker, the journal's torn-tail repair
on the next start, and failover's replays after each reconnect. The referee is a packet capture
in the client namespace, not anything the servers say about themselves.

The run: a primary and a secondary (split 128, so both answer) on one segment, perfdhcp
offering new clients at a moderate rate, dumpcap recording every reply. A seeded RNG picks when
to kill (alternating primary and secondary) and how long the victim stays down before it is
restarted on its own lease file. Right after each kill the victim's lease file is copied: that
copy is exactly what survived the crash.

What is checked (``check_*`` below, pure functions over captured ACKs and lease-file text):

* history: every ACK a server sent during one of its runs has a record in the file copied after
  that run's kill, for the same address and MAC, ``binding state active``, ending no earlier
  than the ACKed end (capture time + lease time) minus ``END_SLACK`` (the server stamps the
  lease when it handles the request; the ACK leaves after the fsync, a little later);
* state: in that copy replayed (last record wins), every binding the server ACKed earlier and
  whose ACKed end is still ahead is active for the same MAC, with its end;
* the same state check on the final files, after both servers were restarted once more on them
  (the load path with its rewrite) and stopped cleanly;
* overlaps: across both servers, no address was ACKed to a second MAC while an ACK to another
  MAC still ran (perfdhcp never releases, so only expiry may end a binding).

Not part of the server: this module may use subprocess, time and random freely.
"""

from __future__ import annotations

import random
import shutil
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tandem.core.lease import BindingState, Lease
from tandem.io.control import ControlUnavailable, control_path_for, request
from tandem.lab.netns import Host, Lab, LabError, Proc
from tandem.lab.servers import Server, run_tandem, tshark_fields
from tandem.store.leasefile import LeaseFileReader

PEER = "crash-pair"
PRIMARY_IP = "198.18.0.1"
SECONDARY_IP = "198.18.0.2"
PREFIX = 16
CLIENT_ADDR = "198.18.0.10/16"
POOL_FIRST = (198, 18, 1, 0)
#: Seconds an ACK's end may exceed the lease record's: the server stamps a lease when it
#: handles the request, the ACK is captured after the batch's fsync.
END_SLACK = 3.0
#: Fields read from every DHCPACK in the capture.
ACK_FIELDS = (
    "frame.time_epoch",
    "dhcp.ip.your",
    "dhcp.hw.mac_addr",
    "dhcp.option.ip_address_lease_time",
    "dhcp.option.dhcp_server_id",
)

#: Server log lines worth counting in the summary (label -> text).
LOG_MARKERS = {
    "failover link drops": ": disconnected",
    "of them for a skipped commit": "lease file commit failed",
    "torn tails repaired": "last record is incomplete",
    "replies withheld": "replies withheld",
}


# --- what the wire and the files say ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ack:
    """One DHCPACK as captured: when, which binding, for how long, from which server."""

    time: float
    address: str
    mac: str
    lease_time: int
    server: str

    @property
    def end(self) -> float:
        return self.time + self.lease_time


@dataclass(slots=True)
class Run:
    """One life of one server process: from its spawn to its kill (or final stop)."""

    server: str  # the server identifier its ACKs carry
    number: int
    started: float
    stopped: float | None = None
    snapshot: Path | None = None  # the lease file as the kill left it


@dataclass(frozen=True, slots=True)
class Finding:
    """A broken promise: ``kind`` is lost, stale, rebound or overlap."""

    kind: str
    detail: str


@dataclass
class Verdict:
    """What the checks found, with the counts that say how much they covered."""

    history_checked: int = 0  # ACKs looked up in their own run's post-kill file
    state_checked: int = 0  # (binding, file) pairs where the binding must still be active
    lapsed: int = 0  # ACKed bindings already over when a file was read (not required)
    superseded: int = 0  # bindings the wire shows moved on (other MAC) before the file
    max_lag: float = 0.0  # largest ACKed end minus recorded end that was accepted
    findings: list[Finding] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)

    @property
    def lost(self) -> int:
        """ACKed bindings missing from, or contradicted by, a lease file."""
        return self.count("lost") + self.count("stale") + self.count("rebound")

    def merge(self, other: Verdict) -> None:
        self.history_checked += other.history_checked
        self.state_checked += other.state_checked
        self.lapsed += other.lapsed
        self.superseded += other.superseded
        self.max_lag = max(self.max_lag, other.max_lag)
        self.findings.extend(other.findings)


def parse_acks(rows: Iterable[Sequence[str]]) -> list[Ack]:
    """ACKs from tshark rows of ``ACK_FIELDS``; rows without a yiaddr (INFORM) are skipped.

    Raises LabError on a row it cannot read: a silently skipped ACK would be an unchecked one.
    """
    out: list[Ack] = []
    for row in rows:
        if len(row) < len(ACK_FIELDS) or not row[1] or row[1] == "0.0.0.0":
            continue
        try:
            out.append(
                Ack(
                    time=float(row[0]),
                    address=row[1],
                    mac=row[2].lower(),
                    lease_time=int(row[3]),
                    server=row[4],
                )
            )
        except ValueError as exc:
            raise LabError(f"unreadable ACK row {row!r}: {exc}") from exc
    out.sort(key=lambda a: a.time)
    return out


def acks_from_pcap(pcap: Path) -> list[Ack]:
    rows = tshark_fields(pcap, ACK_FIELDS, "dhcp.option.dhcp == 5")
    return parse_acks(rows)


def assign_runs(acks: Iterable[Ack], runs: Sequence[Run]) -> dict[tuple[str, int], list[Ack]]:
    """Which run of its server sent each ACK: the last one started before it was captured.

    A server is down between a kill and the next start, so an ACK captured before run N+1
    started came from run N (even if it was still in flight when the kill landed).
    Raises LabError for an ACK from an unknown server or from before its first start.
    """
    by_server: dict[str, list[Run]] = {}
    for run in runs:
        by_server.setdefault(run.server, []).append(run)
    for lst in by_server.values():
        lst.sort(key=lambda r: r.started)
    out: dict[tuple[str, int], list[Ack]] = {(r.server, r.number): [] for r in runs}
    for ack in acks:
        lives = by_server.get(ack.server)
        if not lives:
            raise LabError(f"ACK from unknown server {ack.server}: {ack}")
        owner = None
        for run in lives:
            if run.started <= ack.time:
                owner = run
            else:
                break
        if owner is None:
            raise LabError(f"ACK captured before {ack.server} was started: {ack}")
        out[(owner.server, owner.number)].append(ack)
    return out


def _mac(lease: Lease) -> str | None:
    return lease.hardware[1].hex(":") if lease.hardware is not None else None


def read_history(text: str, filename: str) -> list[Lease]:
    """Every lease record in file order (a torn last record is left out, as the server does)."""
    reader = LeaseFileReader(text, filename)
    return [rec.record for rec in reader.records() if isinstance(rec.record, Lease)]


def replay(history: Iterable[Lease]) -> dict[str, Lease]:
    """Address -> the last record for it (what a server loads)."""
    return {str(lease.address): lease for lease in history}


def check_history(
    acks: Iterable[Ack], history: Sequence[Lease], slack: float = END_SLACK
) -> Verdict:
    """Each ACK of one run must have an active record (address, MAC, end) in that run's file."""
    best: dict[tuple[str, str | None], float] = {}
    for lease in history:
        if lease.binding_state is not BindingState.ACTIVE:
            continue
        key = (str(lease.address), _mac(lease))
        end = float("inf") if lease.ends is None else float(lease.ends)
        if end > best.get(key, float("-inf")):
            best[key] = end
    verdict = Verdict()
    for ack in acks:
        verdict.history_checked += 1
        found = best.get((ack.address, ack.mac))
        if found is None:
            verdict.findings.append(Finding("lost", f"no active record for {_ack_text(ack)}"))
        elif found < ack.end - slack:
            verdict.findings.append(
                Finding(
                    "stale", f"record ends {found:.0f}, ACK said {ack.end:.0f}: {_ack_text(ack)}"
                )
            )
        else:
            verdict.max_lag = max(verdict.max_lag, ack.end - found)
    return verdict


def check_state(
    server: str,
    acks: Sequence[Ack],
    leases: dict[str, Lease],
    at: float,
    slack: float = END_SLACK,
) -> Verdict:
    """The file ``server`` had at time ``at`` holds every binding it ACKed that still runs.

    ``acks`` are all captured ACKs (both servers, time order). For each address, the last ACK
    ``server`` sent before ``at`` is the binding it promised; a later ACK of the same address
    to the same MAC (either server) may have changed its end, one to another MAC means the
    binding was over (the overlap check judges that). A binding whose end has passed by
    ``at`` (+ slack) may have expired in the file: counted as lapsed, not required.
    """
    own: dict[str, Ack] = {}
    last: dict[str, Ack] = {}
    for ack in acks:
        if ack.time >= at:
            break
        last[ack.address] = ack
        if ack.server == server:
            own[ack.address] = ack
    verdict = Verdict()
    for addr, ack in own.items():
        latest = last[addr]
        if latest.mac != ack.mac:
            verdict.superseded += 1
            continue
        need = min(ack.end, latest.end)
        if need <= at + slack:
            verdict.lapsed += 1
            continue
        verdict.state_checked += 1
        lease = leases.get(addr)
        if lease is None:
            verdict.findings.append(Finding("lost", f"no record at all for {_ack_text(ack)}"))
            continue
        if lease.binding_state is not BindingState.ACTIVE or _mac(lease) != ack.mac:
            verdict.findings.append(
                Finding(
                    "rebound",
                    f"file says {lease.binding_state.keyword} {_mac(lease)} for {_ack_text(ack)}",
                )
            )
            continue
        end = float("inf") if lease.ends is None else float(lease.ends)
        if end < need - slack:
            verdict.findings.append(
                Finding("stale", f"record ends {end:.0f}, ACK said {need:.0f}: {_ack_text(ack)}")
            )
    return verdict


def check_overlaps(acks: Iterable[Ack], slack: float = END_SLACK) -> Verdict:
    """No address ACKed to a MAC while another MAC's latest ACK for it had not yet ended."""
    holder: dict[str, Ack] = {}
    verdict = Verdict()
    for ack in sorted(acks, key=lambda a: a.time):
        prev = holder.get(ack.address)
        if prev is not None and prev.mac != ack.mac and ack.time < prev.end - slack:
            verdict.findings.append(
                Finding(
                    "overlap",
                    f"{ack.address} ACKed to {ack.mac} by {ack.server} at {ack.time:.3f} while "
                    f"{prev.mac}'s lease from {prev.server} ran until {prev.end:.0f}",
                )
            )
        holder[ack.address] = ack
    return verdict


def _ack_text(ack: Ack) -> str:
    return (
        f"{ack.address} -> {ack.mac} (ACK from {ack.server} at {ack.time:.3f}, "
        f"{ack.lease_time} s, ends {ack.end:.0f})"
    )


def check_run_file(run: Run, acks: Sequence[Ack], mine: Sequence[Ack], text: str) -> Verdict:
    """Both file checks for one post-kill copy: its run's ACKs in the history, and the state."""
    history = read_history(text, str(run.snapshot))
    verdict = check_history(mine, history)
    assert run.stopped is not None
    verdict.merge(check_state(run.server, acks, replay(history), run.stopped))
    return verdict


# --- the lab -------------------------------------------------------------------------------


def pool_last(size: int) -> str:
    """The last address of a ``size``-address range starting at POOL_FIRST."""
    a, b, c, d = POOL_FIRST
    n = (c << 8 | d) + size - 1
    if size < 1 or n > 0xFFFE:
        raise LabError(f"pool of {size} addresses does not fit the /16")
    return f"{a}.{b}.{n >> 8}.{n & 0xFF}"


def pair_conf(role: str, *, pool: int, mclt: int, mrd: int, split: int) -> str:
    """dhcpd.conf text for one side; the secondary learns MCLT and split from the primary."""
    me, peer = (PRIMARY_IP, SECONDARY_IP) if role == "primary" else (SECONDARY_IP, PRIMARY_IP)
    ports = ("519", "520") if role == "primary" else ("520", "519")
    prim = f"  mclt {mclt};\n  split {split};\n" if role == "primary" else ""
    a, b, c, d = POOL_FIRST
    return (
        "# generated by tandem.lab.crash\n"
        "authoritative;\nping-check false;\n"
        "default-lease-time 86400;\nmax-lease-time 86400;\n"
        f'failover peer "{PEER}" {{\n  {role};\n  address {me};\n  port {ports[0]};\n'
        f"  peer address {peer};\n  peer port {ports[1]};\n  max-response-delay {mrd};\n"
        f"  max-unacked-updates 10;\n{prim}  load balance max seconds 3;\n}}\n"
        f"subnet 198.18.0.0 netmask 255.255.0.0 {{\n  option routers {PRIMARY_IP};\n"
        f'  pool {{\n    failover peer "{PEER}";\n'
        f"    range {a}.{b}.{c}.{d} {pool_last(pool)};\n  }}\n}}\n"
    )


@dataclass
class Member:
    """One Tandem of the pair, restartable on the same lease file; keeps every run's log."""

    role: str
    ip: str
    host: Host
    conf: str
    server: Server | None = None
    runs: list[Run] = field(default_factory=list)

    @property
    def leases_path(self) -> Path:
        return self.host.workdir / "tandem.leases"

    @property
    def pid_path(self) -> Path:
        return self.host.workdir / "tandem.pid"

    def start(self) -> Run:
        if self.server is not None:
            old = self.server.proc.log_path
            if old.exists():
                old.rename(old.with_name(f"tandem-run{len(self.runs)}.log"))
        run = Run(self.ip, len(self.runs) + 1, time.time())
        self.runs.append(run)
        self.server = run_tandem(self.host, self.conf, self.leases_path, ready_timeout=30)
        return run

    def running(self) -> bool:
        return self.server is not None and self.server.proc.running()

    def kill(self, snapshot: Path) -> Run:
        """kill -9, wait for the exit, then copy what the crash left on disk."""
        if self.server is None:
            raise LabError(f"{self.role} is not running")
        run = self.runs[-1]
        if not self.server.proc.running():
            raise LabError(f"{self.role} died by itself:\n{self.server.log()[-3000:]}")
        self.server.stop(signal.SIGKILL)
        run.stopped = time.time()
        shutil.copyfile(self.leases_path, snapshot)
        run.snapshot = snapshot
        return run

    def status(self) -> dict[str, object] | None:
        try:
            answer = request(control_path_for(str(self.pid_path)), {"command": "status"}, 5.0)
        except (ControlUnavailable, OSError):
            return None
        result = answer.get("result")
        if not answer.get("ok") or not isinstance(result, dict):
            return None
        failover = result.get("failover")
        info = failover.get(PEER) if isinstance(failover, dict) else None
        return info if isinstance(info, dict) else None

    def state(self) -> str:
        info = self.status()
        return str(info.get("my_state")) if info is not None else "?"

    def wait_state(self, state: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.state() != state:
            if not self.running():
                raise LabError(f"{self.role} exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise LabError(f"{self.role} not {state} after {timeout} s:\n{self.log_tail()}")
            time.sleep(0.2)

    def backup_leases(self) -> int:
        info = self.status()
        pools = info.get("pools") if info is not None else None
        if not isinstance(pools, list):
            return 0
        return sum(int(p.get("backup", 0)) for p in pools if isinstance(p, dict))

    def log_tail(self) -> str:
        return self.server.log()[-3000:] if self.server is not None else ""

    def all_logs(self) -> str:
        """Every run's log, oldest first."""
        runs = sorted(self.host.workdir.glob("tandem-run*.log"), key=lambda p: int(p.stem[10:]))
        text = "".join(p.read_text(encoding="utf-8", errors="replace") for p in runs)
        return text + (self.server.log() if self.server is not None else "")


@dataclass
class SoakOptions:
    kills: int = 20
    seed: int = 1
    rate: int = 400
    clients: int = 8000
    pool: int = 16000
    interval: tuple[float, float] = (3.0, 5.0)  # seconds between kills
    pause: tuple[float, float] = (0.2, 1.5)  # seconds a victim stays down
    mclt: int = 300
    mrd: int = 5
    split: int = 128
    verbose: bool = True


@dataclass
class SoakResult:
    options: SoakOptions
    kills: dict[str, int]
    acks: list[Ack]
    per_server: dict[str, int]
    verdict: Verdict
    seconds: float
    workdir: Path
    log_counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        v = self.verdict
        o = self.options
        lines = [
            f"crash soak: seed {o.seed}, {sum(self.kills.values())} kills "
            f"(primary {self.kills.get('primary', 0)}, "
            f"secondary {self.kills.get('secondary', 0)}), "
            f"perfdhcp {o.rate}/s over {o.clients} clients, pool {o.pool}, {self.seconds:.0f} s",
            f"ACKs seen: {len(self.acks)} "
            + ", ".join(f"{k} {n}" for k, n in sorted(self.per_server.items())),
            f"ACKs checked: {v.history_checked} in their run's post-kill file; "
            f"{v.state_checked} still-running bindings checked in later files "
            f"({v.lapsed} lapsed, {v.superseded} superseded); max end lag {v.max_lag:.2f} s",
            f"lost {v.lost} (missing {v.count('lost')}, stale end {v.count('stale')}, "
            f"rebound {v.count('rebound')}); overlaps {v.count('overlap')}",
        ]
        if self.log_counts:
            lines.append(
                "server logs: " + ", ".join(f"{k}: {n}" for k, n in self.log_counts.items())
            )
        lines.extend(f"  {f.kind}: {f.detail}" for f in v.findings[:20])
        if len(v.findings) > 20:
            lines.append(f"  ... {len(v.findings) - 20} more")
        return "\n".join(lines)


def _say(opts: SoakOptions, text: str) -> None:
    if opts.verbose:
        print(text, flush=True)


def _start_capture(host: Host, pcap: Path) -> Proc:
    """dumpcap on the client side, replies only, 600-byte snaplen (a DHCP reply fits)."""
    if shutil.which("dumpcap") is None:
        raise LabError("dumpcap missing (package tshark / wireshark-common)")
    proc = host.spawn(
        [
            "dumpcap",
            "-q",
            "-i",
            "eth0",
            "-s",
            "600",
            "-B",
            "64",
            "-f",
            "udp src port 67",
            "-w",
            str(pcap),
        ],
        host.workdir / "dumpcap.log",
        name="dumpcap",
    )
    proc.wait_for_log(r"Capturing on", 10.0)
    return proc


def _start_perfdhcp(host: Host, opts: SoakOptions, seconds: int) -> Proc:
    cmd = [
        "perfdhcp",
        "-4",
        "-l",
        "eth0",
        "-r",
        str(opts.rate),
        "-R",
        str(opts.clients),
        "-p",
        str(seconds),
        "-g",
        "single",
        "-s",
        str(opts.seed),
    ]
    return host.spawn(cmd, host.workdir / "perfdhcp.log", name="perfdhcp")


def run_soak(opts: SoakOptions, lab: Lab) -> SoakResult:
    """Build the pair in ``lab``, load it, kill and restart, then check. Never raises for a
    finding (the result carries them); raises LabError when the lab itself misbehaves."""
    t0 = time.time()
    rng = random.Random(opts.seed)
    h1 = lab.add_host("srv1", f"{PRIMARY_IP}/{PREFIX}")
    h2 = lab.add_host("srv2", f"{SECONDARY_IP}/{PREFIX}")
    cli = lab.add_host("perf", CLIENT_ADDR)
    for host in (h1, h2, cli):
        for i, val in ((1, 65536), (2, 98304), (3, 131072)):
            host.run(
                ["sysctl", "-q", "-w", f"net.ipv4.neigh.default.gc_thresh{i}={val}"], check=False
            )
    knobs = {"pool": opts.pool, "mclt": opts.mclt, "mrd": opts.mrd, "split": opts.split}
    primary = Member("primary", PRIMARY_IP, h1, pair_conf("primary", **knobs))
    secondary = Member("secondary", SECONDARY_IP, h2, pair_conf("secondary", **knobs))
    members = (primary, secondary)
    secondary.start()
    primary.start()
    primary.wait_state("normal", 60)
    secondary.wait_state("normal", 60)
    # Pool balancing hands the secondary its BACKUP share; without it it cannot serve.
    deadline = time.monotonic() + 60
    while secondary.backup_leases() < opts.pool // 4:
        if time.monotonic() > deadline:
            raise LabError(f"secondary has {secondary.backup_leases()} BACKUP leases after 60 s")
        time.sleep(0.5)
    _say(
        opts,
        f"pair normal, secondary holds {secondary.backup_leases()} BACKUP leases "
        f"({time.time() - t0:.1f} s)",
    )

    snaps = lab.workdir / "snapshots"
    snaps.mkdir(exist_ok=True)
    pcap = cli.workdir / "replies.pcap"
    cap = _start_capture(cli, pcap)
    budget = int(opts.kills * (opts.interval[1] + opts.pause[1] + 5) + 60)
    perf = _start_perfdhcp(cli, opts, budget)
    kills = {"primary": 0, "secondary": 0}
    try:
        for k in range(opts.kills):
            time.sleep(rng.uniform(*opts.interval))
            victim = members[k % 2]
            other = members[1 - k % 2]
            if not perf.running():
                raise LabError(f"perfdhcp ended early:\n{perf.log()[-2000:]}")
            if not other.running():
                raise LabError(f"{other.role} died by itself:\n{other.log_tail()}")
            state = victim.state()
            run = victim.kill(snaps / f"{victim.role}-run{len(victim.runs)}.leases")
            kills[victim.role] += 1
            down = rng.uniform(*opts.pause)
            time.sleep(down)
            t_start = time.time()
            victim.start()
            _say(
                opts,
                f"kill {k + 1}/{opts.kills}: {victim.role} run {run.number} "
                f"(was {state}) down {down:.2f} s, ready again in {time.time() - t_start:.2f} s",
            )
        time.sleep(rng.uniform(*opts.interval))
    finally:
        perf.stop(signal.SIGINT, grace=5.0)
    time.sleep(1.0)  # replies still in flight reach the capture
    for member in members:
        member.kill(snaps / f"{member.role}-run{len(member.runs)}.leases")
    time.sleep(1.0)  # dumpcap drains its buffer before SIGINT
    cap.stop(signal.SIGINT, grace=10.0)

    # One more start on each file (torn-tail repair, replay, rewrite), then a clean stop.
    for member in members:
        member.start()
    final_at = time.time()
    for member in members:
        assert member.server is not None
        member.server.stop(signal.SIGTERM)
    _say(opts, f"load and kills done ({time.time() - t0:.0f} s); decoding the capture")

    acks = acks_from_pcap(pcap)
    runs = [r for m in members for r in m.runs]
    owned = assign_runs(acks, runs)
    verdict = Verdict()
    for member in members:
        for run in member.runs:
            if run.snapshot is None:
                continue  # the final start, checked below on the final file
            text = run.snapshot.read_text(encoding="latin-1")
            verdict.merge(check_run_file(run, acks, owned[(run.server, run.number)], text))
        final = replay(read_history(member.leases_path.read_text("latin-1"), "final"))
        verdict.merge(check_state(member.ip, acks, final, final_at))
    verdict.merge(check_overlaps(acks))
    per_server = {m.role: sum(1 for a in acks if a.server == m.ip) for m in members}
    logs = "".join(m.all_logs() for m in members)
    counts = {label: logs.count(text) for label, text in LOG_MARKERS.items()}
    return SoakResult(opts, kills, acks, per_server, verdict, time.time() - t0, lab.workdir, counts)


def soak(opts: SoakOptions, workdir: Path | None = None) -> SoakResult:
    """``run_soak`` in a fresh lab (kept on disk when something was lost, for the post-mortem)."""
    lab = Lab(workdir)
    with lab:
        result = run_soak(opts, lab)
        if result.verdict.findings:
            lab.keep_workdir = True
    return result
