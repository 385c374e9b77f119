"""A clean handover on SIGTERM (issue 10 item 6), with real processes in namespaces.

SIGTERM of a Tandem peer in NORMAL: it moves to SHUTDOWN, sends STATE, and its partner
(Tandem, or ISC dhcpd 4.4) moves to PARTNER-DOWN within a second or two; the stopped server
exits 0 with its SHUTDOWN state record last in its lease file, and after a restart the pair is
NORMAL again far sooner than the MCLT (300 s here, so a RECOVER-WAIT would show), with no
address held by two clients.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
from failover_kit import (
    NAME,
    SEED_PRIMARY,
    SEED_SECONDARY,
    Node,
    assert_unique_clients,
    derive,
    pair_lab,
    wait_agree,
    wait_for,
)

from tandem.lab.clients import Dhclient
from tandem.lab.netns import Lab
from tandem.store.leasefile import parse_leases

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("lab_prerequisites"),
]

MCLT = 300
HANDOVER_LIMIT = 2.5  # seconds from SIGTERM to the partner's PARTNER-DOWN ("a second or two")
_STATE_BLOCK = re.compile(r'^failover peer "[^"]+" state \{\n(.*?)^\}', re.M | re.S)


def _pair(lab: Lab, primary_kind: str, secondary_kind: str) -> tuple[Node, Node]:
    h1, h2 = pair_lab(lab)
    primary = Node(primary_kind, h1, derive(SEED_PRIMARY, mclt=MCLT, mrd=10))
    secondary = Node(secondary_kind, h2, derive(SEED_SECONDARY, mrd=10))
    secondary.start()
    primary.start()
    primary.wait_state("normal", 60)
    secondary.wait_state("normal", 60)
    return primary, secondary


def _terminate(stopping: Node, partner: Node) -> float:
    """SIGTERM ``stopping``; seconds until ``partner`` is PARTNER-DOWN; checks the exit."""
    assert stopping.server is not None
    proc = stopping.server.proc
    began = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    while partner.my_state() != "partner-down":
        if time.monotonic() - began > 30:
            raise AssertionError(
                f"partner not partner-down 30 s after SIGTERM (now {partner.my_state()})\n"
                f"stopping:\n{stopping.log()[-2000:]}\npartner:\n{partner.log()[-3000:]}"
            )
        time.sleep(0.02)
    took = time.monotonic() - began
    rc = proc.wait(10)
    assert rc == 0, (rc, stopping.log()[-3000:])
    log = stopping.log()
    assert "Traceback" not in log, log[-3000:]
    assert f"failover peer {NAME}: I move from normal to shutdown" in log, log[-3000:]
    # The lease file's last state record is SHUTDOWN, with the partner seen PARTNER-DOWN.
    text = stopping.leases_path.read_text(encoding="latin-1")
    blocks = _STATE_BLOCK.findall(text)
    assert blocks, text[-2000:]
    assert re.search(r"^  my state shutdown at ", blocks[-1], re.M), blocks[-1]
    assert re.search(r"^  partner state partner-down at ", blocks[-1], re.M), blocks[-1]
    rec = parse_leases(text, str(stopping.leases_path)).failover_states[NAME]
    assert (rec.my_state, rec.partner_state) == ("shutdown", "partner-down")
    return took


def _restart(back: Node, partner: Node) -> float:
    began = time.monotonic()
    back.start()
    back.wait_state("normal", MCLT / 3)
    partner.wait_state("normal", 30)
    took = time.monotonic() - began
    assert f"failover peer {NAME}: I move from shutdown to recover" in back.log(), back.log()
    if back.kind == "tandem":
        assert "recover-wait" not in back.log(), back.log()[-3000:]
    return took


def _clients(lab: Lab, primary: Node, secondary: Node) -> dict[str, str]:
    clients = [Dhclient(lab.add_host(f"cli{i}")) for i in (1, 2)]
    for c in clients:
        c.start()
    bound = {c.mac(): str(c.wait_lease(40).address) for c in clients}
    wait_agree(primary, secondary, 20)
    return bound


@pytest.mark.parametrize("stop", ["primary", "secondary"])
def test_sigterm_hands_over_to_a_tandem_partner(lab: Lab, stop: str) -> None:
    primary, secondary = _pair(lab, "tandem", "tandem")
    bound = _clients(lab, primary, secondary)
    stopping, partner = (primary, secondary) if stop == "primary" else (secondary, primary)

    took = _terminate(stopping, partner)
    assert took < HANDOVER_LIMIT, took
    assert partner.status()["partner_state"] == "shutdown"
    # The survivor serves a newcomer alone.
    newcomer = Dhclient(lab.add_host("cli3"))
    newcomer.start()
    bound[newcomer.mac()] = str(newcomer.wait_lease(40).address)

    again = _restart(stopping, partner)
    print(f"tandem partner, {stop} stopped: partner-down {took:.3f} s, normal again {again:.1f} s")
    assert again < MCLT / 5, again
    wait_agree(primary, secondary, 20)
    assert_unique_clients(primary, secondary)
    for mac, addr in bound.items():
        assert primary.active().get(addr) == mac and secondary.active().get(addr) == mac


@pytest.mark.parametrize("stop", ["primary", "secondary"])
def test_sigterm_hands_over_to_a_dhcpd_partner(lab: Lab, stop: str) -> None:
    kinds = ("tandem", "dhcpd") if stop == "primary" else ("dhcpd", "tandem")
    primary, secondary = _pair(lab, *kinds)
    isc = secondary if stop == "primary" else primary
    ours = primary if stop == "primary" else secondary
    wait_for(lambda: f"failover peer {NAME}: Both servers normal" in isc.log(), 30, "dhcpd")
    bound = _clients(lab, primary, secondary)

    took = _terminate(ours, isc)
    assert took < HANDOVER_LIMIT, took
    assert f"failover peer {NAME}: peer moves from normal to shutdown" in isc.log(), isc.log()
    assert f"failover peer {NAME}: I move from normal to partner-down" in isc.log(), isc.log()

    again = _restart(ours, isc)
    print(f"dhcpd partner, {stop} stopped: partner-down {took:.3f} s, normal again {again:.1f} s")
    assert again < MCLT / 5, again
    wait_agree(primary, secondary, 20)
    assert_unique_clients(primary, secondary)
    for mac, addr in bound.items():
        assert primary.active().get(addr) == mac and secondary.active().get(addr) == mac
    assert ours.status()["partner_state"] == "normal"


def test_sigterm_outside_normal_stops_at_once(lab: Lab) -> None:
    """COMMUNICATIONS-INTERRUPTED: no partner to tell, so no SHUTDOWN; exit 0 at once."""
    primary, secondary = _pair(lab, "tandem", "tandem")
    primary.kill()
    secondary.wait_state("communications-interrupted", 30)
    assert secondary.server is not None
    began = time.monotonic()
    rc = secondary.server.stop(signal.SIGTERM)
    took = time.monotonic() - began
    assert rc == 0, (rc, secondary.log()[-3000:])
    assert took < 1.0, took
    assert "Received signal 15, initiating shutdown." in secondary.log()
    assert "to shutdown" not in secondary.log(), secondary.log()
    rec = parse_leases(
        secondary.leases_path.read_text(encoding="latin-1"), str(secondary.leases_path)
    ).failover_states[NAME]
    assert rec.my_state == "communications-interrupted", rec
