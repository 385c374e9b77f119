"""A failover pair configured with host names, as real configs are (``address dhcp01.example;``).

The seed configs with both ``address`` and ``peer address`` written as names that only the
servers' own /etc/hosts know: each server namespace gets a private hosts file (bind-mounted
inside each command's mount namespace by ``Host.set_hosts``; the machine's /etc/hosts is never
touched), so the names cannot resolve through anything else. Both sides must resolve them, bind,
connect and reach NORMAL; the second test puts ISC dhcpd, which resolves the same names with
gethostbyname(), on the primary's side.
"""

from __future__ import annotations

import pytest
from failover_kit import NAME, PRIMARY_IP, SECONDARY_IP, SEED_PRIMARY, SEED_SECONDARY, Node, edit

from tandem.lab.netns import Host, Lab, LabError

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(180),
    pytest.mark.usefixtures("lab_prerequisites"),
]

PRIMARY_NAME = "dhcp01.failover.test"  # RFC 6761: .test never resolves through DNS
SECONDARY_NAME = "dhcp02.failover.test"
HOSTS = {PRIMARY_NAME: PRIMARY_IP, SECONDARY_NAME: SECONDARY_IP}


def _named(conf: str, mine: tuple[str, str], theirs: tuple[str, str]) -> str:
    """The seed with its two addresses replaced by names (the peer's line first: it contains
    the text of the other)."""
    conf = edit(conf, f"peer address {theirs[0]};", f"peer address {theirs[1]};")
    return edit(conf, f"address {mine[0]};", f"address {mine[1]};")


PRIMARY_CONF = _named(SEED_PRIMARY, (PRIMARY_IP, PRIMARY_NAME), (SECONDARY_IP, SECONDARY_NAME))
SECONDARY_CONF = _named(SEED_SECONDARY, (SECONDARY_IP, SECONDARY_NAME), (PRIMARY_IP, PRIMARY_NAME))


def _hosts(lab: Lab) -> tuple[Host, Host]:
    for conf in (PRIMARY_CONF, SECONDARY_CONF):
        assert f"address {PRIMARY_IP};" not in conf and f"address {SECONDARY_IP};" not in conf
    h1 = lab.add_host("srv1", f"{PRIMARY_IP}/24")
    h2 = lab.add_host("srv2", f"{SECONDARY_IP}/24")
    # Without the private hosts file the names do not resolve: nothing else can make this pass.
    for host in (h1, h2):
        res = host.run(["getent", "ahostsv4", PRIMARY_NAME], check=False)
        if res.returncode == 0:
            raise LabError(f"{PRIMARY_NAME} resolves outside the lab's hosts file: {res.stdout}")
        host.set_hosts(HOSTS)
        got = host.run(["getent", "ahostsv4", SECONDARY_NAME]).stdout.split()
        assert got[:1] == [SECONDARY_IP], got
    return h1, h2


def test_tandem_pair_with_host_names_reaches_normal(lab: Lab) -> None:
    h1, h2 = _hosts(lab)
    primary = Node("tandem", h1, PRIMARY_CONF)
    secondary = Node("tandem", h2, SECONDARY_CONF)
    secondary.start()
    primary.start()
    primary.wait_state("normal", 30)
    secondary.wait_state("normal", 30)
    assert f"failover peer {NAME}: Both servers normal" in primary.log()
    # The names became the addresses: each side listens on its own and talks to the other's.
    for node, me, other, ports in (
        (primary, PRIMARY_IP, SECONDARY_IP, ("519", "520")),
        (secondary, SECONDARY_IP, PRIMARY_IP, ("520", "519")),
    ):
        tcp = node.status()["tcp"]
        assert isinstance(tcp, dict)
        assert tcp["listen"] == f"{me}:{ports[0]}" and tcp["peer"] == f"{other}:{ports[1]}"
        assert tcp["connected"] is True


def test_dhcpd_primary_and_tandem_secondary_with_host_names(lab: Lab) -> None:
    h1, h2 = _hosts(lab)
    primary = Node("dhcpd", h1, PRIMARY_CONF)
    secondary = Node("tandem", h2, SECONDARY_CONF)
    secondary.start()
    primary.start()
    secondary.wait_state("normal", 40)
    primary.wait_state("normal", 40)
    assert "host unknown" not in primary.log()
    status = secondary.status()
    assert status["partner_state"] == "normal"
