"""EPIG vs BALD on digits when the test distribution covers only half of the pool's classes.

Setting (after Bickford Smith et al., AISTATS 2023, "unbalanced / irrelevant pool"): the pool
holds all ten digit classes, but the model is tested on classes 0-4 only. BALD spends labels
wherever the model is uncertain, irrelevant classes included; EPIG scores a point by the
information its label carries about the predictions on target inputs ``x* ~ p*`` (unlabelled
inputs of classes 0-4), so it should prefer relevant points.

Protocol: scikit-learn digits, 40% held out; the held-out points of classes 0-4 are split
in half into unlabelled *target inputs* (EPIG's ``x*``, never labelled) and the *test set*
(accuracy of the mean predictive, argmax over all ten classes). A deep ensemble (``K`` MLP
members) is retrained from scratch each round on the labelled points; each round adds ``b``
points by top-``b`` BALD or top-``b`` EPIG with ``M`` targets resampled from the target
inputs every round (``jaxal.scores.sample_targets``). Both strategies start from the same
random initial labels per seed.

Why not ``jaxal.loop``: its strategies see only the pool's predictions, while EPIG also needs
the predictions at the target inputs; a small explicit loop over the public API (posterior
``fit``/``predict``, ``scores.bald``/``scores.epig``, ``select.top_k``) is the clearest way.

Run: ``python experiments/epig_vs_bald.py [--quick] --out results/epig_vs_bald``.
"""

import dataclasses
import json
import time
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import typer
from rich.console import Console
from rich.table import Table

import jaxal
from jaxal import data, posterior, scores, select
from jaxal.plot import mean_band

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

TARGET_CLASSES = 5
"""Test and target inputs come from classes ``0 .. TARGET_CLASSES - 1``."""

STRATEGIES = ("bald", "epig")


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: int = 3
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


def split(key: jax.Array):
    """``(x_pool, y_pool, x_target, x_test, y_test)``: targets and test from classes 0-4."""
    dataset = data.digits(key=key, test_fraction=0.4)
    held_out = np.flatnonzero(np.asarray(dataset.y_test) < TARGET_CLASSES)
    half = len(held_out) // 2
    target, test = held_out[:half], held_out[half:]
    return (
        dataset.x_pool,
        dataset.y_pool,
        dataset.x_test[target],
        dataset.x_test[test],
        dataset.y_test[test],
    )


def run(config: Config) -> dict:
    x_pool, y_pool, x_target, x_test, y_test = split(jax.random.key(0))
    N = x_pool.shape[0]
    model = posterior.MLP(num_classes=10, hidden=(config.hidden,))
    ensemble = posterior.ensemble(
        model,
        config.members,
        optimizer=optax.adam(config.learning_rate),
        num_steps=config.steps,
        batch_size=config.minibatch,
    )

    @jax.jit
    def fit_and_predict(labelled, key):
        fit_key, predict_key = jax.random.split(key)
        params = ensemble.fit(x_pool, y_pool, labelled.astype(x_pool.dtype), key=fit_key)
        log_probs_pool = ensemble.predict(params, x_pool, key=predict_key)
        log_probs_test = ensemble.predict(params, x_test, key=predict_key)
        log_pbar = jax.nn.logsumexp(log_probs_test, axis=0)
        accuracy = jnp.mean(jnp.argmax(log_pbar, axis=-1) == y_test)
        return params, log_probs_pool, accuracy

    @jax.jit
    def acquire_bald(params, log_probs_pool, labelled, key):
        return select.top_k(scores.bald(log_probs_pool), config.batch, ~labelled)

    @jax.jit
    def acquire_epig(params, log_probs_pool, labelled, key):
        target_key, predict_key = jax.random.split(key)
        x_star = scores.sample_targets(x_target, config.num_targets, key=target_key)
        log_probs_target = ensemble.predict(params, x_star, key=predict_key)
        return select.top_k(scores.epig(log_probs_pool, log_probs_target), config.batch, ~labelled)

    acquire = {"bald": acquire_bald, "epig": acquire_epig}
    accuracy = {name: np.zeros((config.seeds, config.rounds + 1)) for name in STRATEGIES}
    relevant = {name: np.zeros((config.seeds, config.rounds)) for name in STRATEGIES}
    for seed in range(config.seeds):
        seed_key = jax.random.key(1000 + seed)
        initial_key, loop_key = jax.random.split(seed_key)
        start = (
            jnp.zeros((N,), bool)
            .at[jax.random.choice(initial_key, N, (config.initial,), replace=False)]
            .set(True)
        )
        for name in STRATEGIES:
            labelled, key = start, loop_key  # common random numbers across strategies
            for r in range(config.rounds + 1):
                key, fit_key, acquire_key = jax.random.split(key, 3)
                params, log_probs_pool, acc = fit_and_predict(labelled, fit_key)
                accuracy[name][seed, r] = float(acc)
                if r == config.rounds:
                    break
                index_B = acquire[name](params, log_probs_pool, labelled, acquire_key)
                relevant[name][seed, r] = float(jnp.mean(y_pool[index_B] < TARGET_CLASSES))
                labelled = labelled.at[index_B].set(True)
    return {
        "labels": [config.initial + r * config.batch for r in range(config.rounds + 1)],
        "accuracy": {k: v.tolist() for k, v in accuracy.items()},
        "relevant_fraction": {k: v.tolist() for k, v in relevant.items()},
        "sizes": {"pool": int(N), "targets": int(x_target.shape[0]), "test": int(x_test.shape[0])},
    }


def plot(result: dict, out: Path, config: Config) -> None:
    x = np.asarray(result["labels"])
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in STRATEGIES:
        mean_band(ax, x, result["accuracy"][name], label=name)
    ax.set_xlabel("number of labelled points")
    ax.set_ylabel("test accuracy on classes 0-4")
    ax.set_title(f"digits, pool: 10 classes, test: 0-4; K={config.members}, {config.seeds} seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "results.png", dpi=120)
    plt.close(fig)


def main(
    out: Annotated[Path, typer.Option(help="output directory")] = Path("results/epig_vs_bald"),
    quick: Annotated[bool, typer.Option(help="1 seed, 2 rounds: a smoke test")] = False,
) -> None:
    config = QUICK if quick else Config()
    console = Console()
    start = time.perf_counter()
    result = run(config)
    wall_time_s = time.perf_counter() - start
    final = {name: np.asarray(result["accuracy"][name])[:, -1] for name in STRATEGIES}
    epig_wins = bool(final["epig"].mean() > final["bald"].mean())
    record = {
        "jaxal_version": jaxal.__version__,
        "config": dataclasses.asdict(config),
        **result,
        "final_accuracy_mean": {k: float(v.mean()) for k, v in final.items()},
        "epig_beats_bald": epig_wins,
        "wall_time_s": wall_time_s,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    plot(result, out, config)

    table = Table(title=f"Final test accuracy on classes 0-4 ({result['labels'][-1]} labels)")
    for column in ("strategy", "accuracy (mean ± std)", "acquired from classes 0-4"):
        table.add_column(column)
    for name in STRATEGIES:
        share = np.mean(result["relevant_fraction"][name])
        table.add_row(name, f"{final[name].mean():.3f} ± {final[name].std():.3f}", f"{share:.0%}")
    console.print(table)
    verdict = "beat" if epig_wins else "did not beat"
    console.print(f"EPIG {verdict} BALD in final test accuracy on the target classes.")
    console.print(f"wrote {out / 'results.json'} and results.png in {wall_time_s:.0f} s")


if __name__ == "__main__":
    typer.run(main)
