"""Benchmark greedy joint EPIG (``jaxal.select.batch_epig``) against BatchBALD and top-k EPIG.

Sizes (full): ``N = 1,000`` and ``5,000`` pool points, ``K = 20`` samples, ``C = 10`` classes,
``M = 100`` targets, ``b = 10``, ``num_samples = 1,000``, float32 inputs
``log_softmax(2 randn(1, n, C) + randn(K, n, C))`` from numpy (seed 0). With the defaults,
batch EPIG enumerates step 0 exactly (``C**i <= num_samples // (M C) = 1``) and samples 1,000
configurations, each with one target and target label, for steps 1-9; BatchBALD on the same
pool, batch and ``num_samples`` enumerates steps 0-3 (``C**i <= 1,000``) and samples steps
4-9. Issue 16's goal: batch EPIG within 10x BatchBALD. Logarithms: an exact step takes
``N C^i C^2 M``, a sampled one ``2 N S C``.

All selections are jitted and compiled ahead of time (``jax.jit(f).lower(...).compile()``,
reported as *compile*); run time is the best of ``--repeats`` calls after a warm-up, each
blocked with ``block_until_ready``, stopping once the calls have used ``--single-above-s``
seconds (a configuration whose warm-up exceeds it runs once; ``benchmarks/_timing.py``).
*top-k EPIG* is ``select.top_k(scores.epig(pool, target), b)``.

Usage::

    .venv/bin/python benchmarks/batch_epig.py --out results/bench_batch_epig
    .venv/bin/python benchmarks/batch_epig.py --out results/quick --quick   # seconds

Writes ``<out>/results.json`` and ``<out>/results.md`` and prints the table.
"""

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from _timing import machine, time_compiled  # benchmarks/_timing.py

import jaxal
from jaxal.select._configurations import num_exact_steps

FULL = {"sizes": [1_000, 5_000], "K": 20, "C": 10, "M": 100, "b": 10, "num_samples": 1_000}
QUICK = {"sizes": [200, 500], "K": 10, "C": 10, "M": 20, "b": 5, "num_samples": 100}


def log_probs(rng: np.random.Generator, K: int, n: int, C: int) -> jax.Array:
    logits = 2.0 * rng.standard_normal((1, n, C)) + rng.standard_normal((K, n, C))
    return jax.nn.log_softmax(jnp.asarray(logits, jnp.float32), axis=-1)


def bench(N: int, sizes: dict, repeats: int, single_above_s: float) -> dict:
    K, C, M, b, S = sizes["K"], sizes["C"], sizes["M"], sizes["b"], sizes["num_samples"]
    rng = np.random.default_rng(0)
    pool, target = log_probs(rng, K, N, C), log_probs(rng, K, M, C)
    key = jax.random.key(0)

    def joint(pool, target, key):
        return jaxal.select.batch_epig(pool, target, b, key=key, num_samples=S)

    def top_k(pool, target):
        return jaxal.select.top_k(jaxal.scores.epig(pool, target), b)

    def batchbald(pool, key):
        return jaxal.select.batchbald(pool, b, key=key, num_samples=S)

    joint_t = time_compiled(joint, pool, target, key, repeats=repeats, budget_s=single_above_s)
    bb_t = time_compiled(batchbald, pool, key, repeats=repeats, budget_s=single_above_s)
    top_t = time_compiled(top_k, pool, target, repeats=repeats, budget_s=single_above_s)
    indices, scores = joint_t.output
    exact_steps = num_exact_steps(C, b, max(1, S // (M * C)))
    logs = sum(N * C**i * C * C * M if i < exact_steps else 2 * N * S * C for i in range(b))
    return {
        "N": N,
        "K": K,
        "C": C,
        "M": M,
        "b": b,
        "num_samples": S,
        "exact_steps": exact_steps,
        "logarithms": logs,
        "batch_epig_compile_s": joint_t.compile_s,
        "batch_epig_s": joint_t.min_s,
        "batch_epig_runs": joint_t.runs,
        "batchbald_compile_s": bb_t.compile_s,
        "batchbald_s": bb_t.min_s,
        "top_k_epig_compile_s": top_t.compile_s,
        "top_k_epig_s": top_t.min_s,
        "top_k_epig_runs": top_t.runs,
        "ratio_batchbald": joint_t.min_s / bb_t.min_s,
        "ratio": joint_t.min_s / top_t.min_s,
        "logarithms_per_s": logs / joint_t.min_s,
        "batch_epig_indices": np.asarray(indices).tolist(),
        "batch_epig_scores": np.asarray(scores).tolist(),
        "top_k_epig_indices": np.asarray(top_t.output).tolist(),
    }


def markdown(result: dict) -> str:
    machine = result["machine"]
    lines = [
        f"{machine['date']}: {machine['cpu_count']} CPUs ({machine['platform']}), jax "
        f"{machine['jax']} ({machine['device']}), 1-min load average at start "
        f"{machine['load_average_start']:.1f}. Command: `{result['command']}`",
        "",
        "| N | K | C | M | b | num_samples | batch EPIG (s) | compile (s) | BatchBALD (s) "
        "| batch EPIG / BatchBALD | top-k EPIG (s) | batch EPIG / top-k | logarithms / s "
        "| joint EPIG of the batch |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        runs = "" if row["batch_epig_runs"] > 1 else " (1 run)"
        lines.append(
            f"| {row['N']:,} | {row['K']} | {row['C']} | {row['M']} | {row['b']} "
            f"| {row['num_samples']:,} | {row['batch_epig_s']:.4g}{runs} "
            f"| {row['batch_epig_compile_s']:.3g} | {row['batchbald_s']:.4g} "
            f"| {row['ratio_batchbald']:.1f}x | {row['top_k_epig_s']:.4g} | {row['ratio']:,.0f}x "
            f"| {row['logarithms_per_s']:.2g} | {row['batch_epig_scores'][-1]:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench_batch_epig"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--single-above-s", type=float, default=60.0)
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    result = {
        "command": "python benchmarks/batch_epig.py" + (" --quick" if args.quick else ""),
        "machine": machine(),
        "dtype": "float32",
        "rows": [],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for N in sizes["sizes"]:
        result["rows"].append(bench(N, sizes, args.repeats, args.single_above_s))
        (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / "results.md").write_text(markdown(result))
    print(markdown(result), end="")
    print(f"wrote {args.out / 'results.json'} and results.md")


if __name__ == "__main__":
    main()
