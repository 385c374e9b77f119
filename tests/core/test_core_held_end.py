"""Without failover too, a renewal never ends before the end its client already holds
(tests/core/failover/test_fo_held_end.py has the failover case and the reason)."""

from __future__ import annotations

from corekit import SEED_BLOCK, FakeClient, Param, config, mac, subnet

from tandem.core.server import DhcpServer, Outcome

T0 = 1_000_000


def _time(out: Outcome) -> int:
    assert out.reply is not None, out.log
    return int.from_bytes(out.reply.packet.options[51], "big")


def _held(ends: int) -> tuple[DhcpServer, FakeClient]:
    srv = DhcpServer(config(subnet(block=(*SEED_BLOCK, Param("default-lease-time", 600)))))
    c = FakeClient(srv, mac(1))
    assert _time(c.dora(T0)) == 600
    srv.db.by_addr[int(c.address)].ends = ends  # type: ignore[arg-type]
    return srv, c


def test_a_shorter_lease_time_does_not_cut_a_held_lease() -> None:
    _, c = _held(T0 + 5000)  # an earlier grant under a longer default-lease-time
    renewal = c.send(3, T0 + 2000, requested=str(c.address))  # INIT-REBOOT: it holds it
    assert T0 + 2000 + _time(renewal) == T0 + 5000, renewal.log


def test_a_selecting_request_holds_nothing_and_gets_the_scope_time() -> None:
    _, c = _held(T0 + 5000)
    sid = "192.0.2.1"
    again = c.send(3, T0 + 2000, requested=str(c.address), server_id=sid)
    assert _time(again) == 600, again.log
