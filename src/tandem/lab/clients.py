"""Real DHCP client drivers (ISC dhclient, busybox udhcpc, dhcpcd) and what they were given.

Each client runs in its own namespace with a hook script of ours. The script (1) records every
event's environment as a file in the client's events directory, and (2) for dhclient and udhcpc,
configures the interface address (they leave that to the script). The stock scripts are never used:
namespaces share the filesystem, and the stock scripts would rewrite the host's /etc/resolv.conf and
NTP files. dhclient runs its script with a cleared environment, so the events directory is baked
into each client's own copy of the script.

dhcpcd keeps state in /run/dhcpcd and /var/lib/dhcpcd, which are shared by all namespaces (and two
dhcpcd on "eth0" would fight over /run/dhcpcd/eth0.sock). It is therefore started inside a private
mount namespace (``ip netns exec`` already gives one, with slave propagation) where a tmpfs covers
/run/dhcpcd and /var/lib/dhcpcd is bind-mounted from the client's work directory.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from tandem.lab.netns import Host, LabError, Proc

_HOOK = r"""#!/bin/sh
# Lab hook script (tandem.lab.clients): record the event, configure the address if asked.
D='__EVENTS__'
CONFIGURE='__CONFIGURE__'
n=$(date +%s%N)
tmp="$D/.tmp.$n.$$"
{ env; echo "LAB_ARG1=$1"; } > "$tmp"
mv "$tmp" "$D/ev.$n.$$"
[ "$CONFIGURE" = yes ] || exit 0
if [ -n "$reason" ]; then
    # ISC dhclient
    case "$reason" in
    PREINIT) ip link set dev "$interface" up ;;
    BOUND|RENEW|REBIND|REBOOT)
        if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
            ip -4 addr flush dev "$interface"
        fi
        ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
    EXPIRE|FAIL|RELEASE|STOP) ip -4 addr flush dev "$interface" ;;
    esac
else
    # busybox udhcpc
    case "$1" in
    deconfig) ip -4 addr flush dev "$interface"; ip link set dev "$interface" up ;;
    bound|renew)
        if ! ip -4 -o addr show dev "$interface" | grep -q " $ip/"; then
            ip -4 addr flush dev "$interface"
        fi
        ip -4 addr replace "$ip/${mask:-24}" dev "$interface" ;;
    esac
fi
exit 0
"""

#: Events after which the client holds an address.
BOUND_EVENTS = frozenset({"BOUND", "RENEW", "REBIND", "REBOOT"})

_UDHCPC_EVENTS = {
    "bound": "BOUND",
    "renew": "RENEW",
    "deconfig": "DECONFIG",
    "nak": "NAK",
    "leasefail": "FAIL",
}


@dataclass
class ClientEvent:
    """One call of the hook script, normalised across the three clients."""

    event: str  # BOUND, RENEW, REBIND, REBOOT, NAK, EXPIRE, RELEASE, FAIL, DECONFIG, ...
    address: str | None
    subnet_mask: str | None
    lease_time: int | None
    routers: list[str]
    ntp_servers: list[str]
    time_offset: int | None
    broadcast: str | None
    server_id: str | None
    env: dict[str, str] = field(repr=False)


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def parse_event(env: dict[str, str]) -> ClientEvent:
    """Turn a recorded hook environment into a ClientEvent (dhclient/dhcpcd or udhcpc names)."""
    if "reason" in env:  # dhclient and dhcpcd share the new_* names
        return ClientEvent(
            event=env["reason"],
            address=env.get("new_ip_address") or None,
            subnet_mask=env.get("new_subnet_mask") or None,
            lease_time=_int(env.get("new_dhcp_lease_time")),
            routers=env.get("new_routers", "").split(),
            ntp_servers=env.get("new_ntp_servers", "").split(),
            time_offset=_int(env.get("new_time_offset")),
            broadcast=env.get("new_broadcast_address") or None,
            server_id=env.get("new_dhcp_server_identifier") or None,
            env=env,
        )
    arg = env.get("LAB_ARG1", "")
    return ClientEvent(
        event=_UDHCPC_EVENTS.get(arg, arg.upper()),
        address=env.get("ip") or None,
        subnet_mask=env.get("subnet") or None,
        lease_time=_int(env.get("lease")),
        routers=env.get("router", "").split(),
        ntp_servers=env.get("ntpsrv", "").split(),
        time_offset=_int(env.get("timezone")),
        broadcast=env.get("broadcast") or None,
        server_id=env.get("serverid") or None,
        env=env,
    )


def _read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.replace("_", "").isalnum():
            env[key] = value
    return env


class Client:
    """Common part of the drivers: work directory, hook script, recorded events."""

    kind = "client"

    def __init__(self, host: Host, iface: str = "eth0", *, configure: bool = True) -> None:
        self.host = host
        self.iface = iface
        self.dir = host.workdir / f"{self.kind}-{iface}"
        self.events_dir = self.dir / "events"
        self.events_dir.mkdir(parents=True, exist_ok=True)
        self.script = self.dir / "hook.sh"
        text = _HOOK.replace("__EVENTS__", str(self.events_dir))
        text = text.replace("__CONFIGURE__", "yes" if configure else "no")
        self.script.write_text(text, encoding="utf-8")
        self.script.chmod(0o755)
        self.proc: Proc | None = None
        self._runs = 0

    def start(self) -> Proc:
        """Start the client in the foreground (each driver knows its command line)."""
        raise NotImplementedError

    def events(self) -> list[ClientEvent]:
        """All events so far, oldest first."""
        files = sorted(
            self.events_dir.glob("ev.*"), key=lambda p: (int(p.name.split(".")[1]), p.name)
        )
        return [parse_event(_read_env_file(p)) for p in files]

    def event_count(self) -> int:
        return len(list(self.events_dir.glob("ev.*")))

    def wait_event(
        self, events: frozenset[str] | set[str], timeout: float, *, after: int = 0
    ) -> ClientEvent:
        """Wait for the first event in ``events`` among those recorded after the first ``after``."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events()[after:]:
                if ev.event in events:
                    return ev
            if self.proc is not None and not self.proc.running():
                # A client that exits (udhcpc -n, dhclient -1) cannot produce more events.
                for ev in self.events()[after:]:
                    if ev.event in events:
                        return ev
                raise LabError(
                    f"{self.kind} in {self.host.name} exited ({self.proc.poll()}) without "
                    f"{sorted(events)}; events {[e.event for e in self.events()]}; log:\n"
                    + "\n".join(self.proc.log().splitlines()[-20:])
                )
            if time.monotonic() >= deadline:
                log = self.proc.log() if self.proc is not None else ""
                raise LabError(
                    f"{self.kind} in {self.host.name}: no {sorted(events)} within {timeout} s; "
                    f"events {[e.event for e in self.events()]}; log:\n"
                    + "\n".join(log.splitlines()[-20:])
                )
            time.sleep(0.05)

    def wait_lease(self, timeout: float = 20.0, *, after: int = 0) -> ClientEvent:
        """Wait until the client holds a lease (BOUND/RENEW/REBIND/REBOOT after ``after``)."""
        return self.wait_event(BOUND_EVENTS, timeout, after=after)

    def log(self) -> str:
        return self.proc.log() if self.proc is not None else ""

    def stop(self) -> None:
        """Stop the client without releasing (SIGTERM): it keeps its lease on disk."""
        if self.proc is not None:
            self.proc.stop()

    def mac(self) -> str:
        return self.host.mac(self.iface)


