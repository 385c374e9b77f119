"""A fresh pair with a 60,000-address pool reaches NORMAL and is balanced (dhcpd: 76 s).

Timings are printed, not asserted (the machine is shared and noisy); what is asserted is the
outcome and that the work per lease does not grow with the pool (queue steps per lease).
"""

from __future__ import annotations

import time

from fokit import T0, link, make_node, seed_conf

POOL = ("10.1.0.0", "10.1.234.95")  # 234 * 256 + 96 = 60,000 addresses (the bench pool)


def test_60000_pool_normal_and_balanced() -> None:
    p = make_node("primary", seed_conf("primary", pool=POOL), T0)
    s = make_node("secondary", seed_conf("secondary", pool=POOL), T0)
    pair = link(p, s, T0)
    cpu = time.process_time()
    pair.connect()
    cpu = time.process_time() - cpu
    print(f"\n60,000-address pool: NORMAL and balanced in {cpu:.2f} s CPU, "
          f"{pair.bytes_moved} bytes on the link")  # fmt: skip
    assert (p.state(), s.state()) == ("normal", "normal")
    for node in (p, s):
        (pool,) = node.engine.status()["pools"]  # type: ignore[misc]
        assert pool == {
            "pool": 1,
            "ranges": f"{POOL[0]}-{POOL[1]}",
            "total": 60000,
            "free": 30000,
            "backup": 30000,
        }
        assert node.engine.status()["unacked_updates"] == 0
    # Both sides committed the 30,000 moved leases; the secondary owns them as BACKUP.
    assert len(p.journal) == len(s.journal) == 30000
    assert all(x.binding_state.keyword == "backup" for x in s.journal.values())
    # 30,000 BNDUPD (49 bytes) + 30,000 BNDACK (20 bytes) + the handshake.
    assert 30000 * 69 < pair.bytes_moved < 30000 * 69 + 2000
    assert p.server.db.ops <= 30000 + 10  # one queue step per lease moved
