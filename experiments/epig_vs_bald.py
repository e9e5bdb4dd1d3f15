"""EPIG vs BALD on digits when the test distribution covers only half of the pool's classes.

Setting (after Bickford Smith et al., AISTATS 2023, "unbalanced / irrelevant pool"): the pool
holds all ten digit classes, but the model is tested on classes 0-4 only. BALD spends labels
wherever the model is uncertain, irrelevant classes included; EPIG scores a point by the
information its label carries about the predictions on target inputs ``x* ~ p*`` (unlabelled
inputs of classes 0-4), so it should prefer relevant points.

Protocol: scikit-learn digits, 40% held out; the held-out points of classes 0-4 are split
in half into unlabelled *target inputs* (EPIG's ``x*``, never labelled) and the *test set*
(accuracy of the mean predictive, argmax over all ten classes). On :mod:`jaxal.loop`
(:func:`jaxal.loop.compare`: both strategies from the same random initial labels and initial
fit per seed, all seeds under one ``vmap``), a deep ensemble (``K`` MLP members) is retrained
from scratch each round on the labelled points; each round adds ``b`` points by the
registered strategies ``bald`` (top-``b`` BALD) or ``epig`` (top-``b`` EPIG), with ``M``
targets drawn afresh every round from the target inputs
(``jaxal.context.Targets("given", M, inputs=...)``). We also report the share of acquired
points from classes 0-4.

Claims (:data:`CLAIMS`, decided by a paired bootstrap over the seeds, :func:`_common.claim`):
EPIG beats BALD on the area under the target-class accuracy curve, and takes a larger share
of its labels from the target classes (mean over rounds).

Run: ``python experiments/epig_vs_bald.py [--quick] --out results/epig_vs_bald``.
Writes ``results.json`` and ``results.png``; ``--record`` keeps the claims in
``experiments/results/epig_vs_bald.json``.
"""

import dataclasses
import time
from pathlib import Path

import _common
import jax
import numpy as np
import optax
import typer
from rich.console import Console

from jaxal import data, posterior
from jaxal.context import Targets

TARGET_CLASSES = 5
"""Test and target inputs come from classes ``0 .. TARGET_CLASSES - 1``."""

STRATEGIES = ("bald", "epig")
CLAIMS = (
    _common.Claim(
        "EPIG beats BALD on the target classes",
        "epig",
        "bald",
        paper="qualitative (MNIST with unbalanced / redundant pools, Bickford Smith et al. 2023)",
    ),
    _common.Claim(
        "EPIG takes more labels from the target classes than BALD",
        "epig",
        "bald",
        paper="qualitative",
        metric="mean",
        curve="share of labels from classes 0-4",
    ),
)


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: int = 5
    rounds: int = 8
    batch: int = 10
    initial: int = 20
    members: int = 5
    steps: int = 300
    minibatch: int = 64
    hidden: int = 128
    learning_rate: float = 1e-3
    num_targets: int = 100


QUICK = Config(seeds=1, rounds=2, steps=100, members=3)


def split(key: jax.Array) -> tuple[data.Dataset, jax.Array]:
    """The pool (all classes) with the test set of classes 0-4, and the target inputs."""
    dataset = data.digits(key=key, test_fraction=0.4)
    held_out = np.flatnonzero(np.asarray(dataset.y_test) < TARGET_CLASSES)
    half = len(held_out) // 2
    target, test = held_out[:half], held_out[half:]
    evaluated = dataset._replace(x_test=dataset.x_test[test], y_test=dataset.y_test[test])
    return evaluated, dataset.x_test[target]


def run(config: Config) -> dict:
    dataset, x_target = split(jax.random.key(0))
    ensemble = posterior.ensemble(
        posterior.MLP(num_classes=dataset.num_classes, hidden=(config.hidden,)),
        config.members,
        optimizer=optax.adam(config.learning_rate),
        num_steps=config.steps,
        batch_size=config.minibatch,
    )
    result = _common.compare(
        dataset,
        STRATEGIES,
        posterior=ensemble,
        key=jax.random.key(1000),
        initial=config.initial,
        rounds=config.rounds,
        b=config.batch,
        seeds=config.seeds,
        targets=Targets("given", config.num_targets, inputs=x_target),
    )
    y_pool = np.asarray(dataset.y_pool)
    result["relevant_fraction"] = {
        name: (y_pool[acquired_S_R_B] < TARGET_CLASSES).mean(-1)
        for name, acquired_S_R_B in result["acquired"].items()
    }
    result["sizes"] = {
        "pool": int(dataset.x_pool.shape[0]),
        "targets": int(x_target.shape[0]),
        "test": int(dataset.x_test.shape[0]),
    }
    return result


def main(
    out: _common.Out = Path("results/epig_vs_bald"),
    quick: _common.Quick = False,
    record: _common.Record = False,
) -> None:
    config = QUICK if quick else Config()
    began = time.perf_counter()
    result = run(config)
    summary = _common.summary(config, result, time.perf_counter() - began)
    final = {name: v[:, -1] for name, v in result["accuracy"].items()}
    epig_wins = bool(final["epig"].mean() > final["bald"].mean())
    summary |= {
        "relevant_fraction": {k: v.tolist() for k, v in result["relevant_fraction"].items()},
        "sizes": result["sizes"],
        "epig_beats_bald": epig_wins,
        "claims": _common.claims(
            CLAIMS, result | {"share of labels from classes 0-4": result["relevant_fraction"]}
        ),
    }
    _common.write_json(summary, out / "results.json")
    if record:
        setting = f"digits, test on classes 0-{TARGET_CLASSES - 1}, K={config.members}"
        _common.record_run("epig_vs_bald", summary, setting=setting)
    title = f"digits, pool: 10 classes, test: 0-4; K={config.members}, {config.seeds} seeds"
    _common.plot_curves(
        out / "results.png",
        [(title, result["labels"], result["accuracy"])],
        ylabel="test accuracy on classes 0-4",
    )

    rows = [
        [name, _common.mean_std(final[name]), f"{result['relevant_fraction'][name].mean():.0%}"]
        for name in STRATEGIES
    ]
    console = Console()
    console.print(
        _common.table(
            f"Final test accuracy on classes 0-4 ({result['labels'][-1]} labels)",
            ["strategy", "accuracy (mean ± std)", "acquired from classes 0-4"],
            rows,
        )
    )
    verdict = "beat" if epig_wins else "did not beat"
    console.print(f"EPIG {verdict} BALD in final test accuracy on the target classes.")
    console.print(_common.claims_table(summary["claims"]))
    console.print(f"wrote {out / 'results.json'} and results.png in {summary['wall_time_s']:.0f} s")


if __name__ == "__main__":
    typer.run(main)
