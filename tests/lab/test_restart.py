"""Tandem restarted on its own lease file keeps every client's address.

Three real clients (dhclient, udhcpc, dhcpcd) get leases; Tandem is stopped cleanly (SIGTERM) or
killed (SIGKILL: whatever it ACKed must already be on disk, since a DHCPACK only leaves after its
lease is durable) and started again on the same file. Then, in this order:

1. a NEW client asks first: it must not get any of the three addresses (were the file lost or
   misread, it would get the first of them, allocation being deterministic);
2. dhclient and dhcpcd restart with their lease files (INIT-REBOOT) and udhcpc renews (unicast
   REQUEST in RENEWING): each gets a DHCPACK for its old address, and nobody is NAKed.
"""

from __future__ import annotations

import re
import signal

import pytest

from tandem.lab.clients import Dhclient, Dhcpcd, Udhcpc
from tandem.lab.netns import Lab
from tandem.lab.scenarios import SERVER_ADDR, ip_in_range, last_lease_blocks, seed_conf
from tandem.lab.servers import run_tandem

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(90),
    pytest.mark.usefixtures("lab_prerequisites"),
]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_clients_keep_addresses_across_restart(lab: Lab, sig: signal.Signals) -> None:
    srv = lab.add_host("srv", SERVER_ADDR)
    conf = seed_conf(ping_check=False)
    server = run_tandem(srv, conf)
    dhcl = Dhclient(lab.add_host("dhcl"))
    udh = Udhcpc(lab.add_host("udhcpc"))
    dcd = Dhcpcd(lab.add_host("dhcpcd"))
    for c in (dhcl, udh, dcd):
        c.start()
    first = {c.kind: c.wait_lease(25) for c in (dhcl, udh, dcd)}
    old = {kind: str(ev.address) for kind, ev in first.items()}
    assert len(set(old.values())) == 3 and all(map(ip_in_range, old.values())), old

    dhcl.stop()  # SIGTERM: no DHCPRELEASE, the lease stays in the client's file
    dcd.stop()
    rc = server.stop(sig)
    assert rc == (0 if sig == signal.SIGTERM else -signal.SIGKILL), (rc, server.log()[-2000:])
    assert "Traceback" not in server.log(), server.log()[-3000:]  # a clean stop is quiet
    on_disk = last_lease_blocks(server.leases_text())
    for kind, addr in old.items():
        assert "binding state active;" in on_disk.get(addr, ""), (kind, addr, on_disk.get(addr))

    again = run_tandem(srv, conf, server.leases_path)
    assert again.proc.pid != server.proc.pid
    assert re.search(r"^Wrote [0-9]+ leases to leases file\.$", again.log(), re.MULTILINE)

    newcomer = Udhcpc(lab.add_host("newcomer"))
    newcomer.start()
    fresh = newcomer.wait_lease(20)
    assert ip_in_range(fresh.address), fresh
    assert fresh.address not in old.values(), (fresh.address, old)

    n_dhcl, n_dcd = dhcl.event_count(), dcd.event_count()
    dhcl.start()
    dcd.start()
    n_udh = udh.renew()
    got = {
        "dhclient": dhcl.wait_lease(25, after=n_dhcl),
        "udhcpc": udh.wait_event({"RENEW"}, 15, after=n_udh),
        "dhcpcd": dcd.wait_lease(25, after=n_dcd),
    }
    assert got["dhclient"].event == "REBOOT", (got["dhclient"], dhcl.log())
    assert got["dhcpcd"].event == "REBOOT", (got["dhcpcd"], dcd.log())
    for c in (dhcl, udh, dcd):
        assert got[c.kind].address == old[c.kind], (c.kind, got[c.kind], old)
        addr = re.escape(old[c.kind])
        again.wait_for_log(rf"^DHCPACK on {addr} to {re.escape(c.mac())}", 5)
    # INIT-REBOOT and RENEWING requests, not DISCOVERs, and never a NAK.
    assert "DHCPNAK" not in again.log(), again.log()
    for c in (dhcl, dcd):
        assert f"DHCPDISCOVER from {c.mac()}" not in again.log(), (c.kind, again.log())
    assert again.proc.running()
