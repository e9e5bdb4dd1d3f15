"""Wall-clock timing and the machine record shared by the benchmarks.

A jaxal program is compiled once ahead of time (``jax.jit(fn).lower(*args).compile()``, timed
as ``compile_s``). Every call is blocked with :func:`jax.block_until_ready` and timed with
:func:`time.perf_counter`. After one warm-up call, the call is repeated ``repeats`` times or
until the timed runs have used ``budget_s`` seconds (always at least one timed run); a warm-up
longer than ``budget_s`` is itself the one run, so a slow call is not made twice more. Each
:class:`Timing` records the 1-minute load average (:func:`os.getloadavg`) when it began and the
highest load from other processes (:func:`other_load`) seen before each run: a busy machine
slows every figure, and not evenly (torch's
threads lose far more to other processes than XLA's: the same BatchBALD pair measured 47x at
load 7 and 6.8x at load 2).

Comparisons between libraries therefore use :func:`time_interleaved`: the calls take turns
(round ``r`` times every call once, in an order rotated each round), so each library sees the
same machine, and a comparison whose other processes' load rose above :data:`QUIET_LOAD` is
flagged as
loaded (:func:`is_quiet`); :func:`quietest` repeats a loaded comparison and keeps the quietest.
"""

import dataclasses
import datetime
import math
import os
import platform
import statistics
import time
from collections.abc import Callable

import jax


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds per call over ``runs`` timed calls: ``min_s`` (the tables' figure), ``median_s``.

    ``output`` is the last call's output; ``compile_s`` and ``compiled`` (a
    :class:`jax.stages.Compiled`, for ``memory_analysis()``) are set by :func:`time_compiled`.
    """

    min_s: float
    median_s: float
    runs: int
    load_average: float
    output: object
    compile_s: float | None = None
    compiled: object = None
    load_max: float | None = None
    """The highest load from other processes (:func:`other_load`) seen before any timed run
    (``None``: not tracked)."""


def time_call(call: Callable[[], object]) -> tuple[float, object]:
    """``(seconds, output)`` of one ``call()``, blocked until its output is ready."""
    start = time.perf_counter()
    output = jax.block_until_ready(call())
    return time.perf_counter() - start, output


def time_repeats(
    call: Callable[[], object], *, repeats: int, budget_s: float = math.inf, warm_up: bool = True
) -> Timing:
    """Time ``call()`` up to ``repeats`` times after a warm-up call, within ``budget_s``.

    ``warm_up=False`` when the caller has made (and timed) the first call itself.
    """
    load_average = os.getloadavg()[0]
    times: list[float] = []
    if warm_up:
        seconds, output = time_call(call)
        if seconds > budget_s:
            times.append(seconds)
    while not times or (len(times) < repeats and sum(times) < budget_s):
        seconds, output = time_call(call)
        times.append(seconds)
    return Timing(min(times), statistics.median(times), len(times), load_average, output)


def time_compiled(fn: Callable, *args, repeats: int, budget_s: float = math.inf) -> Timing:
    """Compile ``jax.jit(fn)`` for ``args`` once, then :func:`time_repeats` the compiled call."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    timing = time_repeats(lambda: compiled(*args), repeats=repeats, budget_s=budget_s)
    return dataclasses.replace(timing, compile_s=compile_s, compiled=compiled)


QUIET_LOAD = 1.0
"""The load from other processes above which a comparison is flagged as taken on a loaded
machine (on 2 cores, one other busy process already reads 1)."""

_CPU_SAMPLES: list[tuple[float, float]] = []
"""``(wall, process CPU seconds)`` at each :func:`other_load` reading of this process."""


def other_load() -> float:
    """The 1-minute load average less this process's own share: its CPU seconds per second
    over about the last minute (the benchmark's own threads raise the load average too, so
    the raw figure would flag every long benchmark as loaded)."""
    now, cpu = time.monotonic(), time.process_time()
    _CPU_SAMPLES.append((now, cpu))
    while len(_CPU_SAMPLES) > 2 and _CPU_SAMPLES[1][0] <= now - 60:
        _CPU_SAMPLES.pop(0)
    then, cpu_then = _CPU_SAMPLES[0]
    own = (cpu - cpu_then) / (now - then) if now - then >= 5 else 0.0
    return max(0.0, os.getloadavg()[0] - own)


def is_quiet(timings: dict[str, Timing]) -> bool:
    """Whether every run of the timings began at a load average of at most :data:`QUIET_LOAD`."""
    return _peak_load(timings) <= QUIET_LOAD


def time_interleaved(
    calls: dict[str, Callable[[], object]], *, repeats: int, budget_s: float = math.inf
) -> dict[str, Timing]:
    """Time several calls taking turns: one warm-up each, then rounds of one run per call.

    Round ``r`` runs the calls in their order rotated by ``r`` (no library always goes first
    after another's memory traffic), until ``repeats`` rounds or until a round has used
    ``budget_s`` seconds in all (at least one round). A call whose warm-up alone exceeds
    ``budget_s / len(calls)`` is not repeated: its warm-up is its one run. Each
    :class:`Timing` records the load average at the first round and the highest before any
    of its runs (``load_max``).
    """
    names = list(calls)
    share_s = budget_s / len(names)
    times: dict[str, list[float]] = {name: [] for name in names}
    outputs: dict[str, object] = {}
    loads: dict[str, list[float]] = {name: [] for name in names}
    single = set()
    for name in names:
        loads[name].append(other_load())
        seconds, outputs[name] = time_call(calls[name])
        if seconds > share_s:
            times[name].append(seconds)
            single.add(name)
    start_load = os.getloadavg()[0]
    used_s = 0.0
    for r in range(repeats):
        if len(single) == len(names):
            break
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            if name not in single:
                loads[name].append(other_load())
                seconds, outputs[name] = time_call(calls[name])
                times[name].append(seconds)
                used_s += seconds
        if used_s >= budget_s:
            break
    return {
        name: Timing(
            min(times[name]),
            statistics.median(times[name]),
            len(times[name]),
            start_load,
            outputs[name],
            load_max=max(loads[name]),
        )
        for name in names
    }


def quietest(
    measure: Callable[[], dict[str, Timing]], *, attempts: int, wait_s: float = 30.0
) -> tuple[dict[str, Timing], int]:
    """``(timings, attempts made)``: ``measure()`` repeated while it is loaded
    (:func:`is_quiet`), up to ``attempts`` times ``wait_s`` apart; the quietest is kept."""
    best = measure()
    made = 1
    while not is_quiet(best) and made < attempts:
        time.sleep(wait_s)
        again = measure()
        made += 1
        if _peak_load(again) < _peak_load(best):
            best = again
    return best, made


def _peak_load(timings: dict[str, Timing]) -> float:
    return max(t.load_max or t.load_average for t in timings.values())


def machine() -> dict:
    """Date, CPU, jax version and device of this run, and the 1-minute load average now."""
    device = jax.devices()[0]
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device": f"{device.platform}: {device.device_kind}",
        "load_average_start": os.getloadavg()[0],
    }
