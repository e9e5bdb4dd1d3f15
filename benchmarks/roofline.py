"""Roofline: jaxal's benchmark kernels against this machine's measured peaks.

Peaks (jax on this machine, float32, best of repeats after compilation):

* **FLOP/s**: ``a @ b`` for ``[2048, 2048]`` matrices, ``2 n^3`` FLOPs;
* **read bandwidth**: ``jnp.sum(x)`` over 512 MiB (DRAM) and 8 MiB (in the 32 MiB L3 cache),
  bytes read per second; **copy**: ``x * 2`` over 512 MiB, bytes read + written per second
  (jax allocates a fresh output, so this includes first-touch page faults);
* **exp/s**, **log/s**: ``jnp.sum(jnp.exp(x))`` / ``log`` over ``2^24`` elements, and
  **xlogy/s**: ``jnp.sum(xlogy(x, x))``, the ``0 log 0 = 0``-guarded ``x log x`` that entropies
  of probabilities need (its ``select`` keeps XLA from the fast fused path), against the
  select-free ``x * log(max(x, tiny))``, which is equal (``0 * log(tiny) = 0``).

Each kernel states the bytes it must read (its inputs, once), the FLOPs it must do (adds and
multiplies; ``exp`` and ``log`` counted separately as transcendentals) and is timed through
the public API. The *bound* is the largest of ``bytes / bandwidth``, ``FLOPs / FLOP/s`` and
``exps / exp/s + logs / log/s`` (the bandwidth roof is the cache one for inputs under 32 MiB);
*of roofline* is that bound divided by the measured time (1 = at the roof). For BALD the
table also times the simplest program with the same compulsory work, ``jnp.sum(jnp.exp(x))``
over the same pool.

Usage::

    .venv/bin/python benchmarks/roofline.py --out results/roofline   # ~1-2 minutes

Writes ``<out>/results.json`` and ``<out>/results.md`` and prints the markdown.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from _timing import machine, time_compiled, time_repeats  # benchmarks/_timing.py
from jax.scipy.special import xlogy
from run import C, K, jaxal_layout, make_log_probs  # benchmarks/run.py

import jaxal

L3_BYTES = 32 * 2**20
"""Inputs up to this size are held to the in-cache read bandwidth."""


def measure_peaks(repeats: int) -> dict:
    """Peak FLOP/s, read and copy bandwidth (bytes/s), exp/s and log/s of jax on this machine."""

    def rate(fn: Callable, x, amount: float) -> float:
        return amount / time_compiled(fn, x, repeats=repeats, budget_s=10).min_s

    n = 2048
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    matmul_s = time_compiled(jnp.matmul, a, b, repeats=repeats, budget_s=10).min_s
    big = jnp.arange(2**27, dtype=jnp.float32)  # 512 MiB
    small = jnp.arange(2**21, dtype=jnp.float32)  # 8 MiB
    x = jnp.linspace(-5.0, 0.0, 2**24, dtype=jnp.float32)
    tiny = jnp.finfo(jnp.float32).tiny
    peaks = {
        "flop_per_s": 2 * n**3 / matmul_s,
        "read_dram_bytes_per_s": rate(jnp.sum, big, big.nbytes),
        "read_cache_bytes_per_s": rate(jnp.sum, small, small.nbytes),
        "copy_bytes_per_s": rate(lambda x: x * 2, big, 2 * big.nbytes),
        "exp_per_s": rate(lambda x: jnp.sum(jnp.exp(x)), x, x.size),
        "log_per_s": rate(lambda x: jnp.sum(jnp.log(x)), x + 6.0, x.size),
        "xlogy_per_s": rate(lambda x: jnp.sum(xlogy(x, x)), x + 6.0, x.size),
        "xlogx_select_free_per_s": rate(
            lambda x: jnp.sum(x * jnp.log(jnp.maximum(x, tiny))), x + 6.0, x.size
        ),
    }
    return peaks


# ----------------------------------------------------------------------------- kernels


def bald_kernel(N: int, repeats: int) -> dict:
    """BALD + top-10: read ``K N C`` floats once; per element one ``exp`` and ~3 FLOPs."""
    log_probs = jaxal_layout(make_log_probs(N))

    def fn(log_probs):
        return jaxal.select.top_k(jaxal.scores.bald(log_probs), 10)

    def exp_sum(log_probs):
        return jnp.sum(jnp.exp(log_probs))

    return {
        "kernel": f"BALD + top-10, N = {N:,}",
        "bytes": 4 * K * N * C,
        "flops": 3 * K * N * C + 4 * N * C,  # p log p, two sums; then pbar log pbar
        "exps": K * N * C,
        "logs": N * C,  # log pbar
        "run_s": time_compiled(fn, log_probs, repeats=repeats, budget_s=20).min_s,
        "exp_sum_s": time_compiled(exp_sum, log_probs, repeats=repeats, budget_s=20).min_s,
    }


def chunked_bald_kernel(N: int, repeats: int) -> dict:
    """``jaxal.chunked.score(bald)`` over a host numpy pool: BALD's work plus host chunks."""
    pool = np.ascontiguousarray(make_log_probs(N).transpose(1, 0, 2))

    def score():
        return jaxal.chunked.score(jaxal.scores.bald, pool)

    run_s = time_repeats(score, repeats=repeats, budget_s=20).min_s
    return {
        "kernel": f"chunked BALD (numpy pool, 65,536-point chunks), N = {N:,}",
        "bytes": 4 * K * N * C,
        "flops": 3 * K * N * C + 4 * N * C,
        "exps": K * N * C,
        "logs": N * C,
        "run_s": run_s,
    }


