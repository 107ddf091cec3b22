"""The side-by-side timing helper: every timed call follows a settling call of the same function."""

from __future__ import annotations

from timing import interleaved


def test_each_timed_call_follows_a_settling_call_of_the_same_function():
    calls = []
    fns = {name: (lambda n=name: calls.append(n)) for name in ("a", "b")}
    times = interleaved(fns, rounds=3)
    assert calls == ["a", "a", "b", "b"] * 3
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3} and all(t >= 0 for v in times.values() for t in v)
    calls.clear()
    interleaved(fns, rounds=1, settle=0)
    assert calls == ["a", "b"]
