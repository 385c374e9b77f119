"""Lease events in the core: which ``on`` block runs, in which order, with which values.

Each expression is evaluated through the whole path: a dhcpd.conf text with ``on commit {
log(info, EXPR); }``, parsed, served to a client, and the ``LogLine`` read back from
``Outcome.events`` (nothing runs in the core: the actions are data).
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from corekit import META, FakeClient, mac, packet

from tandem.config import parse_text
from tandem.core import events as events_module
from tandem.core.lease import BindingState, Lease
from tandem.core.server import DhcpServer
from tandem.core.types import LogLine, Outcome, RunProgram
from tandem.store.leasefile import format_lease

T0 = 1_000_000
HOST_NAME = {12: b"Printer"}
CIRCUIT = {82: b"\x01\x04eth7\x02\x02ab"}  # agent circuit-id "eth7", remote-id "ab"

BASE = """\
authoritative;
default-lease-time 600;
max-lease-time 600;
subnet 192.0.2.0 netmask 255.255.255.0 {
    option routers 192.0.2.5;
    range 192.0.2.100 192.0.2.200;
    __SUBNET__
}
"""


def serve(global_text: str = "", subnet_text: str = "") -> DhcpServer:
    text = global_text + BASE.replace("__SUBNET__", subnet_text)
    return DhcpServer(parse_text(text))


def lines(out: Outcome) -> list[str]:
    return [a.text for a in out.events or () if isinstance(a, LogLine) and a.level == "info"]


def programs(out: Outcome) -> list[tuple[str, ...]]:
    return [a.argv for a in out.events or () if isinstance(a, RunProgram)]


def ack(srv: DhcpServer, n: int = 7, now: int = T0, **extra: bytes) -> tuple[Outcome, str]:
    client = FakeClient(srv, mac(n))
    options = {**HOST_NAME, **CIRCUIT}
    options.update({int(k.removeprefix("o")): v for k, v in extra.items()})
    out = client.dora(now, extra=options)
    assert client.address is not None, out.log
    return out, str(client.address)


# --- every data expression dhcpd users put in events, against known values ---------------

EXPRESSIONS = [
    ('binary-to-ascii(10, 8, ".", leased-address)', "{ip}"),
    ('binary-to-ascii(16, 8, ":", substring(hardware, 1, 6))', "52:54:0:0:0:7"),
    ('binary-to-ascii(16, 8, ":", hardware)', "1:52:54:0:0:0:7"),
    ("option host-name", "Printer"),
    ("option agent.circuit-id", "eth7"),
    ("substring(option host-name, 1, 3)", "rin"),
    ("substring(option host-name, 5, 99)", "er"),
    ("suffix(option host-name, 3)", "ter"),
    ("suffix(option host-name, 99)", "Printer"),
    ('concat("name=", option host-name, "/", option agent.circuit-id)', "name=Printer/eth7"),
    ('pick-first-value(option domain-name, option host-name, "none")', "Printer"),
    ('pick-first-value(option domain-name, "none")', "none"),
    ("ucase(option host-name)", "PRINTER"),
    ("lcase(option host-name)", "printer"),
    ('binary-to-ascii(10, 32, "", encode-int(lease-time, 32))', "600"),
    ('binary-to-ascii(10, 16, "", encode-int(42, 16))', "42"),
    ('binary-to-ascii(10, 8, ".", reverse(1, leased-address))', "{rev}"),
    ('binary-to-ascii(10, 8, ".", config-option routers)', "192.0.2.5"),
    ('binary-to-ascii(10, 8, ".", packet(0, 4))', "1.1.6.0"),
    ('binary-to-ascii(10, 8, ".", 01:02:0a)', "1.2.10"),
    ('binary-to-ascii(8, 8, " ", 08:ff)', "10 377"),
    ('"a constant"', "a constant"),
    ('concat(binary-to-ascii(16, 16, ".", 01:02:ab:cd), "")', "102.abcd"),
]


@pytest.mark.parametrize(("expr", "expected"), EXPRESSIONS)
def test_data_expressions_in_on_commit(expr: str, expected: str) -> None:
    srv = serve(f"on commit {{ log(info, {expr}); }}\n")
    out, ip = ack(srv)
    rev = ".".join(reversed(ip.split(".")))
    assert lines(out) == [expected.format(ip=ip, rev=rev)]


@pytest.mark.parametrize(
    "expr",
    [
        'concat("x", option domain-name)',  # concat fails when a side has no value
        'binary-to-ascii(10, 16, ".", 01:02:03)',  # not a whole number of 16-bit words
        'binary-to-ascii(10, 12, ".", 01:02)',  # width must be 8, 16 or 32
        "reverse(2, 01:02:03)",
        "option domain-name",
    ],
)
def test_an_expression_without_a_value_logs_nothing(expr: str) -> None:
    srv = serve(f'on commit {{ log(info, {expr}); log(info, "after"); }}\n')
    out, _ = ack(srv)
    assert lines(out) == ["after"]


BOOLEANS = [
    ("exists host-name", True),
    ("exists domain-name", False),
    ('option host-name = "Printer"', True),
    ('option host-name != "Printer"', False),
    ('exists host-name and option agent.circuit-id = "eth7"', True),
    ('exists domain-name or option host-name = "nope"', False),
    ("not exists domain-name", True),
    ('lcase(option host-name) = "printer" and not (exists domain-name)', True),
    ("lease-time = 600", True),
]


@pytest.mark.parametrize(("cond", "expected"), BOOLEANS)
def test_conditions_in_on_commit(cond: str, expected: bool) -> None:
    srv = serve(f'on commit {{ if {cond} {{ log(info, "yes"); }} else {{ log(info, "no"); }} }}\n')
    out, _ = ack(srv)
    assert lines(out) == ["yes" if expected else "no"]


def test_host_decl_name_and_log_levels() -> None:
    text = """\
