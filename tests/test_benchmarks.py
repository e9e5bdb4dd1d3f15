"""The benchmarks' shared timing (``benchmarks/_timing.py``): interleaved comparisons that
record and flag the machine's load (the peers themselves are not installed in CI)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import _timing  # noqa: E402


@pytest.fixture
def fake_clock(monkeypatch):
    """``time.perf_counter`` advanced by each call's ``cost``; ``os.getloadavg`` scripted."""
    state = {"now": 0.0, "load": [0.5]}
    monkeypatch.setattr(_timing.time, "perf_counter", lambda: state["now"])
    monkeypatch.setattr(_timing.time, "sleep", lambda s: None)
    monkeypatch.setattr(_timing.time, "process_time", lambda: 0.0)  # no CPU of our own
    monkeypatch.setattr(
        _timing.os,
        "getloadavg",
        lambda: (state["load"].pop(0) if len(state["load"]) > 1 else state["load"][0],) * 3,
    )
    return state


def _call(name: str, cost: float, log: list[str], state: dict):
    def call():
        log.append(name)
        state["now"] += cost
        return name

    return call


def test_calls_take_turns_in_rotated_order(fake_clock):
    log: list[str] = []
    calls = {n: _call(n, 0.1, log, fake_clock) for n in ("a", "b", "c")}
    t = _timing.time_interleaved(calls, repeats=3)
    assert log == ["a", "b", "c", "a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(t[n].runs == 3 and t[n].output == n for n in calls)
    assert t["a"].min_s == pytest.approx(0.1) and _timing.is_quiet(t)


def test_a_call_slower_than_its_share_runs_once(fake_clock):
    log: list[str] = []
    calls = {
        "fast": _call("fast", 0.01, log, fake_clock),
        "slow": _call("slow", 5.0, log, fake_clock),
    }
    t = _timing.time_interleaved(calls, repeats=4, budget_s=2.0)
    assert t["slow"].runs == 1 and log.count("slow") == 1
    assert t["fast"].runs == 4


def test_a_loaded_comparison_is_flagged_and_repeated_until_quiet(fake_clock):
    log: list[str] = []
    calls = {"a": _call("a", 0.1, log, fake_clock)}
    fake_clock["load"] = [3.0, 3.0, 3.0, 0.4]  # the first attempt's readings, then quiet
    t, attempts = _timing.quietest(lambda: _timing.time_interleaved(calls, repeats=2), attempts=3)
    assert attempts == 2 and _timing.is_quiet(t) and t["a"].load_max == 0.4
    fake_clock["load"] = [7.0]
    t, attempts = _timing.quietest(lambda: _timing.time_interleaved(calls, repeats=2), attempts=2)
    assert attempts == 2 and not _timing.is_quiet(t) and t["a"].load_max == 7.0


def test_the_benchmarks_own_cpu_is_not_counted_as_load(monkeypatch):
    clock = {"wall": 100.0, "cpu": 0.0}
    monkeypatch.setattr(_timing.time, "monotonic", lambda: clock["wall"])
    monkeypatch.setattr(_timing.time, "process_time", lambda: clock["cpu"])
    monkeypatch.setattr(_timing.os, "getloadavg", lambda: (2.3, 2.3, 2.3))
    monkeypatch.setattr(_timing, "_CPU_SAMPLES", [])
    assert _timing.other_load() == pytest.approx(2.3)  # no history yet
    clock["wall"] += 30.0
    clock["cpu"] += 54.0  # both cores busy with our own threads for 30 s
    assert _timing.other_load() == pytest.approx(0.5)
