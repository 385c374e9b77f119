"""``make demo``: Tandem serving real DHCP clients in network namespaces, told as a timeline.

Act 1 (standalone): the seed's subnet served by one Tandem to ISC dhclient, busybox udhcpc and
dhcpcd, each in its own namespace. The server is killed with SIGKILL ("one day your DHCP server
just silently dies"), restarted on the same lease file, and every client keeps its address.

Act 2 (the seed's story): two Tandems with the blog post's primary and secondary configurations,
verbatim, reach NORMAL; a client gets a lease from the primary and the secondary learns it; the
primary dies; the secondary keeps the client and serves a new one from its BACKUP leases; the
primary returns and the pair is NORMAL again with both lease files in agreement.

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
from typing import TypeVar

from tandem.config.seed import SEED_SUBNET
from tandem.lab import Dhclient, Dhcpcd, Lab, LabError, Udhcpc, run_tandem
from tandem.lab.clients import Client, ClientEvent
from tandem.lab.netns import require_root_and_tools
from tandem.lab.pair import LogFollower, PairNode, PoolView, tandem_pool
from tandem.lab.scenarios import (
    SECONDARY_ADDR,
    SEED_PRIMARY_PATH,
    SEED_SECONDARY_PATH,
    SERVER_ADDR,
)
from tandem.lab.servers import Server
from tandem.store.leasefile import parse_leases


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


class PairStory:
    """Two Tandems of the seed's pair, and what they log about failover, as it happens."""

    def __init__(self, tl: Timeline, primary: PairNode, secondary: PairNode) -> None:
        self.tl = tl
        self.nodes = {"primary": primary, "secondary": secondary}
        self.follow: dict[str, LogFollower] = {}

    def start(self, role: str) -> None:
        node = self.nodes[role]
        node.start(ready_timeout=30)
        assert node.server is not None
        self.follow[role] = LogFollower(node.server.proc.log_path)
        self.tl.say(f"{role} ({node.host.name}) started")

    def echo(self) -> None:
        """Print the failover lines each server logged since the last call."""
        for role, follower in self.follow.items():
            for line in follower.poll().splitlines():
                if "failover peer" in line or "balanc" in line:
                    self.tl.say(f"  {role:9} | {line}")

    def state(self, role: str) -> tuple[str | None, str | None]:
        info = self.nodes[role].tandem_status()
        if info is None:
            return None, None
        return str(info.get("my_state")), str(info.get("partner_state"))

    def wait(self, role: str, mine: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.state(role)[0] != mine:
            self.echo()
            if time.monotonic() > deadline:
                raise LabError(f"{role} not {mine} after {timeout} s (now {self.state(role)})")
            time.sleep(0.1)
        self.echo()

    def bindings(self, role: str) -> dict[str, tuple[str, str | None]]:
        path = self.nodes[role].leases_path
        contents = parse_leases(path.read_text(encoding="latin-1"), str(path))
        return {
            str(a): (
                lease.binding_state.keyword,
                lease.hardware[1].hex(":") if lease.hardware is not None else None,
            )
            for a, lease in contents.leases.items()
        }


_T = TypeVar("_T")


def _poll(probe: Callable[[], _T | None], timeout: float, what: str) -> _T:
    """Call ``probe`` until it returns something; LabError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise LabError(f"{what} within {timeout} s")
        time.sleep(0.1)


def act_failover(tl: Timeline) -> None:
    """Act 2: the seed blog post's pair, verbatim, through a primary crash and back."""
    primary_conf = SEED_PRIMARY_PATH.read_text(encoding="utf-8")
    secondary_conf = SEED_SECONDARY_PATH.read_text(encoding="utf-8")
    tl.section("Act 2: the seed's failover pair, both configurations verbatim")
    with Lab() as lab:
        h1 = lab.add_host("srv1", SERVER_ADDR)
        h2 = lab.add_host("srv2", SECONDARY_ADDR)
        tl.say(f"srv1 {SERVER_ADDR} (primary, port 519), srv2 {SECONDARY_ADDR} (secondary, 520)")
        tl.quote(primary_conf.rstrip().splitlines()[2:15])
        story = PairStory(
            tl,
            PairNode("tandem", "primary", h1, primary_conf, h1.workdir / "tandem.leases"),
            PairNode("tandem", "secondary", h2, secondary_conf, h2.workdir / "tandem.leases"),
        )
        story.start("secondary")
        story.start("primary")
        story.wait("primary", "normal")
        story.wait("secondary", "normal")

        def balanced() -> PoolView | None:
            pool = tandem_pool(story.nodes["secondary"].tandem_status())
            return pool if pool is not None and pool.within() and pool.backup > 0 else None

        pool = _poll(balanced, 15, "the pool never balanced")
        story.echo()
        tl.say(
            f"pool balanced (the secondary's view): {pool.free} FREE leases for the primary, "
            f"{pool.backup} BACKUP leases for the secondary"
        )

        cli1 = Dhclient(lab.add_host("esp32"))
        cli1.start()
        ev1 = cli1.wait_lease(30)
        tl.say(
            f"esp32 ({cli1.mac()}) got {ev1.address} from {ev1.server_id}, lease "
            f"{ev1.lease_time}s (MCLT-bound until the secondary acknowledges)"
        )
        _poll(
            lambda: (
                story.bindings("secondary").get(str(ev1.address), ("", None))[1] == cli1.mac()
                or None
            ),
            15,
            "the secondary never learnt the binding",
        )
        tl.say(f"the secondary's lease file holds {ev1.address} -> {cli1.mac()} (BNDUPD/BNDACK)")

        tl.section("The primary dies (kill -9)")
        story.nodes["primary"].server.stop(signal.SIGKILL)  # type: ignore[union-attr]
        tl.say("primary killed with SIGKILL")
        story.wait("secondary", "communications-interrupted", 20)
        backup = {a for a, (state, _) in story.bindings("secondary").items() if state == "backup"}

        cli1.stop()
        before = cli1.event_count()
        cli1.start()  # INIT-REBOOT
        again = cli1.wait_lease(40, after=before)
        tl.say(
            f"esp32 rebooted: {again.address} from {again.server_id} (kept: "
            f"{again.address == ev1.address})"
        )
        cli2 = Udhcpc(lab.add_host("plc"))
        cli2.start()
        ev2 = cli2.wait_lease(40)
        tl.say(
            f"new client plc ({cli2.mac()}) got {ev2.address} from {ev2.server_id}, lease "
            f"{ev2.lease_time}s, one of the secondary's BACKUP leases: {ev2.address in backup}"
        )

        tl.section("The primary returns on its old lease file")
        story.start("primary")
        story.wait("primary", "normal")
        story.wait("secondary", "normal")

        def agreed() -> dict[str, str | None] | None:
            active = [
                {a: m for a, (st, m) in story.bindings(role).items() if st == "active"}
                for role in ("primary", "secondary")
            ]
            return active[0] if active[0] == active[1] and str(ev2.address) in active[0] else None

        pa = _poll(agreed, 20, "the lease files never agreed")
        story.echo()
        tl.say(f"both lease files agree on every active binding: {sorted(pa.items())}")
        ok = again.address == ev1.address and ev2.address in backup
        if not ok:
            raise LabError("the story did not go as the seed promises")


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
        act_failover(tl)
    except LabError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    tl.section("Done")
    tl.say("every namespace, veth link and process the demo created has been removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