class Dhclient(Client):
    """ISC dhclient 4.4 in the foreground, with its own config, lease and pid files."""

    kind = "dhclient"

    def __init__(
        self,
        host: Host,
        iface: str = "eth0",
        *,
        lease_time: int | None = None,
        extra_conf: str = "",
    ) -> None:
        super().__init__(host, iface)
        self.lease_file = self.dir / "dhclient.leases"
        self.pid_file = self.dir / "dhclient.pid"
        self._run_start = 0
        self.conf = self.dir / "dhclient.conf"
        lines = [
            "request subnet-mask, broadcast-address, time-offset, routers,",
            "        domain-name, domain-name-servers, ntp-servers, interface-mtu;",
            "timeout 30;",
            "retry 2;",
            "reboot 5;",  # INIT-REBOOT gives up after 5 s (default 10) and falls back to INIT
            "initial-interval 1;",
            "backoff-cutoff 2;",
        ]
        if lease_time is not None:
            lines.append(f"send dhcp-lease-time {lease_time};")
        self.conf.write_text("\n".join(lines) + "\n" + extra_conf, encoding="utf-8")

    def _base(self) -> list[str]:
        return [
            "dhclient",
            "-4",
            "-v",
            "-cf",
            str(self.conf),
            "-sf",
            str(self.script),
            "-lf",
            str(self.lease_file),
            "-pf",
            str(self.pid_file),
        ]

    def start(self) -> Proc:
        """Start (or restart, keeping the lease file: INIT-REBOOT) dhclient in the foreground."""
        if self.proc is not None and self.proc.running():
            raise LabError("dhclient already running")
        self._run_start = self.event_count()
        self._runs += 1
        self.proc = self.host.spawn(
            [*self._base(), "-d", self.iface],
            self.dir / f"dhclient-{self._runs}.log",
            name=f"dhclient:{self.host.name}",
        )
        return self.proc

    def wait_event(
        self, events: frozenset[str] | set[str], timeout: float, *, after: int = 0
    ) -> ClientEvent:
        """As Client.wait_event, but a binding event only counts once dhclient has finished it.

        dhclient runs the script *before* it writes the lease file and logs "bound to A --
        renewal in N seconds.", so a test that stops dhclient right after the script ran would
        leave no lease on disk (and the next start would DISCOVER instead of INIT-REBOOT).
        """
        ev = super().wait_event(events, timeout, after=after)
        if ev.event in BOUND_EVENTS and self.proc is not None:
            this_run = self.events()[self._run_start :]
            need = sum(1 for e in this_run if e.event in BOUND_EVENTS)
            deadline = time.monotonic() + 10.0
            while self.log().count("bound to ") < need:
                if time.monotonic() > deadline or not self.proc.running():
                    raise LabError(
                        f"dhclient ran its script but never logged 'bound to':\n{self.log()}"
                    )
                time.sleep(0.02)
        return ev

    def release(self, timeout: float = 15.0) -> str:
        """``dhclient -r``: stops the running dhclient (via its pid file) and sends DHCPRELEASE."""
        res = self.host.run([*self._base(), "-r", self.iface], timeout=timeout, check=False)
        if self.proc is not None:
            self.proc.wait(timeout=5)
        if res.returncode != 0:
            raise LabError(f"dhclient -r exited {res.returncode}: {res.stderr.strip()}")
        return res.stderr


