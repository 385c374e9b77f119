"""``lease limit N;`` (core.billing): per-class billing as dhcpd 4.4.3's ack_lease does it."""

from __future__ import annotations

import pytest
from corekit import SERVER_IP, A, FakeClient, RxMeta, mac

from tandem.config import parse_text
from tandem.config.errors import ConfigError
from tandem.core.billing import Billing
from tandem.core.server import DhcpServer, Outcome

T0 = 1_000_000
RELAY = "10.9.0.1"
META = RxMeta("eth0", (SERVER_IP,), A(RELAY), 67, unicast=True)
SID = str(SERVER_IP.ip)

CONF = """
authoritative;
default-lease-time 600;
max-lease-time 600;
class "port" { match option agent.circuit-id; lease limit 1; }
subclass "port" "eth1";
subclass "port" "eth2" { lease limit 2; }
subclass "port" "eth3" { lease limit 0; }
class "cpe" { match if exists agent.remote-id; spawn with option agent.remote-id; lease limit 1; }
subnet 10.9.0.0 netmask 255.255.255.0 { range 10.9.0.10 10.9.0.50; }
"""


def agent(circuit: bytes = b"", remote: bytes = b"") -> dict[int, bytes]:
    data = b""
    if circuit:
        data += bytes([1, len(circuit)]) + circuit
    if remote:
        data += bytes([2, len(remote)]) + remote
    return {82: data}


def server(text: str = CONF) -> DhcpServer:
    return DhcpServer(parse_text(text))


def discover(srv: DhcpServer, n: int, now: int, **kw: bytes) -> Outcome:
    return FakeClient(srv, mac(n), meta=META).send(1, now, giaddr=RELAY, extra=agent(**kw))


def dora(srv: DhcpServer, n: int, now: int, **kw: bytes) -> tuple[FakeClient, Outcome]:
    c = FakeClient(srv, mac(n), meta=META)
    return c, c.dora(now, giaddr=RELAY, extra=agent(**kw))


def acked(out: Outcome) -> bool:
    return out.reply is not None and out.reply.packet.options[53] == b"\x05"


def test_no_limit_no_billing() -> None:
    srv = server("subnet 10.9.0.0 netmask 255.255.255.0 { range 10.9.0.10 10.9.0.50; }")
    assert srv.ctx.billing is None


def test_second_client_on_a_full_port_is_ignored_with_dhcpds_line() -> None:
    srv = server()
    _, first = dora(srv, 1, T0, circuit=b"eth1")
    assert acked(first)
    out = discover(srv, 2, T0 + 1, circuit=b"eth1")
    assert out.reply is None and out.drop == "lease limit"
    assert out.log[-1] == (
        "DHCPDISCOVER from 52:54:00:00:00:02 via 10.9.0.1: no available billing: "
        "lease limit reached in all matching classes (last: 'port')"
    )
    # another circuit still gets one; eth2 has its own limit of 2; eth3's limit 0 is no limit
    assert acked(dora(srv, 3, T0 + 2, circuit=b"eth2")[1])
    assert acked(dora(srv, 4, T0 + 2, circuit=b"eth2")[1])
    assert discover(srv, 5, T0 + 2, circuit=b"eth2").drop == "lease limit"
    for n in (6, 7, 8):
        assert acked(dora(srv, n, T0 + 3, circuit=b"eth3")[1])
    # a circuit without a subclass is no member of "port" (match, not spawn): no limit
    for n in (9, 10):
        assert acked(dora(srv, n, T0 + 3, circuit=b"eth9")[1])


def test_offer_does_not_bill_the_request_is_ignored_not_naked() -> None:
    srv = server()
    a, b = FakeClient(srv, mac(1), meta=META), FakeClient(srv, mac(2), meta=META)
    ex = {"giaddr": RELAY, "extra": agent(circuit=b"eth1")}
    oa, ob = a.send(1, T0, **ex), b.send(1, T0, **ex)  # both offered: offers bill nothing
    assert oa.reply is not None and ob.reply is not None
    ya, yb = oa.reply.packet.yiaddr, ob.reply.packet.yiaddr
    assert acked(a.send(3, T0, requested=str(ya), server_id=SID, **ex))
    out = b.send(3, T0, requested=str(yb), server_id=SID, **ex)
    assert out.reply is None and out.drop == "lease limit"
    assert len(out.log) == 1, out.log  # dhcpd: the refusal only, not the request line first
    assert out.log[-1].startswith(f"DHCPREQUEST for {yb} ({SID}) from 52:54:00:00:00:02 ")
    assert out.log[-1].endswith("(last: 'port')")
    # the billed client renews (same class, same lease): still acknowledged
    assert acked(a.send(3, T0 + 300, ciaddr=str(ya), **ex))


