"""Benchmark jaxal's BALD and BatchBALD against batchbald_redux and baal on the same CPU.

Every library sees the same log-probabilities (numpy, fixed seed, float32): jaxal gets the
``[K, N, C]`` layout, the peers the ``[N, K, C]`` one (transposition is not timed). Each
figure is the best of several runs after a warm-up; jaxal functions are ``jax.jit``-compiled
ahead of time (``.lower().compile()``), so compile time is reported separately, and results
are blocked with ``.block_until_ready()``. Slow peer configurations run once, and those
predicted to exceed ``--peer-max-s`` are skipped with the reason recorded.

Peak memory (BALD, and BatchBALD where the peer ran in under ``--memory-max-s``): each
library's call runs once more in a fresh child process (``--memory-child``) that loads the
pool, converts it and (jaxal) compiles, then resets the kernel's peak-RSS mark (``5`` to
``/proc/self/clear_refs``) and reports ``VmHWM`` after the call minus ``VmRSS`` before it:
the extra resident memory the call needed, without the input or the imports. (The lifetime
``ru_maxrss`` cannot isolate the call: loading and converting the input set a higher peak.)

Usage::

    .venv/bin/python benchmarks/run.py --out results/bench          # full run (tens of minutes)
    .venv/bin/python benchmarks/run.py --out results/quick --quick  # smoke test (a minute)

Writes ``<out>/results.json`` and ``<out>/results.md`` and prints the markdown tables.
"""

import argparse
import contextlib
import gc
import importlib.metadata
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # batchbald_redux draws progress bars

import jax  # noqa: E402
import numpy as np  # noqa: E402
from _timing import (  # noqa: E402  (benchmarks/_timing.py)
    QUIET_LOAD,
    Timing,
    is_quiet,
    machine,
    quietest,
    time_compiled,
    time_interleaved,
)

import jaxal  # noqa: E402
from jaxal.select._configurations import num_exact_steps  # noqa: E402

K = 20
C = 10
BALD_B = 10
SEED = 0
PARTS = ("bald", "exact_agreement", "variants", "batchbald")

FULL = {
    "bald_sizes": [10_000, 1_000_000],
    "bbald_sizes": [2_000, 10_000],
    "batch_sizes": [10, 50],
    "num_samples": 10_000,
    "block_elements": [2**20, 2**22, 2**24],
    "exact_checks": [(2_000, 10, 5), (2_000, 2, 10)],  # (N, C, b): C**(b-1) <= num_samples
}
QUICK = {
    "bald_sizes": [10_000],
    "bbald_sizes": [1_000],
    "batch_sizes": [10],
    "num_samples": 1_000,
    "block_elements": [2**20, 2**22],
    "exact_checks": [(500, 10, 3)],
}


# ----------------------------------------------------------------------------- inputs


def make_log_probs(N: int, num_classes: int = C, seed: int = SEED) -> np.ndarray:
    """``[N, K, C]`` float32 log-probs: ``log_softmax(2 * randn(N, 1, C) + randn(N, K, C))``."""
    rng = np.random.default_rng(seed)
    logits = 2.0 * rng.standard_normal((N, 1, num_classes)) + rng.standard_normal(
        (N, K, num_classes)
    )
    logits -= logits.max(axis=-1, keepdims=True)
    logits -= np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return logits.astype(np.float32)


def jaxal_layout(log_probs_N_K_C: np.ndarray) -> jax.Array:
    """The ``[K, N, C]`` copy jaxal takes, on jax's default device (``--device``)."""
    return jax.device_put(np.ascontiguousarray(log_probs_N_K_C.transpose(1, 0, 2)))


TORCH_DEVICE = {"cpu": "cpu", "gpu": "cuda"}
"""The peers' torch device for each ``--device``."""


def torch_layout(log_probs_N_K_C: np.ndarray, device: str):
    """The ``[N, K, C]`` torch tensor batchbald_redux takes, on ``--device``."""
    import torch

    return torch.from_numpy(log_probs_N_K_C).to(TORCH_DEVICE[device])


def comparison_record(timings: dict[str, Timing], attempts: int) -> dict:
    """The load averages of an interleaved comparison and whether it was quiet."""
    return {
        "load_average_start": min(t.load_average for t in timings.values()),
        "load_average_max": max(t.load_max or t.load_average for t in timings.values()),
        "quiet": is_quiet(timings),
        "attempts": attempts,
    }


