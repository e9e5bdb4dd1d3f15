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

Besides accuracy we report the labels needed to reach each accuracy in :data:`THRESHOLDS`
(median over seeds of the first label count at or above it; "never" when the median seed
does not reach it within the budget) and the *in-batch duplicate fraction*: the share of
each batch that is a copy of another point of the same batch (``1 - distinct originals / b``).

Run: ``python experiments/batchbald_repeated.py [--quick] [--dataset repeated-mnist5k]
--out results/batchbald_repeated``. Writes ``results.json`` and ``results.png``.
"""

import dataclasses
import json
import time
from pathlib import Path
from typing import Annotated

import jax
import matplotlib
import numpy as np
import typer
from rich.console import Console
from rich.table import Table

import jaxal
from jaxal import data, loop, posterior, strategies
from jaxal.plot import mean_band

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

PAPER = (
    "Paper (Repeated-MNIST x3, b=10, MC dropout): 90% accuracy at ~120 labels for BatchBALD, "
    "~195 for random, ~280 for BALD (which never reaches 95%)."
)
PAPER_LABELS_TO_90 = {"random": 195, "bald": 280, "batchbald": 120}
"""Repeated-MNIST x3 (Kirsch et al., 2019; METHODS.md): labels to reach 90% test accuracy."""
COPIES = 3
STRATEGIES = ("random", "bald", "batchbald")
THRESHOLDS = (0.8, 0.9)


@dataclasses.dataclass(frozen=True)
class Config:
    """Experiment settings; :data:`CONFIGS` holds the full run per dataset.

    ``samples`` is ``K``: ensemble members or dropout masks, by ``posterior``
    (a :func:`jaxal.posterior.build` name); ``hidden`` the width of its one hidden layer.
    """

    dataset: str = "repeated-digits"
    posterior: str = "ensemble"
    seeds: int = 3
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
        seeds=3,
        rounds=28,
        samples=20,
        hidden=256,
        steps=500,
    ),
}


def config_for(dataset: str = "repeated-digits", *, quick: bool = False) -> Config:
    """The full run on ``dataset``, or its smoke run (1 seed, 2 rounds, K = 3, 50 steps)."""
    if dataset not in CONFIGS:
        raise typer.BadParameter(f"unknown dataset {dataset!r}; choose from {sorted(CONFIGS)}")
    full = CONFIGS[dataset]
    return dataclasses.replace(full, seeds=1, rounds=2, samples=3, steps=50) if quick else full


def labels_to_reach(accuracy_S_R: np.ndarray, labels_R, threshold: float) -> float:
    """Median over seeds of the first label count with accuracy ``>= threshold``; inf: never."""
    reached_S_R = np.asarray(accuracy_S_R) >= threshold
    first_S = np.where(reached_S_R.any(-1), np.asarray(labels_R)[reached_S_R.argmax(-1)], np.inf)
    return float(np.median(first_S))


def format_labels(labels: float) -> str:
    return "never" if np.isinf(labels) else f"{labels:.0f}"


def duplicate_fraction(acquired_S_R_B: np.ndarray) -> np.ndarray:
    """``[S, R]`` share of each batch that repeats an original already in the same batch."""
    original_S_R_B = acquired_S_R_B // COPIES
    B = original_S_R_B.shape[-1]
    distinct_S_R = np.apply_along_axis(lambda row: len(np.unique(row)), -1, original_S_R_B)
    return 1.0 - distinct_S_R / B


def run(config: Config, names=STRATEGIES) -> dict:
    """Accuracy ``[S, R + 1]`` and acquired indices ``[S, R, B]`` per strategy; total wall time."""
    dataset = data.load(config.dataset, key=jax.random.key(0), copies=COPIES)
    model = posterior.build(
        config.posterior,
        num_classes=dataset.num_classes,
        num_samples=config.samples,
        hidden=config.hidden,
        num_steps=config.steps,
    )
    began = time.perf_counter()
    finals = loop.compare(
        dataset,
        {name: strategies.get(name) for name in names},
        key=jax.random.key(1),
        posterior=model,
        initial=config.initial,
        rounds=config.rounds,
        b=config.batch,
        seeds=config.seeds,
    )
    result = {
        "accuracy": {name: np.asarray(s.metrics["accuracy"]) for name, s in finals.items()},
        "acquired": {name: np.asarray(s.acquired) for name, s in finals.items()},
        "loop_s": time.perf_counter() - began,
    }
    result["labels"] = [config.initial + r * config.batch for r in range(config.rounds + 1)]
    result["labels_to_reach"] = {
        f"{threshold:.2f}": {
            name: labels_to_reach(curve_S_R, result["labels"], threshold)
            for name, curve_S_R in result["accuracy"].items()
        }
        for threshold in THRESHOLDS
    }
    return result


def describe(config: Config) -> str:
    return (
        f"{config.dataset} x{COPIES}, {config.posterior} K={config.samples}, "
        f"{config.seeds} seed{'s' * (config.seeds > 1)}"
    )


def plot(result: dict, path: Path, title: str) -> None:
    x_R = np.asarray(result["labels"])
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve_S_R in result["accuracy"].items():
        mean_band(ax, x_R, curve_S_R, label=name)
    ax.set_xlabel("number of labelled points")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary(config: Config, result: dict, wall_time_s: float) -> dict:
    """The JSON fields every repeated-pool reproduction writes: config, curves, final means
    and labels to reach each accuracy (median over seeds; null: not reached)."""
    return {
        "jaxal_version": jaxal.__version__,
        "config": dataclasses.asdict(config),
        "labels": result["labels"],
        "accuracy": {k: v.tolist() for k, v in result["accuracy"].items()},
        "final_accuracy_mean": {k: float(v[:, -1].mean()) for k, v in result["accuracy"].items()},
        "labels_to_reach": {
            t: {k: None if np.isinf(v) else v for k, v in row.items()}
            for t, row in result["labels_to_reach"].items()
        },
        "wall_time_s": wall_time_s,
    }


def main(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results/batchbald_repeated"),
    quick: Annotated[bool, typer.Option(help="1 seed, 2 rounds: a smoke test.")] = False,
    dataset: Annotated[
        str, typer.Option(help=f"Repeated pool, one of {sorted(CONFIGS)}.")
    ] = "repeated-digits",
) -> None:
    config = config_for(dataset, quick=quick)
    began = time.perf_counter()
    result = run(config)
    wall_time_s = time.perf_counter() - began
    final = {k: v[:, -1] for k, v in result["accuracy"].items()}
    duplicates = {k: duplicate_fraction(v) for k, v in result["acquired"].items()}
    beats_bald = {k: bool(final[k].mean() > final["bald"].mean()) for k in ("batchbald", "random")}
    record = {
        **summary(config, result, wall_time_s),
        "duplicate_fraction": {k: v.tolist() for k, v in duplicates.items()},
        "beats_bald": beats_bald,
        "paper": PAPER,
        "paper_labels_to_90": PAPER_LABELS_TO_90,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    plot(result, out / "results.png", describe(config))

    table = Table(title=f"{config.dataset}: test accuracy at {result['labels'][-1]} labels")
    columns = ["strategy", "accuracy (mean ± std)", "in-batch duplicates"]
    columns += [f"labels to {t:.0%}" for t in THRESHOLDS] + ["paper: labels to 90%"]
    for column in columns:
        table.add_column(column, justify="right")
    for name in STRATEGIES:
        table.add_row(
            name,
            f"{final[name].mean():.3f} ± {final[name].std():.3f}",
            f"{duplicates[name].mean():.0%}",
            *(format_labels(row[name]) for row in result["labels_to_reach"].values()),
            f"~{PAPER_LABELS_TO_90[name]}",
        )
    console = Console()
    console.print(table)
    for name, held in beats_bald.items():
        console.print(f"{name} {'beat' if held else 'did NOT beat'} top-k BALD at equal labels.")
    console.print(PAPER)
    console.print(f"{wall_time_s:.0f} s; wrote {out / 'results.json'} and results.png")


if __name__ == "__main__":
    typer.run(main)
