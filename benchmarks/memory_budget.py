"""Working memory of BALD over a large pool with and without ``memory_budget``.

For ``log_probs [K, N, C]`` (float32, default N = 1,000,000, K = 20, C = 10: 800 MB of input),
each configuration runs in a fresh subprocess that builds the input, then scores it once; we
report XLA's count of the compiled program's temporaries (``memory_analysis()``), the peak
resident memory of the process above its level after building the input (Linux: the peak is
reset through ``/proc/self/clear_refs`` and read as ``VmHWM``; includes compilation), the
time of a warm call, and whether the scores equal the unbudgeted ones.

Run: ``python benchmarks/memory_budget.py --out results/memory_budget`` (``--quick``: N =
100,000). Writes ``results.json`` and ``results.md``.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

BUDGETS = (None, "64MB", "16MB", "4MB")


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak_kib() -> int:
    """Reset the peak resident set size to the current one (Linux ``clear_refs`` 5)."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS")


def child(N: int, K: int, C: int, budget: str | None) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from _timing import time_compiled  # benchmarks/_timing.py

    import jaxal

    rng = np.random.default_rng(0)
    x = rng.standard_normal((K, N, C), np.float32)  # log_softmax in place, in numpy, so
    x += 2 * rng.standard_normal((1, N, C), np.float32)  # XLA's allocator holds no freed
    x -= np.log(np.exp(x).sum(-1, keepdims=True))  # buffers it could reuse for temporaries
    log_probs = jax.block_until_ready(jnp.asarray(x))
    del x
    baseline_kib = _reset_peak_kib()

    def score(lp):
        return jaxal.scores.bald(lp, memory_budget=budget)

    timed = time_compiled(score, log_probs, repeats=1)
    temp = timed.compiled.memory_analysis().temp_size_in_bytes
    result = timed.output
    peak_kib = _status_kib("VmHWM")
    reference = jax.jit(jaxal.scores.bald)(log_probs)
    return {
        "budget": budget,
        "xla_temp_mb": temp / 1e6,
        "peak_rss_increase_mb": (peak_kib - baseline_kib) * 1024 / 1e6,
        "seconds": timed.min_s,
        "max_abs_difference": float(jnp.max(jnp.abs(result - reference))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/memory_budget"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        N, K, C, budget = args.child
        print(json.dumps(child(int(N), int(K), int(C), None if budget == "none" else budget)))
        return
    N, K, C = (100_000 if args.quick else 1_000_000), 20, 10
    rows = []
    for budget in BUDGETS:
        command = [sys.executable, __file__, "--child", str(N), str(K), str(C), budget or "none"]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    lines = [
        f"BALD, K = {K}, N = {N:,}, C = {C}, float32 (input {K * N * C * 4 / 1e6:.0f} MB)",
        "",
        "| memory_budget | XLA temporaries (MB) | peak RSS increase (MB) | warm call (s) "
        "| max abs difference |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['budget'] or 'none'} | {row['xla_temp_mb']:.1f} "
            f"| {row['peak_rss_increase_mb']:.1f} | {row['seconds']:.3f} "
            f"| {row['max_abs_difference']:.1e} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"N": N, "K": K, "C": C, "rows": rows}))
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
