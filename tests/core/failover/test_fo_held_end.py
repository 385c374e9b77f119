"""An ACK never ends before the end its client already holds on the address.

With an ISC dhcpd primary, dhcpd 4.4 re-sends a stale potential expiration in its UPDREQALL
answer (the sequence of simulator seed 71489, fixed on Tandem's side by
rules.potential_expiry). A Tandem peer that took it as tsfp then clamped the next renewal to
the MCLT, below the end the client held; when that ACK was lost, the lease expired while the
client still held it. The guard: a renewal keeps at least the end the client holds.
"""

from __future__ import annotations

from fokit import T0, B, Node, dora, fresh_pair, lease_time, mac, msg_type, renew, seed_conf

DHCPACK = 5
MCLT = 300


def _held_lease() -> tuple[Node, str, int]:
    """A NORMAL pair with MCLT 300; client 7 renewed once, so it holds a full hour."""
    primary = seed_conf("primary").replace("mclt 3600;", f"mclt {MCLT};")
    p, s, pair = fresh_pair(primary=primary, secondary=seed_conf("secondary"))
    pair.connect()
    assert (p.state(), s.state()) == ("normal", "normal")
    _, ack = dora(p, mac(7), T0)
    assert ack is not None and ack.reply is not None
    assert lease_time(ack) == MCLT  # the peer knows nothing yet: the clamp
    p.commit_dhcp(ack)
    pair.pump()
    addr = str(ack.reply.packet.yiaddr)
    ack = renew(p, mac(7), addr, T0 + 200)
    assert msg_type(ack) == DHCPACK and lease_time(ack) > MCLT  # the peer acked more
    p.commit_dhcp(ack)
    pair.pump()
    return p, addr, T0 + 200 + lease_time(ack)


def test_renewal_after_a_stale_potential_expiration_keeps_the_clients_end() -> None:
    p, addr, held = _held_lease()
    lease = p.lease(addr)
    assert lease is not None and lease.binding_state is B.ACTIVE and lease.ends == held
    lease.tsfp = 0  # a stale potential expiration from the peer: the MCLT clamp applies
    now = T0 + 200 + (held - T0 - 200) * 2 // 5  # 40 % gone: past dhcp-cache-threshold
    ack = renew(p, mac(7), addr, now)
    assert msg_type(ack) == DHCPACK, ack.log
    assert now + lease_time(ack) >= held  # was now + MCLT, hours before the client's end
    after = p.lease(addr)
    assert after is not None and after.ends is not None and after.ends >= held
    assert after.tstp is not None and after.tstp >= after.ends  # the peer is told no less


def test_a_client_whose_end_is_near_still_gets_only_the_clamp() -> None:
    p, addr, held = _held_lease()
    lease = p.lease(addr)
    assert lease is not None
    lease.tsfp = 0
    now = held - 100  # the client holds 100 s more: the MCLT clamp (300 s) is longer
    ack = renew(p, mac(7), addr, now)
    assert msg_type(ack) == DHCPACK
    assert lease_time(ack) == MCLT
