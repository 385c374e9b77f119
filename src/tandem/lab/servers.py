"""Server and relay drivers: ISC dhcpd, Kea, Tandem, ISC dhcrelay, and packet capture.

Each driver writes its config into the host's work directory, starts the program in the
foreground in the host's namespace (so the pid is the daemon's and stopping by pid works) and waits
for its "ready" line. dhcpd and Tandem take the same dhcpd.conf text and print the same lines, which
is what lets a test run the same scenario against both ("Server starting service." when ready,
"DHCPACK on A to M via I" per ACK).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tandem.lab.netns import Host, LabError, Proc

#: The two implementations that speak dhcpd.conf; tests are parametrised over these.
DHCPD_KINDS = ("dhcpd", "tandem")

READY_DHCPD = r"^Server starting service\.$"
READY_KEA = r"DHCP4_STARTED"

_ACK_RE = re.compile(r"^DHCPACK on (\S+) to (\S+)(?: \(([^)]*)\))? via (\S+)", re.MULTILINE)


def repo_root() -> Path:
    """The checkout this package was imported from (src/tandem/lab/ -> repo)."""
    return Path(__file__).resolve().parents[3]


def tandem_command() -> list[str]:
    """How to run the Tandem CLI: the repo's venv script, else whatever ``tandem`` is on PATH."""
    venv = repo_root() / ".venv" / "bin" / "tandem"
    if venv.exists():
        return [str(venv)]
    found = shutil.which("tandem")
    if found is None:
        raise LabError(f"no tandem executable ({venv} missing and none on PATH)")
    return [found]


@dataclass
class Server:
    """A running DHCP server (or relay) and the files it uses."""

    kind: str
    host: Host
    proc: Proc
    conf_path: Path
    leases_path: Path | None
    pid_path: Path | None

    def log(self) -> str:
        return self.proc.log()

    def acks(self) -> list[tuple[str, str]]:
        """(address, mac) of every "DHCPACK on A to M via I" line so far (dhcpd format)."""
        return [(m.group(1), m.group(2)) for m in _ACK_RE.finditer(self.log())]

    def wait_for_log(self, pattern: str, timeout: float, start: int = 0) -> re.Match[str]:
        return self.proc.wait_for_log(pattern, timeout, start=start)

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        return self.proc.stop(sig)

    def leases_text(self) -> str:
        if self.leases_path is None:
            return ""
        return self.leases_path.read_text(encoding="utf-8", errors="replace")


def _write_conf(host: Host, name: str, text: str) -> Path:
    path = host.workdir / name
    path.write_text(text, encoding="utf-8")
    return path


def _prepare_leases(host: Host, leases_path: Path | None, default: str) -> Path:
    path = leases_path if leases_path is not None else host.workdir / default
    path.parent.mkdir(parents=True, exist_ok=True)
    # dhcpd refuses to start without an existing lease file ("Can't open lease database").
    path.touch(exist_ok=True)
    return path


def run_dhcpd(
    host: Host,
    conf_text: str,
    leases_path: Path | None = None,
    *,
    ifaces: Sequence[str] = ("eth0",),
    cpu: int | None = None,
    ready_timeout: float = 10.0,
    check_config: bool = True,
) -> Server:
    """Start ISC dhcpd (``-4 -d -f -cf -lf -pf IFACE``) and wait for "Server starting service."

    Every path is explicit because the defaults (/var/lib/dhcp, /var/run) are shared by all
    namespaces. ``check_config`` runs ``dhcpd -t`` first so a bad config fails with dhcpd's message.
    """
    conf = _write_conf(host, "dhcpd.conf", conf_text)
    leases = _prepare_leases(host, leases_path, "dhcpd.leases")
    pid = host.workdir / "dhcpd.pid"
    if check_config:
        res = host.run(["dhcpd", "-t", "-4", "-cf", str(conf)], check=False)
        if res.returncode != 0:
            raise LabError(f"dhcpd -t rejected the config:\n{res.stderr[-2000:]}")
    cmd = ["dhcpd", "-4", "-d", "-f", "-cf", str(conf), "-lf", str(leases), "-pf", str(pid)]
    proc = host.spawn([*cmd, *ifaces], host.workdir / "dhcpd.log", name="dhcpd", cpu=cpu)
    proc.wait_for_log(READY_DHCPD, ready_timeout)
    return Server("dhcpd", host, proc, conf, leases, pid)


def run_tandem(
    host: Host,
    conf_text: str,
    leases_path: Path | None = None,
    extra_args: Sequence[str] = (),
    *,
    ifaces: Sequence[str] = ("eth0",),
    cpu: int | None = None,
    ready_timeout: float = 10.0,
    pure: bool = False,
    env: dict[str, str] | None = None,
) -> Server:
    """Start Tandem with dhcpd's flags and wait for "Server starting service."

    ``pure`` runs the pure-Python build (``TANDEM_PURE=1``) even where the hot path is
    compiled (scripts/build_native.py): bench/perf.py measures both. ``env``: more
    environment (e.g. systemd's ``NOTIFY_SOCKET``).

    Raises LabError with Tandem's own output if it exits or never becomes ready.
    """
    conf = _write_conf(host, "tandem.conf", conf_text)
    leases = _prepare_leases(host, leases_path, "tandem.leases")
    pid = host.workdir / "tandem.pid"
    cmd = [
        *tandem_command(),
        "-4",
        "-f",
        "-d",
        "-cf",
        str(conf),
        "-lf",
        str(leases),
        "-pf",
        str(pid),
        *extra_args,
        *ifaces,
    ]
    proc = host.spawn(
        cmd,
        host.workdir / "tandem.log",
        name="tandem",
        cpu=cpu,
        env={"PYTHONUNBUFFERED": "1", **({"TANDEM_PURE": "1"} if pure else {}), **(env or {})},
    )
    try:
        proc.wait_for_log(READY_DHCPD, ready_timeout)
    except LabError as exc:
        raise LabError(f"Tandem did not start: {exc}") from exc
    return Server("tandem", host, proc, conf, leases, pid)


