"""Throughput of the hot path: append + group commit with a real fdatasync on the test disk.

Prints records/s for several batch sizes and the load rate (`python bench/store_bench.py`).
"""

from __future__ import annotations

import os
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path

from tandem.core.lease import BindingState, Lease
from tandem.store.journal import LeaseJournal
from tandem.store.leasefile import parse_leases

NOW = 1_795_835_808


def _leases(count: int) -> list[Lease]:
    return [
        Lease(
            IPv4Address(0x0A000000 + i),
            BindingState.ACTIVE,
            next_binding_state=BindingState.FREE,
            starts=NOW + i // 100,
            ends=NOW + 3600 + i // 100,
            tstp=NOW + 5400 + i // 100,
            cltt=NOW + i // 100,
            hardware=(1, i.to_bytes(6, "big")),
            uid=b"\x01" + i.to_bytes(6, "big"),
            client_hostname=f"host-{i}",
        )
        for i in range(count)
    ]


def _run(path: Path, leases: list[Lease], batch: int) -> tuple[float, int, int]:
    """(records/s, commits, fdatasync calls) for committing ``leases`` in batches."""
    syncs = 0
    real = os.fdatasync

    def counting(fd: int) -> None:
        nonlocal syncs
        syncs += 1
        real(fd)

    jr = LeaseJournal(path)
    jr.load()
    os.fdatasync = counting
    try:
        commits = 0
        start = time.perf_counter()
        for at in range(0, len(leases), batch):
            for lease in leases[at : at + batch]:
                jr.append(lease)
            jr.commit()
            commits += 1
        elapsed = time.perf_counter() - start
    finally:
        os.fdatasync = real
        jr.close()
    return len(leases) / elapsed, commits, syncs


def main() -> None:
    """Print records/s for group commits of several batch sizes, and the load rate."""
    with tempfile.TemporaryDirectory(prefix="tandem-store-bench-") as tmp:
        _report(Path(tmp))


def _report(tmp_path: Path) -> None:
    leases = _leases(20_000)
    lines = []
    best = 0.0
    for batch in (1, 10, 100, 1000):
        sample = leases if batch >= 100 else leases[: 200 * batch]
        rates = []
        for attempt in range(3 if batch == 1000 else 1):
            path = tmp_path / f"b{batch}-{attempt}.leases"
            rate, commits, syncs = _run(path, sample, batch)
            assert syncs == commits == -(-len(sample) // batch)  # one sync per commit
            assert parse_leases(path.read_text("latin-1"), str(path)).records == len(sample)
            rates.append(rate)
        lines.append(f"batch {batch:>5}: {max(rates):>10,.0f} records/s (fdatasync per batch)")
        if batch == 1000:
            best = max(rates)
    start = time.perf_counter()
    contents = parse_leases((tmp_path / "b1000-0.leases").read_text("latin-1"), "x")
    parse_rate = contents.records / (time.perf_counter() - start)
    lines.append(f"load (parse): {parse_rate:>10,.0f} records/s")
    print("lease journal on", tmp_path, "\n  " + "\n  ".join(lines))
    print(f"best batch-1000 rate: {best:,.0f} records/s")


if __name__ == "__main__":
    main()