@contextlib.contextmanager
def toma_gc(enabled: bool):
    """Turn toma's per-chunk ``gc.collect()`` (batchbald_redux's chunking) on or off.

    toma collects garbage before every chunk of 1,024 points to free CUDA memory; on CPU in
    a process holding jax and torch each collection costs ~0.1 s, which dominates BALD.
    """
    import toma

    saved = toma.gc_cuda
    if not enabled:
        toma.gc_cuda = lambda: None
    try:
        yield
    finally:
        toma.gc_cuda = saved


# ----------------------------------------------------------------------------- BALD


def load_baal_bald() -> type:
    """baal's ``BALD`` heuristic class.

    ``import baal`` pulls in torchmetrics, which imports torchvision when it is installed; a
    torchvision built for another torch fails to import. The heuristics need neither, so on
    failure they are loaded without running ``baal/__init__.py``.
    """
    try:
        from baal.active.heuristics import BALD
    except (ImportError, RuntimeError):
        for name in [m for m in sys.modules if m == "baal" or m.startswith("baal.")]:
            del sys.modules[name]
        package = types.ModuleType("baal")
        package.__path__ = list(importlib.util.find_spec("baal").submodule_search_locations)
        sys.modules["baal"] = package
        from baal.active.heuristics.heuristics import BALD
    return BALD


def jaxal_bald_top_k(log_probs_K_N_C: jax.Array) -> jax.Array:
    """jaxal's BALD batch: score every point, keep the ``BALD_B`` best."""
    return jaxal.select.top_k(jaxal.scores.bald(log_probs_K_N_C), BALD_B)


def bald_benchmark(N: int, repeats: int, memory: bool, *, device: str, attempts: int) -> dict:
    """jaxal bald + top_k vs batchbald_redux ``get_bald_batch`` (with and without toma's gc)
    vs baal ``BALD().get_ranks``, interleaved (:func:`time_interleaved`)."""
    from batchbald_redux.batchbald import get_bald_batch

    BALD = load_baal_bald()

    log_probs_N_K_C = make_log_probs(N)
    log_probs_K_N_C = jaxal_layout(log_probs_N_K_C)
    torch_N_K_C = torch_layout(log_probs_N_K_C, device)
    probs_N_C_K = np.ascontiguousarray(np.exp(log_probs_N_K_C).transpose(0, 2, 1))
    heuristic = BALD()
    start = time.perf_counter()
    compiled = jax.jit(jaxal_bald_top_k).lower(log_probs_K_N_C).compile()
    compile_s = time.perf_counter() - start

    def redux():
        return get_bald_batch(torch_N_K_C, BALD_B).indices

    def redux_no_gc():
        with toma_gc(enabled=False):
            return redux()

    calls = {
        "jaxal": lambda: compiled(log_probs_K_N_C),
        "batchbald_redux": redux,
        "batchbald_redux_no_toma_gc": redux_no_gc,
        "baal": lambda: heuristic.get_ranks(probs_N_C_K)[0][:BALD_B],
    }
    t, made = quietest(
        lambda: time_interleaved(calls, repeats=repeats, budget_s=120), attempts=attempts
    )
    top = {name: [int(i) for i in t[name].output] for name in ("jaxal", "batchbald_redux", "baal")}
    memory = peak_memory("bald", log_probs_N_K_C, BALD_B) if memory and device == "cpu" else None
    jaxal_s = t["jaxal"].min_s
    return {
        "N": N,
        "K": K,
        "C": C,
        "b": BALD_B,
        "jaxal": {"run_s": jaxal_s, "compile_s": compile_s, "runs": t["jaxal"].runs},
        **{name: {"run_s": t[name].min_s, "runs": t[name].runs} for name in list(calls)[1:]},
        "ratio_redux_over_jaxal": t["batchbald_redux"].min_s / jaxal_s,
        "ratio_redux_no_toma_gc_over_jaxal": t["batchbald_redux_no_toma_gc"].min_s / jaxal_s,
        "ratio_baal_over_jaxal": t["baal"].min_s / jaxal_s,
        "top_k": top,
        "top_k_equal_redux": top["jaxal"] == top["batchbald_redux"],
        "top_k_equal_baal": top["jaxal"] == top["baal"],
        **comparison_record(t, made),
        "peak_memory": memory,
    }


