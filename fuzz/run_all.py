"""`make fuzz`: run every atheris harness for a long budget and report per target.

Environment: FUZZ_SECONDS (per target, default 600), FUZZ_TARGETS (comma list, default
all), FUZZ_INPUT_SECONDS (per-input hang limit, default 10), FUZZ_RSS_MB (default 2048).

Each target runs on a scratch copy of its seed corpus (fuzz/work/<target>/, not committed)
so the committed seeds stay small and reviewable. A crash leaves its input in
fuzz/crashes/<target>-crash-<sha1> (replay it with ``python fuzz/fuzz_<target>.py FILE``);
the run prints ``target: N inputs, K crashes`` per target and exits 1 if any K > 0.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
TARGETS = ("dhcp", "failover", "config", "leases", "control", "command", "witness")
# Text inputs may be long (a big dhcpd.conf); packets and messages are short.
MAX_LEN = {
    "dhcp": 2048,
    "failover": 16384,
    "config": 65536,
    "leases": 65536,
    "control": 8192,
    "command": 16384,
    "witness": 512,
}
_DONE = re.compile(r"Done (\d+) runs")
_PROGRESS = re.compile(r"^#(\d+)\s", re.M)


def run(target: str, seconds: int) -> tuple[int, int, int]:
    """(inputs run, crash files written, exit status) for one target."""
    work = FUZZ / "work" / target
    work.mkdir(parents=True, exist_ok=True)
    crashes = FUZZ / "crashes"
    crashes.mkdir(exist_ok=True)
    before = set(crashes.iterdir())
    log = FUZZ / "work" / f"{target}.log"
    cmd = [
        sys.executable,
        str(FUZZ / f"fuzz_{target}.py"),
        "-timeout=0",  # our own SIGALRM guard per input (fuzzlib.guarded)
        f"-max_total_time={seconds}",
        f"-max_len={MAX_LEN[target]}",
        f"-rss_limit_mb={os.environ.get('FUZZ_RSS_MB', '2048')}",
        f"-artifact_prefix={crashes}/{target}-",
        "-print_final_stats=1",
    ]
    dictionary = FUZZ / "dicts" / f"{target}.dict"
    if dictionary.exists():
        cmd.append(f"-dict={dictionary}")
    cmd += [str(work), str(FUZZ / "corpus" / target)]
    with log.open("w") as out:
        # atheris guides itself by the coverage of Python bytecode, which the mypyc-compiled
        # modules (scripts/build_native.py) do not have: fuzz their source, pure (the same
        # code; make test's hypothesis runs of these targets exercise the compiled build).
        env = {**os.environ, "TANDEM_PURE": os.environ.get("TANDEM_PURE", "1")}
        status = subprocess.run(
            cmd, stdout=out, stderr=subprocess.STDOUT, check=False, env=env
        ).returncode
    text = log.read_text(errors="replace")
    done = _DONE.search(text)
    if done is not None:
        inputs = int(done.group(1))
    else:  # stopped by a crash: the last progress line says how far it got
        counts = _PROGRESS.findall(text)
        inputs = int(counts[-1]) if counts else 0
    found = len(set(crashes.iterdir()) - before)
    if status != 0 and found == 0:
        found = 1  # died without an artifact (e.g. out of memory): still a failure
        print(f"{target}: exit {status} without a crash file, see {log}", file=sys.stderr)
    return inputs, found, status


def main() -> int:
    seconds = int(os.environ.get("FUZZ_SECONDS", "600"))
    wanted = os.environ.get("FUZZ_TARGETS", ",".join(TARGETS)).split(",")
    failed = False
    for name in wanted:
        target = name.strip()
        if target not in TARGETS:
            print(f"unknown fuzz target {target!r} (have {', '.join(TARGETS)})", file=sys.stderr)
            return 2
        inputs, crashes, _status = run(target, seconds)
        print(f"{target}: {inputs} inputs, {crashes} crashes", flush=True)
        failed |= crashes > 0
    if failed:
        print(f"crashing inputs are in {FUZZ / 'crashes'}", file=sys.stderr)
    shutil.rmtree(FUZZ / "work" / "__pycache__", ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
