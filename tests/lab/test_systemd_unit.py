"""contrib/tandem.service's capability set, for real: Tandem started as root with exactly the
unit's CapabilityBoundingSet (and NoNewPrivileges, as systemd would set them: ``setpriv``),
``-user``/``-group`` as its ExecStart, serves a real client and holds no capability after the
drop; without any one of the listed capabilities it does not start (each one is needed)."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tandem.lab.clients import Udhcpc
from tandem.lab.netns import Host, Lab, LabError, Proc
from tandem.lab.scenarios import SERVER_ADDR, ip_in_range, seed_conf
from tandem.lab.servers import READY_DHCPD, tandem_command

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(180),
    pytest.mark.usefixtures("lab_prerequisites"),
]

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "tandem.service"
USER, GROUP = "nobody", "nogroup"  # the unit's "tandem" need not exist here


def unit_capabilities() -> list[str]:
    (line,) = re.findall(r"^CapabilityBoundingSet=(.*)$", UNIT.read_text(), re.MULTILINE)
    caps = line.split()
    assert caps and all(c.startswith("CAP_") for c in caps), caps
    return caps


@pytest.fixture
def lease_dir() -> Iterator[Path]:
    """/var/lib/tandem's stand-in: owned by the user, as the README's install step makes it."""
    top = Path(tempfile.mkdtemp(prefix="td-unit-"))
    try:
        top.chmod(0o755)
        db = top / "db"
        db.mkdir(mode=0o750)
        entry = pwd.getpwnam(USER)
        os.chown(db, entry.pw_uid, entry.pw_gid)
        yield db
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _start(host: Host, leases: Path, caps: list[str], tag: str) -> Proc:
    conf = host.workdir / "tandem.conf"
    conf.write_text(seed_conf(ping_check=False), encoding="utf-8")
    bounding = "-all" + "".join(f",+{c.removeprefix('CAP_').lower()}" for c in caps)
    cmd = [
        "setpriv",
        f"--bounding-set={bounding}",
        "--inh-caps=-all",
        "--no-new-privs",
        *tandem_command(),
        *("-4", "-f", "-d", "-cf", str(conf), "-lf", str(leases)),
        *("-pf", str(host.workdir / f"{tag}.pid"), "-user", USER, "-group", GROUP, "eth0"),
    ]
    return host.spawn(cmd, host.workdir / f"{tag}.log", env={"PYTHONUNBUFFERED": "1"})


def _caps(pid: int) -> dict[str, int]:
    text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
    return {k: int(fields[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapAmb")}


def test_the_units_capabilities_are_enough_and_dropped(lab: Lab, lease_dir: Path) -> None:
    srv = lab.add_host("srv", SERVER_ADDR)
    proc = _start(srv, lease_dir / "dhcpd.leases", unit_capabilities(), "all")
    proc.wait_for_log(READY_DHCPD, 15)
    assert _caps(proc.pid) == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapAmb": 0}
    cli = Udhcpc(lab.add_host("cli"))
    cli.start()
    assert ip_in_range(cli.wait_lease(20).address), proc.log()[-2000:]
    assert proc.stop() == 0


def test_each_capability_of_the_unit_is_needed(lab: Lab, lease_dir: Path) -> None:
    srv = lab.add_host("srv", SERVER_ADDR)
    caps = unit_capabilities()
    for cap in caps:
        leases = lease_dir / "dhcpd.leases"
        if leases.exists():
            leases.unlink()
        tag = cap.lower()
        proc = _start(srv, leases, [c for c in caps if c != cap], tag)
        try:
            proc.wait_for_log(READY_DHCPD, 8)
        except LabError:
            assert not proc.running(), (cap, proc.log()[-1500:])  # it gave up, with a message
            continue
        proc.stop()
        pytest.fail(f"Tandem started without {cap}: drop it from the unit", pytrace=False)