class Udhcpc(Client):
    """busybox udhcpc in the foreground; SIGUSR1 renews, SIGUSR2 releases."""

    kind = "udhcpc"

    def start(
        self,
        *,
        arp_check: bool = False,
        request: str | None = None,
        tries: int = 10,
        retry_wait: int = 2,
        release_on_exit: bool = False,
    ) -> Proc:
        """Start udhcpc. ``arp_check`` (-a) ARP-probes the offered address and DECLINEs it if
        someone answers; ``request`` (-r) puts a requested address in the DISCOVER."""
        if self.proc is not None and self.proc.running():
            raise LabError("udhcpc already running")
        cmd = [
            "busybox",
            "udhcpc",
            "-f",
            "-i",
            self.iface,
            "-s",
            str(self.script),
            "-O",
            "ntpsrv",
            "-O",
            "timezone",
            "-O",
            "broadcast",
            "-t",
            str(tries),
            "-T",
            "1",
            "-A",
            str(retry_wait),
        ]
        if arp_check:
            cmd.append("-a")
        if request is not None:
            cmd += ["-r", request]
        if release_on_exit:
            cmd.append("-R")
        self._runs += 1
        self.proc = self.host.spawn(
            cmd, self.dir / f"udhcpc-{self._runs}.log", name=f"udhcpc:{self.host.name}"
        )
        return self.proc

    def renew(self) -> int:
        """Ask for a renewal (SIGUSR1); returns the event count to pass as ``after``."""
        n = self.event_count()
        if self.proc is None:
            raise LabError("udhcpc not started")
        self.proc.send_signal(signal.SIGUSR1)
        return n

    def release(self) -> int:
        """Send DHCPRELEASE (SIGUSR2); udhcpc stays running, unbound."""
        n = self.event_count()
        if self.proc is None:
            raise LabError("udhcpc not started")
        self.proc.send_signal(signal.SIGUSR2)
        return n


class Dhcpcd(Client):
    """dhcpcd 9 in the foreground (-B), IPv4 only, private /run/dhcpcd and /var/lib/dhcpcd.

    dhcpcd configures the address itself; our script only records events.
    """

    kind = "dhcpcd"

    def __init__(self, host: Host, iface: str = "eth0") -> None:
        super().__init__(host, iface, configure=False)
        self.db_dir = self.dir / "db"
        self.db_dir.mkdir(exist_ok=True)
        self.conf = self.dir / "dhcpcd.conf"
        self.conf.write_text(
            "\n".join(
                [
                    "ipv4only",
                    "noipv4ll",
                    "noarp",  # skip the ARP probe of the offered address (saves ~5 s)
                    "nohook resolv.conf, ntp.conf, timesyncd.conf, hostname",
                    "option subnet_mask, broadcast_address, routers, ntp_servers, time_offset",
                    "option domain_name_servers",
                    f"script {self.script}",
                    "",
                ]
            ),
            encoding="utf-8",
        )

    def start(self) -> Proc:
        if self.proc is not None and self.proc.running():
            raise LabError("dhcpcd already running")
        inner = (
            "set -e; mkdir -p /run/dhcpcd; mount -t tmpfs lab /run/dhcpcd; "
            f"mount --bind '{self.db_dir}' /var/lib/dhcpcd; "
            f"exec dhcpcd -4 -B -d -f '{self.conf}' {self.iface}"
        )
        # /run/dhcpcd may not exist on the host; "mkdir -p" would create it there (the mount
        # namespace is private but the filesystem is shared), so mount a tmpfs over /run first.
        inner = "set -e; mount -t tmpfs lab /run; " + inner.removeprefix("set -e; ")
        self._runs += 1
        self.proc = self.host.spawn(
            ["sh", "-c", inner], self.dir / f"dhcpcd-{self._runs}.log", name="dhcpcd"
        )
        return self.proc

    def release(self) -> int:
        """SIGALRM makes dhcpcd 9 release its lease and exit (SIGHUP only rebinds)."""
        n = self.event_count()
        if self.proc is None:
            raise LabError("dhcpcd not started")
        self.proc.send_signal(signal.SIGALRM)
        return n

    def renew(self) -> int:
        """SIGUSR1 makes dhcpcd renew its lease."""
        n = self.event_count()
        if self.proc is None:
            raise LabError("dhcpcd not started")
        self.proc.send_signal(signal.SIGUSR1)
        return n
