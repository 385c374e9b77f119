"""A start-up failure ends with dhcpd's ``exiting.`` line, and a non-zero exit status.

dhcpd ends every fatal error with log_fatal (omapip/errwarn.c), whose last line is
``exiting.``; scripts wait for it. Each case runs the real ``tandem`` command and, where dhcpd
gives up the same way without a network, the real ``dhcpd`` as the oracle. The failures that
need a network namespace (the DHCP port in use) are in tests/lab/test_departures.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tandem.lab.servers import tandem_command

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
GOOD = (CONFIGS / "seed-primary.conf").read_text(encoding="utf-8")


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def _dhcpd() -> str:
    found = shutil.which("dhcpd") or "/usr/sbin/dhcpd"
    assert Path(found).exists(), "ISC dhcpd is needed (Debian isc-dhcp-server)"
    return found


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.mark.parametrize(
    "name", ["broken/missing-semicolon.conf", "broken/missing-brace.conf", "no-such-file.conf"]
)
def test_config_errors_end_with_exiting_as_dhcpd_t(name: str, tmp_path: Path) -> None:
    dhcpd = _run([_dhcpd(), "-4", "-t", "-cf", name, "-pf", "/dev/null"], CONFIGS)
    assert _last_line(dhcpd.stderr) == "exiting.", dhcpd.stderr  # the oracle
    tandem = _run([*tandem_command(), "-t", "-cf", name], CONFIGS)
    assert tandem.returncode == 1, tandem.stderr
    assert _last_line(tandem.stderr) == "exiting.", tandem.stderr
    served = _run(
        [*tandem_command(), "-f", "-d", "-cf", name, "-lf", str(tmp_path / "l"), "--no-pid"],
        CONFIGS,
    )
    assert served.returncode == 1 and _last_line(served.stderr) == "exiting.", served.stderr


def test_a_usage_error_ends_with_exiting_as_dhcpd(tmp_path: Path) -> None:
    dhcpd = _run([_dhcpd(), "-no-such-flag"], tmp_path)
    assert _last_line(dhcpd.stderr) == "exiting.", dhcpd.stderr
    tandem = _run([*tandem_command(), "-no-such-flag"], tmp_path)
    assert tandem.returncode == 2
    assert _last_line(tandem.stderr) == "exiting.", tandem.stderr


def test_a_bad_lease_file_ends_with_exiting(tmp_path: Path) -> None:
    conf = tmp_path / "dhcpd.conf"
    conf.write_text(GOOD, encoding="utf-8")
    leases = tmp_path / "dhcpd.leases"
    leases.write_text("lease 192.0.2.100 {\n  starts yesterday;\n}\n", encoding="utf-8")
    for flags in (["-T"], ["-f", "-d", "--no-pid"]):
        res = _run([*tandem_command(), *flags, "-cf", str(conf), "-lf", str(leases)], tmp_path)
        assert res.returncode == 1, res.stderr
        assert "Lease file errors encountered -- exiting" in res.stderr
        assert _last_line(res.stderr) == "exiting.", res.stderr


def test_a_missing_interface_and_a_bad_user_end_with_exiting(tmp_path: Path) -> None:
    conf = tmp_path / "dhcpd.conf"
    conf.write_text(GOOD, encoding="utf-8")
    base = [*tandem_command(), "-f", "-d", "--no-pid", "-cf", str(conf)]
    base += ["-lf", str(tmp_path / "dhcpd.leases")]
    res = _run([*base, "no-such-if0"], tmp_path)
    assert res.returncode == 1
    assert "Interface no-such-if0 does not exist -- exiting" in res.stderr
    assert _last_line(res.stderr) == "exiting.", res.stderr
    res = _run([*base, "-user", "no-such-user-tandem"], tmp_path)
    assert res.returncode == 1
    assert _last_line(res.stderr) == "exiting.", res.stderr
