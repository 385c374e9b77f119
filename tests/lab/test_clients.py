"""Real clients against a dhcpd.conf server: ISC dhcpd (proves the harness) and Tandem.

Every scenario is parametrised over ["dhcpd", "tandem"]: the same config text, the same clients,
the same assertions. dhcpd's log lines are the contract for both (Tandem prints the same lines).
"""

from __future__ import annotations

import re

import pytest

from tandem.lab.clients import Client, Dhclient, Dhcpcd, Udhcpc
from tandem.lab.netns import Lab
from tandem.lab.scenarios import (
    RELAY_DOWN_ADDR,
    RELAY_SUBNET,
    RELAY_UP_ADDR,
    SERVER_ADDR,
    ip_in_range,
    last_lease_blocks,
    seed_conf,
)
from tandem.lab.servers import (
    DHCPD_KINDS,
    Server,
    run_dhcpd_kind,
    run_dhcrelay,
    start_capture,
    stop_capture,
    tshark_fields,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("lab_prerequisites"),
]

KINDS = pytest.mark.parametrize("kind", DHCPD_KINDS)


def _three_clients(lab: Lab) -> list[Client]:
    return [
        Dhclient(lab.add_host("dhcl")),
        Udhcpc(lab.add_host("udhcpc")),
        Dhcpcd(lab.add_host("dhcpcd")),
    ]


def _ack_count(server: Server, addr: str, mac: str) -> int:
    return sum(1 for a, m in server.acks() if a == addr and m == mac)


@KINDS
def test_dora_three_clients_get_seed_options(lab: Lab, kind: str) -> None:
    """dhclient, udhcpc and dhcpcd each get a pool address and all the seed's options."""
    srv = lab.add_host("srv", SERVER_ADDR)
    # ping-check left at dhcpd's default (on), as with the seed's config.
    server = run_dhcpd_kind(kind, srv, seed_conf())
    clients = _three_clients(lab)
    for c in clients:
        c.start()
    got = {c.kind: c.wait_lease(25) for c in clients}
    addrs = [ev.address for ev in got.values()]
    assert len(set(addrs)) == 3, f"addresses must differ: {addrs}"
    for c in clients:
        ev = got[c.kind]
        assert ev.event == "BOUND", (c.kind, ev)
        assert ip_in_range(ev.address), (c.kind, ev.address)
        assert ev.subnet_mask == "255.255.255.0", (c.kind, ev)
        assert ev.routers == ["192.0.2.5"], (c.kind, ev)
        assert ev.ntp_servers == ["192.0.2.6"], (c.kind, ev)
        assert ev.time_offset == 2, (c.kind, ev)
        assert ev.broadcast == "192.0.2.255", (c.kind, ev)
        assert ev.server_id == "192.0.2.1", (c.kind, ev)
        assert ev.lease_time is not None and ev.lease_time > 0, (c.kind, ev)
        # The address really is on the client's interface (and the server logged the ACK).
        assert f"{ev.address}/24" in c.host.ipv4_addrs(), (c.kind, c.host.ipv4_addrs())
        assert _ack_count(server, str(ev.address), c.mac()) >= 1, server.log()[-2000:]


@KINDS
def test_renew_keeps_address(lab: Lab, kind: str) -> None:
    """With a 12 s lease all three clients renew at T1 by themselves and keep their address."""
    srv = lab.add_host("srv", SERVER_ADDR)
    conf = seed_conf(ping_check=False, extra="default-lease-time 12;\nmax-lease-time 12;")
    server = run_dhcpd_kind(kind, srv, conf)
    clients = _three_clients(lab)
    for c in clients:
        c.start()
    first = [c.wait_lease(20) for c in clients]
    for c, ev in zip(clients, first, strict=True):
        assert ev.lease_time == 12, (c.kind, ev)
    counts = [c.event_count() for c in clients]
    for c, ev, n in zip(clients, first, counts, strict=True):
        again = c.wait_event({"RENEW"}, 20, after=n)
        assert again.address == ev.address, (c.kind, ev, again)
        assert again.lease_time == 12, (c.kind, again)
        assert _ack_count(server, str(ev.address), c.mac()) >= 2, server.log()[-2000:]