def run_dhcpd_kind(
    kind: str,
    host: Host,
    conf_text: str,
    leases_path: Path | None = None,
    *,
    ifaces: Sequence[str] = ("eth0",),
    cpu: int | None = None,
) -> Server:
    """Start ``kind`` ("dhcpd" or "tandem") with the same dhcpd.conf."""
    if kind == "dhcpd":
        return run_dhcpd(host, conf_text, leases_path, ifaces=ifaces, cpu=cpu)
    if kind == "tandem":
        return run_tandem(host, conf_text, leases_path, ifaces=ifaces, cpu=cpu)
    raise LabError(f"unknown dhcpd-compatible server {kind!r} (known: {DHCPD_KINDS})")


def run_kea(
    host: Host,
    conf_text: str,
    *,
    cpu: int | None = None,
    ready_timeout: float = 15.0,
) -> Server:
    """Start kea-dhcp4 with ``conf_text`` (JSON, ``//`` comments allowed).

    Kea 2.2 wants /run/kea for its pid and lock files; KEA_PIDFILE_DIR and KEA_LOCKFILE_DIR point
    them into the host's work directory instead, so nothing outside it is written. The lease file
    name is whatever the config says (use a path in ``host.workdir``).
    """
    conf = _write_conf(host, "kea-dhcp4.json", conf_text)
    env = {"KEA_PIDFILE_DIR": str(host.workdir), "KEA_LOCKFILE_DIR": str(host.workdir)}
    proc = host.spawn(
        ["kea-dhcp4", "-c", str(conf)], host.workdir / "kea.log", name="kea", env=env, cpu=cpu
    )
    proc.wait_for_log(READY_KEA, ready_timeout)
    return Server("kea", host, proc, conf, None, None)


def run_dhcrelay(
    host: Host,
    servers: Sequence[str],
    *,
    upstream: str = "eth0",
    downstream: Sequence[str] = ("eth1",),
    agent_options: bool = True,
    ready_timeout: float = 10.0,
) -> Server:
    """Start ISC dhcrelay in the foreground; ``agent_options`` adds option 82 (``-a``).

    With ``-a`` dhcrelay puts an agent circuit-id (the downstream interface name) in each request
    it forwards and strips option 82 from replies before passing them on.
    """
    pid = host.workdir / "dhcrelay.pid"
    cmd = ["dhcrelay", "-4", "-d", "-pf", str(pid)]
    if agent_options:
        cmd.append("-a")
    cmd += ["-iu", upstream]
    for iface in downstream:
        cmd += ["-id", iface]
    cmd += list(servers)
    proc = host.spawn(cmd, host.workdir / "dhcrelay.log", name="dhcrelay")
    proc.wait_for_log(r"^Sending on ", ready_timeout)
    return Server("dhcrelay", host, proc, host.workdir / "dhcrelay.pid", None, pid)


def start_capture(
    host: Host, iface: str, pcap: Path, bpf: str = "udp port 67 or udp port 68"
) -> Proc:
    """Run dumpcap on ``iface``; stop it with ``stop_capture`` (SIGINT) so the pcap is complete."""
    if shutil.which("dumpcap") is None:
        raise LabError("dumpcap missing (package tshark / wireshark-common)")
    filt = ["-f", bpf] if bpf else []
    proc = host.spawn(
        ["dumpcap", "-q", "-i", iface, *filt, "-w", str(pcap)],
        host.workdir / f"dumpcap-{iface}.log",
        name=f"dumpcap:{iface}",
    )
    # dumpcap prints "Capturing on 'eth0'" once the filter is installed.
    proc.wait_for_log(r"Capturing on", 10.0)
    return proc


def stop_capture(proc: Proc, settle: float = 1.0) -> None:
    """Stop dumpcap with SIGINT after ``settle`` seconds.

    dumpcap reads the kernel's capture buffer in batches; a SIGINT right after the last packet
    loses the packets of the last batch, so give it time to drain first.
    """
    time.sleep(settle)
    proc.stop(signal.SIGINT, grace=5.0)


def tshark_fields(pcap: Path, fields: Sequence[str], display_filter: str = "") -> list[list[str]]:
    """Decode ``pcap`` with tshark and return one row of field values per matching frame."""
    cmd = ["tshark", "-n", "-r", str(pcap), "-T", "fields", "-E", "separator=|"]
    if display_filter:
        cmd += ["-Y", display_filter]
    for f in fields:
        cmd += ["-e", f]
    env = dict(os.environ)
    env.setdefault("HOME", "/tmp")
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, env=env)
    if res.returncode != 0:
        raise LabError(f"tshark failed: {res.stderr.strip()}")
    return [line.split("|") for line in res.stdout.splitlines() if line.strip()]
