"""Render the code's tables into the docs: the failover state table
(tandem.core.failover.states) into docs/failover-states.md, and what of dhcpd.conf Tandem
parses but does not act on (tandem.config.statements.NOT_ACTED_ON) into README.md.

The docs are generated from the same tables the code runs, so they cannot drift: the text
between the markers is replaced, everything else in the file is kept. ``--check`` exits 1
when a file is out of date (tests/core/failover/test_fo_state.py and
tests/config/test_not_acted_on.py run the same comparisons).

No binding-state rule table exists in tandem.core yet; when one does, render it here too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tandem.config.registry import SERVER_OPTIONS
from tandem.config.statements import NOT_ACTED_ON
from tandem.core.failover.states import (
    ENTRY_RULES,
    IGNORES_REPEATED_PEER_STATE,
    PEER_DEMANDS_SILENCE,
    RESCIND_ON_LEAVE,
    SERVICE_STATES,
    TABLE,
    Action,
    Branch,
    Guard,
    Input,
    Target,
)
from tandem.wire.failover_codes import ServerState

BEGIN = "<!-- BEGIN GENERATED failover-states (scripts/render_tables.py) -->"
END = "<!-- END GENERATED failover-states -->"
DOC = Path(__file__).resolve().parent.parent / "docs" / "failover-states.md"
README = Path(__file__).resolve().parent.parent / "README.md"
GAPS_BEGIN = "<!-- BEGIN GENERATED not-acted-on (scripts/render_tables.py) -->"
GAPS_END = "<!-- END GENERATED not-acted-on -->"

_HEADER = """# Failover server states

How a Tandem server moves between failover states. The rules copy ISC dhcpd 4.4
(reference/failover-isc.md §7). The table below is generated from
`tandem.core.failover.states.TABLE`; edit the code, then run `python scripts/render_tables.py`.

"""


def _state(state: ServerState | Target) -> str:
    if isinstance(state, Target):
        return {Target.STAY: "—", Target.SAVED: "saved state"}.get(
            state, "as in saved state, then saved state"
        )
    return f"**{state.keyword}**"


def _branch(branch: Branch) -> tuple[str, str, str]:
    guards = " and ".join(g.value for g in branch.guards) or "otherwise"
    actions = ", ".join(a.name for a in branch.actions) or "—"
    return guards, actions, _state(branch.target)


def render() -> str:
    """The generated block, markers included."""
    out = [BEGIN, ""]
    out.append("## Service state (what the server may do with clients)\n")
    out.append("| State | Code | Service |")
    out.append("| --- | --- | --- |")
    for state in ServerState:
        out.append(f"| {state.keyword} | {state.value} | {SERVICE_STATES[state].value} |")
    silence = ", ".join(s.keyword for s in sorted(PEER_DEMANDS_SILENCE))
    out.append(f"\nWhatever our own state, a peer in {silence} makes us answer no clients.\n")

    out.append("## Entry rules (run on every transition into the state)\n")
    out.append(
        "Every transition: RECORD_STATE, UPDATE_SERVICE_STATE, SEND_STATE if connected, "
        "cancel auto-partner-down; STOS = now except into recover-wait and into/out of "
        "startup. Leaving "
        + ", ".join(s.keyword for s in sorted(RESCIND_ON_LEAVE))
        + " also does RESCIND_UPDATES.\n"
    )
    out.append("| State | Condition | Actions | Then |")
    out.append("| --- | --- | --- | --- |")
    for state, branches in ENTRY_RULES.items():
        for branch in branches:
            guards, actions, target = _branch(branch)
            out.append(f"| {state.keyword} | {guards} | {actions} | {target} |")

    out.append("\n## Transitions\n")
    out.append(
        "First matching condition wins. States that ignore a repeated peer state: "
        + ", ".join(s.keyword for s in sorted(IGNORES_REPEATED_PEER_STATE))
        + ".\n"
    )
    for state in ServerState:
        out.append(f"### {state.keyword} ({state.value})\n")
        out.append("| Input | Condition | Actions | Next |")
        out.append("| --- | --- | --- | --- |")
        for inp in Input:
            for branch in TABLE[state, inp]:
                guards, actions, target = _branch(branch)
                out.append(f"| {inp.value} | {guards} | {actions} | {target} |")
        out.append("")

    out.append("## Actions\n")
    out.append("| Action | Meaning |")
    out.append("| --- | --- |")
    out.extend(f"| {a.name} | {a.value} |" for a in Action)
    out.append("\n## Conditions\n")
    out.extend(f"* {g.name}: {g.value}" for g in Guard)
    out.extend(["", END])
    return "\n".join(out) + "\n"


def updated(text: str) -> str:
    """``text`` with the generated block replaced (or appended when markers are missing)."""
    block = render()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + block.rstrip("\n") + tail
    return (text or _HEADER) + block


def render_gaps() -> str:
    """README's list of what is parsed but not acted on, markers included."""
    out = [GAPS_BEGIN, ""]
    titles = {
        ("statement", True): "Statements (warned about once)",
        ("parameter", True): "Parameters (warned about once)",
        ("parameter", False): "Parameters (accepted silently)",
    }
    groups: dict[tuple[str, bool, str], list[str]] = {}
    for name, gap in NOT_ACTED_ON.items():
        kind = "parameter" if name in SERVER_OPTIONS else "statement"
        groups.setdefault((kind, gap.warned, gap.note), []).append(f"`{name}`")
    for (kind, warned), title in titles.items():
        out.append(f"{title}:\n")
        for (k, w, note), names in groups.items():
            if (k, w) == (kind, warned):
                out.append(f"- {', '.join(names)}: {note}")
        out.append("")
    out.append(GAPS_END)
    return "\n".join(out) + "\n"


def updated_readme(text: str) -> str:
    """README.md with the list between its markers replaced (appended when missing)."""
    block = render_gaps()
    if GAPS_BEGIN in text and GAPS_END in text:
        head, rest = text.split(GAPS_BEGIN, 1)
        _, tail = rest.split(GAPS_END, 1)
        return head + block.rstrip("\n") + tail
    return text + "\n" + block


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the doc is stale")
    args = parser.parse_args(argv)
    stale = 0
    for path, update in ((DOC, updated), (README, updated_readme)):
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        new = update(current)
        if args.check:
            if new != current:
                print(f"{path} is out of date; run scripts/render_tables.py", file=sys.stderr)
                stale = 1
        else:
            path.write_text(new, encoding="utf-8")
    return stale


if __name__ == "__main__":
    sys.exit(main())
