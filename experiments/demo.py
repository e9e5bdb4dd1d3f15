"""Active learning on scikit-learn's digits with a deep ensemble: random vs BALD vs PowerBALD
vs BatchBALD.

Protocol: a fixed random initial set per seed, then ``rounds`` acquisitions of ``batch``
points; every round re-initialises and retrains the ``K``-member ensemble on the labelled
points and records the test accuracy of its mean predictive. All seeds run in one program
(``jax.vmap``); shapes are fixed (the labelled set is a mask over the pool), so the training
program compiles once for all strategies and each strategy's acquisition compiles once.

Run: ``python experiments/demo.py --out results/demo`` (writes ``curves.json``, ``curves.png``).
"""

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import jaxal
from jaxal import data, posterior, scores, select

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


def _random(key, log_probs_K_N_C, available_N, b):
    return select.random(key, log_probs_K_N_C.shape[1], b, available_N)


def _bald(key, log_probs_K_N_C, available_N, b):
    return select.top_k(scores.bald(log_probs_K_N_C), b, available_N)


def _powerbald(key, log_probs_K_N_C, available_N, b):
    bald_N = scores.bald(log_probs_K_N_C)
    return select.stochastic(key, bald_N, b, mode="power", beta=1.0, available=available_N)


def _batchbald(key, log_probs_K_N_C, available_N, b):
    return select.batchbald(log_probs_K_N_C, b, key=key, available=available_N)[0]


Acquire = Callable[[jax.Array, jax.Array, jax.Array, int], jax.Array]
STRATEGIES: dict[str, Acquire] = {
    "random": _random,
    "bald": _bald,
    "powerbald": _powerbald,
    "batchbald": _batchbald,
}
"""Acquisition ``(key, log_probs [K, N, C], available [N], b) -> indices [b]`` by name."""


def run(config: Config, *, on_round: Callable[[], None] = lambda: None) -> dict[str, np.ndarray]:
    """Accuracy curves ``{strategy: [seeds, rounds + 1]}``; ``on_round`` is called per round."""
    dataset = data.digits(key=jax.random.key(0))
    model = posterior.MLP(num_classes=dataset.num_classes, hidden=(config.hidden,))
    optimizer = optax.adam(config.learning_rate)
    N = dataset.x_pool.shape[0]

    def train_and_test(labelled_N, key):
        init_key, train_key = jax.random.split(key)
        params = posterior.init_ensemble(model, dataset.x_pool[:1], config.members, key=init_key)
        params = posterior.train_ensemble(
            params,
            dataset.x_pool,
            dataset.y_pool,
            labelled_N.astype(jnp.float32),
            key=train_key,
            model=model,
            optimizer=optimizer,
            num_steps=config.steps,
            batch_size=config.minibatch,
        )
        log_probs_M_C = posterior.predictive_log_probs(params, model, dataset.x_test)
        return params, jnp.mean(jnp.argmax(log_probs_M_C, axis=-1) == dataset.y_test)

    def acquisition_step(acquire: Acquire):
        def step(params, labelled_N, key):
            log_probs_K_N_C = posterior.ensemble_log_probs(params, model, dataset.x_pool)
            index_B = acquire(key, log_probs_K_N_C, ~labelled_N, config.batch)
            return labelled_N.at[index_B].set(True)

        return jax.jit(jax.vmap(step))

    train_and_test_S = jax.jit(jax.vmap(train_and_test))
    seed_keys_S = jax.vmap(jax.random.key)(jnp.arange(config.seeds))
    initial_S_B = jax.vmap(lambda k: select.random(k, N, config.initial))(seed_keys_S)
    initial_S_N = jax.vmap(lambda i: jnp.zeros(N, bool).at[i].set(True))(initial_S_B)

    curves = {}
    for name, acquire in STRATEGIES.items():
        acquire_S = acquisition_step(acquire)
        labelled_S_N = initial_S_N
        accuracy_R_S = []
        for r in range(config.rounds + 1):
            # Same training and acquisition keys for every strategy (common random numbers).
            round_keys_S = jax.vmap(jax.random.fold_in, in_axes=(0, None))(seed_keys_S, r)
            keys_S_2 = jax.vmap(jax.random.split)(round_keys_S)
            params, accuracy_S = train_and_test_S(labelled_S_N, keys_S_2[:, 0])
            accuracy_R_S.append(accuracy_S.block_until_ready())
            if r < config.rounds:
                labelled_S_N = acquire_S(params, labelled_S_N, keys_S_2[:, 1])
            on_round()
        expected = config.initial + config.rounds * config.batch
        if not np.all(np.asarray(labelled_S_N.sum(axis=1)) == expected):
            raise RuntimeError(f"{name}: labelled sets are not of size {expected}")
        curves[name] = np.asarray(jnp.stack(accuracy_R_S, axis=1))
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
        mean_R, std_R = curve_S_R.mean(axis=0), curve_S_R.std(axis=0)
        (line,) = ax.plot(x_R, mean_R, marker="o", markersize=3, label=name)
        ax.fill_between(x_R, mean_R - std_R, mean_R + std_R, color=line.get_color(), alpha=0.2)
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
        task = progress.add_task("active learning", total=len(STRATEGIES) * (rounds + 1))
        curves = run(config, on_round=lambda: progress.advance(task))
    wall_time_s = time.perf_counter() - start
    write(config, curves, out, wall_time_s)
    console.print(summary(config, curves))
    console.print(f"{wall_time_s:.1f} s; wrote {out / 'curves.json'} and {out / 'curves.png'}")


if __name__ == "__main__":
    typer.run(main)