host printer { hardware ethernet 52:54:00:00:00:07; }
on commit {
    log(info, host-decl-name);
    log(error, "an error");
    log("debug by default");
    log(fatal, "fatal");
}
"""
    out, _ = ack(serve(text))
    got = [(a.level, a.text) for a in out.events or () if isinstance(a, LogLine)]
    assert got == [("info", "printer"), ("error", "an error"), ("debug", "debug by default"),
                   ("fatal", "fatal")]  # fmt: skip


# --- statements: order and scopes ----------------------------------------------------------


def test_the_innermost_scope_sets_the_block_as_in_ack_lease() -> None:
    """global, subnet, pool, classes (the last matched first), host: a later ``on commit``
    replaces an earlier one; only one commit block runs."""
    text = """\
on commit { log(info, "global"); }
class "first" { match if exists host-name; on commit { log(info, "class first"); } }
class "second" { match if exists host-name; on commit { log(info, "class second"); } }
subnet 198.51.100.0 netmask 255.255.255.0 { }
"""
    srv = DhcpServer(
        parse_text(text + BASE.replace("__SUBNET__", 'on commit { log(info, "subnet"); }'))
    )
    out, _ = ack(srv)
    assert lines(out) == ["class first"]
    # Without the classes: the subnet's; with a host: the host's.
    assert lines(ack(serve('on commit { log(info, "global"); }\n',
                           'on commit { log(info, "subnet"); }'))[0]) == ["subnet"]  # fmt: skip
    hosted = 'host h { hardware ethernet 52:54:00:00:00:07; on commit { log(info, "host"); } }\n'
    assert lines(ack(serve(text.replace("subnet 198", hosted + "subnet 198")))[0]) == ["host"]
    assert lines(ack(serve('on commit { log(info, "global"); }\n'))[0]) == ["global"]


def test_pool_scope_overrides_the_subnet() -> None:
    text = """\
authoritative;
subnet 192.0.2.0 netmask 255.255.255.0 {
    on commit { log(info, "subnet"); }
    pool { range 192.0.2.100 192.0.2.200; on commit { log(info, "pool"); } }
}
"""
    out, _ = ack(DhcpServer(parse_text(text)))
    assert lines(out) == ["pool"]


def test_statements_run_in_order_with_set_unset_and_elsif() -> None:
    text = """\
