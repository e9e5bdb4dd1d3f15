"""Time EV-GP selecting b = 10 of N = 10,000 pool points with the infinite-width ReLU NTK.

The kernel is the NTK of the EV-GP authors' MLP (two hidden layers, weight std 1, bias std
0.1; :func:`jaxal.kernels.infinite_width` with depth 3, the default of
:func:`jaxal.select.ev_gp`). Targets ``X_T``: M = 2,000 pool points (a uniform subsample
standing in for the authors' k-means++ subsample) and M = N = 10,000 (the whole pool).
Labelled points: none (``labelled=None``, the authors' training-free setting: nothing is
``[N, N]``) and L = 100 random pool points given as a bool mask (the GP is conditioned on
them: the ``[N, N]`` pool covariance, updated by rank-64 blocks). Inputs are standard
Gaussian with D = 64 (digits-sized), float32. For each setting we report the ahead-of-time
compile time, the median wall time of the compiled call after a warm-up, and the same for the
``[N, M]`` kernel evaluation alone (``benchmarks/_timing.py``).

Run: ``python benchmarks/ev_gp.py --out results/bench`` (writes ``ev_gp.json``; ``--pool``,
``--targets`` and ``--labelled`` change the sizes).
"""

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
from _timing import time_compiled  # benchmarks/_timing.py
from rich.console import Console
from rich.table import Table

import jaxal

D, B, REPEATS = 64, 10, 3


def bench(num_points: int, num_targets: int, num_labelled: int) -> dict[str, float]:
    kernel = jaxal.kernels.infinite_width(3, weight_std=1.0, bias_std=0.1)
    pool_key, mask_key = jax.random.split(jax.random.key(0))
    x_pool = jax.random.normal(pool_key, (num_points, D), jnp.float32)
    labelled = jax.random.permutation(mask_key, num_points) < num_labelled

    def select(x_pool, labelled):
        return jaxal.select.ev_gp(
            x_pool,
            x_pool[:num_targets],
            B,
            kernel=kernel,
            labelled=labelled if num_labelled else None,
        )

    run = time_compiled(select, x_pool, labelled, repeats=REPEATS)
    gram = time_compiled(kernel, x_pool, x_pool[:num_targets], repeats=REPEATS)
    return {
        "N": num_points,
        "M": num_targets,
        "L": num_labelled,
        "b": B,
        "D": D,
        "compile_s": run.compile_s,
        "run_s": run.median_s,
        "kernel_N_M_s": gram.median_s,
        "greedy_s": run.median_s - gram.median_s,
        "load_average": run.load_average,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    parser.add_argument("--pool", type=int, default=10_000)
    parser.add_argument("--targets", type=int, nargs="+", default=[2_000, 10_000])
    parser.add_argument("--labelled", type=int, nargs="+", default=[0, 100])
    args = parser.parse_args()
    rows = [bench(args.pool, m, L) for m in args.targets for L in args.labelled]
    device = jax.devices()[0]
    result = {
        "device": f"{device.platform}: {device.device_kind}",
        "dtype": "float32",
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ev_gp.json").write_text(json.dumps(result, indent=2) + "\n")
    table = Table(title=f"EV-GP, b = {B} of N = {args.pool:,} ({result['device']}, float32)")
    for column in ("M", "L", "compile s", "run s", "kernel [N, M] s", "rest s"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            f"{row['M']:,}",
            f"{row['L']:,}",
            f"{row['compile_s']:.2f}",
            f"{row['run_s']:.3f}",
            f"{row['kernel_N_M_s']:.3f}",
            f"{row['greedy_s']:.3f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