def batchbald_step_kernel(N: int, repeats: int, *, sampled: bool) -> dict:
    """One greedy BatchBALD step with ``S = 10^4`` configurations, every candidate.

    ``num_samples = max_exact_configs = 10^4`` and ``lazy=False``; timed as ``batchbald(b =
    i + 1) - batchbald(b = i)``: step ``i = 4`` is the last exact one (``C^4 = 10^4``
    configurations), step ``i = 5`` (``sampled``) the first sampled one. Either forms ``[S,
    N, C]`` conditionals ``w[S, K] @ p[K, N C]`` (``2 S K N C`` FLOPs) and takes ``sum r log
    r`` over them (``S N C`` logs, ``2 S N C`` FLOPs); the sampled step's one label per
    configuration is negligible.
    """
    log_probs = jaxal_layout(make_log_probs(N))
    key = jax.random.key(0)
    S = 10_000
    step = 5 if sampled else 4
    times = {}
    for b in (step, step + 1):

        def fn(log_probs, key, b=b):
            return jaxal.select.batchbald(
                log_probs, b, key=key, num_samples=S, max_exact_configs=S, lazy=False
            )

        times[b] = time_compiled(fn, log_probs, key, repeats=repeats, budget_s=30).min_s
    kind = "sampled" if sampled else "greedy"
    return {
        "kernel": f"BatchBALD one {kind} step, S = 10^4 configs, N = {N:,} (lazy=False)",
        "bytes": 4 * K * N * C + 4 * S * K,
        "flops": 2 * S * K * N * C + 2 * S * N * C + 2 * S * N,
        "exps": S * K,  # weights
        "logs": S * N * C,  # r log r
        "intermediate_bytes": 4 * S * N * C,
        "run_s": times[step + 1] - times[step],
    }


def epig_kernel(N: int, M: int, repeats: int) -> dict:
    """EPIG of ``N`` pool points against ``M`` targets: the ``[N, C, M, C]`` joint in blocks."""
    pool = jaxal_layout(make_log_probs(N))
    target = jaxal_layout(make_log_probs(M, seed=1))
    run_s = time_compiled(jaxal.scores.epig, pool, target, repeats=repeats, budget_s=30).min_s
    return {
        "kernel": f"EPIG, N = {N:,} pool x M = {M:,} targets",
        "bytes": 4 * K * (N + M) * C,
        "flops": 2 * K * N * C * M * C + 2 * N * M * C * C,  # joint matmul; P log P and sum
        "exps": K * (N + M) * C,
        "logs": N * M * C * C,  # P log P
        "intermediate_bytes": 4 * N * M * C * C,
        "run_s": run_s,
    }