@KINDS
def test_udhcpc_forced_renew_then_release_all_clients(lab: Lab, kind: str) -> None:
    """udhcpc renews on SIGUSR1; dhclient -r, udhcpc SIGUSR2, dhcpcd SIGALRM send DHCPRELEASE,
    after which the server's lease file shows the addresses free."""
    srv = lab.add_host("srv", SERVER_ADDR)
    server = run_dhcpd_kind(kind, srv, seed_conf(ping_check=False))
    dhcl, udh, dcd = _three_clients(lab)
    assert isinstance(dhcl, Dhclient) and isinstance(udh, Udhcpc) and isinstance(dcd, Dhcpcd)
    for c in (dhcl, udh, dcd):
        c.start()
    leases = {c.kind: c.wait_lease(20) for c in (dhcl, udh, dcd)}

    n = udh.renew()
    renewed = udh.wait_event({"RENEW"}, 10, after=n)
    assert renewed.address == leases["udhcpc"].address
    server.wait_for_log(rf"^DHCPREQUEST for {re.escape(str(renewed.address))} ", 5)

    dhcl.release()
    udh.release()
    dcd.release()
    for c in (dhcl, udh, dcd):
        addr = re.escape(str(leases[c.kind].address))
        server.wait_for_log(rf"^DHCPRELEASE of {addr} from {re.escape(c.mac())}", 10)
    server.stop()  # a stopped server has everything on disk
    blocks = last_lease_blocks(server.leases_text())
    for c in (dhcl, udh, dcd):
        body = blocks.get(str(leases[c.kind].address), "")
        assert "binding state free;" in body, (c.kind, body)


@KINDS
def test_init_reboot_gets_old_address(lab: Lab, kind: str) -> None:
    """dhclient restarted with its lease file asks for its old address (INIT-REBOOT) and gets it."""
    srv = lab.add_host("srv", SERVER_ADDR)
    server = run_dhcpd_kind(kind, srv, seed_conf(ping_check=False))
    cli = Dhclient(lab.add_host("cli"))
    # Another client first, so the old address is not simply the first free one.
    other = Udhcpc(lab.add_host("other"))
    cli.start()
    first = cli.wait_lease(20)
    cli.stop()
    other.start()
    other.wait_lease(20)
    n = cli.event_count()
    mark = server.proc.log_size()
    cli.start()
    again = cli.wait_lease(20, after=n)
    assert again.event == "REBOOT", (again, cli.log(), server.log()[mark:])
    assert again.address == first.address
    # INIT-REBOOT: a REQUEST without a server identifier ("for A from M", no "(server)").
    server.wait_for_log(
        rf"^DHCPREQUEST for {re.escape(str(first.address))} from {re.escape(cli.mac())}",
        5,
        start=mark,
    )
    assert "DHCPDISCOVER from " + cli.mac() not in server.log()[mark:]


def _relay_lab(lab: Lab, kind: str, *, authoritative: bool) -> tuple[Server, Server]:
    """Server on segment a; relay with eth0 on a and eth1 on b (198.51.100.0/24)."""
    srv = lab.add_host("srv", SERVER_ADDR)
    relay = lab.add_host("relay", RELAY_UP_ADDR)
    lab.add_iface(relay, "eth1", "b", RELAY_DOWN_ADDR)
    relay.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    srv.run(["ip", "route", "add", "198.51.100.0/24", "via", RELAY_UP_ADDR.split("/")[0]])
    conf = seed_conf(authoritative=authoritative, ping_check=False, extra=RELAY_SUBNET)
    server = run_dhcpd_kind(kind, srv, conf)
    dhcrelay = run_dhcrelay(relay, ["192.0.2.1"], upstream="eth0", downstream=["eth1"])
    return server, dhcrelay


