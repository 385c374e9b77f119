"""leasefile: dhcpd 4.4 syntax both ways, checked against real dhcpd 4.4.3 output."""

from __future__ import annotations

import calendar
from ipaddress import IPv4Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import VECTORS, leases, normalized

from tandem.core.lease import BindingState, Lease
from tandem.store.leasefile import (
    NEVER,
    FailoverStateRecord,
    LeaseFileError,
    LeaseFileReader,
    format_failover_state,
    format_header,
    format_lease,
    format_record,
    parse_leases,
)

DHCPD_WRITER = "isc-dhcp-4.4.3-P1"


def utc(text: str) -> int:
    """'2026/11/28 03:16:48' -> seconds since the epoch (independent of the code under test)."""
    day, clock = text.split()
    y, mo, d = (int(x) for x in day.split("/"))
    h, mi, s = (int(x) for x in clock.split(":"))
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


def read_vector(name: str) -> str:
    return (VECTORS / name).read_text(encoding="latin-1")


def only_lease(text: str) -> Lease:
    contents = parse_leases(text, "t.leases")
    assert contents.warnings == []
    assert len(contents.leases) == 1
    return next(iter(contents.leases.values()))


# --- the real files --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["primary.leases", "secondary.leases"])
def test_vector_formats_back_byte_for_byte(name: str) -> None:
    """Header + every record, formatted again, is the very file dhcpd 4.4.3 wrote."""
    text = read_vector(name)
    reader = LeaseFileReader(text, name)
    records = list(reader.records())
    assert reader.warnings == []
    assert reader.byte_order == "little-endian"
    for rec in records:  # each block on its own, so a failure points at the record
        # spans run from the keyword to the closing '}' / ';' (no surrounding newlines)
        assert format_record(rec.record).strip("\n") == text[rec.start : rec.end]
    rebuilt = format_header(DHCPD_WRITER) + "".join(format_record(r.record) for r in records)
    assert rebuilt == text


def test_primary_vector_known_bindings() -> None:
    contents = parse_leases(read_vector("primary.leases"), "primary.leases")
    assert contents.warnings == []
    assert contents.torn_at is None
    assert contents.records == 55  # 53 lease blocks + 2 later updates of .149 and .151
    assert len(contents.leases) == 52
    states = [lease.binding_state for lease in contents.leases.values()]
    assert states.count(BindingState.BACKUP) == 50
    active = contents.leases[IPv4Address("192.0.2.150")]
    assert active.binding_state is BindingState.ACTIVE
    assert active.next_binding_state is BindingState.EXPIRED
    assert active.starts == utc("2026/11/28 03:16:48")
    assert active.ends == utc("2026/11/28 04:16:48")
    assert active.tstp == active.tsfp == active.atsfp == utc("2026/11/28 15:46:48")
    assert active.cltt == utc("2026/11/28 03:16:48")
    assert active.hardware == (1, bytes.fromhex("020000000101"))
    # .149 was leased by the secondary, then freed: the LAST block wins.
    freed = contents.leases[IPv4Address("192.0.2.149")]
    assert freed.binding_state is BindingState.FREE
    assert freed.ends == utc("2026/11/28 03:18:53")
    assert freed.hardware == (1, bytes.fromhex("020000000102"))
    # .151: the later block has no rewind state.
    assert contents.leases[IPv4Address("192.0.2.151")].rewind_binding_state is None
    state = contents.failover_states["failover-example"]
    assert state == FailoverStateRecord(
        "failover-example",
        "normal",
        utc("2026/11/28 03:19:58"),
        "normal",
        utc("2026/11/28 03:19:58"),
        None,
    )
    assert contents.server_duid == b"\x00\x01\x00\x012\x9d\x04\x1e\x02\x00\x00\x00\x00\x01"


