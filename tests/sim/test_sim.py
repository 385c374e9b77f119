"""The deterministic simulator: hundreds of seeds hold the invariants, and the checker
really catches broken servers (an invariant nobody can break proves nothing)."""

from __future__ import annotations

import pytest

from pure_build import pure_python
from tandem.core.lease import BindingState
from tandem.core.server import DhcpServer
from tandem.core.types import Outcome
from tandem.sim.__main__ import main
from tandem.sim.configs import AUTO_PARTNER_DOWN, VARIANTS
from tandem.sim.faults import Fault, describe
from tandem.sim.journal import SimJournal
from tandem.sim.node import SimNode
from tandem.sim.runner import plan, report, run_seed, shrink
from tandem.sim.world import World

SEEDS = 300
CHUNK = 25
S = 1000


@pytest.mark.parametrize("first", range(0, SEEDS, CHUNK))
def test_seeds_hold_the_invariants(first: int) -> None:
    bad = []
    for seed in range(first, first + CHUNK):
        out = run_seed(seed)
        assert out.world.stats["acks"] > 0, f"seed {seed}: no client was ever served"
        if out.violation is not None:
            bad.append("\n".join(report(out, None, 0)))
    assert not bad, "\n".join(bad)


def test_seeds_cover_the_failover_states_and_faults() -> None:
    """The seeds above are not all quiet: together they reach the interesting states."""
    visited: set[str] = set()
    kinds: set[str] = set()
    crashes = torn = handovers = 0
    for seed in range(60):
        out = run_seed(seed)
        visited |= out.world.visited
        kinds |= {f.kind for f in out.faults}
        crashes += out.world.stats["crashes"]
        handovers += out.world.stats["handovers"]
        torn += sum(n.journal.torn_writes for n in out.world.nodes)
    assert {
        "recover",
        "recover-done",
        "normal",
        "communications-interrupted",
        "partner-down",
        "potential-conflict",
        "conflict-done",
    } <= visited
    assert kinds == {
        "cut", "silent", "loss", "dup", "delay", "peer_delay", "crash", "partner_down", "clock",
        "handover", "part", "wcrash", "rate",
    }  # fmt: skip
    assert "shutdown" in visited
    assert crashes >= 10
    assert torn >= 1
    assert handovers >= 10


def test_seed_configs_are_the_blog_posts_verbatim() -> None:
    """The 'seed' variant is the repository's copy of the seed post's two configs."""
    from pathlib import Path

    from tandem.sim.configs import SEED_PRIMARY, SEED_SECONDARY

    configs = Path(__file__).parent.parent / "configs"
    for role, text in (("primary", SEED_PRIMARY), ("secondary", SEED_SECONDARY)):
        lines = (configs / f"seed-{role}.conf").read_text().splitlines(keepends=True)
        assert "".join(x for x in lines if not x.startswith("# ")) == text
        # verbatim, plus the auto-partner-down line every schedule runs with
        line = f"load balance max seconds 3;\n        auto-partner-down {AUTO_PARTNER_DOWN};"
        assert VARIANTS[0].text(role) == text.replace("load balance max seconds 3;", line)


def test_runs_are_deterministic() -> None:
    a, b = run_seed(17), run_seed(17)
    assert a.world.events == b.world.events
    assert list(a.world.trace) == list(b.world.trace)
    assert a.faults == b.faults


def test_every_variant_reaches_normal_without_faults() -> None:
    for i, variant in enumerate(VARIANTS):
        seed = next(s for s in range(10_000) if plan(s, 3600)[0] is variant)
        out = run_seed(seed, faults=[])
        assert out.violation is None, (i, out.violation)
        assert out.world.both_normal() or out.world.t >= out.world.duration


# --- auto-partner-down: Tandem's rule, the witness, fencing, and dhcpd's blind timer ------


def test_auto_partner_down_runs_in_every_seed_with_probes_witness_and_grants() -> None:
    worlds = [run_seed(seed).world for seed in range(40)]
    assert all(n.hook is not None for w in worlds for n in w.nodes if n.up)
    assert sum(w.has_witness for w in worlds) >= 20
    assert sum(w.apd.stats["answers"] for w in worlds) > 1000
    assert sum(w.apd.stats["grants"] for w in worlds) > 10
    assert sum(w.witness.restarts for w in worlds if w.witness is not None) >= 3
    fenced = sum(n.hook.rule.counts["fences"] for w in worlds for n in w.nodes if n.hook)
    assert fenced > 0


