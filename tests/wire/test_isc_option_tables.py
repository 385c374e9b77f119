"""Every option name table in tandem.wire.options, row for row against ISC dhcpd's own.

isc_option_tables.tsv holds (space, code, name, format) as read from dhcpd 4.4.3's
common/tables.c and server/stables.c (its header says which commit). The comparison runs both
ways: a row dhcpd has that we lack, or one we have that dhcpd lacks or spells differently,
fails unless it is listed in ALLOWED below with the reason.
"""

from __future__ import annotations

from pathlib import Path

from tandem.wire.options import BUILTIN_SPACES

ISC_TSV = Path(__file__).with_name("isc_option_tables.tsv")

Row = tuple[str, int, str, str]

# Deliberate differences, as (space, code, name, format): rows dhcpd has that
# tandem.wire.options leaves out, and rows it adds that dhcpd lacks. None so far: the tables
# match dhcpd's letter for letter. (dhcpd's "server" universe and DHCPv6 spaces are not in the
# data file at all: the first holds configuration parameters, the second is not DHCPv4.)
ONLY_ISC: frozenset[Row] = frozenset()
ONLY_OURS: frozenset[Row] = frozenset()


def _isc_rows() -> set[Row]:
    rows: set[Row] = set()
    lines = [ln for ln in ISC_TSV.read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "space\tcode\tname\tformat"
    for line in lines[1:]:
        space, code, name, fmt = line.split("\t")
        rows.add((space, int(code), name, "" if fmt == "-" else fmt))
    assert len(rows) == len(lines) - 1, "duplicate rows in the data file"
    return rows


def _our_rows() -> set[Row]:
    return {
        (space, code, name, fmt)
        for space, rows in BUILTIN_SPACES.items()
        for name, fmt, code in rows
    }


def test_isc_rows_are_all_ours() -> None:
    missing = _isc_rows() - _our_rows() - ONLY_ISC
    assert not missing, f"dhcpd rows tandem.wire.options lacks or spells differently: {missing}"


def test_our_rows_are_all_isc() -> None:
    extra = _our_rows() - _isc_rows() - ONLY_OURS
    assert not extra, f"tandem.wire.options rows dhcpd does not have: {extra}"


def test_same_spaces() -> None:
    assert {r[0] for r in _isc_rows()} == set(BUILTIN_SPACES)


def test_allow_list_is_not_stale() -> None:
    # an allowed difference that no longer exists should be dropped from the list
    assert _isc_rows() - _our_rows() >= ONLY_ISC
    assert _our_rows() - _isc_rows() >= ONLY_OURS


def test_one_name_and_one_code_per_row() -> None:
    for space, rows in BUILTIN_SPACES.items():
        codes = [code for _name, _fmt, code in rows]
        names = [name.lower() for name, _fmt, _code in rows]
        assert len(set(codes)) == len(codes), space
        assert len(set(names)) == len(names), space


def test_agent_id_is_sub_option_3() -> None:
    # the drift that prompted this file: core once read agent.agent-id from sub-option 4
    assert ("agent", 3, "agent-id", "I") in _isc_rows() & _our_rows()
    assert ("agent", 4, "DOCSIS-device-class", "L") in _isc_rows() & _our_rows()