on commit {
    set who = option host-name;
    log(info, concat("who=", who));
    if option host-name = "x" { log(info, "x"); }
    elsif option agent.circuit-id = "eth7" {
        log(info, "eth7");
        set port = option agent.circuit-id;
    }
    else { log(info, "else"); }
    execute("/bin/prog", "commit", who, binary-to-ascii(10, 8, ".", leased-address));
    unset who;
    log(info, pick-first-value(who, "unset"));
    execute("/bin/never", who);
}
"""
    out, ip = ack(serve(text))
    assert lines(out) == ["who=Printer", "eth7", "unset"]
    assert programs(out) == [("/bin/prog", "commit", "Printer", ip)]
    debug = [a.text for a in out.events or () if isinstance(a, LogLine) and a.level == "debug"]
    assert "execute: bad arg 1" in debug  # the second execute had no value: not run
    (lease,) = [x for x in out.writes if str(x.address) == ip]
    assert lease.variables == {"port": "eth7"}
    assert 'set port = "eth7";' in format_lease(lease)


def test_set_outside_on_runs_at_commit_and_reaches_the_lease_file() -> None:
    srv = serve("", "set hn = option host-name;")
    out, _ = ack(srv)
    (lease,) = out.writes
    assert lease.variables == {"hn": "Printer"}
    assert out.events is None  # no actions, only the variable


# --- release and expiry --------------------------------------------------------------------

EVENTS = """\
on commit { execute("/bin/ev", "commit", binary-to-ascii(10, 8, ".", leased-address)); }
on release { execute("/bin/ev", "release", binary-to-ascii(10, 8, ".", leased-address),
                     pick-first-value(option host-name, "no packet")); }
on expiry { execute("/bin/ev", "expiry", binary-to-ascii(10, 8, ".", leased-address),
                    binary-to-ascii(16, 8, ":", substring(hardware, 1, 6)),
                    pick-first-value(option host-name, "no packet")); }
"""


def test_expiry_runs_at_the_end_of_the_lease_from_tick_alone() -> None:
    srv = serve(EVENTS)
    out, ip = ack(srv)
    assert programs(out) == [("/bin/ev", "commit", ip)]
    srv.tick(T0 + 599)
    assert srv.take_events() == []
    changed = srv.tick(T0 + 600)
    assert [str(x.address) for x in changed] == [ip]
    events = srv.take_events()
    assert [a.argv for a in events if isinstance(a, RunProgram)] == [
        ("/bin/ev", "expiry", ip, "52:54:0:0:0:7", "no packet")
    ]
    assert srv.take_events() == []  # taken once
    srv.tick(T0 + 2000)
    assert srv.take_events() == []  # and never again


def test_release_runs_its_block_and_cancels_the_expiry() -> None:
    srv = serve(EVENTS)
    client = FakeClient(srv, mac(7))
    out = client.dora(T0, extra=HOST_NAME)
    ip = str(client.address)
    out = client.send(7, T0 + 10, ciaddr=ip, extra=HOST_NAME)
    assert programs(out) == [("/bin/ev", "release", ip, "Printer")]
    srv.tick(T0 + 700)
    assert srv.take_events() == []


def test_release_drops_the_lease_variables_after_its_block() -> None:
    text = 'on commit { set tag = "t1"; }\non release { log(info, concat("was ", tag)); }\n'
    srv = serve(text)
    client = FakeClient(srv, mac(7))
    client.dora(T0)
    out = client.send(7, T0 + 10, ciaddr=str(client.address))
    assert lines(out) == ["was t1"]
    (lease,) = out.writes
    assert lease.variables == {}


def test_on_release_or_expiry_and_a_renewal_moves_the_expiry() -> None:
    srv = serve('on release or expiry { log(info, "gone"); }\n')
    client = FakeClient(srv, mac(7))
    client.dora(T0)
    client.dora(T0 + 300)  # renewed: ends at T0 + 900
    srv.tick(T0 + 600)
    assert srv.take_events() == []
    srv.tick(T0 + 900)
    assert [a.text for a in srv.take_events() if isinstance(a, LogLine)] == ["gone"]


def test_an_empty_on_clears_an_outer_block() -> None:
    srv = serve('on expiry { log(info, "gone"); }\n', "on expiry;")
    ack(srv)
    srv.tick(T0 + 600)
    assert srv.take_events() == []


def test_restart_restores_the_scopes_blocks_for_loaded_leases() -> None:
    srv = serve(EVENTS)
    _, ip = ack(srv)
    leases = [x.copy() for x in srv.leases()]
    again = DhcpServer(parse_text(EVENTS + BASE.replace("__SUBNET__", "")), leases=leases)
    again.tick(T0 + 600)
    assert [a.argv[:3] for a in again.take_events() if isinstance(a, RunProgram)] == [
        ("/bin/ev", "expiry", ip)
    ]


# --- nothing evaluated without ``on`` blocks ---------------------------------------------


def test_no_on_block_means_no_events_object_and_nothing_evaluated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("lease events evaluated for a config without on blocks")

    monkeypatch.setattr(events_module.LeaseEvents, "after_packet", boom)
    monkeypatch.setattr(events_module.LeaseEvents, "tick", boom)
    srv = serve()
    assert srv.ctx.events is None
    client = FakeClient(srv, mac(7))
    out = client.dora(T0, extra=HOST_NAME)
    assert out.events is None
    out = client.send(7, T0 + 1, ciaddr=str(client.address))
    assert out.events is None
    srv.tick(T0 + 10_000)
    assert srv.take_events() == []


def test_with_on_blocks_the_packet_path_evaluates() -> None:
    srv = serve(EVENTS)
    events = srv.ctx.events
    assert events is not None
    before = events.runs
    ack(srv)
    assert events.runs > before


def test_a_static_host_gets_its_commit_event() -> None:
    text = (
        "host fixed { hardware ethernet 52:54:00:00:00:07; fixed-address 192.0.2.50; }\n" + EVENTS
    )
    out, ip = ack(serve(text))
    assert ip == "192.0.2.50"
    assert programs(out) == [("/bin/ev", "commit", ip)]
    assert IPv4Address(ip) not in {x.address for x in out.writes}


def test_a_declined_lease_runs_its_expiry_block_outside_failover() -> None:
    srv = serve(EVENTS)
    client = FakeClient(srv, mac(7))
    client.dora(T0)
    ip = str(client.address)
    out = client.send(4, T0 + 5, requested=ip)
    # As dhcpd's abandon_lease: the hardware address is gone when the block runs.
    assert programs(out) == [("/bin/ev", "expiry", ip, "", "no packet")]
    srv.tick(T0 + 700)
    assert srv.take_events() == []


def test_a_bootp_reply_is_a_commit() -> None:
    text = """\
