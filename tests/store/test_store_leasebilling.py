"""The lease file's ``billing class`` / ``billing subclass`` line (store.leasebilling)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from tandem.core.lease import BindingState, Lease
from tandem.store.leasefile import format_lease, parse_leases


@pytest.mark.parametrize(
    ("billing", "line"),
    [
        (("port", b"eth1"), '  billing subclass "port" "eth1";'),
        (("cpe", b"\x01\x02"), '  billing subclass "cpe" 01:02;'),
        (("vip", None), '  billing class "vip";'),
    ],
)
def test_billing_line_round_trips(billing: tuple[str, bytes | None], line: str) -> None:
    lease = Lease(IPv4Address("10.9.0.10"), BindingState.ACTIVE, starts=1, ends=2_000_000_000)
    lease.billing = billing
    text = format_lease(lease)
    assert line in text.splitlines()
    back = parse_leases(text, "t.leases")
    assert back.warnings == []
    assert back.leases[lease.address].billing == billing


def test_billing_not_written_once_the_lease_is_not_active() -> None:
    lease = Lease(IPv4Address("10.9.0.10"), BindingState.FREE, starts=1, ends=2)
    lease.billing = ("port", b"eth1")
    assert "billing" not in format_lease(lease)


def test_dhcpd_written_billing_line_is_read() -> None:
    text = (
        "lease 10.9.0.11 {\n  starts 4 2026/12/03 10:00:00;\n  ends 4 2036/12/03 10:00:00;\n"
        '  binding state active;\n  billing subclass "port" "eth1";\n'
        "  hardware ethernet 52:54:00:00:00:01;\n}\n"
    )
    back = parse_leases(text, "t.leases")
    assert back.leases[IPv4Address("10.9.0.11")].billing == ("port", b"eth1")
