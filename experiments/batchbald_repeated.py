"""BatchBALD on repeated digits: top-k BALD wastes its batch on copies, BatchBALD does not.

Claim (Kirsch, van Amersfoort & Gal, NeurIPS 2019, Repeated-MNIST): when every pool point
appears several times, top-``b`` BALD picks the copies of the few most informative points in
one batch, so at equal labels it trails BatchBALD (which scores the batch jointly) and even
random acquisition.

Protocol: a repeated pool (every pool point 3 times with noise; copy ``r`` of point ``n`` is
row ``n * 3 + r``), a posterior retrained from scratch every round, ``initial`` random
labels, then ``rounds`` batches of ``b`` by random, top-``b`` BALD and BatchBALD, on
:mod:`jaxal.loop` with all seeds under ``vmap`` and the same initial labels for every
strategy. ``--dataset`` picks the pool (:data:`CONFIGS`):

* ``repeated-digits`` (default): the 8x8 digits, noise std 0.1, a deep ensemble of 10 MLPs,
  20 + 10 x 10 labels.
* ``repeated-mnist5k``: 5,000 real MNIST digits (``pip install 'jaxal[data]'``; 4,000 pool
  points x 3 = 12,000, 1,000 test), the paper's noise (std 0.1 in normalised units), the
  paper's 20 initial labels and batches of 10 up to 300 labels, and the paper's posterior:
  MC dropout with masks shared across the pool (``K = 20``), on an MLP (784-256-10) instead of
  the paper's CNN, which is too slow to retrain every round on a 2-core CPU. The MLP tops out
  lower (about 0.82 at 300 random labels here against the CNN's 0.93), so the paper's 90% is
  out of reach within 300 labels; we also report 80%.
* ``repeated-mnist5k-cnn``: the same pool and protocol with the paper's model, the BatchBALD
  CNN with MC dropout (posterior ``mc-dropout-cnn``, :class:`jaxal.posterior.ConvNet`,
  ``K = 20``, dense layer 128). One fit of 500 steps takes minutes on a 2-core CPU and the
  run refits 29 times per strategy and seed (about a day on CPU): a run for an accelerator,
  ``pip install 'jaxal[cuda12]'`` and the same command.

Besides accuracy we report the labels needed to reach each accuracy in :data:`THRESHOLDS`
(median over seeds of the first label count at or above it; "never" when the median seed
does not reach it within the budget) and the *in-batch duplicate fraction*: the share of
each batch that is a copy of another point of the same batch (``1 - distinct originals / b``).

Claims (:data:`CLAIMS`, each decided by a paired bootstrap over the seeds,
:func:`_common.claim`): BatchBALD and random beat top-k BALD, and BatchBALD random, on the
area under the accuracy curve; BatchBALD needs fewer labels than BALD to reach 90%; and it
takes fewer in-batch copies (mean over rounds of the duplicate fraction).

Run: ``python experiments/batchbald_repeated.py [--quick] [--dataset repeated-mnist5k]
--out results/batchbald_repeated``. Writes ``results.json`` and ``results.png``; ``--record``
keeps the claims in ``experiments/results/`` (:data:`RUNS` names the file per dataset).
"""

import dataclasses
import time
from pathlib import Path
from typing import Annotated

import _common
import jax
import numpy as np
import typer
from rich.console import Console

from jaxal import data, posterior
from jaxal.context import Targets