def test_without_a_witness_only_the_failover_link_is_cut() -> None:
    """Seed 32 (30 clients) found it: a client side cut while the failover link was down
    (two overlapping faults) is the case no timer tells from a dead partner; without a
    witness the schedule may not draw it (it is documented as not covered)."""
    for seed in range(300):
        variant, faults = plan(seed, 3600)
        out = World(seed, variant, [], clients=0)
        if not out.has_witness:
            assert all(f.node == "failover" for f in faults if f.kind == "part"), seed
            assert not any(f.kind == "wcrash" for f in faults), seed
    assert run_seed(32, clients=30).violation is None


def test_fencing_counts_a_fenced_server_answers_no_client() -> None:
    """Seed 74 (30 clients): a server that could not prove its partner out of PARTNER-DOWN
    and served anyway gave an address twice; fenced, it does not."""

    def no_fence(node: SimNode) -> None:
        if node.hook is not None:
            node.hook.rule.fence = lambda now: None  # type: ignore[method-assign]

    broken = run_seed(74, clients=30, patch=no_fence).violation
    assert broken is not None and broken.kind == "a"
    assert run_seed(74, clients=30).violation is None


def test_blind_auto_partner_down_hands_addresses_out_twice() -> None:
    """dhcpd's timer on the same schedule: both servers PARTNER-DOWN, one address twice."""
    blind = run_seed(1, clients=30, rule="blind")
    assert blind.violation is not None and blind.violation.kind == "a"
    assert all(n.hook is None for n in blind.world.nodes)
    assert run_seed(1, clients=30).violation is None


# --- regressions: seeds that found something ------------------------------------------------


def test_seed_81_dueling_update_refused_after_partition() -> None:
    """Core bug (fixed in failover_leases.process_update): after a partition the secondary's
    EXPIRED and the primary's ACTIVE for the same lease met; the primary let its own update
    go *before* refusing the peer's, so both were lost and the lease stayed EXPIRED on the
    secondary (invariant d). The shrunk schedule was this single cut."""
    cut = [Fault("cut", 2_171_990, 3_336_260)]
    assert run_seed(81, faults=cut).violation is None
    assert run_seed(81).violation is None


def test_seeds_144_210_secondary_active_beats_primary_released() -> None:
    """Core bug (fixed in rules.incoming_wins; 30 clients): during a cut a client released
    its address to the primary, then came back and the secondary ACKed it the same address.
    On reconnect the primary's RELEASED and the secondary's un-acked ACTIVE met; ISC's rule
    (the primary wins) made the secondary drop its update, the primary freed the address and
    gave it to another client while the first held it (invariant a). Shrunk for 144 to a
    handover, a client-side partition of both servers and this cut."""
    shrunk = [
        Fault("handover", 97_364, 1_275_618, "primary"),
        Fault("part", 1_621_268, 2_310_009, "client:primary,client:secondary"),
        Fault("cut", 3_286_934, 3_600_000),
    ]
    assert run_seed(144, clients=30, faults=shrunk).violation is None
    assert run_seed(144, clients=30).violation is None
    assert run_seed(210, clients=30).violation is None


def test_seed_287_released_then_reacquired_is_not_a_lost_ack() -> None:
    """Checker bug: an ACK superseded by the client's own RELEASE was still demanded after a
    crash of the server that gave it."""
    assert run_seed(287).violation is None


def test_seed_835_later_binding_from_the_peer_counts() -> None:
    """Checker bug: a later renewal by the peer (with the peer's clock, 24 s behind) replaced
    the restarted server's own ACK; that is 'a later binding for the same client'."""
    assert run_seed(835).violation is None


def test_seed_941_clock_skew_freed_a_lease_early() -> None:
    """Core bug (fixed in FailoverEngine: BNDUPD times go out in the peer's clock): the
    secondary's clock ran 29.9 s behind; it granted a 30 s lease, the primary read the end in
    its own clock, expired and freed the lease at once (the secondary agreed: ISC's rule
    accepts EXPIRED when ends - 65 <= now), so the restarted secondary had lost the binding
    the client still held (invariant b; with a small pool it is two clients on one address).
    The shrunk schedule was the clock offset plus this crash."""
    shrunk = [
        Fault("clock", 0, 0, "secondary", -29873),
        Fault("crash", 594_757, 594_757, "secondary", 0),
    ]
    assert run_seed(941, faults=shrunk).violation is None
    assert run_seed(941).violation is None


