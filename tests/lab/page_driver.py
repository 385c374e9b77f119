"""Drives Tandem's live page in headless Chromium (selenium + Debian's chromium-driver).

Run by tests/lab/test_page.py inside a server's namespace (the page is on that namespace's
loopback), as ``python page_driver.py URL MAC ADDR SHOT [TOKEN]``. It reports each step on
stdout, one line each, for the test to wait on: ``TOKEN`` (with TOKEN, the page asked for it,
the server having --http-token-file, and the driver typed it in), ``NORMAL`` (both peers
normal), ``FOUND`` (the search by MAC shows ADDR), ``SHOT`` (screenshot written); then it
waits, without reloading, for the page to show the change after the test killed the partner:
``CHANGED STATE``. Any failure: ``FAIL why`` and exit 1.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,1100",
)


def say(line: str) -> None:
    print(line, flush=True)


def wait(what: str, pred: Callable[[], object], timeout: float) -> object:
    end = time.monotonic() + timeout
    while True:
        try:
            got = pred()
        except Exception:  # the element may be replaced between two looks
            got = None
        if got:
            return got
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def states(drv: webdriver.Chrome) -> tuple[str, str]:
    me = drv.find_element(By.CSS_SELECTOR, ".side-me [data-state]").get_attribute("data-state")
    peer = drv.find_element(By.CSS_SELECTOR, ".side-partner [data-state]")
    return str(me), str(peer.get_attribute("data-state"))


def main(url: str, mac: str, addr: str, shot: str, token: str = "") -> None:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='tandem-page-')}")
    drv = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    try:
        drv.get(url)
        drv.execute_script("window.tandemLoadedOnce = true;")  # gone if the page reloads
        if token:
            wait("the token form", lambda: drv.find_element(By.ID, "login").is_displayed(), 20)
            drv.find_element(By.ID, "token").send_keys(token)
            drv.find_element(By.CSS_SELECTOR, "#login button").click()
            say("TOKEN")
        wait("both peers normal", lambda: states(drv) == ("normal", "normal"), 60)
        say("NORMAL")
        box = drv.find_element(By.ID, "q")
        box.send_keys(mac)
        drv.find_element(By.CSS_SELECTOR, "#search button").click()
        row = f'#results tr[data-ip="{addr}"]'
        cells = wait(
            f"the lease {addr} found by {mac}",
            lambda: [c.text for c in drv.find_elements(By.CSS_SELECTOR, row + " td")],
            20,
        )
        assert isinstance(cells, list) and cells[:2] == [addr, mac], cells
        say(f"FOUND {' '.join(cells)}")
        # A few samples in the plot, the chart library loaded, then the picture.
        wait("the chart", lambda: drv.find_elements(By.CSS_SELECTOR, "#plot-leases canvas"), 20)
        wait(
            "three samples",
            lambda: drv.execute_script(
                "return document.querySelectorAll('#events li').length > 0 &&"
                " document.body.dataset.updated"
            ),
            20,
        )
        time.sleep(11)  # two more samples (one every 5 s)
        drv.save_screenshot(shot)
        say("SHOT")
        before = states(drv)
        changed = wait("a change of state", lambda: states(drv) != before and states(drv), 60)
        assert drv.execute_script("return window.tandemLoadedOnce === true;"), "page reloaded"
        me, _peer = changed  # type: ignore[misc]
        wait(
            "the event of it",
            lambda: any(
                f"I move from normal to {me}" in li.text
                for li in drv.find_elements(By.CSS_SELECTOR, "#events li")
            ),
            20,
        )
        say(f"CHANGED {me}")
    finally:
        drv.quit()


if __name__ == "__main__":
    try:
        main(*sys.argv[1:6])
    except Exception as exc:
        say(f"FAIL {type(exc).__name__}: {exc}")
        sys.exit(1)
