"""Every corpus config: ISC dhcpd (``dhcpd -t``) and Tandem must agree.

Both must accept, or both must reject and blame the same file and line (and, where dhcpd
prints a caret, the same column). The expected verdicts are also written down here, so the
test fails instead of passing vacuously when dhcpd is missing or the corpus changes.
Includes are relative to the working directory in dhcpd, so both run in tests/configs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tandem.config import ConfigError, load

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class Reject:
    file: str
    line: int
    dhcpd_says_line: bool = True  # some dhcpd checks are log_fatal() without a position


ACCEPT = None
EXPECTED: dict[str, Reject | None] = {
    "seed-primary.conf": ACCEPT,
    "seed-secondary.conf": ACCEPT,
    "reference-pair-primary.conf": ACCEPT,
    "reference-pair-secondary.conf": ACCEPT,
    "perf-standalone.conf": ACCEPT,
    "perf-failover-primary.conf": ACCEPT,
    "perf-failover-secondary.conf": ACCEPT,
    "campus-failover-primary.conf": ACCEPT,
    "campus-failover-secondary.conf": ACCEPT,
    "pxe-vendor-space.conf": ACCEPT,
    "ipxe-chainload.conf": ACCEPT,
    "vendor-classes.conf": ACCEPT,
    "hardware-subclass.conf": ACCEPT,
    "option82-circuit.conf": ACCEPT,
    "includes-main.conf": ACCEPT,
    "conditionals.conf": ACCEPT,
    "global-params.conf": ACCEPT,
    "ping-check.conf": ACCEPT,
    "ddns-events.conf": ACCEPT,
    "lease-events.conf": ACCEPT,
    "bootp-dynamic.conf": ACCEPT,
    "permits.conf": ACCEPT,
    "groups.conf": ACCEPT,
    "option-spaces.conf": ACCEPT,
    "site-options.conf": ACCEPT,
    "spawn-lease-limit.conf": ACCEPT,
    "subclass-lease-limit.conf": ACCEPT,
    "relay-many-subnets.conf": ACCEPT,
    "lexical-oddities.conf": ACCEPT,
    "client-ids.conf": ACCEPT,
    "many-hosts.conf": ACCEPT,
    "failover-hostnames.conf": ACCEPT,
    "broken/missing-semicolon.conf": Reject("broken/missing-semicolon.conf", 4),
    "broken/range-outside-subnet.conf": Reject("broken/range-outside-subnet.conf", 4, False),
    "broken/subnet-host-bits.conf": Reject("broken/subnet-host-bits.conf", 2),
    "broken/netmask-octet.conf": Reject("broken/netmask-octet.conf", 2),
    "broken/unknown-option.conf": Reject("broken/unknown-option.conf", 4),
    "broken/unterminated-string.conf": Reject("broken/unterminated-string.conf", 2),
    "broken/missing-brace.conf": Reject("broken/missing-brace.conf", 8),
    "broken/undeclared-failover-peer.conf": Reject("broken/undeclared-failover-peer.conf", 11),
    "broken/dynamic-bootp-in-failover-pool.conf": Reject(
        "broken/dynamic-bootp-in-failover-pool.conf", 12
    ),
    "broken/duplicate-host.conf": Reject("broken/duplicate-host.conf", 4),
    "broken/duplicate-failover-peer.conf": Reject("broken/duplicate-failover-peer.conf", 9),
    "broken/pool-without-range.conf": Reject("broken/pool-without-range.conf", 5),
    "broken/primary-without-mclt.conf": Reject("broken/primary-without-mclt.conf", 7),
    "broken/overlapping-ranges.conf": Reject("broken/overlapping-ranges.conf", 4),
    "broken/range-in-host.conf": Reject("broken/range-in-host.conf", 5),
    "broken/subnet-in-subnet.conf": Reject("broken/subnet-in-subnet.conf", 4),
    "broken/unknown-class-member.conf": Reject("broken/unknown-class-member.conf", 5),
    "broken/bad-ddns-style.conf": Reject("broken/bad-ddns-style.conf", 2),
    "broken/secondary-with-split.conf": Reject("broken/secondary-with-split.conf", 6),
    "broken/scoped-option-definition.conf": Reject("broken/scoped-option-definition.conf", 3),
    "broken/value-too-large.conf": Reject("broken/value-too-large.conf", 3),
    "broken/include-missing-semicolon.conf": Reject("broken/inc/bad-hosts.conf", 2),
    "broken/peer-without-pool.conf": Reject("broken/peer-without-pool.conf", 2, False),
    "broken/unknown-statement-keyword.conf": Reject("broken/unknown-statement-keyword.conf", 3),
    "broken/bad-if.conf": Reject("broken/bad-if.conf", 3),
    "broken/key-secret-not-base64.conf": Reject("broken/key-secret-not-base64.conf", 5),
}

_WHERE = re.compile(r"^(?P<file>\S+) line (?P<line>\d+): (?P<message>.*)$")


@dataclass(frozen=True)
class DhcpdVerdict:
    ok: bool
    file: str | None = None
    line: int | None = None
    col: int | None = None  # from the caret, when dhcpd printed one under real text


def run_dhcpd(name: str, tmp_path: Path) -> DhcpdVerdict:
    dhcpd = shutil.which("dhcpd") or "/usr/sbin/dhcpd"
    assert Path(dhcpd).exists(), "ISC dhcpd is needed for this test (Debian isc-dhcp-server)"
    proc = subprocess.run(
        [
            dhcpd,
            "-4",
            "-t",
            "-cf",
            name,
            "-lf",
            str(tmp_path / "x.leases"),
            "-pf",
            str(tmp_path / "x.pid"),
        ],
        cwd=CONFIGS,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = (proc.stdout + proc.stderr).splitlines()
    if proc.returncode == 0:
        return DhcpdVerdict(True)
    for i, text in enumerate(lines):
        m = _WHERE.match(text)
        if m is None:
            continue
        col = None
        if i + 2 < len(lines) and lines[i + 1].strip() and lines[i + 2].endswith("^"):
            col = len(lines[i + 2]) - 1 + 1  # caret index (0-based) -> 1-based column
        return DhcpdVerdict(False, m["file"], int(m["line"]), col)
    return DhcpdVerdict(False)


def test_corpus_is_complete() -> None:
    on_disk = {
        str(p.relative_to(CONFIGS))
        for p in CONFIGS.rglob("*.conf")
        if "inc" not in p.relative_to(CONFIGS).parts
    }
    assert on_disk == set(EXPECTED)
    assert sum(v is None for v in EXPECTED.values()) >= 22
    assert sum(v is not None for v in EXPECTED.values()) >= 8


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_same_verdict_as_dhcpd(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = EXPECTED[name]
    dhcpd = run_dhcpd(name, tmp_path)
    monkeypatch.chdir(CONFIGS)
    try:
        load(name)
        error: ConfigError | None = None
    except ConfigError as exc:
        error = exc

    if expected is None:
        assert dhcpd.ok, f"dhcpd rejects {name} at {dhcpd.file}:{dhcpd.line}"
        assert error is None, f"Tandem rejects {name}: {error}"
        return
    assert not dhcpd.ok, f"dhcpd accepts {name}"
    assert error is not None, f"Tandem accepts {name}"
    loc = error.loc
    assert (loc.file, loc.line) == (expected.file, expected.line), str(error)
    if expected.dhcpd_says_line:
        assert (dhcpd.file, dhcpd.line) == (expected.file, expected.line)
        if dhcpd.col is not None:
            assert loc.col == dhcpd.col, f"dhcpd points at column {dhcpd.col}: {error}"
    else:
        assert dhcpd.line is None
