"""Lab fixtures: a fresh namespace lab per test; missing root or programs FAIL the test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tandem.lab.netns import Lab, LabError, cleanup_stale, require_root_and_tools

#: Every program the lab tests run (a missing one must fail loudly, never skip).
REQUIRED = (
    "ip",
    "ethtool",
    "sysctl",
    "taskset",
    "dhcpd",
    "dhclient",
    "dhcrelay",
    "busybox",
    "dhcpcd",
    "dumpcap",
    "tshark",
)


@pytest.fixture(scope="session")
def lab_prerequisites() -> None:
    """Fail (never skip) unless root and every program is present; then clean stale labs."""
    missing = [p for p in REQUIRED if shutil.which(p) is None]
    if missing:
        pytest.fail(f"lab tests need these programs: {missing} (run `make deps`)", pytrace=False)
    try:
        require_root_and_tools(REQUIRED)
    except LabError as exc:
        pytest.fail(f"lab tests cannot run: {exc}", pytrace=False)
    # Leftovers of crashed earlier runs (only our td<6 hex>- names are touched).
    cleanup_stale()


@pytest.fixture
def lab(lab_prerequisites: None) -> Iterator[Lab]:
    with Lab() as the_lab:
        yield the_lab
