"""Replicated reservations on real processes: reservation-add on one Tandem peer is served by
the other (the first stopped), survives restarts of both, and reservation-del on the other
removes it from both; a conflict is refused on both peers; with an ISC dhcpd partner the reply
says it does not have the reservation, and dhcpd reads Tandem's lease file with the host
blocks in it.

Commands go through each server's control socket (root: writes allowed), as ``tandem``'s
own CLI and scripts use it. The seed's configs with max-response-delay 5 (the only change),
so the restarts reconnect quickly.
"""

from __future__ import annotations

import shutil
import time

import pytest
from failover_kit import NAME, SEED_PRIMARY, SEED_SECONDARY, Node, derive, pair_lab, wait_for

from tandem.io.control import control_path_for, request
from tandem.lab.clients import Dhclient, Udhcpc
from tandem.lab.netns import Lab
from tandem.lab.servers import run_dhcpd, run_tandem

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(400),
    pytest.mark.usefixtures("lab_prerequisites"),
]

RESERVED = "192.0.2.150"  # inside the seed's pool (100-200)


def command(node: Node, name: str, arguments: dict[str, object]) -> dict[str, object]:
    answer = request(
        control_path_for(str(node.pid_path)), {"command": name, "arguments": arguments}
    )
    result = answer["result"] if "result" in answer and "ok" in answer else answer
    assert isinstance(result, dict), answer
    return result


def lease_of(client: Udhcpc, timeout: float = 40.0) -> str:
    """Start udhcpc afresh (DISCOVER), return the address it is bound to, stop it."""
    after = client.event_count()
    client.start()
    try:
        ev = client.wait_lease(timeout, after=after)
    finally:
        client.stop()
    return str(ev.address)


def test_reservation_replicated_restarted_and_deleted(lab: Lab) -> None:
    h1, h2 = pair_lab(lab)
    primary = Node("tandem", h1, derive(SEED_PRIMARY, mrd=5))
    secondary = Node("tandem", h2, derive(SEED_SECONDARY, mrd=5))
    primary.start()
    secondary.start()
    primary.wait_state("normal", 30)
    secondary.wait_state("normal", 30)
    wait_for(
        lambda: "Tandem extension up" in primary.log() and "Tandem extension up" in secondary.log(),
        15,
        "the extension channel",
    )

    client = Udhcpc(lab.add_host("cli1"))
    mac = client.mac()
    added = command(
        primary,
        "reservation-add",
        {"reservation": {"hw-address": mac, "ip-address": RESERVED, "hostname": "resv1"}},
    )
    assert added == {"result": 0, "text": f"Host added. Failover peer {NAME} has it."}
    got = command(secondary, "reservation-get", {"ip-address": RESERVED})  # within a second
    assert got["result"] == 0 and got["arguments"]["hw-address"] == mac  # type: ignore[index]
    assert "host resv1 {\n  dynamic;\n" in secondary.leases_path.read_text()

    # A conflict is refused on both sides: the address of another client's lease.
    other = Dhclient(lab.add_host("cli2"))
    other.start()
    held = str(other.wait_lease(30).address)
    wait_for(lambda: secondary.active().get(held) == other.mac(), 15, "BNDUPD on srv2")
    clash = {"reservation": {"hw-address": "52:54:00:aa:bb:cc", "ip-address": held}}
    for node in (primary, secondary):
        refused = command(node, "reservation-add", clash)
        assert refused["result"] == 1, refused
        assert f"address {held} is leased to {other.mac()}" in str(refused["text"])
    other.stop()

    # Primary stopped: the secondary serves the reservation.
    primary.kill()
    assert lease_of(client) == RESERVED
    assert f"DHCPACK on {RESERVED} to {mac}" in secondary.log()

    # Both restarted: still served (from the lease file's host block).
    assert secondary.server is not None
    secondary.server.stop()
    secondary.start()
    primary.start()
    primary.wait_state("normal", 40)
    secondary.wait_state("normal", 40)
    assert lease_of(client) == RESERVED

    # reservation-del on the secondary removes it from both.
    wait_for(lambda: "Tandem extension up" in secondary.log(), 15, "the extension channel")
    deleted = command(secondary, "reservation-del", {"ip-address": RESERVED})
    assert deleted == {"result": 0, "text": f"Host deleted. Failover peer {NAME} has it."}
    time.sleep(1.0)
    assert command(primary, "reservation-get", {"ip-address": RESERVED}) == {
        "result": 3,
        "text": "Host not found.",
    }
    address = lease_of(client)
    assert address != RESERVED and address.startswith("192.0.2.")
    assert "  deleted;\n}" in primary.leases_path.read_text()


