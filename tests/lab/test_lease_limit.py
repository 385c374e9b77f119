"""``lease limit 1;`` on option 82 subclasses, with real clients behind ISC dhcrelay -a.

dhcrelay -a puts the downstream interface's name in agent circuit-id, so each relay port is
one subclass of "port". Parametrised over ["dhcpd", "tandem"]: the same config, clients and
assertions; dhcpd's log line is the contract for both.
"""

from __future__ import annotations

import re
import time

import pytest

from tandem.lab.clients import Udhcpc
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
from tandem.lab.servers import DHCPD_KINDS, run_dhcpd_kind, run_dhcrelay

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("lab_prerequisites"),
]

PORTS = """\
class "port" { match option agent.circuit-id; lease limit 1; }
subclass "port" "eth1";
subclass "port" "eth2";
subnet 203.0.113.0 netmask 255.255.255.0 {
        option routers 203.0.113.1;
        range 203.0.113.100 203.0.113.150;
}
"""

REFUSED = (
    r"^DHCPDISCOVER from {mac} via 198\.51\.100\.1: no available billing: "
    r"lease limit reached in all matching classes \(last: 'port'\)$"
)


@pytest.mark.parametrize("kind", DHCPD_KINDS)
def test_second_client_on_a_port_is_refused_another_port_is_served(lab: Lab, kind: str) -> None:
    srv = lab.add_host("srv", SERVER_ADDR)
    relay = lab.add_host("relay", RELAY_UP_ADDR)
    lab.add_iface(relay, "eth1", "b", RELAY_DOWN_ADDR)
    lab.add_iface(relay, "eth2", "c", "203.0.113.1/24")
    relay.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    gw = RELAY_UP_ADDR.split("/")[0]
    srv.run(["ip", "route", "add", "198.51.100.0/24", "via", gw])
    srv.run(["ip", "route", "add", "203.0.113.0/24", "via", gw])
    conf = seed_conf(ping_check=False, extra=RELAY_SUBNET + PORTS)
    server = run_dhcpd_kind(kind, srv, conf)
    run_dhcrelay(relay, ["192.0.2.1"], upstream="eth0", downstream=["eth1", "eth2"])

    first = Udhcpc(lab.add_host("first", segment="b"))
    first.start()
    ev = first.wait_lease(20)
    assert ip_in_range(ev.address, "198.51.100.100", "198.51.100.150"), ev

    second = Udhcpc(lab.add_host("second", segment="b"))
    second.start()
    server.wait_for_log(REFUSED.format(mac=re.escape(second.mac())), 20)

    other = Udhcpc(lab.add_host("other", segment="c"))
    other.start()
    got = other.wait_lease(20)
    assert ip_in_range(got.address, "203.0.113.100", "203.0.113.150"), got

    time.sleep(2)  # the second client keeps trying; it never gets a lease
    assert all(e.address is None for e in second.events()), second.events()
    assert not any(m == second.mac() for _a, m in server.acks()), server.log()

    # The billing is on disk (dhcpd's `billing subclass` line) and counts again after a restart.
    second.stop()
    server.stop()
    block = last_lease_blocks(server.leases_text()).get(str(ev.address), "")
    assert 'billing subclass "port" "eth1";' in block, block
    again = run_dhcpd_kind(kind, srv, conf, server.leases_path)
    third = Udhcpc(lab.add_host("third", segment="b"))
    third.start()
    again.wait_for_log(REFUSED.format(mac=re.escape(third.mac())), 20)
