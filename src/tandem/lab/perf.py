"""perfdhcp driver and parser, plus the per-process counters the benchmark reports.

perfdhcp exits 3 when some exchanges did not complete: that is a measurement, not a failure.
"Lost" follows the anchors: the share of started exchanges (DISCOVERs sent) that did not end in
an ACK, exchanges still open when the test period ends included.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tandem.lab.netns import Host, LabError

PERFDHCP_OK = (0, 3)

_SECTION = re.compile(r"^\*\*\*Statistics for: (\S+)\*\*\*$", re.MULTILINE)
_RATE = re.compile(r"^Rate: ([0-9.]+) 4-way exchanges/second, expected rate: ([0-9.]+)", re.M)
_FIELD = re.compile(r"^(sent packets|received packets|drops|orphans|rejected leases): (\d+)$", re.M)
_AVG = re.compile(r"^avg delay: ([0-9.]+) ms$", re.MULTILINE)


@dataclass
class ExchangeStats:
    sent: int = 0
    received: int = 0
    drops: int = 0
    orphans: int = 0
    rejected: int = 0
    avg_delay_ms: float | None = None


@dataclass
class PerfResult:
    """What one perfdhcp run reported."""

    offered_rate: int
    seconds: float
    exit_code: int
    achieved_rate: float | None = None
    stats: dict[str, ExchangeStats] = field(default_factory=dict)
    output: str = field(default="", repr=False)

    @property
    def discovers(self) -> int:
        return self.stats.get("DISCOVER-OFFER", ExchangeStats()).sent

    @property
    def acks(self) -> int:
        return self.stats.get("REQUEST-ACK", ExchangeStats()).received

    @property
    def lost_pct(self) -> float:
        """Started exchanges (DISCOVERs) that did not end in an ACK, in percent."""
        if self.discovers == 0:
            return 100.0
        return max(0.0, 100.0 * (self.discovers - self.acks) / self.discovers)

    @property
    def acks_per_s(self) -> float:
        return self.acks / self.seconds if self.seconds > 0 else 0.0


def parse_perfdhcp(text: str, offered_rate: int, seconds: float, exit_code: int) -> PerfResult:
    """Parse perfdhcp 2.x's DHCPv4 text report. Unknown lines are ignored.

    Raises LabError if the report has no DISCOVER-OFFER section (perfdhcp failed before it
    could measure anything, e.g. "There is no address for interface").
    """
    res = PerfResult(offered_rate=offered_rate, seconds=seconds, exit_code=exit_code, output=text)
    m = _RATE.search(text)
    if m is not None:
        res.achieved_rate = float(m.group(1))
    heads = list(_SECTION.finditer(text))
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = text[head.end() : end]
        st = ExchangeStats()
        for fm in _FIELD.finditer(body):
            value = int(fm.group(2))
            key = fm.group(1)
            if key == "sent packets":
                st.sent = value
            elif key == "received packets":
                st.received = value
            elif key == "drops":
                st.drops = value
            elif key == "orphans":
                st.orphans = value
            else:
                st.rejected = value
        am = _AVG.search(body)
        if am is not None:
            st.avg_delay_ms = float(am.group(1))
        res.stats[head.group(1)] = st
    if "DISCOVER-OFFER" not in res.stats:
        raise LabError(f"perfdhcp produced no statistics (exit {exit_code}):\n{text[-1500:]}")
    return res


def run_perfdhcp(
    host: Host,
    rate: int,
    seconds: float,
    *,
    clients: int = 60000,
    iface: str = "eth0",
    server: str | None = None,
    cpu: int | None = None,
    seed: int = 1,
    extra: Sequence[str] = (),
) -> PerfResult:
    """``perfdhcp -4 -l IFACE -r RATE -R CLIENTS -p SECS -g single -s SEED -x e [SERVER]``.

    ``server`` switches perfdhcp to relay mode (giaddr, source port 67). Exit 3 is normal.
    ``-p`` takes whole seconds: ``seconds`` is rounded down, so ``rate * seconds`` stays
    within what the caller allowed (bench/perf.py keeps it below the pool size; rounding
    4.6 s up to 5 once offered 60,000 new clients to a 60,000-address pool, and the last 5 %
    met Tandem's new-lease reserve).
    """
    secs = max(1, int(seconds))
    cmd = [
        "perfdhcp",
        "-4",
        "-l",
        iface,
        "-r",
        str(rate),
        "-R",
        str(clients),
        "-p",
        str(secs),
        "-g",
        "single",
        "-s",
        str(seed),
        "-x",
        "e",
        *extra,
    ]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    if server is not None:
        cmd.append(server)
    res = host.run(cmd, check=False, timeout=secs + 60)
    if res.returncode not in PERFDHCP_OK:
        raise LabError(f"perfdhcp exited {res.returncode}: {res.stderr.strip()[-800:]}")
    return parse_perfdhcp(res.stdout + "\n" + res.stderr, rate, secs, res.returncode)


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of process ``pid`` (all its threads) from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError as exc:
        raise LabError(f"cannot read /proc/{pid}/stat: {exc}") from exc
    # After the ")" field 0 is state (3rd overall); utime and stime are overall fields 14, 15.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class SyscallCounter:
    """Counts fsync/fdatasync (or other) calls of a running process with ``strace -c -f -p``.

    Attaching with ptrace slows the traced process down a lot, so use it for a separate
    low-rate trial, never for the throughput numbers.
    """

    def __init__(self, pid: int, syscalls: Sequence[str] = ("fsync", "fdatasync")) -> None:
        self.pid = pid
        self.syscalls = tuple(syscalls)
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> SyscallCounter:
        cmd = ["strace", "-c", "-f", "-e", "trace=" + ",".join(self.syscalls), "-p", str(self.pid)]
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        except OSError as exc:
            raise LabError(f"cannot run strace: {exc}") from exc
        time.sleep(0.5)  # let strace attach to every thread
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)

    def counts(self) -> dict[str, int]:
        """Detach (SIGINT) and return calls per syscall (0 for those never called)."""
        if self._proc is None:
            raise LabError("SyscallCounter not started")
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        try:
            _out, err = self._proc.communicate(timeout=10)
        except subprocess.TimeoutExpired as exc:
            self._proc.kill()
            raise LabError("strace did not detach") from exc
        return parse_strace_counts(err, self.syscalls)


def parse_strace_counts(text: str, syscalls: Sequence[str]) -> dict[str, int]:
    """Calls per syscall from ``strace -c`` output (its summary table)."""
    counts = dict.fromkeys(syscalls, 0)
    for line in text.splitlines():
        parts = line.split()
        # "% time  seconds  usecs/call  calls  [errors]  syscall"
        if len(parts) >= 5 and parts[-1] in counts and parts[3].isdigit():
            counts[parts[-1]] = int(parts[3])
    return counts