def test_secondary_vector_known_bindings() -> None:
    contents = parse_leases(read_vector("secondary.leases"), "secondary.leases")
    assert contents.warnings == []
    assert len(contents.leases) == 101  # the whole pool 192.0.2.100-200
    assert set(contents.leases) == {IPv4Address(f"192.0.2.{i}") for i in range(100, 201)}
    active = [lease for lease in contents.leases.values() if lease.is_active(0)]
    assert [lease.address for lease in active] == [IPv4Address("192.0.2.150")]
    assert contents.failover_states["failover-example"].mclt == 3600
    assert contents.failover_states["failover-example"].my_state == "communications-interrupted"
    assert contents.leases[IPv4Address("192.0.2.149")].binding_state is BindingState.FREE


# --- writer details ---------------------------------------------------------------------------


def test_format_lease_matches_dhcpd_layout() -> None:
    lease = Lease(
        address=IPv4Address("127.1.0.110"),
        binding_state=BindingState.ACTIVE,
        next_binding_state=BindingState.EXPIRED,
        rewind_binding_state=BindingState.FREE,
        starts=utc("2026/11/28 03:13:51"),
        ends=utc("2026/11/28 03:18:51"),
        tstp=utc("2026/11/28 04:16:21"),
        tsfp=utc("2026/11/28 04:16:21"),
        atsfp=utc("2026/11/28 04:16:21"),
        cltt=utc("2026/11/28 03:13:51"),
        hardware=(1, bytes.fromhex("aabbccddeeff")),
        uid=b"\x01\x08\x00'\x01\x02\x03",
        client_hostname="foo",
        vendor_class_identifier='MSFT "5.0"\\',
        variables={"ddns-txt": "31\x7f"},
    )
    assert format_lease(lease) == (
        "lease 127.1.0.110 {\n"
        "  starts 6 2026/11/28 03:13:51;\n"
        "  ends 6 2026/11/28 03:18:51;\n"
        "  tstp 6 2026/11/28 04:16:21;\n"
        "  tsfp 6 2026/11/28 04:16:21;\n"
        "  atsfp 6 2026/11/28 04:16:21;\n"
        "  cltt 6 2026/11/28 03:13:51;\n"
        "  binding state active;\n"
        "  next binding state expired;\n"
        "  rewind binding state free;\n"
        "  hardware ethernet aa:bb:cc:dd:ee:ff;\n"
        '  uid "\\001\\010\\000\'\\001\\002\\003";\n'
        '  set vendor-class-identifier = "MSFT \\"5.0\\"\\\\";\n'
        '  set ddns-txt = "31\\177";\n'
        '  client-hostname "foo";\n'
        "}\n"
    )


def test_format_infinite_bootp_lease_and_hardware_names() -> None:
    lease = Lease(
        IPv4Address("10.0.0.1"),
        BindingState.ACTIVE,
        ends=None,
        bootp=True,
        hardware=(6, b"\x01"),
        client_hostname='bad"name',  # dhcpd writes no hostname it would have to escape
    )
    text = format_lease(lease)
    assert "  ends never;\n" in text
    assert "  dynamic-bootp;\n" in text
    assert "  hardware token-ring 01;\n" in text
    assert "client-hostname" not in text
    assert "hardware unknown-77 ;" in format_lease(
        Lease(IPv4Address("10.0.0.1"), hardware=(77, b""))
    )
    assert only_lease(text).ends is None


def test_writer_never_writes_what_cannot_be_read_back() -> None:
    lease = Lease(
        IPv4Address("10.0.0.1"),
        hardware=(300, b"\x01"),
        uid=b"u" * 1025,
        client_hostname="h" * 1025,
        vendor_class_identifier="v" * 1025,
        variables={"ok": "x", "bad name": "y", "big": "z" * 1025},
    )
    back = only_lease(format_lease(lease))
    assert back.hardware is back.uid is back.client_hostname is None
    assert back.vendor_class_identifier is None
    assert back.variables == {"ok": "x"}
    long_chaddr = Lease(IPv4Address("10.0.0.1"), hardware=(1, bytes(range(20))))
    assert only_lease(format_lease(long_chaddr)).hardware == (1, bytes(range(16)))


