"""Compile time per pool size, with and without padding the pool to a bucket (pad_pool).

A jitted acquisition is compiled for every new pool size ``N``. For each program (BALD +
top-10, BatchBALD b = 5) and each mode the script makes one fresh ``jax.jit`` (after
``jax.clear_caches()``) and calls it on pools of the given sizes in turn:

* **plain**: ``[K, N, C]`` as is: one compilation per size;
* **bucketed**: ``jaxal.chunked.pad_pool`` first (next power of two, or ``--multiple``): one
  compilation per bucket (900 ... 1024 all pad to 1024).

*first call* is the wall time of the first call at a size (trace + compile + run, blocked);
*run* the best of ``--repeats`` later calls; *compile* = first call - run (shown
as 0 when timing noise makes it negative). Compilations are
counted with a trace counter. *pad* is ``pad_pool``'s time on the numpy pool (host, no
compilation) and on a jax array (a concatenation, compiled per size on its first call).

Usage::

    .venv/bin/python benchmarks/compile.py --out results/compile

Writes ``<out>/results.json`` and ``<out>/results.md`` and prints the markdown.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from _timing import machine, time_call, time_repeats  # benchmarks/_timing.py

import jaxal

K, C, SEED = 20, 10, 0


def make_log_probs(N: int) -> np.ndarray:
    """``[K, N, C]`` float32 log-probs: ``log_softmax(2 randn(1, N, C) + randn(K, N, C))``."""
    rng = np.random.default_rng(SEED)
    logits = 2.0 * rng.standard_normal((1, N, C)) + rng.standard_normal((K, N, C))
    logits -= logits.max(-1, keepdims=True)
    return (logits - np.log(np.exp(logits).sum(-1, keepdims=True))).astype(np.float32)


PROGRAMS: dict[str, Callable] = {
    "bald_top_k": lambda lp, available: jaxal.select.top_k(
        jaxal.scores.bald(lp), 10, available=available
    ),
    "batchbald": lambda lp, available: jaxal.select.batchbald(lp, 5, available=available)[0],
}


def run_mode(program: str, sizes: list[int], bucketed: bool, multiple, repeats: int) -> dict:
    """First-call and steady run times of one fresh jitted program over ``sizes``."""
    jax.clear_caches()
    traces = []

    def counted(lp, available):
        traces.append(lp.shape[1])
        return PROGRAMS[program](lp, available)

    acquire = jax.jit(counted)
    bucket = {"multiple": multiple}
    rows = []
    for N in sizes:
        pool = make_log_probs(N)
        available = np.ones(N, bool)
        if bucketed:
            pad_host_s, (pool, available) = time_call(
                partial(jaxal.chunked.pad_pool, pool, **bucket)
            )
            on_device = jnp.asarray(make_log_probs(N))
            pad_jax_s, _ = time_call(partial(jaxal.chunked.pad_pool, on_device, **bucket))
        call = partial(acquire, jax.device_put(pool), jax.device_put(available))
        first_s, indices = time_call(call)
        run_s = time_repeats(call, repeats=repeats, warm_up=False).min_s
        row = {
            "N": N,
            "padded_N": pool.shape[1],
            "first_call_s": first_s,
            "run_s": run_s,
            "compile_s": max(first_s - run_s, 0.0),
            "indices": [int(i) for i in indices],
        }
        if bucketed:
            row |= {"pad_numpy_s": pad_host_s, "pad_jax_first_s": pad_jax_s}
        rows.append(row)
    return {"rows": rows, "compilations": len(traces), "total_first_call_s": _total(rows)}


def _total(rows: list[dict]) -> float:
    return sum(r["first_call_s"] for r in rows)


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Compile time per pool size",
        "",
        f"{m['date']}: {m['cpu_count']} CPUs ({m['processor']}), jax {m['jax']} "
        f"({m['backend']}), 1-min load average at start {m['load_average_start']:.1f}. "
        f"Command: `{results['command']}`",
    ]
    for program, modes in results["programs"].items():
        plain, bucketed = modes["plain"], modes["bucketed"]
        lines += [
            "",
            f"### {program} (K = {K}, C = {C}); seconds",
            "",
            "| N | padded to | plain: first call | plain: compile | bucketed: first call "
            "| bucketed: compile | plain run | bucketed run | pad (numpy) "
            "| pad (jax, 1st call) | same indices |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
        ]
        for p, q in zip(plain["rows"], bucketed["rows"], strict=True):
            lines.append(
                f"| {p['N']:,} | {q['padded_N']:,} | {p['first_call_s']:.3f} "
                f"| {p['compile_s']:.3f} | {q['first_call_s']:.3f} | {q['compile_s']:.3f} "
                f"| {p['run_s']:.4f} | {q['run_s']:.4f} | {q['pad_numpy_s']:.4f} "
                f"| {q['pad_jax_first_s']:.4f} | {p['indices'] == q['indices']} |"
            )
        lines.append(
            f"| **total** | | **{plain['total_first_call_s']:.3f}** | | "
            f"**{bucketed['total_first_call_s']:.3f}** | | | | | | |"
        )
        lines += [
            "",
            f"Compilations: plain {plain['compilations']}, bucketed {bucketed['compilations']}.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/compile"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[900, 950, 1000, 1024])
    parser.add_argument("--multiple", type=int, help="bucket multiple (default: powers of two)")
    parser.add_argument("--programs", nargs="+", choices=list(PROGRAMS), default=list(PROGRAMS))
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the first")
    args = parser.parse_args()
    jax.block_until_ready(jnp.zeros(1) + 1)  # start the backend before timing anything
    results = {
        "command": "python benchmarks/compile.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "sizes": args.sizes,
        "multiple": args.multiple,
        "programs": {},
    }
    for program in args.programs:
        results["programs"][program] = {
            mode: run_mode(program, args.sizes, mode == "bucketed", args.multiple, args.repeats)
            for mode in ("plain", "bucketed")
        }
        print(f"[{time.strftime('%H:%M:%S')}] {program} done", flush=True)
    results["machine"]["load_average_end"] = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.out / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
