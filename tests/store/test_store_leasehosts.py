"""Dynamic hosts in the lease file: dhcpd's OMAPI ``host { dynamic; ... }`` blocks."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from tandem.core.reservations import Reservation
from tandem.store.journal import LeaseJournal
from tandem.store.leasefile import LeaseFileError, parse_leases
from tandem.store.leasehosts import format_host

A = IPv4Address
HW = (1, bytes.fromhex("525400123456"))
REC = Reservation(
    "printer-3", HW, None, A("192.0.2.150"), "printer-3", ((6, A("10.0.0.1").packed),), False,
    (1_764_892_800, 4, "192.0.2.1"),
)  # fmt: skip


def test_written_as_dhcpds_write_host() -> None:
    assert format_host(REC) == (
        "host printer-3 {\n"
        "  dynamic;\n"
        "  # tandem-stamp 1764892800 4 192.0.2.1\n"
        "  hardware ethernet 52:54:00:12:34:56;\n"
        "  fixed-address 192.0.2.150;\n"
        '        supersede host-name = "printer-3";\n'
        "        supersede domain-name-servers = 0a:00:00:01;\n"
        "}\n"
    )
    tomb = Reservation("printer-3", deleted=True, stamp=(1_764_892_900, 5, "192.0.2.2"))
    assert format_host(tomb) == (
        "host printer-3 {\n  dynamic;\n  # tandem-stamp 1764892900 5 192.0.2.2\n  deleted;\n}\n"
    )


def test_read_back_last_one_wins_and_deleted_removes() -> None:
    text = format_host(REC)
    contents = parse_leases(text, "h.leases")
    assert contents.hosts == {"printer-3": REC}
    client = Reservation("pc", None, b"\x01\x02", A("192.0.2.151"), stamp=(5, 1, "x"))
    later = Reservation("printer-3", deleted=True, stamp=(1_764_892_900, 5, "192.0.2.2"))
    contents = parse_leases(text + format_host(client) + format_host(later), "h.leases")
    assert contents.hosts["printer-3"] == later and contents.hosts["pc"] == client


def test_reads_what_dhcpd_writes() -> None:
    text = (
        "host omapi-made {\n  dynamic;\n  hardware ethernet 0:1:2:3:4:5;\n"
        '  uid "abc";\n  fixed-address 10.0.0.9;\n}\n'
        "host gone {\n  dynamic;\n  deleted;\n}\n"
    )
    hosts = parse_leases(text, "d.leases").hosts
    assert hosts["omapi-made"] == Reservation(
        "omapi-made", (1, bytes(range(6))), b"abc", A("10.0.0.9")
    )
    assert hosts["gone"].deleted and hosts["gone"].stamp == (0, 0, "")


def test_a_damaged_host_block_names_file_line_col() -> None:
    with pytest.raises(LeaseFileError, match=r"d.leases:2:12: unknown hardware type"):
        parse_leases("host x {\n  hardware foo 1:2;\n}\nlease 10.0.0.1 { }\n", "d.leases")


def test_journal_keeps_hosts_across_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "dhcpd.leases"
    j = LeaseJournal(path, fsync=False)
    j.load()
    j.append_host(REC)
    j.append_host(Reservation("undone", deleted=True))  # an undo to "never existed"
    j.commit()
    j.rewrite([])
    j.close()
    text = path.read_text()
    assert "host printer-3 {" in text and "host undone" not in text
    j2 = LeaseJournal(path, fsync=False)
    assert j2.load().hosts == {"printer-3": REC}
    j2.close()
