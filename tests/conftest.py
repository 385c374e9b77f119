"""Shared fixtures. Lab fixtures need root and the Debian packages; without them they FAIL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.lab.scenarios import DhcpdLeaseFile, produce_dhcpd_lease_file


@pytest.fixture(scope="session")
def isc_dhcpd_leases(tmp_path_factory: pytest.TempPathFactory) -> DhcpdLeaseFile:
    """A dhcpd.leases written by real ISC dhcpd serving real clients in a namespace lab.

    Holds active leases (dhclient with a uid, udhcpc, dhcpcd), a released one and an abandoned
    one; see ``produce_dhcpd_lease_file``. Tests using it should carry ``@pytest.mark.lab``.
    """
    return produce_dhcpd_lease_file(tmp_path_factory.mktemp("isc-dhcpd-leases"))


@pytest.fixture
def leases_dir(tmp_path: Path) -> Path:
    """A fresh directory for lease files."""
    d = tmp_path / "leases"
    d.mkdir()
    return d
