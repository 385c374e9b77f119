"""An unprivileged Tandem: dhcpd's ``-user``, ``-group`` and ``-chroot`` (tandem.io.privileges).

The server runs as the system's ``nobody``/``nogroup`` (no account is created), with its lease
file in a temporary directory given to that user. The checks read the running server's
/proc/PID/status: its uid, gid and supplementary groups, and its capability sets, which must be
empty: everything that needs root (UDP 67, the packet socket for replies to clients without an
address, the control socket, the lease and pid files) is opened before the drop. dhclient asks
without the broadcast flag, so its OFFER and ACK go out through that packet socket.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from failover_kit import NAME, SEED_PRIMARY, SEED_SECONDARY, pair_lab, wait_for

from tandem.io.control import ControlUnavailable, control_path_for, request
from tandem.lab.clients import Dhclient
from tandem.lab.netns import Lab
from tandem.lab.scenarios import SERVER_ADDR, ip_in_range, last_lease_blocks, seed_conf
from tandem.lab.servers import (
    run_tandem,
    start_capture,
    stop_capture,
    tandem_command,
    tshark_fields,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("lab_prerequisites"),
]

USER, GROUP = "nobody", "nogroup"


@pytest.fixture
def root_dir() -> Iterator[Path]:
    """A directory every user can search (the lab's own work directory is 0700), removed after."""
    path = Path(tempfile.mkdtemp(prefix="td-unpriv-"))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _owned_dir(parent: Path, name: str) -> Path:
    entry = pwd.getpwnam(USER)
    path = parent / name
    path.mkdir(mode=0o755)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _assert_dropped(pid: int) -> None:
    entry = pwd.getpwnam(USER)
    status = _status(pid)
    assert status["Uid"].split() == [str(entry.pw_uid)] * 4, status["Uid"]
    assert status["Gid"].split() == [str(entry.pw_gid)] * 4, status["Gid"]
    assert status["Groups"].strip() == "", status["Groups"]  # setgroups([]), as dhcpd
    # Decided: no capability at all (tandem.io.privileges); the bounding set is left as is.
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(status[cap], 16) == 0, (cap, status[cap])


def test_serves_dhclient_as_nobody(lab: Lab, root_dir: Path) -> None:
    """``-user nobody -group nogroup``: dhclient is served, the process holds no privilege, and
    the lease file (handed to the user at start) is written by it."""
    srv = lab.add_host("srv", SERVER_ADDR)
    leases = _owned_dir(root_dir, "db") / "tandem.leases"
    server = run_tandem(
        srv, seed_conf(ping_check=False), leases, ["-user", USER, "-group", GROUP], pure=True
    )
    _assert_dropped(server.proc.pid)
    cli = Dhclient(lab.add_host("cli"))
    cli.start()
    ev = cli.wait_lease(25)
    assert ev.event == "BOUND" and ip_in_range(ev.address), ev
    server.wait_for_log(rf"^DHCPACK on {re.escape(str(ev.address))} to ", 5)
    _assert_dropped(server.proc.pid)
    assert leases.stat().st_uid == pwd.getpwnam(USER).pw_uid
    server.stop()
    body = last_lease_blocks(server.leases_text()).get(str(ev.address), "")
    assert "binding state active;" in body, server.leases_text()[-2000:]
    # The hourly rewrite (PATH.new renamed over PATH, PATH linked to PATH~) works as the user.
    rewrite = (
        "import sys; from tandem.store.journal import LeaseJournal; "
        "j = LeaseJournal(sys.argv[1]); c = j.load(); j.rewrite(c.leases.values()); j.close()"
    )
    as_user = ["setpriv", f"--reuid={USER}", f"--regid={GROUP}", "--clear-groups"]
    src = str(Path(__file__).resolve().parents[2] / "src")
    done = srv.run(
        [*as_user, sys.executable, "-c", rewrite, str(leases)],
        env={"PYTHONPATH": src, "TANDEM_PURE": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (leases.parent / "tandem.leases~").exists()
    assert "binding state active;" in last_lease_blocks(leases.read_text()).get(str(ev.address), "")


def test_unwritable_lease_directory_refused_before_serving(lab: Lab, root_dir: Path) -> None:
    """A lease directory ``nobody`` cannot write: a clear error, exit 1, and no reply at all
    although a client is asking the whole time."""
    srv = lab.add_host("srv", SERVER_ADDR)
    db = root_dir / "db"
    db.mkdir(mode=0o755)  # root's
    leases = db / "tandem.leases"
    leases.touch()
    conf = srv.workdir / "tandem.conf"
    conf.write_text(seed_conf(ping_check=False), encoding="utf-8")
    pcap = srv.workdir / "refused.pcap"
    capture = start_capture(srv, "eth0", pcap)
    cli = Dhclient(lab.add_host("cli"))
    cli.start()
    cmd = [
        *tandem_command(),
        *("-4", "-f", "-d", "-cf", str(conf), "-lf", str(leases)),
        *("-pf", str(srv.workdir / "tandem.pid"), "-user", USER, "-group", GROUP, "eth0"),
    ]
    proc = srv.spawn(
        cmd,
        srv.workdir / "tandem.log",
        name="tandem",
        env={"PYTHONUNBUFFERED": "1", "TANDEM_PURE": "1"},
    )
    code = proc.wait(30)
    log = proc.log()
    assert code == 1, log
    assert f"Lease database directory {db} is not writable by user {USER}" in log, log
    assert f"chown {USER}:{GROUP} {db}" in log, log
    assert "Server starting service." not in log and "DHCPOFFER" not in log, log
    stop_capture(capture, settle=3.0)  # dhclient keeps asking meanwhile
    asked = tshark_fields(pcap, ["frame.number"], "udp.dstport == 67")
    answered = tshark_fields(pcap, ["frame.number"], "udp.srcport == 67")
    assert asked, "the client sent nothing: the capture proves nothing"
    assert answered == [], answered
    assert [e for e in cli.events() if e.address] == [], cli.events()  # no lease


def test_chroot_paths_inside_and_served(lab: Lab, root_dir: Path) -> None:
    """``-chroot DIR`` (dhcpd's order: after the config is read): the lease and pid files are
    paths inside DIR, and the chrooted, unprivileged server serves a client."""
    srv = lab.add_host("srv", SERVER_ADDR)
    _owned_dir(root_dir, "db")
    inside = ["-lf", "/db/tandem.leases", "-pf", "/tandem.pid"]  # later flags win, as dhcpd
    server = run_tandem(
        srv,
        seed_conf(ping_check=False),
        extra_args=["-chroot", str(root_dir), *inside, "-user", USER],
        pure=True,
    )
    _assert_dropped(server.proc.pid)
    assert Path(f"/proc/{server.proc.pid}/root").resolve() == root_dir.resolve()
    cli = Dhclient(lab.add_host("cli"))
    cli.start()
    ev = cli.wait_lease(25)
    server.wait_for_log(rf"^DHCPACK on {re.escape(str(ev.address))} to ", 5)
    assert (root_dir / "tandem.pid").read_text().strip() == str(server.proc.pid)
    # The control socket is inside the chroot too (next to the pid file), and answers.
    status = srv.run([*tandem_command(), "status", "-ctl", str(root_dir / "tandem.ctl")])
    assert f"pid {server.proc.pid}" in status.stdout, status.stdout + status.stderr
    assert server.stop() == 0, server.log()[-3000:]
    assert "Traceback" not in server.log(), server.log()[-3000:]  # e.g. a lazy import
    text = (root_dir / "db" / "tandem.leases").read_text(encoding="utf-8")
    assert "binding state active;" in last_lease_blocks(text).get(str(ev.address), ""), text


def _my_state(pid_path: Path) -> str | None:
    try:
        answer = request(control_path_for(str(pid_path)), {"command": "status"})
    except ControlUnavailable:
        return None
    result = answer.get("result")
    assert isinstance(result, dict), answer
    info = result["failover"][NAME]
    listeners = result["failover_listeners"]
    assert all(x["listening"] for x in listeners), listeners  # ports 519 and 520, below 1024
    return str(info["my_state"])


def test_failover_pair_as_nobody_listens_below_1024(lab: Lab, root_dir: Path) -> None:
    """The seed pair (listeners on ports 519 and 520) run as ``nobody``: both listen, reach
    NORMAL, and a client's binding reaches the secondary's lease file."""
    h1, h2 = pair_lab(lab)
    drop = ["-user", USER, "-group", GROUP]
    servers = []
    for host, conf in ((h2, SEED_SECONDARY), (h1, SEED_PRIMARY)):
        leases = _owned_dir(root_dir, host.name) / "tandem.leases"
        servers.append(run_tandem(host, conf, leases, drop, ready_timeout=20, pure=True))
    secondary = servers[0]
    for server in servers:
        _assert_dropped(server.proc.pid)
    for server in servers:
        pid = server.pid_path
        assert pid is not None
        wait_for(lambda pid=pid: _my_state(pid) == "normal", 30, f"NORMAL on {server.host.name}")
    cli = Dhclient(lab.add_host("cli"))
    cli.start()
    ev = cli.wait_lease(30)
    addr = str(ev.address)

    def replicated() -> bool:
        text = secondary.leases_text()
        return "binding state active;" in last_lease_blocks(text).get(addr, "")

    wait_for(replicated, 15, "BNDUPD on the secondary")
    for server in servers:
        _assert_dropped(server.proc.pid)
