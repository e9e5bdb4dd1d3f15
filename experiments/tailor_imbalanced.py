"""TAILOR vs its candidates on a long-tailed digits pool (after Zhang et al., NeurIPS 2023).

Setting: TAILOR (:mod:`jaxal.tailor`, registered as ``tailor``) chooses each round, by
Thompson sampling on a class-diversity reward, which candidate strategy acquires the batch;
its default candidates are ``least-confidence``, ``margin`` and ``badge``
(:data:`jaxal.strategies.TAILOR_CANDIDATES`). The paper's claim: on imbalanced pools TAILOR
matches or beats the best candidate chosen in hindsight and collects more labels of the rare
classes.

Protocol: scikit-learn digits, 30% held out as a balanced test set (so test accuracy is the
balanced accuracy); the pool keeps every point of classes 0-4 and a tenth of those of classes
5-9 (imbalance ratio 10). On :mod:`jaxal.loop` (:func:`jaxal.loop.compare`: all strategies from
the same random initial labels and initial fit per seed, seeds under one ``vmap``) a deep
ensemble is retrained each round. We report the test (balanced) accuracy and the number of
acquired labels of the rare classes 5-9, and which arm TAILOR played.

Claims (:data:`CLAIMS`, decided by a paired bootstrap over the seeds, :func:`_common.claim`):
TAILOR's final balanced accuracy is within 0.01 of each candidate's (non-inferiority), so it
matches the best of them; and TAILOR acquires more labels of the rare classes than random
sampling (the number acquired by the last round).

Run: ``python experiments/tailor_imbalanced.py [--quick] --out results/tailor_imbalanced``.
Writes ``results.json`` and ``results.png``; ``--record`` keeps the claims in
``experiments/results/tailor_imbalanced.json``.
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

from jaxal import data, loop, posterior, strategies

RARE = 5
"""Classes ``RARE .. 9`` keep a tenth of their pool points."""

STRATEGIES = ("random", "least-confidence", "margin", "badge", "tailor")
CLAIMS = tuple(
    _common.Claim(
        f"TAILOR is within 0.01 of {candidate}",
        "tailor",
        candidate,
        paper="CIFAR-10/100-imb, SVHN-imb, ImageNet-imb: at or above the best candidate",
        metric="final",
        margin=0.01,
    )
    for candidate in strategies.TAILOR_CANDIDATES
) + (
    _common.Claim(
        "TAILOR acquires more rare-class labels than random",
        "tailor",
        "random",
        paper="more labels of the rare classes than the baselines (figures)",
        metric="final",
        curve="rare-class labels",
    ),
)
"""What this script tests (Zhang et al., NeurIPS 2023)."""


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: int = 5
    rounds: int = 8
    batch: int = 10
    initial: int = 20
    members: int = 3
    steps: int = 200
    minibatch: int = 64
    hidden: int = 64
    learning_rate: float = 1e-3
    strategies: tuple[str, ...] = STRATEGIES


QUICK = Config(seeds=2, rounds=2, steps=30, members=2, hidden=16, strategies=("margin", "tailor"))


def long_tailed(key: jax.Array) -> data.Dataset:
    """Digits with the pool's classes ``RARE..9`` thinned to a tenth; the test set as is."""
    dataset = data.digits(key=key, test_fraction=0.3)
    y = np.asarray(dataset.y_pool)
    keep = np.flatnonzero((y < RARE) | (np.arange(len(y)) % 10 == 0))
    return dataset._replace(x_pool=dataset.x_pool[keep], y_pool=dataset.y_pool[keep])


def run(config: Config) -> dict:
    dataset = long_tailed(jax.random.key(0))
    ensemble = posterior.ensemble(
        posterior.MLP(num_classes=dataset.num_classes, hidden=(config.hidden,)),
        config.members,
        optimizer=optax.adam(config.learning_rate),
        num_steps=config.steps,
        batch_size=config.minibatch,
    )
    settings = dict(initial=config.initial, rounds=config.rounds, b=config.batch)
    result = _common.compare(
        dataset,
        config.strategies,
        posterior=ensemble,
        key=jax.random.key(1000),
        seeds=config.seeds,
        **settings,
    )
    y_pool = np.asarray(dataset.y_pool)
    result["rare-class labels"] = {  # [S, R + 1]: rare-class labels acquired after each round
        name: np.pad(np.cumsum((y_pool[acquired_S_R_B] >= RARE).sum(-1), axis=-1), ((0, 0), (1, 0)))
        for name, acquired_S_R_B in result["acquired"].items()
    }
    # the arms TAILOR played: rerun its loop (same start and keys as in compare)
    tailor = strategies.get("tailor")
    start = loop.init(
        dataset,
        key=jax.random.key(1000),
        posterior=ensemble,
        seeds=config.seeds,
        strategy=tailor,
        **settings,
    )
    final = loop.run(start, dataset, posterior=ensemble, strategy=tailor, progress=False)
    np.testing.assert_array_equal(final.acquired, result["acquired"]["tailor"])
    result["arms"] = np.asarray(final.memory["arms"])
    result["rare_pool_fraction"] = float((y_pool >= RARE).mean())
    return result


def main(
    out: _common.Out = Path("results/tailor_imbalanced"),
    quick: _common.Quick = False,
    record: _common.Record = False,
) -> None:
    config = QUICK if quick else Config()
    began = time.perf_counter()
    result = run(config)
    summary = _common.summary(config, result, time.perf_counter() - began)
    final = {name: v[:, -1] for name, v in result["accuracy"].items()}
    names = strategies.get("tailor").names
    summary |= {
        "rare_labels": {k: v[:, -1].tolist() for k, v in result["rare-class labels"].items()},
        "rare_pool_fraction": result["rare_pool_fraction"],
        "tailor_arms": [[names[a] for a in seed] for seed in result["arms"].tolist()],
        "tailor_vs_best_candidate": float(
            final["tailor"].mean() - max(final[n].mean() for n in final if n != "tailor")
        ),
        "claims": _common.claims(CLAIMS, result),
    }
    _common.write_json(summary, out / "results.json")
    if record:
        setting = f"long-tailed digits, ensemble K={config.members}"
        _common.record_run("tailor_imbalanced", summary, setting=setting)
    title = f"long-tailed digits (ratio 10), K={config.members}, {config.seeds} seeds"
    _common.plot_curves(
        out / "results.png",
        [(title, result["labels"], result["accuracy"])],
        ylabel="balanced test accuracy",
    )
    rows = [
        [
            name,
            _common.mean_std(final[name]),
            f"{result['rare-class labels'][name][:, -1].mean():.1f}",
        ]
        for name in config.strategies
    ]
    console = Console()
    console.print(
        _common.table(
            f"Final balanced accuracy ({result['labels'][-1]} labels)",
            ["strategy", "accuracy (mean ± std)", "rare-class labels acquired"],
            rows,
        )
    )
    console.print(f"TAILOR's arms per seed: {summary['tailor_arms']}")
    console.print(_common.claims_table(summary["claims"]))
    console.print(f"wrote {out / 'results.json'} and results.png in {summary['wall_time_s']:.0f} s")


if __name__ == "__main__":
    typer.run(main)
