"""``output_needs_commit``: when the engine's output may leave before the records it returned.

The link sends at once when the engine says False (issue 3: two syncs per window made a fresh
60,000-address pair take 20-30 s to balance). That is only sound if no BNDUPD, BNDACK or STATE
released by such a take depends on a record of the same take. This pumps a fresh seed pair
through pool balancing and checks it message by message.
"""

from __future__ import annotations

from fokit import T0, fresh_pair, seed_conf

from tandem.core.failover.engine import FailoverEngine
from tandem.wire.failover_codes import MessageType
from tandem.wire.failover_fast import Binding, decode_binding
from tandem.wire.framing import FrameBuffer

M = MessageType


def frames(data: bytes) -> list[object]:
    buf = FrameBuffer()
    buf.feed(data)
    return [decode_binding(f) for f in buf]


def test_only_ack_bookkeeping_lets_output_leave_before_its_records() -> None:
    pool = ("192.0.2.10", "192.0.2.250")
    p, s, pair = fresh_pair(
        primary=seed_conf("primary", pool=pool), secondary=seed_conf("secondary", pool=pool)
    )
    engines: tuple[FailoverEngine, FailoverEngine] = (p.engine, s.engine)
    durable: dict[str, set[int]] = {"primary": set(), "secondary": set()}
    ungated_updates = 0
    gated_takes = {"primary": 0, "secondary": 0}
    for eng in engines:
        eng.connection_made(T0)
    for _ in range(100_000):
        moved = False
        for src, dst in (engines, engines[::-1]):
            writes, records = src.take_writes()
            gated = src.output_needs_commit()
            gated_takes[src.role] += gated
            fresh = {int(lease.address) for lease in writes}
            data = src.data_to_send()
            for msg in frames(data):
                assert not isinstance(msg, Binding) or msg.address is not None
                if isinstance(msg, Binding) and msg.type == M.BNDUPD:
                    a = msg.address or 0
                    if not gated:
                        # Its record was returned, and committed, by an earlier take.
                        assert a in durable[src.role] and a not in fresh
                        ungated_updates += 1
                elif isinstance(msg, Binding) and msg.type == M.BNDACK and msg.reject is None:
                    assert gated, "a BNDACK must wait for the update it acks"
                elif getattr(msg, "type", None) == M.STATE:
                    assert gated or not records
            assert gated or not records  # a state record always gates
            durable[src.role] |= fresh  # committed after the send when ungated: still durable
            if data:
                moved = True
                dst.receive_data(data, T0)
        if not moved:
            break
    assert (p.state(), s.state()) == ("normal", "normal")
    pools_p = p.engine.leases.pools.summary()
    pools_s = s.engine.leases.pools.summary()
    assert pools_p == pools_s and pools_p[0]["backup"] > 50  # balanced and agreed
    # The fast path was taken: after the first window, every window of BNDUPDs left ungated.
    assert ungated_updates >= pools_p[0]["backup"] - 2 * p.engine.link.partner_max_unacked
    assert gated_takes["secondary"] > 0 and pair is not None
