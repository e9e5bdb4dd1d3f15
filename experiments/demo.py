"""Active learning on scikit-learn's digits with a deep ensemble: random vs BALD vs PowerBALD
vs BatchBALD.

Protocol: a fixed random initial set per seed, then ``rounds`` acquisitions of ``batch``
points; every round re-initialises and retrains the ``K``-member ensemble on the labelled
points and records the test accuracy of its mean predictive. It runs on :mod:`jaxal.loop`:
each round (predict, score, select, refit, evaluate) is one compiled program, all seeds run
in it at once (``jax.vmap``) and nothing recompiles after a strategy's first round.

Claims (:data:`CLAIMS`, decided by a paired bootstrap over the seeds, :func:`_common.claim`):
BALD beats random and BatchBALD beats BALD on the area under the accuracy curve, and
BatchBALD needs fewer labels than BALD to reach 90% (Gal et al. 2017; Kirsch et al. 2019).

Run: ``python experiments/demo.py --out results/demo`` (writes ``curves.json``, ``curves.png``;
``--record`` keeps the claims in ``experiments/results/demo.json``).
"""

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import _common
import jax
import numpy as np
import optax
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from jaxal import data, posterior


@dataclasses.dataclass(frozen=True)
class Config:
    """Experiment settings; the defaults are those of ``make demo``."""

    seeds: int = 5
    rounds: int = 10
    batch: int = 10
    initial: int = 20
    members: int = 5
    steps: int = 300
    minibatch: int = 64
    hidden: int = 128
    learning_rate: float = 1e-3


STRATEGIES = ("random", "bald", "power-bald", "batchbald")
"""Looked up in :mod:`jaxal.strategies`."""

CLAIMS = (
    _common.Claim(
        "BALD beats random",
        "bald",
        "random",
        paper="MNIST, labels to 10% error: BALD 145, random 255 (Gal et al. 2017)",
    ),
    _common.Claim(
        "BatchBALD beats BALD",
        "batchbald",
        "bald",
        paper="MNIST, labels to 90% accuracy: BatchBALD ~90, BALD ~120 (Kirsch et al. 2019)",
    ),
    _common.Claim(
        "BatchBALD needs fewer labels than BALD to reach 90%",
        "batchbald",
        "bald",
        paper="MNIST: BatchBALD ~90, BALD ~120 labels (Kirsch et al. 2019)",
        metric="labels_to",
        threshold=0.9,
    ),
)


def run(config: Config, *, on_round: Callable[[], None] = lambda: None) -> dict[str, np.ndarray]:
    """Accuracy curves ``{strategy: [seeds, rounds + 1]}``; ``on_round`` is called per round.

    Every strategy starts from the same seed keys, hence the same initial labels and the same
    initial fit (common random numbers).
    """
    dataset = data.digits(key=jax.random.key(0))
    model = posterior.MLP(num_classes=dataset.num_classes, hidden=(config.hidden,))
    ensemble = posterior.ensemble(
        model,
        config.members,
        optimizer=optax.adam(config.learning_rate),
        num_steps=config.steps,
        batch_size=config.minibatch,
    )
    result = _common.compare(
        dataset,
        STRATEGIES,
        posterior=ensemble,
        key=jax.random.key(1),
        initial=config.initial,
        rounds=config.rounds,
        b=config.batch,
        seeds=config.seeds,
        on_round=on_round,
    )
    return result["accuracy"]


def summary(config: Config, curves: dict[str, np.ndarray]) -> Table:
    """Table of final accuracy (mean ± std over seeds) and the mean at a few label counts."""
    x_R = _common.labels(config.initial, config.batch, config.rounds)
    shown = sorted({0, len(x_R) // 3, 2 * len(x_R) // 3, len(x_R) - 1})
    columns = ["strategy", f"final ({x_R[-1]} labels)", *(f"@{x_R[r]}" for r in shown)]
    rows = [
        [name, _common.mean_std(curve_S_R[:, -1])]
        + [f"{curve_S_R[:, r].mean():.3f}" for r in shown]
        for name, curve_S_R in curves.items()
    ]
    return _common.table("Test accuracy (digits)", columns, rows)


def main(
    out: _common.Out = Path("results/demo"),
    seeds: Annotated[int, typer.Option(help="Number of seeds (run in parallel).")] = 5,
    rounds: Annotated[int, typer.Option(help="Acquisition rounds.")] = 10,
    batch: Annotated[int, typer.Option(help="Points acquired per round.")] = 10,
    initial: Annotated[int, typer.Option(help="Initial random labelled points.")] = 20,
    members: Annotated[int, typer.Option(help="Ensemble members K.")] = 5,
    steps: Annotated[int, typer.Option(help="Training steps per round.")] = Config.steps,
    record: _common.Record = False,
) -> None:
    """Run the experiment, print a summary table and write curves.json / curves.png."""
    config = Config(seeds, rounds, batch, initial, members, steps)
    console = Console()
    start = time.perf_counter()
    with Progress(console=console) as progress:
        task = progress.add_task("active learning", total=len(STRATEGIES) * rounds)
        curves = run(config, on_round=lambda: progress.advance(task))
    x_R = _common.labels(initial, batch, rounds)
    result = {"labels": x_R, "accuracy": curves}
    summary_record = _common.summary(config, result, time.perf_counter() - start)
    summary_record["claims"] = _common.claims(CLAIMS, result)
    _common.write_json(summary_record, out / "curves.json")
    if record:
        _common.record_run("demo", summary_record, setting=f"digits, K={config.members}")
    title = f"digits, deep ensemble K={config.members}, mean ± std over {config.seeds} seeds"
    _common.plot_curves(out / "curves.png", [(title, x_R, curves)], ylabel="test accuracy")
    console.print(summary(config, curves))
    console.print(_common.claims_table(summary_record["claims"]))
    console.print(
        f"{summary_record['wall_time_s']:.1f} s; "
        f"wrote {out / 'curves.json'} and {out / 'curves.png'}"
    )


if __name__ == "__main__":
    typer.run(main)
