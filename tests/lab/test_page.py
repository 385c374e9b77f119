"""The live page (GET /) in headless Chromium, on the seed's pair in namespaces.

Both peers run with the HTTP listener; the secondary also with ``--http-token-file``, so the
page must ask for the token (and keep it) before it shows anything. A real dhclient gets a
lease. tests/lab/page_driver.py, run with selenium and Debian's chromium inside the
secondary's namespace, checks that the page shows both peers NORMAL, finds the lease by the
client's MAC, takes the screenshot, and then, without a reload, shows the secondary's move to
communications-interrupted after the primary is killed with SIGKILL; ``tandem status`` then
tells the same facts as text.

``TANDEM_PAGE_SCREENSHOT=docs/page.png`` also copies the screenshot there (README shows it).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from failover_kit import SEED_PRIMARY, SEED_SECONDARY, Node, pair_lab, wait_for

from tandem.lab.clients import Dhclient
from tandem.lab.netns import Lab
from tandem.lab.servers import tandem_command

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("lab_prerequisites"),
]

TOKEN = "lab-page-token-8e2b61d0c4f9"
URL = "http://127.0.0.1:8067/"
DRIVER = Path(__file__).with_name("page_driver.py")


def test_page_in_headless_chromium(lab: Lab) -> None:
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        assert os.path.exists(tool), f"{tool} missing: run `make deps`"
    h1, h2 = pair_lab(lab)
    token_file = h2.workdir / "api.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    primary = Node("tandem", h1, SEED_PRIMARY)
    secondary = Node("tandem", h2, SEED_SECONDARY, args=("--http-token-file", str(token_file)))
    secondary.start()
    primary.start()
    primary.wait_state("normal", 30)
    secondary.wait_state("normal", 30)

    cli = Dhclient(lab.add_host("cli1"))
    cli.start()
    ev = cli.wait_lease(30)
    addr, mac = str(ev.address), cli.mac()
    wait_for(lambda: secondary.active().get(addr) == mac, 15, "BNDUPD on srv2")

    shot = h2.workdir / "page.png"
    env = {"SE_OFFLINE": "true", "HOME": str(h2.workdir)}
    page = h2.spawn(
        [sys.executable, str(DRIVER), URL, mac, addr, str(shot), TOKEN], name="page", env=env
    )
    page.wait_for_log(r"^TOKEN$", 60)
    page.wait_for_log(r"^NORMAL$", 60)
    page.wait_for_log(rf"^FOUND {addr} {mac} ", 30)
    page.wait_for_log(r"^SHOT$", 60)
    assert shot.stat().st_size > 10_000
    target = os.environ.get("TANDEM_PAGE_SCREENSHOT")
    if target:
        shutil.copyfile(shot, target)

    primary.kill()
    page.wait_for_log(r"^CHANGED communications-interrupted$", 90)
    assert page.wait(30) == 0, page.log()
    assert "FAIL" not in page.log(), page.log()
    secondary.wait_state("communications-interrupted", 5)

    # `tandem status` in a terminal shows the page's facts: the states, the pool, the plot
    # summed up and the same latest events.
    res = h2.run([*tandem_command(), "status", "-pf", str(secondary.pid_path)])
    out = res.stdout
    assert "me      communications-interrupted since" in out, out
    assert "192.0.2.0/24 192.0.2.100-192.0.2.200: 101 addresses: active 1, " in out, out
    assert "leases in use 1 (max 1), DHCP packets/s" in out, out
    assert "state: failover peer failover-example: I move from normal to communications-" in out
