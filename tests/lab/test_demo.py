"""`make demo` must keep working: run it as a user would and read its timeline."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.lab


def test_demo_tells_both_acts() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tandem.demo"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for name in ("esp32", "raspi", "plc"):
        assert f"{name} (" in out and " got 192.0.2." in out
    assert "3 of 3 clients kept their address across the crash" in out
    assert "dhcpd -T, on the lease file Tandem left behind: accepted" in out
    assert "DHCPACK on 192.0.2." in out
    # Act 2: the seed's pair, verbatim, through a primary crash.
    assert "failover peer failover-example: Both servers normal" in out
    assert "I move from normal to communications-interrupted" in out
    assert "esp32 rebooted: 192.0.2." in out and "(kept: True)" in out
    assert "one of the secondary's BACKUP leases: True" in out
    assert "both lease files agree on every active binding" in out