@KINDS
def test_relay_with_option82_and_moved_client_gets_nak(lab: Lab, kind: str) -> None:
    """A client behind dhcrelay -a gets an address of the relay's subnet, the server echoes
    option 82 (circuit-id "eth1") in its replies, and a client moved from segment a to segment b
    is NAKed when it INIT-REBOOTs with its old address (the server is authoritative)."""
    server, _relay = _relay_lab(lab, kind, authoritative=True)
    relay = lab.hosts["relay"]
    pcap = relay.workdir / "upstream.pcap"
    cap = start_capture(relay, "eth0", pcap)

    far = Udhcpc(lab.add_host("far", segment="b"))
    far.start()
    ev = far.wait_lease(20)
    assert ip_in_range(ev.address, "198.51.100.100", "198.51.100.150"), ev
    assert ev.routers == ["198.51.100.1"], ev
    server.wait_for_log(rf"^DHCPACK on {re.escape(str(ev.address))} to .* via 198\.51\.100\.1", 5)

    mover = Dhclient(lab.add_host("mover"))
    mover.start()
    old = mover.wait_lease(20)
    assert ip_in_range(old.address), old
    mover.stop()
    mover.host.move("eth0", lab.segments["b"])
    n = mover.event_count()
    mover.start()
    new = mover.wait_lease(25, after=n)
    assert ip_in_range(new.address, "198.51.100.100", "198.51.100.150"), new
    assert re.search(r"^DHCPNAK from ", mover.log(), re.MULTILINE), mover.log()
    server.wait_for_log(rf"^DHCPNAK on {re.escape(str(old.address))} to {mover.mac()}", 5)

    stop_capture(cap)
    rows = tshark_fields(
        pcap,
        ["ip.src", "dhcp.option.dhcp", "dhcp.option.agent_information_option.agent_circuit_id"],
        "dhcp && ip.src == 192.0.2.1",
    )
    replies = {(row[1], row[2]) for row in rows}
    circuit = b"eth1".hex()
    # OFFER (2), ACK (5) and NAK (6) to relayed clients all carry the relay agent's circuit-id.
    for msg_type in ("2", "5", "6"):
        assert (msg_type, circuit) in replies, rows


@KINDS
def test_verbatim_seed_is_not_authoritative_no_nak(lab: Lab, kind: str) -> None:
    """The seed has no ``authoritative;``: a moved client's INIT-REBOOT is ignored, not NAKed;
    dhclient gives up after its reboot timeout (5 s here) and gets a new address by DISCOVER."""
    server, _relay = _relay_lab(lab, kind, authoritative=False)
    mover = Dhclient(lab.add_host("mover"))
    mover.start()
    old = mover.wait_lease(20)
    mover.stop()
    mover.host.move("eth0", lab.segments["b"])
    n = mover.event_count()
    mark = server.proc.log_size()
    mover.start()
    new = mover.wait_lease(30, after=n)
    assert ip_in_range(new.address, "198.51.100.100", "198.51.100.150"), new
    assert "DHCPNAK" not in mover.log()
    assert "DHCPNAK" not in server.log()[mark:]
    # dhcpd says why it stayed silent; Tandem prints dhcpd's lines.
    assert re.search(
        rf"^DHCPREQUEST for {re.escape(str(old.address))} from .*ignored \(not authoritative\)",
        server.log()[mark:],
        re.MULTILINE,
    ), server.log()[mark:]


@KINDS
def test_decline_when_address_answers_arp(lab: Lab, kind: str) -> None:
    """udhcpc -a ARP-probes the offered address; a squatter answers, udhcpc sends DHCPDECLINE;
    the server abandons the address and the client then gets another one."""
    srv = lab.add_host("srv", SERVER_ADDR)
    squat = lab.add_host("squat", "192.0.2.150/24")
    # The squatter ignores pings, so a ping-check cannot find it: only the client's ARP can.
    squat.run(["sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=1"])
    server = run_dhcpd_kind(kind, srv, seed_conf())
    cli = Udhcpc(lab.add_host("cli"))
    cli.start(arp_check=True, request="192.0.2.150", retry_wait=1)
    ev = cli.wait_lease(30)
    assert ev.address != "192.0.2.150" and ip_in_range(ev.address), ev
    assert "declining" in cli.log(), cli.log()
    server.wait_for_log(rf"^DHCPDECLINE of 192\.0\.2\.150 from {re.escape(cli.mac())}", 5)
    server.stop()
    blocks = last_lease_blocks(server.leases_text())
    assert "binding state abandoned;" in blocks.get("192.0.2.150", ""), blocks.get("192.0.2.150")
