"""Issue 8's done-when: the replay of 3,200 clients gives the old main's bytes (see driver.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from driver import GOLDEN, Replay, digest, read_golden


def test_replay_matches_golden() -> None:
    golden = read_golden(GOLDEN)
    replay = Replay()
    got = [digest(t) for t in replay.run()]
    assert len(got) == len(golden), f"{len(got)} transcripts, golden has {len(golden)}"
    for i, (h, g) in enumerate(zip(got, golden, strict=True)):
        name = "final" if i == len(got) - 1 else str(i)
        assert h == g, (
            f"replay differs from the old main first at client {name}: see its transcript with "
            f"`PYTHONPATH=src TANDEM_PURE=1 python -m tests.replay.driver --dump {name}` here and "
            "in a worktree of 00e476d (driver.py's docstring), then diff"
        )