def roofline(kernel: dict, peaks: dict) -> dict:
    """Achieved rates, their fractions of the peaks, the bound and the fraction of it reached."""
    read_peak = peaks[
        "read_cache_bytes_per_s" if kernel["bytes"] <= L3_BYTES else "read_dram_bytes_per_s"
    ]
    t = kernel["run_s"]
    floors = {
        "memory": kernel["bytes"] / read_peak,
        "FLOPs": kernel["flops"] / peaks["flop_per_s"],
        "transcendentals": kernel["exps"] / peaks["exp_per_s"]
        + kernel["logs"] / peaks["log_per_s"],
    }
    bound = max(floors, key=floors.get)
    return {
        **kernel,
        "bytes_per_s": kernel["bytes"] / t,
        "bandwidth_fraction": kernel["bytes"] / t / read_peak,
        "flop_per_s": kernel["flops"] / t,
        "flop_fraction": kernel["flops"] / t / peaks["flop_per_s"],
        "transcendental_fraction": floors["transcendentals"] / t,
        "floors_s": floors,
        "bound": bound,
        "of_roofline": floors[bound] / t,
    }


# ----------------------------------------------------------------------------- report


def _si(x: float, unit: str) -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e3:.3g} ms"


def markdown(results: dict) -> str:
    m, p = results["machine"], results["peaks"]
    lines = [
        "# Roofline",
        "",
        f"{m['date']}: {m['cpu_count']} CPUs ({m['processor']}), jax {m['jax']} "
        f"({m['backend']}), 1-min load average at start {m['load_average_start']:.1f}. "
        f"Command: `{results['command']}`",
        "",
        "### Measured peaks (jax, float32)",
        "",
        "| matmul | read, 512 MiB | read, 8 MiB | copy, 512 MiB (read + write) | exp | log "
        "| xlogy | x log max(x, tiny) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {_si(p['flop_per_s'], 'FLOP/s')} | {_si(p['read_dram_bytes_per_s'], 'B/s')} "
        f"| {_si(p['read_cache_bytes_per_s'], 'B/s')} | {_si(p['copy_bytes_per_s'], 'B/s')} "
        f"| {_si(p['exp_per_s'], '/s')} | {_si(p['log_per_s'], '/s')} "
        f"| {_si(p['xlogy_per_s'], '/s')} | {_si(p['xlogx_select_free_per_s'], '/s')} |",
        "",
        "### Kernels (K = 20, C = 10, float32)",
        "",
        "| kernel | time | bytes read | FLOPs | exps, logs | bandwidth (of peak) "
        "| FLOP/s (of peak) | exp/log rate (of peak) | bound | of roofline | exp + sum pass |",
        "|---|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|",
    ]
    for r in results["kernels"]:
        lines.append(
            f"| {r['kernel']} | {_ms(r['run_s'])} | {_si(r['bytes'], 'B')} "
            f"| {_si(r['flops'], '')} | {_si(r['exps'], '')}, {_si(r['logs'], '')} "
            f"| {_si(r['bytes_per_s'], 'B/s')} ({r['bandwidth_fraction']:.0%}) "
            f"| {_si(r['flop_per_s'], 'FLOP/s')} ({r['flop_fraction']:.0%}) "
            f"| {r['transcendental_fraction']:.0%} | {r['bound']} | {r['of_roofline']:.0%} "
            f"| {_ms(r.get('exp_sum_s'))} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/roofline"))
    parser.add_argument("--repeats", type=int, default=5, help="timed runs after warm-up")
    args = parser.parse_args()
    results = {
        "command": "python benchmarks/roofline.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
    }
    results["peaks"] = peaks = measure_peaks(max(args.repeats, 20))
    kernels = [
        lambda: bald_kernel(10_000, args.repeats),
        lambda: bald_kernel(1_000_000, args.repeats),
        lambda: chunked_bald_kernel(1_000_000, args.repeats),
        lambda: batchbald_step_kernel(2_000, args.repeats, sampled=False),
        lambda: batchbald_step_kernel(2_000, args.repeats, sampled=True),
        lambda: epig_kernel(5_000, 1_000, args.repeats),
    ]
    results["kernels"] = []
    for kernel in kernels:
        results["kernels"].append(roofline(kernel(), peaks))
        print(f"[{time.strftime('%H:%M:%S')}] {results['kernels'][-1]['kernel']}", flush=True)
    results["machine"]["load_average_end"] = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.out / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
