"""Benchmark one posterior fit of the BatchBALD MNIST CNN on real MNIST digits, on this CPU.

The BatchBALD paper's network (:class:`jaxal.posterior.ConvNet`: conv 32-64 with max-pooling,
dense 128, dropout 0.5) fitted as the loop fits it: ``posterior.fit(x_pool, y_pool, weights)``
over the whole ``mnist5k`` pool (4,000 digits of 28x28, ``[N, 784]`` rows) with a 0/1 mask of
``20``, ``100`` or ``300`` labels, ``--steps`` Adam steps of batch 64, as MC dropout
(``K = 20`` masks) and as a deep ensemble (``K = 5`` members, dropout in training only).

``--conv xla`` times the fit with XLA's own convolutions in the training loop (as before
:mod:`jaxal.posterior._patches`), ``--conv patches`` (default) as the posteriors run now.
The fit is compiled ahead of time (``compile_s``); run times are the best of ``--repeats``
calls (benchmarks/_timing.py), each with the 1-minute load average when it began: the
machine is shared, and a load above its 2 cores slows every figure.

Usage::

    .venv/bin/python benchmarks/fit.py --out results/fit              # patches (default)
    .venv/bin/python benchmarks/fit.py --out results/fit --conv xla   # XLA convolutions
    .venv/bin/python benchmarks/fit.py --out results/quick --quick    # smoke test

The fit's cost does not depend on the number of labels (fixed shapes: every step draws 64
labelled indices), so ``--labels`` and ``--posteriors`` can trim a slow run. Writes
``<out>/fit_<conv>.json`` and prints a table.
"""

import argparse
import contextlib
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
from _timing import machine, time_compiled  # benchmarks/_timing.py

from jaxal import data, posterior
from jaxal.posterior import _patches

LABELS = (20, 100, 300)


@contextlib.contextmanager
def xla_convolutions():
    """Run the posteriors' training with XLA's convolutions (the state before the fix)."""
    original = _patches._as_matmuls
    _patches._as_matmuls = lambda next_fun, args, kwargs, context: next_fun(*args, **kwargs)
    try:
        yield
    finally:
        _patches._as_matmuls = original


def posteriors(steps: int, *, quick: bool) -> dict[str, posterior.Posterior]:
    adam = optax.adam(1e-3)
    settings = dict(optimizer=adam, num_steps=steps, batch_size=64)
    return {
        "mc_dropout": posterior.mc_dropout(posterior.ConvNet(10), 20, **settings),
        "ensemble": posterior.ensemble(posterior.ConvNet(10), 2 if quick else 5, **settings),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--conv", choices=("patches", "xla"), default="patches")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--budget-s", type=float, default=60.0, help="stop repeating after")
    parser.add_argument("--labels", type=int, nargs="+", default=list(LABELS))
    parser.add_argument("--posteriors", nargs="+", default=["mc_dropout", "ensemble"])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    steps = 20 if args.quick else args.steps
    labels = args.labels[:1] if args.quick else args.labels
    dataset = data.load("mnist5k", key=jax.random.key(0))
    x, y = dataset.x_pool, dataset.y_pool
    N = x.shape[0]
    rows = []
    patched = xla_convolutions() if args.conv == "xla" else contextlib.nullcontext()
    with patched:
        for name, post in posteriors(steps, quick=args.quick).items():
            if name not in args.posteriors:
                continue
            for n in labels:
                weights = jnp.zeros(N, jnp.float32).at[:n].set(1.0)
                timing = time_compiled(
                    lambda x, y, w, k: post.fit(x, y, w, key=k),  # noqa: B023
                    x,
                    y,
                    weights,
                    jax.random.key(1),
                    repeats=args.repeats,
                    budget_s=args.budget_s,
                )
                row = {
                    "posterior": name,
                    "conv": args.conv,
                    "labels": n,
                    "N": N,
                    "steps": steps,
                    "batch_size": 64,
                    "fit_s": timing.min_s,
                    "compile_s": timing.compile_s,
                    "load_average": timing.load_average,
                }
                rows.append(row)
                print(
                    f"{name:>10} {args.conv:>7} labels={n:>3} steps={steps} "
                    f"fit {timing.min_s:7.2f} s  compile {timing.compile_s:5.1f} s  "
                    f"load {timing.load_average:.1f}",
                    flush=True,
                )
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine(), "rows": rows}
    (args.out / f"fit_{args.conv}.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