authoritative;
on commit { execute("/bin/ev", "bootp", binary-to-ascii(10, 8, ".", leased-address)); }
subnet 192.0.2.0 netmask 255.255.255.0 { range dynamic-bootp 192.0.2.100 192.0.2.200; }
"""
    srv = DhcpServer(parse_text(text))
    out = srv.handle(packet(None, mac(9)), META, T0)
    assert out.reply is not None, out.log
    assert programs(out) == [("/bin/ev", "bootp", str(out.reply.packet.yiaddr))]


def test_defined_and_variables_across_events() -> None:
    text = """\
on commit { set seen = "yes"; if defined(seen) { log(info, concat("commit ", seen)); } }
on expiry { log(info, pick-first-value(seen, "none")); }
"""
    srv = serve(text)
    out, _ = ack(srv)
    assert lines(out) == ["commit yes"]
    srv.tick(T0 + 600)
    assert [a.text for a in srv.take_events() if isinstance(a, LogLine)] == ["yes"]


def test_restart_gives_no_blocks_to_leases_of_a_failover_pool() -> None:
    """The lease file does not say which server of a pair committed a lease."""

    text = (
        EVENTS
        + """\
failover peer "fo" {
    primary; address 192.0.2.1; port 647; peer address 192.0.2.2; peer port 647;
    max-response-delay 60; max-unacked-updates 10; mclt 3600; split 128;
}
authoritative;
subnet 192.0.2.0 netmask 255.255.255.0 {
    pool { failover peer "fo"; range 192.0.2.100 192.0.2.200; }
}
"""
    )
    lease = Lease(IPv4Address("192.0.2.150"), BindingState.ACTIVE, starts=T0, ends=T0 + 600)
    lease.hardware = (1, mac(7))
    srv = DhcpServer(parse_text(text), leases=[lease])
    assert srv.ctx.events is not None
    assert srv.ctx.events.hooks == {}


def test_a_reload_keeps_the_blocks_set_by_earlier_commits() -> None:
    """A class's expiry block (restore cannot rebuild it without the packet) survives a
    reload; the new config's own blocks apply to the next commit."""
    from tandem.core.reload import plan, rebuild

    text = """\
class "printers" { match if exists host-name; on expiry { log(info, "printer gone"); } }
"""
    old = serve(text)
    ack(old)
    config = parse_text(text + BASE.replace("__SUBNET__", 'on commit { log(info, "new"); }'))
    new, _ = rebuild(old, config, {}, plan(old.config, config), now=T0 + 1)
    new.tick(T0 + 600)
    assert [a.text for a in new.take_events() if isinstance(a, LogLine)] == ["printer gone"]
    out, _ = ack(new, n=8, now=T0 + 601)
    assert lines(out) == ["new"]