# ----------------------------------------------------------------------------- BatchBALD


def jaxal_batchbald_fn(b: int, num_samples: int, **options) -> Callable:
    """``(log_probs_K_N_C, key) -> (indices, scores)`` with the static settings bound."""

    def select(log_probs_K_N_C, key):
        return jaxal.select.batchbald(
            log_probs_K_N_C, b, key=key, num_samples=num_samples, **options
        )

    return select


def time_jaxal_batchbald(
    log_probs_K_N_C: jax.Array, b: int, num_samples: int, repeats: int, **options
) -> dict:
    """Compile and time jaxal's BatchBALD alone (the variants table); ``options`` go to
    ``jaxal.select.batchbald``."""
    fn = jaxal_batchbald_fn(b, num_samples, **options)
    timed = time_compiled(fn, log_probs_K_N_C, jax.random.key(SEED), repeats=repeats, budget_s=60)
    return {
        "compile_s": timed.compile_s,
        "load_average": timed.load_average,
        **jaxal_batchbald_record(timed),
    }


def jaxal_batchbald_record(timed: Timing) -> dict:
    indices, scores = timed.output  # pyright: ignore[reportGeneralTypeIssues]
    return {
        "run_s": timed.min_s,
        "runs": timed.runs,
        "indices": [int(i) for i in indices],
        "joint_mi": float(scores[-1]),
    }


def peer_cost_units(N: int, b: int, num_classes: int, num_samples: int) -> int:
    """batchbald_redux's work, ``N K C sum_i min(C**i, M)``, to predict its run time."""
    configs = sum(min(num_classes**i, num_samples) for i in range(b))
    return N * K * num_classes * configs


def agreement(jaxal_r: dict, redux_r: dict, exact_steps: int) -> dict:
    """Overlap of the selected sets, equal exact-path prefix, and the joint-MI difference."""
    a, r = jaxal_r["indices"], redux_r["indices"]
    return {
        "indices_equal": a == r,
        "overlap": len(set(a) & set(r)) / len(a),
        "exact_steps": exact_steps,
        "exact_prefix_equal": a[:exact_steps] == r[:exact_steps],
        "joint_mi_diff": jaxal_r["joint_mi"] - redux_r["joint_mi"],
    }


class PeerBudget:
    """Predicts batchbald_redux run times from the slowest rate seen so far."""

    def __init__(self, max_s: float):
        self.max_s = max_s
        self.seconds_per_unit = 0.0

    def predict(self, units: int) -> float:
        return units * self.seconds_per_unit

    def record(self, units: int, seconds: float) -> None:
        self.seconds_per_unit = max(self.seconds_per_unit, seconds / units)