def test_mixed_pair_says_the_dhcpd_partner_does_not_have_it(lab: Lab) -> None:
    h1, h2 = pair_lab(lab)
    primary = Node("tandem", h1, SEED_PRIMARY)
    secondary = Node("dhcpd", h2, SEED_SECONDARY)
    secondary.start()
    primary.start()
    primary.wait_state("normal", 60)
    secondary.wait_state("normal", 60)
    client = Udhcpc(lab.add_host("cli1"))
    added = command(
        primary,
        "reservation-add",
        {"reservation": {"hw-address": client.mac(), "ip-address": RESERVED}},
    )
    assert added["result"] == 0
    assert (
        f"The partner of failover peer {NAME} is ISC dhcpd: it does not have this reservation"
        in str(added["text"])
    )
    assert lease_of(client) == RESERVED
    # dhcpd sees nothing of it on the wire (no unknown message or option in its log) ...
    log = secondary.log().lower()
    assert "unknown message" not in log and "unknown option" not in log, log[-2000:]
    # ... and reads the lease file Tandem wrote, host block included.
    copy = h1.workdir / "copy.leases"
    shutil.copy(primary.leases_path, copy)
    conf = h1.workdir / "dhcpd-check.conf"
    conf.write_text(SEED_PRIMARY)
    res = h1.run(["dhcpd", "-4", "-T", "-cf", str(conf), "-lf", str(copy)], check=False)
    assert res.returncode == 0, res.stderr
    assert "Lease file test successful" in res.stderr


STANDALONE = """authoritative;
default-lease-time 600;
subnet 192.0.2.0 netmask 255.255.255.0 {
  range 192.0.2.100 192.0.2.200;
}
"""


def test_dhcpd_serves_the_host_blocks_tandem_wrote(lab: Lab) -> None:
    """The lease file is dhcpd's: stop Tandem, start dhcpd 4.4 on the same file, and dhcpd
    serves the reservation (and not the one deleted afterwards)."""
    srv = lab.add_host("srv1", "192.0.2.1/24")
    leases = srv.workdir / "shared.leases"
    tandem = run_tandem(srv, STANDALONE, leases)
    kept, gone = Udhcpc(lab.add_host("cli1")), Udhcpc(lab.add_host("cli2"))
    ctl = control_path_for(str(srv.workdir / "tandem.pid"))
    for client, addr in ((kept, RESERVED), (gone, "192.0.2.151")):
        res = {"reservation": {"hw-address": client.mac(), "ip-address": addr}}
        answer = request(ctl, {"command": "reservation-add", "arguments": res})
        assert answer == {"result": 0, "text": "Host added."}, answer
    answer = request(
        ctl, {"command": "reservation-del", "arguments": {"ip-address": "192.0.2.151"}}
    )
    assert answer["result"] == 0, answer
    assert lease_of(kept) == RESERVED
    tandem.stop()
    dhcpd = run_dhcpd(srv, STANDALONE, leases)
    try:
        assert lease_of(kept) == RESERVED
        assert lease_of(gone) not in ("192.0.2.151", RESERVED)
        # dhcpd serves it and, as for any fixed-address inside a range, warns about it.
        assert f"DHCPACK on {RESERVED} to {kept.mac()}" in dhcpd.log()
    finally:
        dhcpd.stop()
