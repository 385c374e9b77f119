"""Drop-in migration: Tandem started on a lease file that ISC dhcpd 4.4 wrote while serving.

Phase one runs real ISC dhcpd for real clients: dhclient (with a client identifier, so its lease
has a ``uid``), udhcpc and dhcpcd bound; a fourth client released its lease; a fifth declined
192.0.2.150 (a squatter answers ARP for it), which dhcpd abandoned. dhcpd is stopped and its file
copied. Phase two starts a server on that copy, in the same namespace, and checks, newcomers
first (so that a misread file would hand them the clients' addresses):

* new clients asking for the active addresses of dhclient and dhcpcd get other addresses;
* a new client asking for the abandoned address gets another one;
* a new client asking for the released address gets it (it is free, as in dhcpd);
* the old clients INIT-REBOOT (dhclient, dhcpcd) or renew (both udhcpc) and are ACKed with their
  address; nobody is NAKed.

Phase two runs against dhcpd itself (restarted on its own file) too: that run proves the
expectations are dhcpd's behaviour, not guesses.
"""

from __future__ import annotations

import re
import shutil

import pytest

from tandem.lab.clients import Client, ClientEvent, Dhclient, Dhcpcd, Udhcpc
from tandem.lab.netns import Lab
from tandem.lab.scenarios import SERVER_ADDR, ip_in_range, last_lease_blocks, seed_conf
from tandem.lab.servers import DHCPD_KINDS, run_dhcpd, run_dhcpd_kind

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(90),
    pytest.mark.usefixtures("lab_prerequisites"),
]

SQUATTED = "192.0.2.150"


@pytest.mark.parametrize("kind", DHCPD_KINDS)
def test_clients_of_dhcpd_keep_addresses_under_new_server(lab: Lab, kind: str) -> None:
    # --- phase one: ISC dhcpd serves, then stops --------------------------------------------
    srv = lab.add_host("srv", SERVER_ADDR)
    squat = lab.add_host("squat", f"{SQUATTED}/24")
    squat.run(["sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=1"])
    conf = seed_conf(ping_check=False)
    dhcpd = run_dhcpd(srv, conf)
    dhcl = Dhclient(lab.add_host("dhcl"), extra_conf='send dhcp-client-identifier "lab-1";\n')
    udh = Udhcpc(lab.add_host("udhcpc"))
    dcd = Dhcpcd(lab.add_host("dhcpcd"))
    leaver = Udhcpc(lab.add_host("leaver"))
    decliner = Udhcpc(lab.add_host("decliner"))
    keepers: list[Client] = [dhcl, udh, dcd, decliner]
    for c in (dhcl, udh, dcd, leaver):
        c.start()
    decliner.start(arp_check=True, request=SQUATTED, retry_wait=1)
    bound = {c.host.name: c.wait_lease(30) for c in keepers}
    old = {name: str(ev.address) for name, ev in bound.items()}
    released = str(leaver.wait_lease(30).address)
    leaver.release()
    dhcpd.wait_for_log(rf"^DHCPRELEASE of {re.escape(released)} ", 10)
    dhcpd.wait_for_log(rf"^DHCPDECLINE of {re.escape(SQUATTED)} ", 10)
    dhcl.stop()
    dcd.stop()
    leaver.stop()
    dhcpd.stop()

    assert dhcpd.leases_path is not None
    blocks = last_lease_blocks(dhcpd.leases_text())
    for name, addr in old.items():
        assert "binding state active;" in blocks.get(addr, ""), (name, addr, blocks)
    assert 'uid "lab-1";' in blocks[old["dhcl"]], blocks[old["dhcl"]]
    assert "binding state free;" in blocks.get(released, ""), blocks.get(released)
    assert "binding state abandoned;" in blocks.get(SQUATTED, ""), blocks.get(SQUATTED)
    taken = set(old.values())
    assert len(taken) == 4 and released not in taken and SQUATTED not in taken, (old, released)

    # --- phase two: the new server on a copy of dhcpd's file --------------------------------
    copy = srv.workdir / f"{kind}-migrated.leases"
    shutil.copyfile(dhcpd.leases_path, copy)
    server = run_dhcpd_kind(kind, srv, conf, copy)

    # Newcomers asking for the addresses of dhclient (a uid lease) and dhcpcd (hardware only).
    for holder in ("dhcl", "dhcpcd"):
        newcomer = Udhcpc(lab.add_host(f"new{holder}"))
        newcomer.start(request=old[holder])
        got = str(newcomer.wait_lease(20).address)
        assert ip_in_range(got) and got not in taken | {SQUATTED}, (holder, got, old)

    wants_abandoned = Udhcpc(lab.add_host("wantaband"))
    wants_abandoned.start(request=SQUATTED)
    got = str(wants_abandoned.wait_lease(20).address)
    assert ip_in_range(got) and got not in taken | {SQUATTED}, (got, old)

    wants_released = Udhcpc(lab.add_host("wantfree"))
    wants_released.start(request=released)
    assert str(wants_released.wait_lease(20).address) == released

    counts = {c.host.name: c.event_count() for c in keepers}
    dhcl.start()
    dcd.start()
    udh.renew()
    decliner.renew()
    again: dict[str, ClientEvent] = {
        "dhcl": dhcl.wait_lease(25, after=counts["dhcl"]),
        "dhcpcd": dcd.wait_lease(25, after=counts["dhcpcd"]),
        "udhcpc": udh.wait_event({"RENEW"}, 15, after=counts["udhcpc"]),
        "decliner": decliner.wait_event({"RENEW"}, 15, after=counts["decliner"]),
    }
    assert again["dhcl"].event == "REBOOT", (again["dhcl"], dhcl.log())
    assert again["dhcpcd"].event == "REBOOT", (again["dhcpcd"], dcd.log())
    for c in keepers:
        name = c.host.name
        assert again[name].address == old[name], (name, again[name], old)
        addr = re.escape(old[name])
        server.wait_for_log(rf"^DHCPACK on {addr} to {re.escape(c.mac())}", 5)
    assert "DHCPNAK" not in server.log(), server.log()
    assert server.proc.running()