def batchbald_benchmark(
    N: int,
    b: int,
    num_samples: int,
    repeats: int,
    budget: PeerBudget,
    single_above_s: float,
    memory_max_s: float,
    *,
    device: str,
    attempts: int,
) -> dict:
    """jaxal ``batchbald`` vs batchbald_redux ``get_batchbald_batch`` (float32, the input's
    dtype, toma's gc off: its fastest) on one configuration, interleaved; a peer run longer
    than ``single_above_s`` is made once."""
    from batchbald_redux.batchbald import get_batchbald_batch

    log_probs_N_K_C = make_log_probs(N)
    log_probs_K_N_C = jaxal_layout(log_probs_N_K_C)
    key = jax.random.key(SEED)
    start = time.perf_counter()
    compiled = jax.jit(jaxal_batchbald_fn(b, num_samples)).lower(log_probs_K_N_C, key).compile()
    compile_s = time.perf_counter() - start
    calls: dict[str, Callable[[], object]] = {"jaxal": lambda: compiled(log_probs_K_N_C, key)}
    result = {"N": N, "K": K, "C": C, "b": b, "num_samples": num_samples}
    units = peer_cost_units(N, b, C, num_samples)
    predicted_s = budget.predict(units)
    skipped = predicted_s > budget.max_s
    if not skipped:
        torch_N_K_C = torch_layout(log_probs_N_K_C, device)

        def redux():
            with toma_gc(enabled=False):
                return get_batchbald_batch(torch_N_K_C, b, num_samples)

        calls["batchbald_redux"] = redux
    t, made = quietest(
        lambda: time_interleaved(calls, repeats=repeats, budget_s=2 * single_above_s),
        attempts=attempts,
    )
    jaxal_r = {"compile_s": compile_s, **jaxal_batchbald_record(t["jaxal"])}
    result |= {"jaxal": jaxal_r, **comparison_record(t, made)}
    if skipped:
        result["batchbald_redux"] = {
            "skipped": f"predicted {predicted_s:.0f} s > --peer-max-s {budget.max_s:.0f} s "
            "(from the slowest rate of the smaller configurations)"
        }
        return result
    peer = t["batchbald_redux"]
    redux_r = {
        "run_s": peer.min_s,
        "runs": peer.runs,
        "indices": [int(i) for i in peer.output.indices],  # pyright: ignore[reportAttributeAccessIssue]
        "joint_mi": float(peer.output.scores[-1]),  # pyright: ignore[reportAttributeAccessIssue]
    }
    budget.record(units, redux_r["run_s"])
    result["batchbald_redux"] = redux_r
    result["ratio_redux_over_jaxal"] = redux_r["run_s"] / jaxal_r["run_s"]
    result["agreement"] = agreement(jaxal_r, redux_r, num_exact_steps(C, b, num_samples))
    if redux_r["run_s"] <= memory_max_s and device == "cpu":  # one more run, in a child
        result["peak_memory"] = peak_memory("batchbald", log_probs_N_K_C, b, num_samples)
    return result


def exact_agreement(N: int, num_classes: int, b: int, num_samples: int) -> dict:
    """A configuration on the exact path: jaxal's indices must equal batchbald_redux's."""
    import torch
    from batchbald_redux.batchbald import get_batchbald_batch

    log_probs_N_K_C = make_log_probs(N, num_classes)
    fn = jax.jit(jaxal_batchbald_fn(b, num_samples))
    indices, scores = fn(jaxal_layout(log_probs_N_K_C), jax.random.key(SEED))
    redux = get_batchbald_batch(torch.from_numpy(log_probs_N_K_C), b, num_samples)
    jaxal_indices = [int(i) for i in indices]
    return {
        "N": N,
        "C": num_classes,
        "b": b,
        "num_samples": num_samples,
        "exact_steps": num_exact_steps(num_classes, b, num_samples),
        "jaxal": jaxal_indices,
        "batchbald_redux": list(redux.indices),
        "indices_equal": jaxal_indices == list(redux.indices),
        "joint_mi_diff": float(scores[-1]) - float(redux.scores[-1]),
    }


def variants_benchmark(
    N: int, b: int, num_samples: int, block_elements: list[int], repeats: int
) -> list[dict]:
    """jaxal BatchBALD with ``lazy=False`` and with several ``block_elements`` values."""
    log_probs_K_N_C = jaxal_layout(make_log_probs(N))
    settings = [{"lazy": True, "block_elements": e} for e in block_elements]
    default = inspect.signature(jaxal.select.batchbald).parameters["block_elements"].default
    settings.append({"lazy": False, "block_elements": default})
    rows = []
    for options in settings:
        timed = time_jaxal_batchbald(log_probs_K_N_C, b, num_samples, repeats, **options)
        rows.append({"N": N, "b": b, "num_samples": num_samples, **options, **timed})
    return rows


# ----------------------------------------------------------------------------- peak memory

MEMORY_LIBRARIES = {
    "bald": ("jaxal", "batchbald_redux", "baal"),
    "batchbald": ("jaxal", "batchbald_redux"),
}


