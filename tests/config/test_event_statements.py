"""``on commit/release/expiry`` blocks and what goes in them, parsed into the model.

tests/configs/lease-events.conf (accepted by ``dhcpd -t`` too: tests/config/test_dhcpd_verdict.py)
puts them in every scope dhcpd allows: global, class, host in a group, shared-network, subnet,
pool.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.config import ConfigError, load, parse_text
from tandem.config.model import (
    Conditional,
    Execute,
    LogStatement,
    OnEvent,
    SetVar,
    Unimplemented,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _ons(block: tuple[object, ...]) -> list[OnEvent]:
    return [s for s in block if isinstance(s, OnEvent)]


def test_the_corpus_config_parses_into_events_in_every_scope() -> None:
    cfg = load(str(CONFIGS / "lease-events.conf"))
    assert cfg.warnings == ()  # nothing "not implemented" any more
    commit, release, expiry = _ons(cfg.statements)
    assert (commit.events, release.events, expiry.events) == (
        ("commit",),
        ("release",),
        ("expiry",),
    )
    set_ip, set_hw, run = commit.body
    assert isinstance(set_ip, SetVar) and set_ip.name == "clip" and set_ip.expr is not None
    assert set_ip.expr.op == "binary-to-ascii"
    assert isinstance(set_hw, SetVar) and set_hw.name == "clhw"
    assert isinstance(run, Execute) and run.program == "/usr/local/sbin/dhcp-event"
    assert [a.op for a in run.args] == [
        "const-data", "variable", "variable", "pick-first-value", "binary-to-ascii"
    ]  # fmt: skip
    assert isinstance(expiry.body[-1], SetVar) and expiry.body[-1].expr is None  # unset
    (phones,) = cfg.classes
    (on_phone,) = _ons(phones.chain[-1])
    (log,) = on_phone.body
    assert isinstance(log, LogStatement) and log.level == "info" and log.expr.op == "concat"
    (printer,) = cfg.hosts
    (on_printer,) = _ons(printer.chain[-1])
    assert isinstance(on_printer.body[0], LogStatement) and on_printer.body[0].level == "error"
    (campus,) = cfg.shared_networks
    (gone,) = _ons(campus.chain[-1])
    assert gone.events == ("release", "expiry")
    (subnet,) = cfg.subnets
    (on_subnet,) = _ons(subnet.chain[-1])
    cond, program = on_subnet.body
    assert isinstance(cond, Conditional) and len(cond.branches) == 2
    debug = cond.branches[1][1][0]
    assert isinstance(debug, LogStatement) and debug.level == "debug"  # dhcpd's default
    assert isinstance(program, Execute)
    (pool,) = subnet.pools
    (cleared,) = _ons(pool.chain[-1])
    assert cleared.events == ("expiry",) and cleared.body == ()


def test_execute_and_log_outside_an_on_block_stay_unimplemented() -> None:
    text = """\
log(info, "every packet");
execute("/bin/true");
set plain = "x";
set fn(a, b) { log(info, a); }
subnet 10.0.0.0 netmask 255.255.255.0 { }
"""
    cfg = parse_text(text)
    kinds = [type(s).__name__ for s in cfg.statements]
    assert kinds == ["Unimplemented", "Unimplemented", "SetVar", "Unimplemented"]
    assert [s.keyword for s in cfg.statements if isinstance(s, Unimplemented)] == [
        "log", "execute", "set"
    ]  # fmt: skip
    messages = " ".join(w.message for w in cfg.warnings)
    assert "'log'" in messages and "'execute'" in messages and "set NAME(...)" in messages


def test_a_bad_statement_inside_on_is_an_error_at_its_place() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_text("on commit {\n  execute(foo);\n}\n")
    assert ":2:" in str(caught.value) and "quoted string" in str(caught.value), caught.value
