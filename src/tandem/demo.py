"""``make demo``: Tandem serving real DHCP clients in network namespaces, told as a timeline.

Act 1 (standalone): the seed's subnet served by one Tandem to ISC dhclient, busybox udhcpc and
dhcpcd, each in its own namespace. The server is killed with SIGKILL ("one day your DHCP server
just silently dies"), restarted on the same lease file, and every client keeps its address.

Everything runs inside namespaces this program creates and removes (tandem.lab); nothing is sent
anywhere else. Needs root and the Debian packages that ``scripts/install-deps.sh`` installs.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from tandem.lab import Dhclient, Dhcpcd, Lab, LabError, Udhcpc, run_tandem
from tandem.lab.clients import Client, ClientEvent
from tandem.lab.netns import require_root_and_tools
from tandem.lab.scenarios import SEED_SUBNET, SERVER_ADDR
from tandem.lab.servers import Server


class Timeline:
    """Prints what happens with the seconds since the demo started."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.2f}s] {text}", flush=True)

    def section(self, title: str) -> None:
        print(f"\n=== {title} ===", flush=True)

    def quote(self, lines: list[str], prefix: str = "    | ") -> None:
        for line in lines:
            print(prefix + line, flush=True)


class LogTail:
    """New lines of a server's log since the last call."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.seen = 0

    def new(self, keep: Callable[[str], bool] = lambda _: True) -> list[str]:
        text = self.server.log()
        lines = text.splitlines()
        fresh = lines[self.seen :]
        self.seen = len(lines)
        return [line for line in fresh if keep(line)]


def _dhcp_line(line: str) -> bool:
    return line.startswith(("DHCP", "BOOT")) or "leases" in line


def _describe(ev: ClientEvent) -> str:
    return (
        f"{ev.address} lease {ev.lease_time}s, routers {' '.join(ev.routers) or '-'}, "
        f"ntp {' '.join(ev.ntp_servers) or '-'}, time-offset {ev.time_offset}, "
        f"broadcast {ev.broadcast}, server {ev.server_id}"
    )


def act_standalone(tl: Timeline) -> None:
    """Act 1: one Tandem, three kinds of real client, a crash and a restart."""
    conf = "# The seed blog post's subnet, verbatim (typo included), standalone.\n" + SEED_SUBNET
    tl.section("Act 1: one Tandem serves the seed's subnet to three kinds of real client")
    with Lab() as lab:
        tl.say(f"lab {lab.prefix}: a bridge and four network namespaces")
        srv = lab.add_host("srv", SERVER_ADDR)
        hosts = {
            "esp32": lab.add_host("esp32"),
            "raspi": lab.add_host("raspi"),
            "plc": lab.add_host("plc"),
        }
        tl.say(f"srv has {SERVER_ADDR}; the config is the seed's subnet:")
        tl.quote(conf.rstrip().splitlines())
        server = run_tandem(srv, conf)
        tail = LogTail(server)
        tl.say("tandem -4 -f -d -cf tandem.conf -lf tandem.leases -pf tandem.pid eth0: started")
        tl.quote(tail.new(lambda line: line.startswith(("Listening", "Server"))))

        clients: dict[str, Client] = {
            "esp32": Dhclient(hosts["esp32"]),
            "raspi": Udhcpc(hosts["raspi"]),
            "plc": Dhcpcd(hosts["plc"]),
        }
        got: dict[str, str] = {}
        for name, client in clients.items():
            client.start()
            ev = client.wait_lease(30)
            got[name] = ev.address or "?"
            tl.say(f"{name} ({client.kind}, {client.mac()}) got {_describe(ev)}")
        tl.say("what Tandem logged (dhcpd's words, so existing log tooling keeps working):")
        tl.quote(tail.new(_dhcp_line))

        tl.section("The DHCP server silently dies (SIGKILL), then comes back")
        server.stop(signal.SIGKILL)
        tl.say("tandem killed with SIGKILL: no shutdown, no final write")
        leases_path = server.leases_path
        assert leases_path is not None
        check = subprocess.run(
            ["dhcpd", "-4", "-T", "-cf", str(server.conf_path), "-lf", str(leases_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        verdict = "accepted" if check.returncode == 0 else f"REJECTED ({check.returncode})"
        tl.say(f"ISC's own checker, dhcpd -T, on the lease file Tandem left behind: {verdict}")
        server = run_tandem(srv, conf, leases_path)
        tail = LogTail(server)
        tl.say("tandem restarted on the same lease file:")
        tl.quote(tail.new(lambda line: "leases" in line or line.startswith("Server")))

        kept = 0
        for name, client in clients.items():
            before = client.event_count()
            if isinstance(client, Dhclient):
                client.stop()
                client.start()  # INIT-REBOOT: asks for its old address
                how = "rebooted (INIT-REBOOT)"
            elif isinstance(client, (Udhcpc, Dhcpcd)):
                client.renew()
                how = "renewed"
            ev = client.wait_lease(30, after=before)
            same = ev.address == got[name]
            kept += same
            mark = "kept" if same else f"CHANGED from {got[name]}"
            tl.say(f"{name} {how}: {ev.address} ({mark})")
        tl.quote(tail.new(_dhcp_line))
        tl.say(f"{kept} of {len(clients)} clients kept their address across the crash")

        tl.section("The lease file (dhcpd.leases format)")
        text = leases_path.read_text(encoding="utf-8", errors="replace")
        blocks = text.split("\nlease ")
        tl.quote(("lease " + blocks[-1]).rstrip().splitlines() if len(blocks) > 1 else [])
        if kept != len(clients):
            raise LabError("a client lost its address across the restart")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tandem.demo", description=__doc__)
    parser.parse_args(argv)
    try:
        require_root_and_tools()
    except LabError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    tl = Timeline()
    try:
        act_standalone(tl)
    except LabError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    tl.section("Done")
    tl.say("every namespace, veth link and process the demo created has been removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
