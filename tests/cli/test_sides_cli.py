"""The real ``tandem`` command with one file for both peers: ``--failover-role``, ``-t``'s side
line, and ``export-partner-config`` (the namespaced version, by local addresses, is
tests/lab/test_failover_one_config.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import tandem
from tandem.lab.servers import tandem_command

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SEED_PRIMARY = CONFIGS / "seed-primary.conf"
SEED_SECONDARY = CONFIGS / "seed-secondary.conf"
# TEST-NET-3: no host running the tests owns them.
FOREIGN = ("203.0.113.71", "203.0.113.72")


#: The tandem package under test (the venv's script may point at another checkout).
ENV = {**os.environ, "PYTHONPATH": str(Path(tandem.__file__).resolve().parents[1])}


def _tandem(*args: str, cwd: Path = CONFIGS) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*tandem_command(), *args], cwd=cwd, env=ENV, capture_output=True, timeout=60, check=False
    )


def _foreign(tmp_path: Path) -> Path:
    text = SEED_PRIMARY.read_text().replace("192.0.2.1;", f"{FOREIGN[0]};")
    text = text.replace("192.0.2.2;", f"{FOREIGN[1]};")
    conf = tmp_path / "foreign.conf"
    conf.write_text(text)
    return conf


def test_failover_role_names_the_side(tmp_path: Path) -> None:
    conf = _foreign(tmp_path)
    res = _tandem("-t", "-cf", str(conf), "--failover-role", "secondary")
    assert res.returncode == 0, res.stderr
    assert (
        b'failover peer "failover-example": this host is the secondary '
        b"(--failover-role secondary: the block's other side)" in res.stderr
    )
    res = _tandem("check", str(conf), "--failover-role", "primary")
    assert res.returncode == 0 and b"this host is the primary (--failover-role primary" in (
        res.stderr
    )
    bad = _tandem("-t", "-cf", str(conf), "--failover-role", "backup")
    assert bad.returncode == 2 and b"give primary or secondary" in bad.stderr


def test_neither_address_local_is_said_by_t_and_refused_by_serve(tmp_path: Path) -> None:
    conf = _foreign(tmp_path)
    res = _tandem("-t", "-cf", str(conf))
    # dhcpd -t accepts the file (it never looks at the host), so -t keeps its exit status ...
    assert res.returncode == 0, res.stderr
    line = (
        f'{conf}:3:1: warning: failover peer "failover-example": neither its address {FOREIGN[0]} '
        f"nor its peer address {FOREIGN[1]} is an address of this host"
    )
    assert line.encode() in res.stderr, res.stderr
    assert b"serving it on this host fails on the warning above" in res.stderr
    # ... and serving it exits before opening anything.
    leases = tmp_path / "x.leases"
    leases.touch()
    serve = _tandem("-f", "-d", "-cf", str(conf), "-lf", str(leases), "--no-pid", "-p", "6767")
    assert serve.returncode == 1
    refused = line.replace(": warning: ", ": error: ", 1)  # serving: an error
    assert refused.encode() in serve.stderr, serve.stderr
    assert b"--failover-role primary|secondary" in serve.stderr
    assert b"Server starting service." not in serve.stderr


def test_export_partner_config(tmp_path: Path) -> None:
    out = tmp_path / "partner.conf"
    res = _tandem("export-partner-config", "-cf", str(SEED_PRIMARY), "-o", str(out))
    assert res.returncode == 0, res.stderr
    # The seed's secondary file, except for its first comment line(s).
    assert out.read_bytes().split(b"\n", 2)[2] == SEED_SECONDARY.read_bytes().split(b"\n", 1)[1]
    stdout = _tandem("export-partner-config", "-cf", str(SEED_PRIMARY))
    assert stdout.returncode == 0 and stdout.stdout == out.read_bytes()
    none = _tandem("export-partner-config", "-cf", str(CONFIGS / "groups.conf"))
    assert none.returncode == 1 and b"declares no failover peer" in none.stderr