PAPER = (
    "Paper (Repeated-MNIST x3, b=10, MC dropout): 90% accuracy at ~120 labels for BatchBALD, "
    "~195 for random, ~280 for BALD (which never reaches 95%)."
)
PAPER_LABELS_TO_90 = {"random": 195, "bald": 280, "batchbald": 120}
"""Repeated-MNIST x3 (Kirsch et al., 2019; METHODS.md): labels to reach 90% test accuracy."""
COPIES = 3
STRATEGIES = ("random", "bald", "batchbald")
THRESHOLDS = (0.8, 0.9)
CLAIMS = (
    _common.Claim(
        "BatchBALD beats top-k BALD",
        "batchbald",
        "bald",
        paper="Repeated-MNIST x3: 90% accuracy at ~120 labels (BatchBALD) vs ~280 (BALD)",
    ),
    _common.Claim(
        "random beats top-k BALD",
        "random",
        "bald",
        paper="Repeated-MNIST x3: 90% accuracy at ~195 labels (random) vs ~280 (BALD)",
    ),
    _common.Claim(
        "BatchBALD beats random",
        "batchbald",
        "random",
        paper="Repeated-MNIST x3: 90% accuracy at ~120 labels (BatchBALD) vs ~195 (random)",
    ),
    _common.Claim(
        "BatchBALD needs fewer labels than BALD to reach 90%",
        "batchbald",
        "bald",
        paper="Repeated-MNIST x3: ~120 vs ~280 labels",
        metric="labels_to",
        threshold=0.9,
    ),
    _common.Claim(
        "BatchBALD takes fewer in-batch copies than top-k BALD",
        "batchbald",
        "bald",
        paper="qualitative (top-k BALD picks copies of the same points)",
        metric="mean",
        curve="duplicate fraction",
        higher_is_better=False,
    ),
)
"""What this script tests, with the paper's numbers (Kirsch et al., NeurIPS 2019)."""
RUNS = {
    "repeated-digits": "batchbald_repeated",
    "repeated-mnist5k": "batchbald_repeated_mnist5k",
    "repeated-mnist5k-cnn": "batchbald_repeated_mnist5k_cnn",
}
"""The summary ``--record`` writes per dataset: ``experiments/results/RUN.json``."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Experiment settings; :data:`CONFIGS` holds the full run per dataset.

    ``samples`` is ``K``: ensemble members or dropout masks, by ``posterior``
    (a :func:`jaxal.posterior.build` name); ``hidden`` the width of its one hidden layer.
    """

    dataset: str = "repeated-digits"
    posterior: str = "ensemble"
    seeds: int = 5
    rounds: int = 10
    batch: int = 10
    initial: int = 20
    samples: int = 10
    hidden: int = 128
    steps: int = 300


CONFIGS = {
    "repeated-digits": Config(),
    "repeated-mnist5k": Config(
        dataset="repeated-mnist5k",
        posterior="mc-dropout",
        rounds=28,
        samples=20,
        hidden=256,
        steps=500,
    ),
    "repeated-mnist5k-cnn": Config(
        dataset="repeated-mnist5k",
        posterior="mc-dropout-cnn",
        rounds=28,
        samples=20,
        steps=500,
    ),
}


def config_for(dataset: str = "repeated-digits", *, quick: bool = False) -> Config:
    """The full run on ``dataset``, or its smoke run (1 seed, 2 rounds, K = 3, 50 steps)."""
    if dataset not in CONFIGS:
        raise typer.BadParameter(f"unknown dataset {dataset!r}; choose from {sorted(CONFIGS)}")
    full = CONFIGS[dataset]
    return dataclasses.replace(full, seeds=1, rounds=2, samples=3, steps=50) if quick else full


def duplicate_fraction(acquired_S_R_B: np.ndarray) -> np.ndarray:
    """``[S, R]`` share of each batch that repeats an original already in the same batch."""
    original_S_R_B = np.asarray(acquired_S_R_B) // COPIES
    B = original_S_R_B.shape[-1]
    distinct_S_R = np.apply_along_axis(lambda row: len(np.unique(row)), -1, original_S_R_B)
    return 1.0 - distinct_S_R / B


def setup(config: Config):
    """``(dataset, posterior)`` of ``config``: the repeated pool and the posterior to refit."""
    dataset = data.load(config.dataset, key=jax.random.key(0), copies=COPIES)
    model = posterior.build(
        config.posterior,
        num_classes=dataset.num_classes,
        num_samples=config.samples,
        hidden=config.hidden,
        num_steps=config.steps,
    )
    return dataset, model