def test_header_is_dhcpds() -> None:
    assert read_vector("primary.leases").startswith(format_header(DHCPD_WRITER))
    assert format_header().endswith("authoring-byte-order little-endian;\n\n")


def test_failover_state_record_round_trip() -> None:
    rec = FailoverStateRecord("fo", "normal", utc("2026/11/28 05:00:00"), "recover", None, 3600)
    text = format_failover_state(rec)
    assert text == (
        '\nfailover peer "fo" state {\n'
        "  my state normal at 6 2026/11/28 05:00:00;\n"
        "  partner state recover;\n"
        "  mclt 3600;\n"
        "}\n"
    )
    assert parse_leases(text, "x").failover_states == {"fo": rec}


def test_failover_state_partial_block_inherits_previous_record() -> None:
    text = (
        'failover peer "fo" state { my state normal at 6 2026/11/28 05:00:00;'
        " partner state normal at 6 2026/11/28 05:00:00; }\n"
        'failover peer "fo" state { my state partner-down; }\n'
    )
    rec = parse_leases(text, "x").failover_states["fo"]
    assert (rec.my_state, rec.my_stos) == ("partner-down", None)
    assert (rec.partner_state, rec.partner_stos) == ("normal", utc("2026/11/28 05:00:00"))


# --- round trip -------------------------------------------------------------------------------


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(leases())
def test_round_trip_any_lease(lease: Lease) -> None:
    text = format_lease(lease)
    assert text.isascii()
    back = only_lease(text)
    assert back == normalized(lease)
    assert format_lease(back) == text


@given(st.lists(leases(), min_size=1, max_size=8))
def test_later_blocks_replace_earlier_ones(batch: list[Lease]) -> None:
    text = format_header() + "".join(format_lease(lease) for lease in batch)
    contents = parse_leases(text, "x")
    expected = {lease.address: normalized(lease) for lease in batch}
    assert contents.leases == expected
    assert contents.records == len(batch)


# --- reader: accepted variants ---------------------------------------------------------------


def test_reader_accepts_dhcpd_variants() -> None:
    lease = only_lease(
        "lease 10.0.0.5 {\n"
        "  starts epoch 1795835808; # Sat Nov 28 03:16:48 2026\n"
        "  ends never;\n"
        "  binding state bootp;\n"
        "  uid 01:02:0a:FF;\n"
        "  hardware unknown-32 1:2:3;\n"
        "  client-hostname host.example;\n"
        '  ddns-fwd-name "host.example.com";\n'
        '  set ddns-txt = "a\\tb\\x41\\q";\n'
        "  class foo;\n"
        "}\n"
    )
    assert lease.starts == 1795835808
    assert lease.binding_state is BindingState.ACTIVE and lease.bootp and lease.ends is None
    assert lease.uid == b"\x01\x02\x0a\xff"
    assert lease.hardware == (32, b"\x01\x02\x03")
    assert lease.client_hostname == "host.example"
    assert lease.variables == {"ddns-fwd-name": "host.example.com", "ddns-txt": "a\tbAq"}


def test_missing_binding_state_and_legacy_abandoned() -> None:
    lease = only_lease("lease 10.0.0.5 { ends 6 2026/11/28 03:16:48; }")
    assert lease.binding_state is BindingState.ACTIVE
    assert only_lease("lease 10.0.0.5 { }").binding_state is BindingState.FREE
    abandoned = only_lease("lease 10.0.0.5 { abandoned; }")
    assert abandoned.binding_state is abandoned.next_binding_state is BindingState.ABANDONED
    # ACTIVE without `ends` must not read as infinite (None): dhcpd reads 0.
    assert only_lease("lease 10.0.0.5 { binding state active; }").ends == 0