def test_seed_2844_updreq_answer_waited_for_a_superseded_update() -> None:
    """Core bug (fixed in FailoverEngine._on_bndupd): the secondary, partner-down while the
    primary was crashed behind a partition, answered the restarted primary's UPDREQ, but one
    of its updates lost a duel to the primary's and was dropped unacked; UPDDONE waited for
    it forever and both stayed POTENTIAL-CONFLICT (invariant c). Shrunk schedule below."""
    shrunk = [
        Fault("cut", 526_523, 1_714_489),
        Fault("crash", 1_121_687, 2_077_795, "primary", 2),
        Fault("partner_down", 1_273_069, 1_273_069, "secondary"),
    ]
    out = run_seed(2844, faults=shrunk)
    assert out.violation is None, out.violation
    assert {"partner-down", "potential-conflict", "conflict-done"} <= out.world.visited
    assert run_seed(2844).violation is None


def test_seed_5152_stale_expired_from_restarted_peer_cannot_free_a_held_lease() -> None:
    """Core bug (fixed in failover_rules.expiry_believed): both crashed; the secondary
    restarted with a stale lease, expired it in STARTUP and sent EXPIRED (ends 3358 s); the
    primary, still COMMUNICATIONS-INTERRUPTED, accepted it under ISC's rule (ends - 65 <=
    now) 23 s before the end it had given client5 (3628 s), stored FREE and gave the address
    to client6 (invariant a). Now an EXPIRED naming an earlier end than ours gets no fudge;
    it is refused and the primary re-sends its binding. Shrunk: the plan minus peer_delay."""
    shrunk = [f for f in plan(5152, 3600)[1] if f.kind != "peer_delay"]
    out = run_seed(5152, faults=shrunk)
    assert out.violation is None, out.violation
    assert run_seed(5152).violation is None


def test_seed_5587_lost_duel_keeps_the_longer_lease_end() -> None:
    """Core bug (fixed in FailoverLeases._keep_later_end): after a long partition both
    servers ACKed client6's renewal in the same second; the primary's 3 s ACK won the duel
    (tie -> primary), the secondary adopted its end and forgot that it had just given
    client6 240 s, then handed the address to client3 (invariant a). Now an ACTIVE/ACTIVE
    duel for the same client keeps the later end on both sides. Shrunk: the plan minus
    peer_delay."""
    shrunk = [f for f in plan(5587, 3600)[1] if f.kind != "peer_delay"]
    out = run_seed(5587, faults=shrunk)
    assert out.violation is None, out.violation
    assert run_seed(5587).violation is None


def test_seed_93_a_partner_that_dies_mid_handover_is_no_handover() -> None:
    """Engine bug (fixed: FailoverEngine.handed_over apart from handover_done): the primary
    crashed committing its PARTNER-DOWN, so its STATE never left; the secondary stopped
    waiting when the link dropped and reported a completed handover, though its record says
    partner NORMAL (its restart rightly waited out the MCLT; invariant h). Shrunk below."""
    shrunk = [
        Fault("crash", 380_336, 1_132_312, "primary", 1),
        Fault("handover", 670_483, 1_793_541, "secondary"),
    ]
    out = run_seed(93, faults=shrunk)
    assert out.violation is None, out.violation
    assert out.world.stats["handovers"] == 0
    assert run_seed(93).violation is None


def test_seed_3_a_refused_update_keeps_the_restart_on_the_mclt_path() -> None:
    """Checker bug (invariant h was too strong): the primary's last change of a lease lost a
    duel (reject 16), so tstp > atsfp stayed on disk and the restart after a completed
    handover waited out the MCLT, which is the safe choice (core.failover.handover). The
    second handover of the shrunk schedule below is the one."""
    shrunk = [f for f in plan(3, 3600)[1] if f.kind in ("handover", "delay", "loss")][:4]
    assert [f.kind for f in shrunk] == ["handover", "delay", "loss", "handover"]
    out = run_seed(3, faults=shrunk)
    assert out.violation is None, out.violation
    assert out.world.stats["handovers"] == 2
    assert run_seed(3).violation is None


def test_seed_612_abandoned_lease_reclaimed_while_the_peer_reactivates_it() -> None:
    """Found with the handover faults, but not caused by them (the stop at 153 s only shifts
    the clients' timers; a crash or a cut there instead does not fail). During a partition the
    primary re-offered 192.0.2.115 to its last client (RELEASED, last ACTIVE), the client
    DECLINEd it, the primary abandoned it and later reclaimed it for client7 (ISC: a primary may
    always reallocate ABANDONED), while the secondary, which last knew it ACTIVE for client4,
    re-activated it for client4 (ISC: "last active with the same client") - two clients on one
    address (invariant a). ISC 4.4's rules allow the same. Fixed: an abandoned lease is
    reclaimed only once the peer has acked it (FailoverLeases._may_reclaim)."""
    shrunk = plan(612, 3600)[1][:4]
    assert [f.kind for f in shrunk] == ["handover", "silent", "loss", "crash"]
    out = run_seed(612, faults=shrunk)
    assert out.violation is None, out.violation


