"""VeSSAL vs random streaming at the same query rate: the paper's main claim, at small scale.

Claim (Saran, Yousefi, Krishnamurthy, Langford & Ash, ICML 2023): in the streaming setting,
where each point is queried or skipped for good on arrival, VeSSAL (volume sampling on
gradient embeddings, its rate normalised to the budget) reaches a higher test accuracy than
querying uniformly at random at the same query rate, and it spends the label budget it is
given (the realised query rate matches the target without tuning).

Protocol: the bundled digits pool (1,348 points, 10 classes) streamed once in a random
order per seed (:mod:`jaxal.streaming`); the first ``initial`` points are labelled, then
chunks of ``chunk`` points are read: the current deep ensemble computes their BADGE
gradient embeddings, the sampler decides on each point, and the ensemble is refitted on the
labelled buffer after each chunk. ``vessal`` (:func:`jaxal.select.vessal_stream`, the
authors' defaults) and ``random`` (the authors' ``StreamingRand``: each point with the fixed
probability ``(budget - initial) / (N - initial)``) share the stream order, the initial
labels and fit, and the uniforms (common random numbers); the seeds run under one ``vmap``.
The paper's setting is larger (CIFAR-10, SVHN, ... with ResNets, 10-50k labels); this is
its question at digits scale.

Claim (:data:`CLAIMS`, decided by a paired bootstrap over the seeds, :func:`_common.claim`):
VeSSAL beats random streaming in final test accuracy (both samplers share each seed's stream).

Run: ``python experiments/vessal_stream.py [--quick | --full] --out results/vessal_stream``.
Writes ``results.json`` and ``results.png``; ``--record`` keeps the claim in
``experiments/results/vessal_stream.json``.
"""

import dataclasses
import time
from pathlib import Path
from typing import Annotated

import _common
import jax
import numpy as np
import optax
import typer
from rich.console import Console

import jaxal
from jaxal import streaming

PAPER = (
    "Paper (ICML 2023, Fig. 3-5): at an equal query rate VeSSAL beats random streaming in "
    "test accuracy on CIFAR-10, SVHN, MNIST and CLOW, and its realised query rate matches "
    "the target."
)
SAMPLERS = ("vessal", "random")
CLAIMS = (
    _common.Claim(
        "VeSSAL beats random streaming at the same query rate",
        "vessal",
        "random",
        paper="CIFAR-10 / SVHN / MNIST / CLOW: VeSSAL above random at every query rate (figures)",
        metric="final",
    ),
)
"""What this script tests (Saran et al., ICML 2023)."""


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = "digits"
    budget: int = 150
    initial: int = 20
    chunk: int = 100
    seeds: int = 5
    samples: int = 3
    hidden: int = 32
    steps: int = 300
    minibatch: int = 64
    learning_rate: float = 1e-3
    seed: int = 0


QUICK = Config(
    budget=60, initial=10, chunk=450, seeds=2, samples=2, hidden=8, steps=60, learning_rate=1e-2
)


def run(config: Config) -> dict:
    """Both samplers on the same streams: labels, accuracy ``{sampler: [S, R + 1]}``."""
    dataset = jaxal.data.load(config.dataset, key=jax.random.key(config.seed))
    assert isinstance(dataset, jaxal.data.Dataset)
    model = jaxal.posterior.MLP(num_classes=dataset.num_classes, hidden=(config.hidden,))
    posterior = jaxal.posterior.ensemble(
        model,
        config.samples,
        optimizer=optax.adam(config.learning_rate),
        num_steps=config.steps,
        batch_size=config.minibatch,
    )
    result: dict = {"labels": {}, "accuracy": {}, "nll": {}, "streamed": [], "seconds": {}}
    for sampler in SAMPLERS:
        began = time.perf_counter()
        state = streaming.run(
            dataset,
            key=jax.random.key(config.seed + 1),
            posterior=posterior,
            budget=config.budget,
            initial=config.initial,
            chunk_size=config.chunk,
            sampler=sampler,
            seeds=config.seeds,
            progress=sampler,
        )
        result["labels"][sampler] = np.asarray(state.labels)
        result["accuracy"][sampler] = np.asarray(state.metrics["accuracy"])
        result["nll"][sampler] = np.asarray(state.metrics["nll"])
        result["seconds"][sampler] = time.perf_counter() - began
    N = dataset.x_pool.shape[0]
    R = next(iter(result["labels"].values())).shape[-1] - 1
    result["streamed"] = [min(config.initial + r * config.chunk, N) for r in range(R + 1)]
    result["pool_size"] = N
    return result


def main(
    out: _common.Out = Path("results/vessal_stream"),
    quick: _common.Quick = False,
    full: Annotated[bool, typer.Option("--full", help="The full setting (the default).")] = False,
    record: _common.Record = False,
) -> None:
    if quick and full:
        raise typer.BadParameter("--quick and --full exclude each other")
    config = QUICK if quick else Config()
    began = time.perf_counter()
    result = run(config)
    queries = config.budget - config.initial
    final = {s: result["accuracy"][s][:, -1] for s in SAMPLERS}
    used = {s: result["labels"][s][:, -1] - config.initial for s in SAMPLERS}
    gap_S = final["vessal"] - final["random"]
    summary = {
        "jaxal_version": jaxal.__version__,
        "config": dataclasses.asdict(config),
        "pool_size": result["pool_size"],
        "streamed": result["streamed"],
        "labels": {s: v.tolist() for s, v in result["labels"].items()},
        "accuracy": {s: v.tolist() for s, v in result["accuracy"].items()},
        "nll": {s: v.tolist() for s, v in result["nll"].items()},
        "final_accuracy_mean": {s: float(v.mean()) for s, v in final.items()},
        "queries_wanted": queries,
        "queries_used_mean": {s: float(v.mean()) for s, v in used.items()},
        "query_rate": {
            s: float(v.mean()) / (result["pool_size"] - config.initial) for s, v in used.items()
        },
        "vessal_minus_random": float(gap_S.mean()),
        "vessal_beats_random": bool(gap_S.mean() > 0),
        "seeds_vessal_ahead": int((gap_S > 0).sum()),
        "paper": PAPER,
        "claims": _common.claims(CLAIMS, result | {"labels": result["streamed"]}),
        "seconds": result["seconds"],
        "wall_time_s": time.perf_counter() - began,
    }
    _common.write_json(summary, out / "results.json")
    if record:
        setting = f"{config.dataset} streamed once, ensemble K={config.samples}"
        _common.record_run("vessal_stream", summary, setting=setting)
    _common.plot_curves(
        out / "results.png",
        [
            (
                f"{config.dataset}: one pass, budget {config.budget} labels",
                result["streamed"],
                result["accuracy"],
            )
        ],
        ylabel="test accuracy",
        xlabel="points streamed",
    )
    columns = ["sampler", "final accuracy (mean ± std)", "queries used / wanted"]
    rows = [[s, _common.mean_std(final[s]), f"{used[s].mean():.1f} / {queries}"] for s in SAMPLERS]
    console = Console()
    console.print(
        _common.table(f"{config.dataset}: streaming, {config.seeds} seeds", columns, rows)
    )
    console.print(
        f"VeSSAL - random final accuracy: {summary['vessal_minus_random']:+.3f} "
        f"({summary['seeds_vessal_ahead']}/{config.seeds} seeds ahead)"
    )
    console.print(_common.claims_table(summary["claims"]))
    console.print(PAPER)
    console.print(f"{summary['wall_time_s']:.0f} s; wrote {out / 'results.json'} and results.png")


if __name__ == "__main__":
    typer.run(main)
