"""Active learning on scikit-learn's digits with a deep ensemble: random vs BALD vs PowerBALD
vs BatchBALD.

Protocol: a fixed random initial set per seed, then ``rounds`` acquisitions of ``batch``
points; every round re-initialises and retrains the ``K``-member ensemble on the labelled
points and records the test accuracy of its mean predictive. It runs on :mod:`jaxal.loop`:
each round (predict, score, select, refit, evaluate) is one compiled program, all seeds run
in it at once (``jax.vmap``) and nothing recompiles after a strategy's first round.

Run: ``python experiments/demo.py --out results/demo`` (writes ``curves.json``, ``curves.png``).
"""

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import jax
import matplotlib
import numpy as np
import optax
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import jaxal
from jaxal import data, loop, posterior, strategies
from jaxal.plot import mean_band

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


@dataclasses.dataclass(frozen=True)
class Config:
    """Experiment settings; the defaults are those of ``make demo``."""

    seeds: int = 3
    rounds: int = 10
    batch: int = 10
    initial: int = 20
    members: int = 5
    steps: int = 300
    minibatch: int = 64
    hidden: int = 128
    learning_rate: float = 1e-3


STRATEGIES = ("random", "bald", "powerbald", "batchbald")
"""Looked up in :mod:`jaxal.strategies`."""


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
    finals = loop.compare(
        dataset,
        {name: strategies.get(name) for name in STRATEGIES},
        key=jax.random.key(1),
        posterior=ensemble,
        initial=config.initial,
        rounds=config.rounds,
        b=config.batch,
        seeds=config.seeds,
        on_round=lambda state: on_round(),
    )
    curves = {name: np.asarray(state.metrics["accuracy"]) for name, state in finals.items()}
    return curves


def labels(config: Config) -> list[int]:
    """Number of labelled points at each point of the curves: ``initial, initial + b, ...``."""
    return [config.initial + r * config.batch for r in range(config.rounds + 1)]


def write(config: Config, curves: dict[str, np.ndarray], out: Path, wall_time_s: float) -> None:
    """Save ``curves.json`` (config, labels, per-seed accuracies) and ``curves.png``."""
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "jaxal_version": jaxal.__version__,
        "config": dataclasses.asdict(config),
        "labels": labels(config),
        "accuracy": {name: curve_S_R.tolist() for name, curve_S_R in curves.items()},
        "wall_time_s": wall_time_s,
    }
    (out / "curves.json").write_text(json.dumps(record, indent=2))

    x_R = np.asarray(labels(config))
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve_S_R in curves.items():
        mean_band(ax, x_R, curve_S_R, label=name)
    ax.set_xlabel("number of labelled points")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"digits, deep ensemble K={config.members}, mean ± std over {config.seeds} seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120)
    plt.close(fig)


def summary(config: Config, curves: dict[str, np.ndarray]) -> Table:
    """Table of final accuracy (mean ± std over seeds) and the mean at a few label counts."""
    x_R = labels(config)
    shown = sorted({0, len(x_R) // 3, 2 * len(x_R) // 3, len(x_R) - 1})
    table = Table(title="Test accuracy (digits)")
    table.add_column("strategy")
    table.add_column(f"final ({x_R[-1]} labels)", justify="right")
    for r in shown:
        table.add_column(f"@{x_R[r]}", justify="right")
    for name, curve_S_R in curves.items():
        final_S = curve_S_R[:, -1]
        cells = [f"{curve_S_R[:, r].mean():.3f}" for r in shown]
        table.add_row(name, f"{final_S.mean():.3f} ± {final_S.std():.3f}", *cells)
    return table


def main(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results/demo"),
    seeds: Annotated[int, typer.Option(help="Number of seeds (run in parallel).")] = 3,
    rounds: Annotated[int, typer.Option(help="Acquisition rounds.")] = 10,
    batch: Annotated[int, typer.Option(help="Points acquired per round.")] = 10,
    initial: Annotated[int, typer.Option(help="Initial random labelled points.")] = 20,
    members: Annotated[int, typer.Option(help="Ensemble members K.")] = 5,
    steps: Annotated[int, typer.Option(help="Training steps per round.")] = Config.steps,
) -> None:
    """Run the experiment, print a summary table and write curves.json / curves.png."""
    config = Config(seeds, rounds, batch, initial, members, steps)
    console = Console()
    start = time.perf_counter()
    with Progress(console=console) as progress:
        task = progress.add_task("active learning", total=len(STRATEGIES) * rounds)
        curves = run(config, on_round=lambda: progress.advance(task))
    wall_time_s = time.perf_counter() - start
    write(config, curves, out, wall_time_s)
    console.print(summary(config, curves))
    console.print(f"{wall_time_s:.1f} s; wrote {out / 'curves.json'} and {out / 'curves.png'}")


if __name__ == "__main__":
    typer.run(main)