def test_seed_71489_an_updreqall_resend_cannot_cut_a_renewal_to_the_mclt() -> None:
    """Core bug (fixed in rules.potential_expiry): the secondary ACKed client6 until 3476 s,
    handed over at 3247 s and came back through RECOVER. The primary's UPDREQALL answer
    re-sent 192.0.2.101 with potential-expiration = its own tstp from an ACK 30 min earlier
    (ISC sends tstp); the secondary took it as tsfp, and so did the primary on the BNDACK. The
    renewal at 3356 s was then cut to the MCLT (ends 3386, below the 3476 client6 held), its
    ACK was lost, the lease expired and went to BACKUP while client6 still held it
    (invariant b at the crash). Shrunk below (the plan minus the silent fault)."""
    apd = ("part", "wcrash", "rate")  # drawn since, from their own stream
    shrunk = [f for f in plan(71489, 3600)[1] if f.kind != "silent" and f.kind not in apd]
    assert [f.kind for f in shrunk] == ["delay", "cut", "handover", "loss", "crash"]
    out = run_seed(71489, faults=shrunk)
    assert out.violation is None, out.violation
    assert out.world.stats["handovers"] == 1
    assert run_seed(71489).violation is None


def test_clean_handovers_restart_without_the_mclt_wait() -> None:
    """Both peers stop and come back in turn: PARTNER-DOWN at once, NORMAL again at once."""
    seed = next(s for s in range(100) if plan(s, 3600)[0].name == "seed")  # MCLT 3600 s
    stops = [
        Fault("handover", 600 * S, 660 * S, "primary"),
        Fault("handover", 1200 * S, 1230 * S, "secondary"),
    ]
    out = run_seed(seed, faults=stops, verbose=True)
    assert out.violation is None, out.violation
    assert out.world.stats["handovers"] == 2
    trace = "\n".join(out.world.trace)
    assert "I move from normal to shutdown" in trace
    assert "I move from recover-done to normal" in trace
    assert "recover-wait" not in trace


def test_clock_offsets_are_taken_out_of_replicated_lease_ends() -> None:
    """With the secondary 25 s behind, both servers' ACTIVE ends agree in real time (the
    final comparison of invariant c checks it lease by lease, within 3 s)."""
    seed = next(s for s in range(100) if plan(s, 3600)[0].name == "short-split")
    out = run_seed(seed, faults=[Fault("clock", 0, 0, "secondary", -25_000)])
    assert out.violation is None, out.violation
    engine = out.world.secondary.engine
    assert engine is not None and engine.link.peer_offset in (25, 26)


# --- the checker can fail ------------------------------------------------------------------


def _steal_active_addresses(node: SimNode) -> None:
    """A broken allocator: hands out an address another client holds (ACTIVE)."""
    server = node.server
    assert server is not None
    db = server.db
    real = db.take

    def take(fl, **kw):  # type: ignore[no-untyped-def]
        for a, lease in db.by_addr.items():
            if lease.binding_state is BindingState.ACTIVE and db.locate(a) is not None:
                return a, False
        return real(fl, **kw)

    db.take = take  # type: ignore[method-assign]


def _forget_writes(node: SimNode) -> None:
    """A broken server: its lease store silently drops every lease record."""
    node.journal.append = lambda lease: None  # type: ignore[method-assign]


@pure_python
def test_checker_catches_an_allocator_that_hands_out_active_addresses() -> None:
    out = run_seed(3, faults=[], patch=_steal_active_addresses)
    assert out.violation is not None
    assert out.violation.kind == "a", out.violation
    assert "while client" in out.violation.text


def test_checker_catches_acks_lost_by_a_crash() -> None:
    crash = Fault("crash", 900 * S, 930 * S, "primary", 0)
    out = run_seed(5, faults=[crash], patch=_forget_writes)
    assert out.violation is not None
    assert out.violation.kind == "b", out.violation
    assert "restarted without the ACK" in out.violation.text
    # The same crash against the real server is fine.
    assert run_seed(5, faults=[crash]).violation is None


