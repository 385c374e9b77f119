"""`make demo` must keep working: run it as a user would and read its timeline."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.lab


def test_demo_runs_and_every_client_keeps_its_address() -> None:
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