def status_kib(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``: resident now, ``VmHWM``: its peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def prepare_call(task: str, library: str, log_probs_N_K_C: np.ndarray, b: int, M: int):
    """``library``'s call on the pool with its inputs built (and jaxal's compiled): a thunk."""
    if library == "jaxal":
        log_probs_K_N_C = jaxal_layout(log_probs_N_K_C)
        if task == "bald":
            fn, args = jaxal_bald_top_k, (log_probs_K_N_C,)
        else:
            fn, args = jaxal_batchbald_fn(b, M), (log_probs_K_N_C, jax.random.key(SEED))
        compiled = jax.jit(fn).lower(*args).compile()
        jax.block_until_ready(args)  # device_put copies asynchronously: finish before measuring
        return lambda: jax.block_until_ready(compiled(*args))
    if library == "baal":
        probs_N_C_K = np.ascontiguousarray(np.exp(log_probs_N_K_C).transpose(0, 2, 1))
        heuristic = load_baal_bald()()
        return lambda: heuristic.get_ranks(probs_N_C_K)[0][:b]
    import torch
    from batchbald_redux.batchbald import get_bald_batch, get_batchbald_batch

    torch_N_K_C = torch.from_numpy(log_probs_N_K_C)
    if task == "bald":
        return lambda: get_bald_batch(torch_N_K_C, b).indices
    return lambda: get_batchbald_batch(torch_N_K_C, b, M).indices


def memory_child(task: str, library: str, path: str, b: int, M: int) -> None:
    """Child process: print the peak extra resident memory (MiB) of one call, as JSON."""
    call = prepare_call(task, library, np.load(path), b, M)
    gc.collect()
    rss_before_kib = status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # reset VmHWM (the peak RSS) to the current RSS
    peer = library == "batchbald_redux"
    with toma_gc(enabled=False) if peer else contextlib.nullcontext():
        call()
    record = {
        "peak_extra_mib": (status_kib("VmHWM") - rss_before_kib) / 1024,
        "rss_before_mib": rss_before_kib / 1024,
    }
    print(json.dumps(record))


def peak_memory(task: str, log_probs_N_K_C: np.ndarray, b: int, M: int = 0) -> dict:
    """``{library: record}``: each library's call measured by :func:`memory_child`."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "log_probs_N_K_C.npy")
        np.save(path, log_probs_N_K_C)
        for library in MEMORY_LIBRARIES[task]:
            command = [sys.executable, __file__, "--memory-child", task, library, path]
            command += ["--batch-sizes", str(b), "--num-samples", str(M)]
            child = subprocess.run(command, capture_output=True, text=True)
            if child.returncode != 0:
                results[library] = {"error": child.stderr.strip().splitlines()[-1]}
            else:
                results[library] = json.loads(child.stdout.strip().splitlines()[-1])
    return results


# ----------------------------------------------------------------------------- report


def machine_info() -> dict:
    """CPU, library versions and thread counts of this run."""
    import torch

    version = importlib.metadata.version

    return machine() | {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "batchbald_redux": version("batchbald-redux"),
        "baal": version("baal"),
        "numpy": np.__version__,
    }


def _s(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.4g}"


def _x(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.1f}×"


def _load(row: dict) -> str:
    """The comparison's highest load average, flagged when above :data:`QUIET_LOAD`."""
    load = row["load_average_max"]
    return f"{load:.1f}" if row["quiet"] else f"{load:.1f} (loaded)"


def _mib(row: dict, library: str) -> str:
    """Peak extra memory of ``library``'s call in MiB, or why it is missing."""
    record = (row.get("peak_memory") or {}).get(library)
    if record is None:
        return "—"
    if "error" in record:
        return "error"
    mib = record["peak_extra_mib"]
    return f"{mib:.1f}" if mib < 100 else f"{mib:,.0f}"


def bald_table(rows: list[dict]) -> list[str]:
    lines = [
        f"### BALD + top-{BALD_B} (K = {K}, C = {C}); seconds, best of repeats",
        "",
        "| N | jaxal | jaxal compile | batchbald_redux | redux, no toma gc | baal "
        "| redux / jaxal | redux no gc / jaxal | baal / jaxal | top-10 = redux | top-10 = baal "
        "| peak MiB jaxal | peak MiB redux | peak MiB baal | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|:---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['N']:,} | {_s(r['jaxal']['run_s'])} | {_s(r['jaxal']['compile_s'])} "
            f"| {_s(r['batchbald_redux']['run_s'])} "
            f"| {_s(r['batchbald_redux_no_toma_gc']['run_s'])} | {_s(r['baal']['run_s'])} "
            f"| {_x(r['ratio_redux_over_jaxal'])} | {_x(r['ratio_redux_no_toma_gc_over_jaxal'])} "
            f"| {_x(r['ratio_baal_over_jaxal'])} "
            f"| {r['top_k_equal_redux']} | {r['top_k_equal_baal']} "
            f"| {_mib(r, 'jaxal')} | {_mib(r, 'batchbald_redux')} | {_mib(r, 'baal')} "
            f"| {_load(r)} |"
        )
    return lines


def batchbald_table(rows: list[dict]) -> list[str]:
    lines = [
        f"### BatchBALD (K = {K}, C = {C}, M = num_samples); seconds, jaxal lazy greedy",
        "",
        "| N | b | M | jaxal | jaxal compile | batchbald_redux | redux / jaxal "
        "| same exact prefix | overlap | joint MI jaxal | joint MI redux "
        "| peak MiB jaxal | peak MiB redux | load |",
        "|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        peer, agree = r["batchbald_redux"], r.get("agreement")
        prefix = str(agree["exact_prefix_equal"]) if agree else "—"
        overlap = f"{agree['overlap']:.0%}" if agree else "—"
        peer_mi = f"{peer['joint_mi']:.3f}" if "joint_mi" in peer else "—"
        peer_s = f"skipped ({peer['skipped']})" if "skipped" in peer else _s(peer["run_s"])
        if "runs" in peer and peer["runs"] == 1:
            peer_s += " (1 run)"
        lines.append(
            f"| {r['N']:,} | {r['b']} | {r['num_samples']:,} | {_s(r['jaxal']['run_s'])} "
            f"| {_s(r['jaxal']['compile_s'])} | {peer_s} | {_x(r.get('ratio_redux_over_jaxal'))} "
            f"| {prefix} | {overlap} | {r['jaxal']['joint_mi']:.3f} | {peer_mi} "
            f"| {_mib(r, 'jaxal')} | {_mib(r, 'batchbald_redux')} | {_load(r)} |"
        )
    return lines


def variants_table(rows: list[dict]) -> list[str]:
    base = min(r["run_s"] for r in rows if r["lazy"])
    lines = [
        f"### jaxal BatchBALD variants (N = {rows[0]['N']:,}, b = {rows[0]['b']}, "
        f"M = {rows[0]['num_samples']:,})",
        "",
        "| lazy | block_elements | run (s) | compile (s) | run / fastest lazy | load |",
        "|:---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        exponent = int(np.log2(r["block_elements"]))
        lines.append(
            f"| {r['lazy']} | 2^{exponent} | {_s(r['run_s'])} | {_s(r['compile_s'])} "
            f"| {_x(r['run_s'] / base)} | {r['load_average']:.1f} |"
        )
    return lines


def exact_table(rows: list[dict]) -> list[str]:
    lines = [
        "### Exact-path agreement with batchbald_redux (C**(b-1) <= M: no sampling)",
        "",
        "| N | C | b | indices equal | joint MI diff | jaxal indices |",
        "|---:|---:|---:|:---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['N']:,} | {r['C']} | {r['b']} | {r['indices_equal']} "
            f"| {r['joint_mi_diff']:.2e} | {r['jaxal']} |"
        )
    return lines


def markdown(results: dict) -> str:
    m = results["machine"]
    header = [
        "# jaxal benchmarks",
        "",
        f"{m['date']}: {m['cpu_count']} CPUs ({m['processor']}), jax {m['jax']} "
        f"({m['backend']}), torch {m['torch']} ({m['torch_threads']} threads), "
        f"1-min load average at start {m['load_average_start']:.1f}. "
        f"Command: `{results['command']}`",
        "",
        "Each comparison runs the libraries in turn (interleaved rounds); *load* is the highest "
        "load of other processes before any of its runs (the 1-minute load average less this "
        "process's own share), and *(loaded)* marks one above "
        f"{QUIET_LOAD} even after `--attempts` tries: its ratios are not a quiet-machine figure "
        "(torch's threads lose far more to other processes than XLA's).",
        "",
    ]
    tables = {
        "bald": bald_table,
        "batchbald": batchbald_table,
        "variants": variants_table,
        "exact_agreement": exact_table,
    }
    sections = [table(results[key]) for key, table in tables.items() if results.get(key)]
    return "\n".join(header + [line for s in sections for line in [*s, ""]])


# ----------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    parser.add_argument("--quick", action="store_true", help="small sizes, a minute's smoke run")
    parser.add_argument("--bald-sizes", type=int, nargs="+", help="pool sizes N for BALD")
    parser.add_argument("--sizes", type=int, nargs="+", help="pool sizes N for BatchBALD")
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="BatchBALD batch sizes b")
    parser.add_argument("--num-samples", type=int, help="sampled configurations M")
    parser.add_argument("--block-elements", type=int, nargs="+", help="values to compare")
    parser.add_argument(
        "--parts", nargs="+", choices=PARTS, default=list(PARTS), help="benchmarks to run"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs after warm-up")
    parser.add_argument(
        "--peer-max-s", type=float, default=600, help="skip peer configs predicted slower"
    )
    parser.add_argument(
        "--peer-single-above-s", type=float, default=20, help="run slower peer configs once"
    )
    parser.add_argument(
        "--no-memory", dest="memory", action="store_false", help="skip the peak-memory runs"
    )
    parser.add_argument(
        "--memory-max-s",
        type=float,
        default=60,
        help="measure BatchBALD memory only where the peer ran faster than this",
    )
    parser.add_argument(
        "--device",
        choices=sorted(TORCH_DEVICE),
        default="cpu",
        help="run jaxal and the torch peers on this device (gpu: jax's first GPU and cuda; "
        "peak memory is measured on cpu only)",
    )
    parser.add_argument(
        "--attempts",
        type=int,
        default=3,
        help=f"repeat a comparison taken above load {QUIET_LOAD} up to this many times, "
        "30 s apart, and keep the quietest",
    )
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)  # task library path
    return parser.parse_args()


def settings(args: argparse.Namespace) -> dict:
    """The preset (full or ``--quick``) overridden by explicit flags."""
    chosen = dict(QUICK if args.quick else FULL)
    overrides = {
        "bald_sizes": args.bald_sizes,
        "bbald_sizes": args.sizes,
        "batch_sizes": args.batch_sizes,
        "num_samples": args.num_samples,
        "block_elements": args.block_elements,
    }
    chosen.update({k: v for k, v in overrides.items() if v is not None})
    return chosen


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main() -> None:
    args = parse_args()
    if args.memory_child:
        b = args.batch_sizes[0] if args.batch_sizes else BALD_B
        memory_child(*args.memory_child, b=b, M=args.num_samples or 0)
        return
    jax.config.update("jax_default_device", jax.devices(args.device)[0])
    cfg = settings(args)
    M = cfg["num_samples"]
    results = {
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:]),
        "machine": machine_info(),
        "settings": {k: v for k, v in cfg.items()},
        "bald": [],
        "batchbald": [],
    }
    parts = set(args.parts)
    for N in cfg["bald_sizes"] if "bald" in parts else []:
        log(f"BALD N={N}")
        results["bald"].append(
            bald_benchmark(N, args.repeats, args.memory, device=args.device, attempts=args.attempts)
        )
        save(results, args.out)
    if "exact_agreement" in parts:
        log("exact-path agreement")
        results["exact_agreement"] = [exact_agreement(*c, M) for c in cfg["exact_checks"]]
    if "variants" in parts:
        N = max(cfg["bbald_sizes"])
        log(f"jaxal variants N={N}")
        results["variants"] = variants_benchmark(N, 10, M, cfg["block_elements"], args.repeats)
        save(results, args.out)
    budget = PeerBudget(args.peer_max_s)
    for N in sorted(cfg["bbald_sizes"]) if "batchbald" in parts else []:
        for b in sorted(cfg["batch_sizes"]):
            log(f"BatchBALD N={N} b={b}")
            results["batchbald"].append(
                batchbald_benchmark(
                    N,
                    b,
                    M,
                    args.repeats,
                    budget,
                    args.peer_single_above_s,
                    args.memory_max_s if args.memory else -1.0,
                    device=args.device,
                    attempts=args.attempts,
                )
            )
            save(results, args.out)
    results["machine"]["load_average_end"] = os.getloadavg()[0]
    print(save(results, args.out))


def save(results: dict, out: Path) -> str:
    """Write ``results.json`` and ``results.md`` (after every benchmark); return the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (out / "results.md").write_text(table)
    return table


if __name__ == "__main__":
    main()
