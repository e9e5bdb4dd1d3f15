"""Wall-clock timing and the machine record shared by the benchmarks.

A jaxal program is compiled once ahead of time (``jax.jit(fn).lower(*args).compile()``, timed
as ``compile_s``). Every call is blocked with :func:`jax.block_until_ready` and timed with
:func:`time.perf_counter`. After one warm-up call, the call is repeated ``repeats`` times or
until the timed runs have used ``budget_s`` seconds (always at least one timed run); a warm-up
longer than ``budget_s`` is itself the one run, so a slow call is not made twice more. Each
:class:`Timing` records the 1-minute load average (:func:`os.getloadavg`) when it began: a busy
machine slows every figure.
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
