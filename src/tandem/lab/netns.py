"""Network-namespace lab: hosts joined by veth pairs to bridges, and the processes run in them.

Why namespaces: real DHCP clients and servers (ISC dhcpd, dhclient, udhcpc, dhcpcd, Kea) must talk
over a real link layer to prove Tandem is a drop-in, yet the tests must never touch the machine's
own networks. Every name this module creates starts with a per-run prefix ("td" + 6 hex digits), so
parallel runs never collide and :func:`cleanup_stale` can remove leftovers of a crashed run without
touching anything else.

Layout: one namespace ``<prefix>-br`` holds one Linux bridge per segment (``br0``, ``br1``, ...).
Each host is a namespace ``<prefix>-<name>``; each of its interfaces is one end of a veth pair whose
other end is a port of a segment's bridge. Nothing is created in the root namespace.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

PREFIX_BASE = "td"
_PREFIX_RE = re.compile(r"^td[0-9a-f]{6}-")
_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")

#: Programs the lab itself needs (clients and servers are checked by their drivers).
LAB_TOOLS = ("ip", "ethtool", "sysctl")


class LabError(RuntimeError):
    """The lab could not be built, or a process in it misbehaved."""


def require_root_and_tools(tools: Sequence[str] = LAB_TOOLS) -> None:
    """Raise LabError with a clear message unless we are root and every tool is on PATH.

    Tests call this instead of skipping: a lab test that cannot run must fail loudly.
    """
    if os.geteuid() != 0:
        raise LabError("the lab needs root (ip netns add needs CAP_SYS_ADMIN and CAP_NET_ADMIN)")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise LabError(
            f"missing programs: {', '.join(missing)} (run `make deps` / scripts/install-deps.sh)"
        )


def _run(cmd: Sequence[str], *, check: bool = True, timeout: float = 30.0) -> str:
    """Run a command in the root namespace; return stdout; LabError on failure."""
    try:
        res = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{' '.join(cmd)}: {exc}") from exc
    if check and res.returncode != 0:
        raise LabError(f"{' '.join(cmd)} exited {res.returncode}: {res.stderr.strip()}")
    return res.stdout


def list_namespaces() -> list[str]:
    """Names of all network namespaces (``ip netns list`` prints "name (id: N)")."""
    out = _run(["ip", "netns", "list"])
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _netns_pids(ns: str) -> list[int]:
    out = _run(["ip", "netns", "pids", ns], check=False)
    return [int(tok) for tok in out.split() if tok.isdigit()]


def _terminate_pid(pid: int, grace: float = 3.0, sig: int = signal.SIGTERM) -> None:
    """Send ``sig``, wait up to ``grace`` seconds, then SIGKILL. Only for pids we started."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state != "Z"


def _owner_file(prefix: str) -> Path:
    return Path(tempfile.gettempdir()) / "tandem-lab" / f"{prefix}.owner"


def _owner_alive(run_prefix: str) -> bool:
    """True if the process that built lab ``run_prefix`` is still running."""
    try:
        pid = int(_owner_file(run_prefix).read_text().strip())
    except (OSError, ValueError):
        return False
    return _pid_alive(pid)


def cleanup_stale(prefix: str = PREFIX_BASE) -> list[str]:
    """Delete namespaces left by crashed runs whose names start with ``prefix`` and look like ours.

    Only names matching ``td`` + 6 hex digits + ``-`` are touched (and, if ``prefix`` is longer,
    only those that also start with it), and only if the process that built them is gone (each
    Lab records its owner pid), so a lab running in parallel is left alone. Processes still
    running in a stale namespace were started by that crashed run, so they are stopped first:
    deleting a namespace does not kill its processes. Returns the deleted names.
    """
    removed: list[str] = []
    for ns in list_namespaces():
        if not (ns.startswith(prefix) and _PREFIX_RE.match(ns)):
            continue
        run_prefix = ns.split("-", 1)[0]
        if _owner_alive(run_prefix):
            continue
        for pid in _netns_pids(ns):
            _terminate_pid(pid, grace=1.0)
        _run(["ip", "netns", "del", ns], check=False)
        _owner_file(run_prefix).unlink(missing_ok=True)
        removed.append(ns)
    return removed