def test_unmodelled_records_are_skipped_with_warnings() -> None:
    text = (
        'host foo { dynamic; hardware ethernet 00:01:02:03:04:05; uid "x"; }\n'
        'ia-na "\\000\\001" { cltt 6 2026/11/28 03:16:48; iaaddr 2001:db8::1 { '
        "binding state active; } }\n"
        'subclass "c" 1:2:3;\n'
        "lease 10.0.0.7 { binding state free; on expiry { set x = 1; } "
        "option agent.circuit-id 0:1;\n reserved; set n = %5; }\n"
    )
    contents = parse_leases(text, "w.leases")
    assert list(contents.leases) == [IPv4Address("10.0.0.7")]
    assert list(contents.hosts) == ["foo"]  # dynamic hosts are read (store.leasehosts)
    assert len(contents.warnings) == 6
    assert contents.warnings[0].startswith("w.leases:2:1: DHCPv6 ia-na record skipped")
    assert all(w.startswith("w.leases:") for w in contents.warnings)


# --- reader: errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("lease 10.0.0.1 { binding state activ; }\nlease 10.0.0.2 { }\n", "1:32", "binding st"),
        ("lease 10.0.0.1 {\n  frobnicate;\n}\n", "2:3", "unknown statement 'frobnicate'"),
        ("lease 10.0.0.300 { }\n", "1:7", "not an IPv4 address"),
        ("bogus;\nlease 10.0.0.1 { }\n", "1:1", "unknown record 'bogus'"),
        ("lease 10.0.0.1 { starts 6 2026/13/28 00:00:00; }\n#\n", "1:27", "impossible date"),
        ('lease 10.0.0.1 { uid "\\1x"; }\nlease 10.0.0.2 {}', "1:23", "bad octal escape"),
        (
            "lease 10.0.0.1 { } }\nlease 10.0.0.2 {}",
            "1:20",
            "expected a lease-file record (lease, failover, server-duid, ...), found '}'",
        ),
    ],
)
def test_errors_name_file_line_and_column(text: str, where: str, what: str) -> None:
    with pytest.raises(LeaseFileError) as info:
        parse_leases(text, "d.leases")
    message = str(info.value)
    assert message.startswith(f"d.leases:{where}: ")
    assert what in message
    assert "d.leases~" in message  # says what to do


def test_bounds_reject_oversized_strings_and_hex() -> None:
    big = "lease 10.0.0.1 { uid " + ":".join(["ab"] * 1025) + "; }\nlease 10.0.0.2 { }\n"
    with pytest.raises(LeaseFileError, match="longer than"):
        parse_leases(big, "b")
    big_string = 'lease 10.0.0.1 { set x = "' + "\\001" * 1025 + '"; }\n# end\nlease 10.0.0.2 {}'
    with pytest.raises(LeaseFileError, match="longer than 1024 bytes"):
        parse_leases(big_string, "b")
    ok = 'lease 10.0.0.1 { uid "' + "\\001" * 1024 + '"; }\n'
    assert only_lease(ok).uid == b"\x01" * 1024
    long_hw = "lease 10.0.0.1 { hardware ethernet " + ":".join(["01"] * 17) + "; }\n#\n"
    with pytest.raises(LeaseFileError, match="hardware address is longer than 16"):
        parse_leases(long_hw, "b")


def test_deep_nesting_does_not_recurse() -> None:
    text = "group x " + "{ " * 100_000 + "} " * 100_000 + "\nlease 10.0.0.1 { }\n"
    assert len(parse_leases(text, "n").leases) == 1


# --- torn tail --------------------------------------------------------------------------------