def run(config: Config, names=STRATEGIES, *, targets: Targets | None = None) -> dict:
    """:func:`_common.compare` of the strategies ``names`` on the repeated pool of ``config``."""
    dataset, model = setup(config)
    return _common.compare(
        dataset,
        names,
        posterior=model,
        key=jax.random.key(1),
        initial=config.initial,
        rounds=config.rounds,
        b=config.batch,
        seeds=config.seeds,
        targets=targets,
    )


def selection_seconds(
    config: Config, names, *, sources, repeats: int, targets: Targets | None = None
) -> dict[str, float]:
    """Median wall time of one jitted selection of ``b`` points per strategy of ``names``, on
    the round of one seed's initial fit (:func:`_common.selection_seconds` with ``sources``)."""
    dataset, model = setup(config)
    r = _common.first_round(
        dataset,
        posterior=model,
        key=jax.random.key(2),
        initial=config.initial,
        rounds=config.rounds,
        b=config.batch,
        targets=targets,
    )
    return _common.selection_seconds(names, r, config.batch, sources=sources, repeats=repeats)


def describe(config: Config) -> str:
    return (
        f"{config.dataset} x{COPIES}, {config.posterior} K={config.samples}, "
        f"{config.seeds} seed{'s' * (config.seeds > 1)}"
    )


def main(
    out: _common.Out = Path("results/batchbald_repeated"),
    quick: _common.Quick = False,
    dataset: Annotated[
        str, typer.Option(help=f"Repeated pool, one of {sorted(CONFIGS)}.")
    ] = "repeated-digits",
    record: _common.Record = False,
) -> None:
    config = config_for(dataset, quick=quick)
    began = time.perf_counter()
    result = run(config)
    summary = _common.summary(config, result, time.perf_counter() - began, thresholds=THRESHOLDS)
    final = {k: v[:, -1] for k, v in result["accuracy"].items()}
    duplicates = {k: duplicate_fraction(v) for k, v in result["acquired"].items()}
    beats_bald = {k: bool(final[k].mean() > final["bald"].mean()) for k in ("batchbald", "random")}
    summary |= {
        "duplicate_fraction": {k: v.tolist() for k, v in duplicates.items()},
        "beats_bald": beats_bald,
        "paper": PAPER,
        "paper_labels_to_90": PAPER_LABELS_TO_90,
        "claims": _common.claims(CLAIMS, result | {"duplicate fraction": duplicates}),
    }
    _common.write_json(summary, out / "results.json")
    if record:
        _common.record_run(RUNS[dataset], summary, setting=describe(config))
    _common.plot_curves(
        out / "results.png",
        [(describe(config), result["labels"], result["accuracy"])],
        ylabel="test accuracy",
    )

    columns = ["strategy", "accuracy (mean ± std)", "in-batch duplicates"]
    columns += [f"labels to {t:.0%}" for t in THRESHOLDS] + ["paper: labels to 90%"]
    rows = [
        [
            name,
            _common.mean_std(final[name]),
            f"{duplicates[name].mean():.0%}",
            *(_common.format_labels(row[name]) for row in summary["labels_to_reach"].values()),
            f"~{PAPER_LABELS_TO_90[name]}",
        ]
        for name in STRATEGIES
    ]
    console = Console()
    title = f"{config.dataset}: test accuracy at {result['labels'][-1]} labels"
    console.print(_common.table(title, columns, rows))
    for name, held in beats_bald.items():
        console.print(f"{name} {'beat' if held else 'did NOT beat'} top-k BALD at equal labels.")
    console.print(_common.claims_table(summary["claims"]))
    console.print(PAPER)
    console.print(f"{summary['wall_time_s']:.0f} s; wrote {out / 'results.json'} and results.png")


if __name__ == "__main__":
    typer.run(main)