class Proc:
    """A background process in a namespace, with its output in a log file.

    ``ip netns exec`` exec()s the command, so ``pid`` is the program's own pid as long as it
    stays in the foreground: stopping by pid is reliable.
    """

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self._popen = popen
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self._popen.pid

    def poll(self) -> int | None:
        """Exit code, or None while running."""
        return self._popen.poll()

    def running(self) -> bool:
        return self._popen.poll() is None

    def log(self) -> str:
        """The whole log so far (bytes that are not UTF-8 are replaced)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def send_signal(self, sig: int) -> None:
        if self.running():
            os.kill(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, grace: float = 3.0) -> int | None:
        """Send ``sig``, wait ``grace`` seconds, SIGKILL if needed; return the exit code."""
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            try:
                self._popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self._popen.wait(timeout=5)
        return self._popen.returncode

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself; LabError on timeout."""
        try:
            return self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"{self.name} still running after {timeout} s") from exc

    def wait_for_log(
        self, pattern: str, timeout: float, *, start: int = 0, fail_on_exit: bool = True
    ) -> re.Match[str]:
        """Poll the log until ``pattern`` matches after character offset ``start``.

        Raises LabError (with the log's tail) on timeout, or as soon as the process has
        exited without printing the line (unless ``fail_on_exit`` is False).
        """
        rx = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            m = rx.search(text, start)
            if m is not None:
                return m
            exited = self.poll()
            if fail_on_exit and exited is not None:
                # One last read: the line may have landed just before the exit.
                m = rx.search(self.log(), start)
                if m is not None:
                    return m
                raise LabError(
                    f"{self.name} exited with {exited} before logging /{pattern}/; "
                    f"log tail:\n{_tail(self.log())}"
                )
            if time.monotonic() >= deadline:
                raise LabError(
                    f"{self.name}: no /{pattern}/ within {timeout} s; log tail:\n{_tail(text)}"
                )
            time.sleep(0.05)

    def log_size(self) -> int:
        """Current length of the log text, to pass as ``start`` to wait_for_log."""
        return len(self.log())


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


