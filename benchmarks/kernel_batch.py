"""Time the kernel batch methods (Holzmüller et al., JMLR 2023) at the paper's sizes.

Selects b = 100 of N = 20,000 unlabelled pool points, with L = 1,000 more pool points
labelled (a bool mask over the N + L rows, the labelled rows scattered), on P = 512 features
(standard Gaussian random features, float32: the sketch size of the paper's ``grad_rp-512``
kernels) with each method of :func:`jaxal.select.kernel_batch`, and times the posterior
transform and building sketched gradient features (``dim = 512``) of a small MLP (16 -> 64
-> 64 -> 1, ReLU) for the N + L points. The labelled mask is an argument of the compiled
programs, so a round with another labelled set reuses them. Each function is wrapped in
``jax.jit`` and compiled ahead of time (``.lower(...).compile()``, reported as *compile*);
*run* is the best of ``--repeats`` calls with ``block_until_ready``. *XLA temp MB* is the
compiled program's scratch memory (``memory_analysis().temp_size_in_bytes``), the peak
beyond its inputs and outputs.

Run: ``python benchmarks/kernel_batch.py --out results/kernel_batch`` (``--quick``: N =
2,000, L = 100, b = 20, P = 128). Writes ``<out>/results.json`` and ``<out>/results.md``
and prints the markdown table.
"""

import argparse
import json
import os
import platform
from pathlib import Path

# The only LAPACK call here is eigh of a [P, P] matrix (BAIT, posterior). On a loaded small
# machine OpenBLAS's thread pool spin-waits: a 128 x 128 eigh took 0.24 s with the default
# threads and 0.9 ms with one (2 shared cores, load 6). XLA's own thread pool is unaffected.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from _timing import time_compiled  # noqa: E402  (benchmarks/_timing.py)

import jaxal  # noqa: E402
from jaxal import kernel_features  # noqa: E402

FULL = {"N": 20_000, "L": 1_000, "b": 100, "P": 512}
QUICK = {"N": 2_000, "L": 100, "b": 20, "P": 128}
METHODS = ["maxdiag", "maxdet", "maxdist", "kmeanspp", "frankwolfe", "lcmd", "bait"]


class SmallMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        for width in (64, 64):
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(1)(x)[:, 0]


def measure(fn, *args, repeats: int) -> dict[str, float]:
    """AOT-compile ``jax.jit(fn)`` for ``args``; best-of-``repeats`` run time and scratch memory."""
    timed = time_compiled(fn, *args, repeats=repeats)
    memory = timed.compiled.memory_analysis()
    temp_mb = None if memory is None else memory.temp_size_in_bytes / 2**20
    return {"compile_s": timed.compile_s, "run_s": timed.min_s, "temp_mb": temp_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/kernel_batch"))
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    N, L, b, P = size["N"], size["L"], size["b"], size["P"]
    k_pool, k_train, k_select, k_x, k_init, k_sketch = jax.random.split(jax.random.key(0), 6)
    phi = jax.random.normal(k_pool, (N + L, P), jnp.float32)
    labelled = jax.random.permutation(k_train, N + L) < L
    rows = []

    def record(name: str, result: dict[str, float]) -> None:
        rows.append({"step": name, **result})
        temp = "-" if result["temp_mb"] is None else f"{result['temp_mb']:.1f}"
        print(f"{name:32s} compile {result['compile_s']:6.2f} s  run {result['run_s']:8.3f} s"
              f"  temp {temp} MB", flush=True)  # fmt: skip

    x = jax.random.normal(k_x, (N + L, 16), jnp.float32)
    model = SmallMLP()
    params = model.init(k_init, x[:1])

    def gradient_features(params, x):
        return kernel_features.gradient(model.apply, params, x, key=k_sketch, dim=P, batch_size=256)

    record(f"gradient features (dim {P})", measure(gradient_features, params, x, repeats=1))
    record(
        "posterior transform",
        measure(
            lambda phi, labelled: kernel_features.posterior(phi, labelled=labelled, noise=1e-3),
            phi,
            labelled,
            repeats=args.repeats,
        ),
    )
    for method in METHODS:

        def select(phi, labelled, key, method=method):
            return jaxal.select.kernel_batch(phi, b, method=method, key=key, labelled=labelled)

        record(method, measure(select, phi, labelled, k_select, repeats=args.repeats))

    device = jax.devices()[0]
    result = {
        "device": f"{device.platform}: {device.device_kind}",
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "machine": platform.machine(),
        "jax": jax.__version__,
        "dtype": "float32",
        "repeats": args.repeats,
        **size,
        "rows": rows,
    }
    lines = [
        f"Kernel batch selection, b = {b} of N = {N:,}, L = {L:,}, P = {P} "
        f"({result['device']}, {os.cpu_count()} CPUs, float32; best of {args.repeats}; "
        "gradient features: 1 run)",
        "",
        "| step | compile s | run s | XLA temp MB |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        temp = "-" if row["temp_mb"] is None else f"{row['temp_mb']:.1f}"
        lines.append(f"| {row['step']} | {row['compile_s']:.2f} | {row['run_s']:.3f} | {temp} |")
    table = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