def test_shrinking_keeps_only_the_fault_that_matters() -> None:
    crash = Fault("crash", 900 * S, 930 * S, "primary", 0)
    noise = [
        Fault("dup", 100 * S, 400 * S, value=0.2),
        Fault("delay", 1200 * S, 1500 * S, value=2000),
        crash,
        Fault("peer_delay", 2000 * S, 2500 * S, value=500),
        Fault("clock", 0, 0, "secondary", 1500),
    ]
    out = run_seed(5, faults=noise, patch=_forget_writes)
    assert out.violation is not None and out.violation.kind == "b"
    shrunk, runs = shrink(5, "b", noise, patch=_forget_writes)
    assert shrunk == [crash]
    assert runs < 40
    lines = report(out, shrunk, runs)
    assert lines[0].startswith("VIOLATION seed 5")
    assert f"    {describe(crash)}" in lines


def test_checker_catches_a_pair_that_never_agrees() -> None:
    """(c): a server that drops every BNDUPD it should send never converges."""

    def mute(node: SimNode) -> None:
        if node.name == "secondary" and node.engine is not None:
            node.engine.leases.changed = lambda lease, now: None  # type: ignore[method-assign]

    seed = next(s for s in range(100) if plan(s, 3600)[0].name == "short")
    out = run_seed(seed, faults=[], patch=mute)
    assert out.violation is not None
    assert out.violation.kind in "cd", out.violation


def test_checker_catches_a_server_that_does_not_hand_over() -> None:
    """(h): a SIGTERM that skips the handover on a healthy link is caught."""

    def no_handover(node: SimNode) -> None:
        if node.engine is not None:
            node.engine.shutdown = lambda now: False  # type: ignore[method-assign]

    stop = [Fault("handover", 600 * S, 660 * S, "primary")]
    assert run_seed(5, faults=stop).violation is None
    out = run_seed(5, faults=stop, patch=no_handover)
    assert out.violation is not None and out.violation.kind == "h", out.violation


def test_checker_catches_a_restart_that_waits_out_the_mclt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """(h): a restart after a clean handover that forgets ISC's special case is caught."""
    from tandem.core.failover import engine, handover

    def no_backdate(machine, leases, now):  # type: ignore[no-untyped-def]
        lines = handover.restart_after_shutdown(machine, leases, now)
        machine.stos = now
        return lines

    monkeypatch.setattr(engine, "restart_after_shutdown", no_backdate)
    out = run_seed(5, faults=[Fault("handover", 600 * S, 660 * S, "primary")])
    assert out.violation is not None and out.violation.kind == "h", out.violation
    assert "waits out the MCLT" in out.violation.text


# --- pieces --------------------------------------------------------------------------------


def test_journal_crash_loses_only_uncommitted_records_and_cuts_torn_ones() -> None:
    from ipaddress import IPv4Address

    from tandem.core.lease import Lease

    j = SimJournal("j")
    j.append(Lease(IPv4Address("192.0.2.100"), BindingState.ACTIVE, ends=1_700_000_600))
    j.commit()
    j.append(Lease(IPv4Address("192.0.2.101"), BindingState.ACTIVE, ends=1_700_000_600))
    j.crash(0.5)  # half of the second record reaches the disk
    assert j.torn_writes == 1
    got = j.load()
    assert list(got.leases) == [IPv4Address("192.0.2.100")]
    assert got.torn_at is not None
    j.append(Lease(IPv4Address("192.0.2.102"), BindingState.FREE))
    j.crash(None)
    assert list(j.load().leases) == [IPv4Address("192.0.2.100")]


@pure_python
def test_world_reports_core_exceptions_as_violations() -> None:
    def explode(node: SimNode) -> None:
        server = node.server
        assert server is not None

        def handle(*args: object) -> Outcome:
            raise RuntimeError("boom")

        server.handle = handle  # type: ignore[method-assign]

    variant, _ = plan(1, 3600)
    w = World(1, variant, [], server_patch=explode)
    v = w.run()
    assert v is not None and v.kind == "x" and "boom" in v.text
    assert isinstance(w.primary.server, DhcpServer)


def test_cli_last_line_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "3", "--start", "40"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "3 seeds, 0 violations"


@pure_python
def test_cli_reports_violations_with_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tandem.sim.__main__ as cli
    from tandem.sim import runner

    real = runner.run_seed

    def broken(seed: int, **kw: object):  # type: ignore[no-untyped-def]
        kw.setdefault("patch", _steal_active_addresses)
        return real(seed, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(cli, "run_seed", broken)
    monkeypatch.setattr(runner, "run_seed", broken)
    assert main(["--seeds", "2", "--start", "3"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "2 seeds, 2 violations"
    assert any(line.startswith("VIOLATION seed 3") for line in out)
    assert any("shrunk to" in line for line in out)