class Host:
    """A network namespace with interfaces on lab segments."""

    def __init__(self, lab: Lab, name: str, ns: str, workdir: Path) -> None:
        self.lab = lab
        self.name = name
        self.ns = ns
        self.workdir = workdir
        self.ifaces: dict[str, Segment] = {}
        self.addrs: dict[str, str] = {}
        self.hosts_file: Path | None = None

    def __repr__(self) -> str:
        return f"Host({self.name!r}, ns={self.ns!r}, addrs={self.addrs!r})"

    def exec_prefix(self) -> list[str]:
        prefix = ["ip", "netns", "exec", self.ns]
        if self.hosts_file is None:
            return prefix
        # `ip netns exec` gives every command its own mount namespace (slave propagation), so
        # this bind mount is seen by that command alone; sh exec()s it, so the pid stays its own.
        script = 'mount --bind "$0" /etc/hosts && exec "$@"'
        return [*prefix, "sh", "-c", script, str(self.hosts_file)]

    def set_hosts(self, entries: dict[str, str]) -> Path:
        """Give the programs started in this host from now on an /etc/hosts of their own.

        ``entries`` maps names to addresses; localhost is always there. The file lives in the
        host's work directory and is bind-mounted over /etc/hosts inside each command's private
        mount namespace: the machine's /etc/hosts (and /etc/netns) are never written.
        """
        for name, addr in entries.items():
            if not re.fullmatch(r"[A-Za-z0-9.-]+", name) or not re.fullmatch(r"[0-9.]+", addr):
                raise LabError(f"bad hosts entry {name!r} -> {addr!r}")
        lines = ["127.0.0.1 localhost", *(f"{addr} {name}" for name, addr in entries.items())]
        path = self.workdir / "hosts"
        path.write_text("\n".join(lines) + "\n", encoding="ascii")
        self.hosts_file = path
        return path

    def run(
        self,
        cmd: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` in this namespace, capture its output; LabError if ``check`` and it fails."""
        full = [*self.exec_prefix(), *cmd]
        try:
            res = subprocess.run(
                full,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env=_merged_env(env),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LabError(f"[{self.name}] {' '.join(cmd)}: {exc}") from exc
        if check and res.returncode != 0:
            raise LabError(
                f"[{self.name}] {' '.join(cmd)} exited {res.returncode}: "
                f"{res.stderr.strip() or res.stdout.strip()}"
            )
        return res

    def spawn(
        self,
        cmd: Sequence[str],
        log_path: Path | None = None,
        *,
        name: str | None = None,
        env: dict[str, str] | None = None,
        cpu: int | None = None,
    ) -> Proc:
        """Start ``cmd`` in the background in this namespace; stdout+stderr go to ``log_path``.

        The lab remembers the process and stops it at teardown. ``cpu`` pins it with taskset
        (taskset exec()s too, so the pid stays the program's).
        """
        label = name or f"{self.name}:{Path(cmd[0]).name}"
        if log_path is None:
            log_path = self.workdir / f"{Path(cmd[0]).name}-{secrets.token_hex(2)}.log"
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        full = [*self.exec_prefix(), *pin, *cmd]
        with open(log_path, "wb") as log:
            try:
                popen = subprocess.Popen(
                    full,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_merged_env(env),
                    start_new_session=True,  # a Ctrl-C in the terminal reaches only us
                )
            except OSError as exc:
                raise LabError(f"[{self.name}] cannot start {cmd[0]}: {exc}") from exc
        proc = Proc(label, popen, log_path)
        self.lab._procs.append(proc)
        return proc

    def addr(self, iface: str = "eth0") -> str:
        """The configured address (without prefix length) of ``iface``."""
        return self.addrs[iface].split("/")[0]

    def ipv4_addrs(self, iface: str = "eth0") -> list[str]:
        """Addresses currently on ``iface`` as "a.b.c.d/len" (read from the kernel)."""
        out = self.run(["ip", "-4", "-o", "addr", "show", "dev", iface]).stdout
        return [line.split()[3] for line in out.splitlines() if " inet " in line]

    def mac(self, iface: str = "eth0") -> str:
        """MAC address of ``iface`` (sysfs is per network namespace, so read it in there)."""
        return self.run(["cat", f"/sys/class/net/{iface}/address"]).stdout.strip()

    def set_addr(self, addr: str, iface: str = "eth0") -> None:
        """Replace the addresses of ``iface`` with ``addr`` ("a.b.c.d/len")."""
        self.run(["ip", "addr", "flush", "dev", iface])
        self.run(["ip", "addr", "add", addr, "dev", iface])
        self.addrs[iface] = addr

    def move(self, iface: str, segment: Segment) -> None:
        """Re-plug ``iface`` into another segment (as if the cable moved to another switch)."""
        self.lab._move_port(self, iface, segment)


def _merged_env(extra: dict[str, str] | None) -> dict[str, str] | None:
    if extra is None:
        return None
    env = dict(os.environ)
    env.update(extra)
    return env


class Segment:
    """One broadcast domain: a bridge in the lab's bridge namespace."""

    def __init__(self, lab: Lab, name: str, bridge: str) -> None:
        self.lab = lab
        self.name = name
        self.bridge = bridge

    def __repr__(self) -> str:
        return f"Segment({self.name!r}, bridge={self.bridge!r})"


class Lab:
    """Context manager that builds namespaces and tears everything down, always.

    >>> with Lab() as lab:                      # doctest: +SKIP
    ...     srv = lab.add_host("srv", "192.0.2.1/24")
    ...     cli = lab.add_host("cli", None)

    Teardown runs on normal exit, on exceptions and on KeyboardInterrupt (``__exit__``), and as
    a last resort at interpreter exit (atexit). It stops every process the lab started (SIGTERM,
    wait, SIGKILL, by pid), then deletes the namespaces (which destroys the veths and bridges).
    """

    def __init__(self, workdir: Path | None = None, *, keep_workdir: bool = False) -> None:
        self.prefix = f"{PREFIX_BASE}{secrets.token_hex(3)}"
        self._own_workdir = workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix=f"{self.prefix}-")) if workdir is None else workdir
        )
        # TANDEM_LAB_KEEP=1 keeps every lab's work dir (logs, leases, pcaps) for debugging.
        self.keep_workdir = keep_workdir or os.environ.get("TANDEM_LAB_KEEP", "") not in ("", "0")
        self.hosts: dict[str, Host] = {}
        self.segments: dict[str, Segment] = {}
        self._procs: list[Proc] = []
        self._namespaces: list[str] = []
        self._ports: dict[tuple[str, str], str] = {}  # (host, iface) -> bridge-side veth name
        self._port_seq = 0
        self._closed = False
        self._sigterm_hooked = False
        self.br_ns = f"{self.prefix}-br"

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        require_root_and_tools()
        self.workdir.mkdir(parents=True, exist_ok=True)
        owner = _owner_file(self.prefix)
        owner.parent.mkdir(exist_ok=True)
        owner.write_text(f"{os.getpid()}\n")
        atexit.register(self.close)
        self._hook_sigterm()
        try:
            self._add_ns(self.br_ns)
            self.add_segment("a")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop processes (newest first), delete namespaces. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        for proc in reversed(self._procs):
            with contextlib.suppress(Exception):
                proc.stop()
        for ns in reversed(self._namespaces):
            # Anything still inside (e.g. a daemon that forked away from its pid) was started
            # by this lab: stop it, else the namespace would linger.
            with contextlib.suppress(Exception):
                for pid in _netns_pids(ns):
                    _terminate_pid(pid, grace=1.0)
            with contextlib.suppress(Exception):
                _run(["ip", "netns", "del", ns], check=False)
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        _owner_file(self.prefix).unlink(missing_ok=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        self._unhook_sigterm()

    def _hook_sigterm(self) -> None:
        """Turn SIGTERM into SystemExit while the lab is up, so teardown runs on `kill PID` too
        (atexit alone does not run when a signal kills the interpreter)."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # someone else handles it (pytest-timeout, a demo): leave it alone

        def _on_term(signum: int, frame: object) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, _on_term)
        self._sigterm_hooked = True

    def _unhook_sigterm(self) -> None:
        if self._sigterm_hooked and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self._sigterm_hooked = False

    # -- building ----------------------------------------------------------------------------

    def _add_ns(self, ns: str) -> None:
        _run(["ip", "netns", "add", ns])
        self._namespaces.append(ns)
        nsx = ["ip", "netns", "exec", ns]
        _run([*nsx, "ip", "link", "set", "lo", "up"])
        for key in ("all", "default"):
            _run([*nsx, "sysctl", "-q", "-w", f"net.ipv6.conf.{key}.disable_ipv6=1"], check=False)
        # `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf only if it
        # exists; we do not need that because no lab script ever writes resolv.conf.

    def add_segment(self, name: str) -> Segment:
        """Create a new bridge (segment) in the bridge namespace."""
        if name in self.segments:
            raise LabError(f"segment {name!r} exists")
        bridge = f"br{len(self.segments)}"
        ip = ["ip", "-n", self.br_ns]
        _run([*ip, "link", "add", bridge, "type", "bridge", "forward_delay", "0"])
        # No STP, no multicast snooping surprises: a plain learning switch.
        _run([*ip, "link", "set", bridge, "type", "bridge", "stp_state", "0"], check=False)
        _run([*ip, "link", "set", bridge, "up"])
        seg = Segment(self, name, bridge)
        self.segments[name] = seg
        return seg

    def segment(self, name: str) -> Segment:
        if name not in self.segments:
            return self.add_segment(name)
        return self.segments[name]

    def add_host(self, name: str, addr: str | None = None, *, segment: str | Segment = "a") -> Host:
        """Create namespace ``<prefix>-<name>`` with eth0 on ``segment`` (address optional)."""
        if not _NAME_RE.match(name):
            raise LabError(f"host name {name!r}: use 1-10 lowercase letters/digits")
        if name in self.hosts:
            raise LabError(f"host {name!r} exists")
        ns = f"{self.prefix}-{name}"
        self._add_ns(ns)
        hostdir = self.workdir / name
        hostdir.mkdir(parents=True, exist_ok=True)
        host = Host(self, name, ns, hostdir)
        self.hosts[name] = host
        self.add_iface(host, "eth0", segment, addr)
        return host

    def add_iface(
        self, host: Host, iface: str, segment: str | Segment, addr: str | None = None
    ) -> None:
        """Add interface ``iface`` to ``host``, plugged into ``segment``."""
        seg = segment if isinstance(segment, Segment) else self.segment(segment)
        self._port_seq += 1
        port = f"p{self._port_seq}{iface}"[:15]
        ip_br = ["ip", "-n", self.br_ns]
        _run([*ip_br, "link", "add", port, "type", "veth", "peer", "name", iface, "netns", host.ns])
        _run([*ip_br, "link", "set", port, "master", seg.bridge])
        _run([*ip_br, "link", "set", port, "up"])
        # Offload off on both ends: otherwise kernel-UDP packets carry unfinished checksums on
        # the wire, and raw-socket readers that verify them (a Python server) drop them.
        _run(["ip", "netns", "exec", self.br_ns, "ethtool", "-K", port, "tx", "off", "rx", "off"])
        host.run(["ethtool", "-K", iface, "tx", "off", "rx", "off"])
        host.run(["sysctl", "-q", "-w", f"net.ipv6.conf.{iface}.disable_ipv6=1"], check=False)
        host.run(["ip", "link", "set", iface, "up"])
        if addr is not None:
            host.run(["ip", "addr", "add", addr, "dev", iface])
            host.addrs[iface] = addr
        host.ifaces[iface] = seg
        self._ports[(host.name, iface)] = port

    def _move_port(self, host: Host, iface: str, segment: Segment) -> None:
        port = self._ports[(host.name, iface)]
        ip_br = ["ip", "-n", self.br_ns]
        # Carrier down and up, like an unplugged cable: clients see the link flap.
        _run([*ip_br, "link", "set", port, "down"])
        _run([*ip_br, "link", "set", port, "nomaster"])
        _run([*ip_br, "link", "set", port, "master", segment.bridge])
        _run([*ip_br, "link", "set", port, "up"])
        host.ifaces[iface] = segment

    def set_link(self, host: Host, iface: str, up: bool) -> None:
        """Take the bridge side of ``host``'s ``iface`` down or up (a silent partition)."""
        port = self._ports[(host.name, iface)]
        _run(["ip", "-n", self.br_ns, "link", "set", port, "up" if up else "down"])

    def processes(self) -> Iterator[Proc]:
        return iter(list(self._procs))
