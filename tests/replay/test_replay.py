"""Compare the replay's per-client transcript hashes against golden.txt."""

from __future__ import annotations

from tests.replay.driver import GOLDEN, hashes, read_golden


def test_replay_matches_golden() -> None:
    want = read_golden(GOLDEN)
    got = hashes()
    assert len(got) == len(want), f"replay gave {len(got)} transcripts, golden has {len(want)}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if g != w:
            which = "final" if i == len(want) - 1 else str(i)
            raise AssertionError(
                f"replay transcript {which} differs (got {g}, golden {w}); inspect with: "
                f"PYTHONPATH=src TANDEM_PURE=1 python -m tests.replay.driver --dump {which}"
            )
