"""The real ``tandem`` command's check modes against ISC dhcpd's, as subprocesses.

``tandem -t -cf FILE`` must give ``dhcpd -t -cf FILE``'s exit status on every config of the
corpus (tests/configs), and point at the same file and line as ``file:line:col:`` for the broken
ones (the expected locations are the list of tests/config/test_dhcpd_verdict.py). ``tandem -T``
must read the lease files real dhcpd 4.4 wrote (vectors/isc-dhcpd-pair) and reject damaged
copies, at the line dhcpd -T complains about and the column of the damaged token.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tandem.lab.servers import tandem_command
from tandem.lab.shared import VECTORS as SHARED_VECTORS

TESTS = Path(__file__).resolve().parent.parent
CONFIGS = TESTS / "configs"
VECTORS = SHARED_VECTORS


def _verdict_module() -> ModuleType:
    """tests/config/test_dhcpd_verdict.py, loaded by path (tests/ is not a package)."""
    name = "_tandem_tests_dhcpd_verdict"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TESTS / "config" / "test_dhcpd_verdict.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


VERDICT = _verdict_module()
EXPECTED: dict[str, object] = VERDICT.EXPECTED


def _dhcpd() -> str:
    found = shutil.which("dhcpd") or "/usr/sbin/dhcpd"
    assert Path(found).exists(), "ISC dhcpd is needed (Debian isc-dhcp-server)"
    return found


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_corpus_matches_the_verdict_list() -> None:
    on_disk = {
        str(p.relative_to(CONFIGS))
        for p in CONFIGS.rglob("*.conf")
        if "inc" not in p.relative_to(CONFIGS).parts
    }
    assert on_disk == set(EXPECTED) and len(EXPECTED) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tandem_t_exit_status_as_dhcpd_t(name: str, tmp_path: Path) -> None:
    dhcpd = _run(
        [_dhcpd(), "-4", "-t", "-cf", name, "-lf", str(tmp_path / "x.leases"), "-pf", "/dev/null"],
        CONFIGS,
    )
    tandem = _run([*tandem_command(), "-t", "-cf", name], CONFIGS)
    assert tandem.returncode == dhcpd.returncode, (tandem.stderr, dhcpd.stderr[-1500:])
    expected = EXPECTED[name]
    if expected is None:
        assert tandem.returncode == 0, tandem.stderr
        assert f"Config file: {name}" in tandem.stderr, tandem.stderr
        assert re.search(r"^\S+:\d+:\d+: error", tandem.stderr, re.MULTILINE) is None
        return
    assert tandem.returncode == 1, tandem.stderr
    where = re.escape(f"{expected.file}:{expected.line}:")  # type: ignore[attr-defined]
    assert re.search(rf"^{where}\d+: ", tandem.stderr, re.MULTILINE), tandem.stderr
    assert "Configuration file errors encountered -- exiting" in tandem.stderr


def test_missing_config_file_fails_like_dhcpd(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.conf")
    dhcpd = _run([_dhcpd(), "-4", "-t", "-cf", missing, "-pf", "/dev/null"], tmp_path)
    tandem = _run([*tandem_command(), "-t", "-cf", missing], tmp_path)
    assert tandem.returncode == dhcpd.returncode == 1, (tandem.stderr, dhcpd.stderr)
    assert missing in tandem.stderr


def test_tandem_t_fails_on_a_peer_host_name_that_does_not_resolve(tmp_path: Path) -> None:
    """Tandem resolves failover host names at load time, so -t names the one that fails.

    Deliberately stricter than dhcpd, which looks names up only when it connects (and logs
    "NAME: host unknown."), so its -t accepts the same file: the corpus cannot hold this one.
    """
    text = (CONFIGS / "failover-hostnames.conf").read_text()
    old = "  peer address localhost;\n"
    assert old in text
    conf = tmp_path / "unresolvable.conf"
    conf.write_text(text.replace(old, "  peer address dhcp02.no-such-host.invalid;\n"))
    line = conf.read_text().split("\n").index("  peer address dhcp02.no-such-host.invalid;") + 1
    dhcpd = _run([_dhcpd(), "-4", "-t", "-cf", conf.name, "-pf", "/dev/null"], tmp_path)
    assert dhcpd.returncode == 0, dhcpd.stderr  # the oracle: dhcpd -t does not resolve
    tandem = _run([*tandem_command(), "-t", "-cf", conf.name], tmp_path)
    assert tandem.returncode == 1, tandem.stderr
    assert re.search(
        rf"^unresolvable\.conf:{line}:17: error: failover peer by-name: peer address "
        r"dhcp02\.no-such-host\.invalid does not resolve \(.+\): add .+ to DNS or /etc/hosts",
        tandem.stderr,
        re.MULTILINE,
    ), tandem.stderr
    assert "Configuration file errors encountered -- exiting" in tandem.stderr


# --- lease files -------------------------------------------------------------------------


def _dhcpd_lease_test(conf: Path, leases: Path) -> str:
    """dhcpd -T on a copy (it writes a temporary file next to the one it reads)."""
    res = _run(
        [_dhcpd(), "-4", "-T", "-cf", str(conf), "-lf", str(leases), "-pf", "/dev/null"],
        leases.parent,
    )
    assert res.returncode == 0, res.stderr  # dhcpd -T says 0 even for damage: read its output
    return res.stdout + res.stderr


@pytest.mark.parametrize("side", ["primary", "secondary"])
def test_tandem_T_reads_real_dhcpd_lease_files(side: str, tmp_path: Path) -> None:
    leases = tmp_path / f"{side}.leases"
    shutil.copyfile(VECTORS / f"{side}.leases", leases)
    text = leases.read_text()
    out = _dhcpd_lease_test(VECTORS / f"dhcpd-failover-{side}.conf", leases)
    assert "Lease file test successful" in out and "orrupt" not in out, out

    res = _run([*tandem_command(), "-T", "-lf", str(leases)], tmp_path)
    assert res.returncode == 0, res.stderr
    addresses = set(re.findall(r"^lease (\S+) \{", text, re.MULTILINE))
    assert f"Read {len(addresses)} leases." in res.stderr, res.stderr
    assert leases.read_text() == text, "a check must not modify the file"


# (name, line-matcher, edit of that line, the damaged token) -- every one of them is reported
# by dhcpd -T too, at the same line.
DAMAGE = [
    ("bad-binding-state", "binding state backup;", ("backup;", "backpu;"), "backpu"),
    ("bad-hardware-address", "hardware ethernet", ("ethernet ", "ethernet zz: "), "zz"),
    ("unknown-statement", "  cltt ", ("  cltt ", "  frobnicate 7;\n  cltt "), "frobnicate"),
]


@pytest.mark.parametrize(("name", "match", "edit", "token"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_tandem_T_rejects_damage_where_dhcpd_does(
    name: str, match: str, edit: tuple[str, str], token: str, tmp_path: Path
) -> None:
    lines = (VECTORS / "primary.leases").read_text().split("\n")
    index = next(i for i, line in enumerate(lines) if match in line)
    lines[index] = lines[index].replace(edit[0], edit[1], 1)
    damaged = "\n".join(lines)
    leases = tmp_path / "damaged.leases"
    leases.write_text(damaged)
    bad_line = next(
        n for n, line in enumerate(damaged.split("\n"), start=1) if re.search(rf"\b{token}\b", line)
    )
    bad_col = damaged.split("\n")[bad_line - 1].index(token) + 1

    copy = tmp_path / "for-dhcpd.leases"
    copy.write_text(damaged)
    out = _dhcpd_lease_test(VECTORS / "dhcpd-failover-primary.conf", copy)
    assert re.search(rf"line {bad_line}: ", out), out  # the oracle: dhcpd sees it there

    res = _run([*tandem_command(), "-T", "-lf", str(leases)], tmp_path)
    assert res.returncode == 1, res.stderr
    assert re.search(rf"^{re.escape(str(leases))}:{bad_line}:{bad_col}: ", res.stderr, re.M), (
        bad_line,
        bad_col,
        res.stderr,
    )
    assert "Lease file errors encountered -- exiting" in res.stderr