_RICH_LEASE = format_lease(
    Lease(
        IPv4Address("192.0.2.199"),
        BindingState.ACTIVE,
        next_binding_state=BindingState.FREE,
        starts=utc("2026/11/28 03:16:48"),
        ends=utc("2026/11/28 04:16:48"),
        hardware=(1, bytes.fromhex("020000000199")),
        uid=b"\x01\x02\x00\x00\x00\x01\x99",
        vendor_class_identifier="udhcp 1.36.1",
        variables={"ddns-txt": "x"},
        client_hostname="client-99",
    )
)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(read_vector("primary.leases"), id="primary"),
        pytest.param(read_vector("secondary.leases"), id="secondary"),
        pytest.param(read_vector("primary.leases") + _RICH_LEASE, id="lease-last"),
    ],
)
def test_torn_last_record_at_every_offset(text: str) -> None:
    """Cut the file anywhere inside its last record: that record alone is lost, with a warning."""
    whole = parse_leases(text, "t")
    last = list(LeaseFileReader(text, "t").records())[-1]
    before = parse_leases(text[: last.start], "t")
    assert before.warnings == []
    assert before.leases != whole.leases or before.failover_states != whole.failover_states
    for cut in range(last.start + 1, last.end):
        torn = parse_leases(text[:cut], "t")
        assert torn.torn_at == last.start, cut
        assert len(torn.warnings) == 1 and "incomplete" in torn.warnings[0]
        assert torn.leases == before.leases
        assert torn.failover_states == before.failover_states
    # cut right after the closing brace: complete, nothing lost
    complete = parse_leases(text[: last.end], "t")
    assert complete.torn_at is None
    assert complete.leases == whole.leases
    assert complete.failover_states == whole.failover_states


def test_torn_tail_of_zeros_after_crash() -> None:
    text = format_header() + format_lease(Lease(IPv4Address("10.0.0.1")))
    contents = parse_leases(text + "lease 10.0.0.2 {\n  star" + "\0" * 4096, "z")
    assert list(contents.leases) == [IPv4Address("10.0.0.1")]
    assert contents.torn_at == len(text)
    only_zeros = parse_leases(text + "\0" * 512, "z")
    assert only_zeros.torn_at == len(text) and len(only_zeros.leases) == 1


def test_garbage_before_the_last_record_is_an_error() -> None:
    text = read_vector("primary.leases")
    cut = text.index("lease 192.0.2.105 {") + 30
    damaged = text[:cut] + text[cut + 25 :]
    with pytest.raises(LeaseFileError):
        parse_leases(damaged, "p")


# --- robustness: nothing but LeaseFileError escapes ------------------------------------------

_ALPHABET = st.sampled_from(list('lease 10.0.2.1{};"\\\n#:/=abcdefnorstuvwxy-0123456789%\0\xff'))


@settings(max_examples=500)
@given(st.text(_ALPHABET, max_size=300) | st.text(max_size=200))
def test_random_text_only_raises_lease_file_error(text: str) -> None:
    try:
        contents = parse_leases(text, "r")
    except LeaseFileError as exc:
        assert str(exc).startswith("r:")
    else:
        for lease in contents.leases.values():
            format_lease(lease)


_PRIMARY = read_vector("primary.leases")[:3000]


@settings(max_examples=500)
@given(
    st.lists(
        st.tuples(st.integers(0, len(_PRIMARY)), st.integers(0, 8), st.text(_ALPHABET, max_size=6)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_real_file_only_raises_lease_file_error(
    edits: list[tuple[int, int, str]],
) -> None:
    text = _PRIMARY
    for at, drop, insert in edits:
        text = text[:at] + insert + text[at + drop :]
    try:
        contents = parse_leases(text, "m")
    except LeaseFileError:
        return
    for lease in contents.leases.values():
        reread = only_lease(format_lease(lease))
        assert reread == normalized(lease)


def test_escaped_plain_character_is_that_character() -> None:
    assert only_lease('lease 10.0.0.1 { uid "\\9\\q"; }').uid == b"9q"


def test_never_is_dhcpds_max_time() -> None:
    assert NEVER == 0x7FFFFFFF
    lease = Lease(IPv4Address("10.0.0.1"), BindingState.FREE, ends=NEVER, tstp=NEVER)
    assert "  ends never;\n  tstp never;\n" in format_lease(lease)
    assert only_lease(format_lease(lease)) == lease
