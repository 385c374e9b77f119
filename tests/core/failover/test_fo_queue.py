"""UpdateQueue behaves exactly like the dict it replaced (popped from the front), in O(1)."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from tandem.core.failover.queue import UpdateQueue

OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "discard", "pop", "front", "extend"]),
        st.lists(st.integers(min_value=0, max_value=12), max_size=4),
    ),
    max_size=80,
)


@given(OPS)
def test_same_order_as_the_dict_model(ops: list[tuple[str, list[int]]]) -> None:
    q = UpdateQueue()
    model: dict[int, None] = {}
    for op, args in ops:
        if op == "add":
            for a in args:
                q.add(a)
                model[a] = None
        elif op == "extend":
            q.extend(args)
            model.update(dict.fromkeys(args))
        elif op == "discard":
            for a in args:
                q.discard(a)
                model.pop(a, None)
        elif op == "pop":
            want = next(iter(model)) if model else None
            if want is not None:
                del model[want]
            assert q.popleft() == want
        else:  # rescind: these first (disjoint from the queue, as inflight always is)
            front = [a for a in dict.fromkeys(args) if a not in model]
            q.push_front(front)
            merged = dict.fromkeys(front)
            merged.update(model)
            model = merged
        assert list(q) == list(model)
        assert len(q) == len(model) and bool(q) == bool(model)
        assert all((a in q) == (a in model) for a in range(13))


def test_stale_entries_do_not_pile_up() -> None:
    q = UpdateQueue()
    for a in range(100_000):
        q.add(a)
        q.discard(a)
    q.add(7)
    assert len(q._order) <= 64 + 2 * len(q) + 1
    assert list(q) == [7] and q.popleft() == 7 and q.popleft() is None


def test_front_pops_do_not_slow_down_with_the_backlog() -> None:
    def per_pop(n: int) -> float:
        q = UpdateQueue(range(n))
        t0 = time.process_time()
        while q.popleft() is not None:
            pass
        return (time.process_time() - t0) / n

    small, large = per_pop(2_000), per_pop(200_000)
    # A dict popped from the front took ~25x longer per pop at 200,000 than at 2,000.
    assert large < 4 * small + 1e-6
