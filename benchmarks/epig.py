"""Benchmark EPIG (time, peak memory) and ICAL (time) on this machine's CPU.

* EPIG at ``N = 20,000`` pool points, ``M = 2,000`` targets, ``K = 100`` samples, ``C = 10``
  classes in float32: ``N M K C^2 = 4e11`` multiply-adds and ``N M C^2 = 4e9`` ``p log p``.
* ICAL selecting ``b = 10`` from ``N = 10,000`` (``K = 20``, ``C = 10``, authors' defaults).

Functions are compiled ahead of time (``jax.jit(...).lower(...).compile()``), so compile time
is reported separately; run times are the best of ``--repeats`` calls, each blocked with
``block_until_ready``. Peak memory is the process's maximum resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``), read before and after EPIG runs: the
difference is what EPIG's blocks added on top of the inputs.

Usage::

    .venv/bin/python benchmarks/epig.py --out results/bench          # full sizes
    .venv/bin/python benchmarks/epig.py --out results/quick --quick  # smoke test

Writes ``<out>/epig.json`` and prints a table.
"""

import argparse
import json
import resource
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from _timing import machine, time_compiled  # benchmarks/_timing.py

import jaxal

FULL = {"epig": (20_000, 2_000, 100, 10), "ical": (10_000, 20, 10, 10)}
QUICK = {"epig": (2_000, 500, 20, 10), "ical": (1_000, 20, 10, 10)}
BLOCKS = {"pool_block_size": 128, "target_block_size": 512}
"""EPIG's block sizes (its defaults), passed explicitly so the record states them."""


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def log_probs(rng: np.random.Generator, K: int, N: int, C: int) -> jax.Array:
    logits = 2.0 * rng.standard_normal((1, N, C)) + rng.standard_normal((K, N, C))
    return jax.nn.log_softmax(jnp.asarray(logits, jnp.float32), axis=-1)


def bench_epig(rng, N, M, K, C, repeats):
    pool, target = log_probs(rng, K, N, C), log_probs(rng, K, M, C)
    jax.block_until_ready((pool, target))
    rss_before = max_rss_mib()
    timed = time_compiled(
        lambda p, t: jaxal.scores.epig(p, t, **BLOCKS), pool, target, repeats=repeats
    )
    run_s = timed.min_s
    rss_after = max_rss_mib()
    return {
        "N": N,
        "M": M,
        "K": K,
        "C": C,
        "dtype": "float32",
        **BLOCKS,
        "compile_s": timed.compile_s,
        "run_s": run_s,
        "inputs_mib": (pool.nbytes + target.nbytes) / 2**20,
        "max_rss_before_mib": rss_before,
        "max_rss_after_mib": rss_after,
        "gflops": 2 * N * M * K * C * C / run_s / 1e9,
    }


def bench_ical(rng, N, K, C, b, repeats):
    pool = log_probs(rng, K, N, C)
    key = jax.random.key(0)
    timed = time_compiled(lambda k, lp: jaxal.select.ical(lp, b, key=k), key, pool, repeats=repeats)
    return {"N": N, "K": K, "C": C, "b": b, "compile_s": timed.compile_s, "run_s": timed.min_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    rng = np.random.default_rng(0)

    epig = bench_epig(rng, *sizes["epig"], repeats=args.repeats)
    ical = bench_ical(rng, *sizes["ical"], repeats=args.repeats)
    result = {
        "machine": machine(),
        "epig": epig,
        "ical": ical,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "epig.json").write_text(json.dumps(result, indent=2) + "\n")

    e, i = epig, ical
    print("| benchmark | size | compile (s) | run (s) | peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    print(
        f"| EPIG | N={e['N']} M={e['M']} K={e['K']} C={e['C']} f32 | {e['compile_s']:.2f} "
        f"| {e['run_s']:.2f} ({e['gflops']:.0f} GFLOP/s) | {e['max_rss_after_mib']:.0f} "
        f"(before: {e['max_rss_before_mib']:.0f}) |"
    )
    print(
        f"| ICAL | b={i['b']} N={i['N']} K={i['K']} C={i['C']} f32 | {i['compile_s']:.2f} "
        f"| {i['run_s']:.3f} | |"
    )
    print(f"wrote {args.out / 'epig.json'}")


if __name__ == "__main__":
    main()
