"""``tandem partner-down`` on the surviving secondary, then the primary's return through RECOVER.

Seed configs with a 30 s MCLT (the only change), so the wait that PARTNER-DOWN imposes before
the secondary may use the primary's free leases fits in a test.
"""

from __future__ import annotations

import time

import pytest
from failover_kit import (
    NAME,
    PROBE_ADDR,
    SECONDARY_IP,
    SEED_PRIMARY,
    SEED_SECONDARY,
    Node,
    assert_unique_clients,
    derive,
    pair_lab,
    run_probe,
    wait_agree,
    wait_for,
)

from tandem.lab.clients import Dhclient
from tandem.lab.netns import Lab
from tandem.lab.servers import tandem_command

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(400),
    pytest.mark.usefixtures("lab_prerequisites"),
]

MCLT = 30
PROBES = 60


def test_partner_down_then_recover(lab: Lab) -> None:
    h1, h2 = pair_lab(lab)
    primary = Node("tandem", h1, derive(SEED_PRIMARY, mclt=MCLT, mrd=5))
    secondary = Node("tandem", h2, derive(SEED_SECONDARY, mrd=5))
    primary.start()
    secondary.start()
    primary.wait_state("normal", 30)
    secondary.wait_state("normal", 30)

    cli1 = Dhclient(lab.add_host("cli1"))
    cli1.start()
    ev1 = cli1.wait_lease(30)
    addr1, mac1 = str(ev1.address), cli1.mac()
    wait_for(lambda: secondary.active().get(addr1) == mac1, 15, "BNDUPD on srv2")
    backup = secondary.in_state("backup")
    # The primary's share, as the secondary sees it (never-used FREE leases are not written).
    pool = {f"192.0.2.{i}" for i in range(100, 201)}
    free = pool - backup - set(secondary.bindings()) | secondary.in_state("free")
    assert len(backup) >= 40 and len(free) >= 40 and not backup & free

    # The command needs a running server: a friendly error, not a traceback.
    bogus = h2.run(
        [*tandem_command(), "partner-down", NAME, "--control", "/nonexistent.ctl"], check=False
    )
    assert bogus.returncode == 1 and "no Tandem server is running" in bogus.stderr

    primary.kill()
    secondary.wait_state("communications-interrupted", 10)
    ctl = ["-pf", str(secondary.pid_path)]
    res = h2.run([*tandem_command(), "partner-down", NAME, *ctl])
    assert "partner-down" in res.stdout
    secondary.wait_state("partner-down", 5)
    status = secondary.status()
    stos = status["my_stos"]
    assert isinstance(stos, int)
    assert "I move from communications-interrupted to partner-down" in secondary.log()
    unknown = h2.run([*tandem_command(), "partner-down", "no-such-peer", *ctl], check=False)
    assert unknown.returncode == 1 and "no failover peer named" in unknown.stderr

    # Within MCLT: only the secondary's own BACKUP leases are handed out.
    probe = lab.add_host("probe", PROBE_ADDR)
    early = run_probe(probe, count=PROBES, base="02:20:00:00:00:00", wait=3)
    offered = {str(o[1]) for e in early.values() for o in e["offers"]}  # type: ignore[attr-defined]
    assert offered, "the secondary in PARTNER-DOWN answers"
    assert offered <= backup, sorted(offered - backup)

    # After STOS + MCLT: the whole pool (the primary's FREE leases too), real bindings.
    wait_for(lambda: time.time() > stos + MCLT + 1, MCLT + 10, "STOS + MCLT")
    late = run_probe(probe, count=PROBES, base="02:20:00:00:00:00", wait=6, bind=True)
    acked = {mac: str(e["acked"]) for mac, e in late.items() if e["acked"]}
    assert len(acked) == PROBES, f"only {len(acked)} of {PROBES} bound"
    assert all(e["server"] == SECONDARY_IP for e in late.values())
    taken = set(acked.values())
    assert len(taken) == PROBES and addr1 not in taken
    assert taken & free, "PARTNER-DOWN after MCLT uses the primary's free leases"
    wait_for(lambda: len(secondary.active()) >= PROBES + 1, 10, "bindings committed")

    # The primary returns: RECOVER (it learns everything), then NORMAL on both sides.
    primary.start()
    primary.wait_state("normal", 120)
    secondary.wait_state("normal", 60)
    assert "to recover" in primary.log()
    wait_agree(primary, secondary, 30)
    assert_unique_clients(primary, secondary)
    active = primary.active()
    assert active.get(addr1) == mac1
    for mac, addr in acked.items():
        assert active.get(addr) == mac

    # A newcomer in NORMAL gets an address nobody holds.
    cli2 = Dhclient(lab.add_host("cli2"))
    cli2.start()
    ev2 = cli2.wait_lease(30)
    assert str(ev2.address) not in taken | {addr1}
    wait_agree(primary, secondary, 15)
    assert_unique_clients(primary, secondary)