def test_release_and_expiry_free_the_billing() -> None:
    srv = server()
    a, first = dora(srv, 1, T0, circuit=b"eth1")
    assert acked(first) and a.address is not None
    assert discover(srv, 2, T0, circuit=b"eth1").drop == "lease limit"
    a.send(7, T0 + 1, ciaddr=str(a.address), server_id=SID, giaddr=RELAY)
    assert acked(dora(srv, 2, T0 + 2, circuit=b"eth1")[1])
    assert discover(srv, 3, T0 + 3, circuit=b"eth1").drop == "lease limit"
    srv.tick(T0 + 700)  # client 2's lease (600 s) has expired
    assert acked(dora(srv, 3, T0 + 700, circuit=b"eth1")[1])


def test_spawned_subclasses_each_have_their_own_counter() -> None:
    srv = server()
    assert acked(dora(srv, 1, T0, remote=b"modem-a")[1])
    out = discover(srv, 2, T0, remote=b"modem-a")
    assert out.drop == "lease limit" and out.log[-1].endswith("(last: 'cpe')")
    assert acked(dora(srv, 3, T0, remote=b"modem-b")[1])


def test_first_class_with_room_is_billed() -> None:
    srv = server()
    # in "port"/eth1 and in "cpe"/modem-a: billed to eth1 first, then to modem-a
    assert acked(dora(srv, 1, T0, circuit=b"eth1", remote=b"modem-a")[1])
    assert acked(dora(srv, 2, T0, circuit=b"eth1", remote=b"modem-a")[1])
    out = discover(srv, 3, T0, circuit=b"eth1", remote=b"modem-a")
    assert out.drop == "lease limit" and out.log[-1].endswith("(last: 'cpe')")
    billing = srv.ctx.billing
    assert billing is not None
    assert billing.count(("port", b"eth1")) == 1 and billing.count(("cpe", b"modem-a")) == 1


def test_restore_bills_loaded_leases_up_to_the_limit() -> None:
    billing = Billing.build(parse_text(CONF))
    assert billing is not None
    assert billing.restore(1, ("port", b"eth1"), 1)
    assert not billing.restore(2, ("port", b"eth1"), 1)  # full: left unbilled, as bill_class
    assert billing.billed_to(1) == ("port", b"eth1") and billing.billed_to(2) is None
    billing.unbill(1)
    assert billing.count(("port", b"eth1")) == 0


def test_lease_limit_in_subclass_parses_other_statements_do_not() -> None:
    cfg = parse_text(
        'class "c" { match option host-name; lease limit 3; }\n'
        'subclass "c" "x" { lease limit 1; }\nsubclass "c" "y";\n'
    )
    c = cfg.classes[0]
    assert c.lease_limit == 3
    assert [(s.key, s.lease_limit) for s in c.subclasses] == [(b"x", 1), (b"y", None)]
    with pytest.raises(ConfigError, match="invalid match in subclass"):
        parse_text('class "c" { match option host-name; }\nsubclass "c" "x" { match if true; }\n')


def test_restart_rebills_leases_the_lease_file_says_were_billed() -> None:
    srv = server()
    _, out = dora(srv, 1, T0, circuit=b"eth1")
    assert acked(out)
    saved = [lease.copy() for lease in out.writes]
    assert [lease.billing for lease in saved] == [("port", b"eth1")]
    again = DhcpServer(parse_text(CONF), leases=saved)
    assert again.ctx.billing is not None and again.ctx.billing.count(("port", b"eth1")) == 1
    assert discover(again, 2, T0 + 10, circuit=b"eth1").drop == "lease limit"
    # without the billing line (a lease file from before lease limit) it is not counted
    for lease in saved:
        lease.billing = None
    fresh = DhcpServer(parse_text(CONF), leases=saved)
    assert acked(dora(fresh, 2, T0 + 10, circuit=b"eth1")[1])


def test_restore_leaves_a_lease_unbilled_when_its_class_is_full_or_gone() -> None:
    srv = server()
    leases = []
    for n in (1, 2):
        _, out = dora(srv, n, T0, circuit=b"eth2")
        leases += [lease.copy() for lease in out.writes]
    for lease in leases:  # both written as billed to eth1 (limit 1): the first one wins
        lease.billing = ("port", b"eth1")
    gone = leases[0].copy()
    gone.address = A("10.9.0.20")
    gone.billing = ("nosuch", None)
    again = DhcpServer(parse_text(CONF), leases=[*leases, gone])
    assert [lease.billing for lease in again.db.by_addr.values()] == [
        ("port", b"eth1"),
        None,
        None,
    ]


def test_decline_frees_the_billing() -> None:
    srv = server()
    a, first = dora(srv, 1, T0, circuit=b"eth1")
    assert acked(first) and a.address is not None
    assert discover(srv, 2, T0 + 1, circuit=b"eth1").drop == "lease limit"
    a.send(4, T0 + 2, requested=str(a.address), server_id=SID, giaddr=RELAY)
    assert acked(dora(srv, 2, T0 + 3, circuit=b"eth1")[1])
