"""AnchorAL on an imbalanced pool: a round costs a fixed sub-pool, and the rare class is found.

Claim (Lesci & Vlachos, NAACL 2024): running an active-learning strategy on AnchorAL's small,
class-anchored sub-pool is much faster than on the whole pool and returns more balanced
labelled sets, with better minority-class performance.

Protocol: ``imbalanced-blobs`` (3 Gaussian blobs in 2-D, the last one rare: 5% of the points),
a deep ensemble (one hidden layer of 256: the sub-pool saves predictions, so the network's
cost is what it saves), ``initial`` random labels (40: AnchorAL anchors only classes already
labelled, so a seed whose initial labels miss the rare class cannot find it), then batches
of ``b``; the strategies ``random``,
``entropy`` on the whole pool and ``anchoral:entropy`` (:func:`jaxal.subpool.anchoral`,
retrieval on the inputs, sub-pool of ``subpool_size``), from one shared start with the seeds
under one ``vmap`` (:func:`jaxal.loop.compare`). Reported: test accuracy, the rare class's
test recall after the last round (the final fit's mixture predictive), the share of rare
points among the acquired ones, and the *round time*: one jitted selection on the first
round, posterior predictions included (entropy predicts on all ``N`` pool points, AnchorAL on
its ``S``), median of repeated calls after compilation.

Claims (:data:`CLAIMS`, decided by a paired bootstrap over the seeds, :func:`_common.claim`):
AnchorAL's rare-class recall and its area under the accuracy curve are within 0.05 and 0.01
of entropy on the full pool (non-inferiority). The speed claim is the round time.

Run: ``python experiments/anchoral_imbalanced.py [--quick] --out results/anchoral``. Writes
``results.json`` and ``results.png``; ``--record`` keeps the claims in
``experiments/results/anchoral_imbalanced.json``.
"""

import dataclasses
import time
from pathlib import Path

import _common
import jax
import jax.numpy as jnp
import numpy as np
import typer
from rich.console import Console

import jaxal
from jaxal import loop, strategies
from jaxal.context import Round
from jaxal.subpool import anchoral

PAPER = (
    "Paper: AnchorAL cuts runtime from hours to minutes on large pools, trains better models "
    "and returns more balanced labelled sets than entropy on the full pool."
)
CLAIMS = (
    _common.Claim(
        "AnchorAL finds the rare class as well as entropy on the full pool",
        "anchoral:entropy",
        "entropy",
        paper="large text pools: comparable or better minority-class performance",
        metric="final",
        curve="rare recall",
        margin=0.05,
    ),
    _common.Claim(
        "AnchorAL is as accurate as entropy on the full pool",
        "anchoral:entropy",
        "entropy",
        paper="large text pools: better models than entropy on the full pool",
        margin=0.01,
    ),
)
"""What this script tests (Lesci & Vlachos, NAACL 2024)."""


@dataclasses.dataclass(frozen=True)
class Config:
    num_samples: int = 40_000
    rare_fraction: float = 0.05
    subpool_size: int = 1000
    initial: int = 40
    rounds: int = 20
    b: int = 10
    seeds: int = 5
    samples: int = 5
    hidden: int = 256
    steps: int = 300
    repeats: int = 10


QUICK = Config(num_samples=4000, subpool_size=200, rounds=4, seeds=2, samples=3, steps=100,
               repeats=3)  # fmt: skip


def round_seconds(names, data, posterior, state, b: int, repeats: int) -> dict[str, float]:
    """Median wall time of one jitted round (predictions and selection) per strategy."""
    params = jax.tree.map(lambda leaf: leaf[0], state.params)
    seconds = {}
    for name, strategy in names.items():

        @jax.jit
        def select(params, labelled, key, strategy=strategy):
            r = Round.from_posterior(
                posterior, params, key=key, x_pool=data.x_pool, labelled=labelled,
                y_pool=data.y_pool,
            )  # fmt: skip
            return strategy(r, b)

        select(params, state.labelled[0], jax.random.key(0)).block_until_ready()
        times = []
        for repeat in range(repeats):
            began = time.perf_counter()
            select(params, state.labelled[0], jax.random.key(repeat)).block_until_ready()
            times.append(time.perf_counter() - began)
        seconds[name] = float(np.median(times))
    return seconds


def rare_recall(posterior, params, data, rare: int) -> np.ndarray:
    """``[S]`` test recall of class ``rare`` under each seed's final posterior."""
    rare_M = np.asarray(data.y_test) == rare

    def predict(params):
        log_probs_K_M_C = posterior.predict(params, data.x_test, key=jax.random.key(0))
        return jnp.argmax(jax.nn.logsumexp(log_probs_K_M_C, axis=0), axis=-1)

    predicted_S_M = np.asarray(jax.vmap(predict)(params))
    return (predicted_S_M[:, rare_M] == rare).mean(axis=1)


def main(
    out: _common.Out = Path("results/anchoral"),
    quick: _common.Quick = False,
    record: _common.Record = False,
) -> None:
    config = QUICK if quick else Config()
    began = time.perf_counter()
    data = jaxal.data.load(
        "imbalanced-blobs",
        key=jax.random.key(0),
        num_samples=config.num_samples,
        rare_fraction=config.rare_fraction,
    )
    rare = data.num_classes - 1
    posterior = jaxal.posterior.build(
        "ensemble",
        num_classes=data.num_classes,
        num_samples=config.samples,
        hidden=config.hidden,
        num_steps=config.steps,
    )
    S = config.subpool_size
    named = {
        "random": strategies.get("random"),
        "entropy": strategies.get("entropy"),
        "anchoral:entropy": anchoral(strategies.get("entropy"), subpool_size=S),
    }
    kwargs = dict(initial=config.initial, rounds=config.rounds, b=config.b, seeds=config.seeds)
    finals = loop.compare(
        data, named, key=jax.random.key(1), posterior=posterior, progress=False, **kwargs
    )
    start = loop.init(data, key=jax.random.key(1), posterior=posterior, **kwargs)
    seconds = round_seconds(named, data, posterior, start, config.b, config.repeats)
    result = {
        "labels": _common.labels(config.initial, config.b, config.rounds),
        "accuracy": {name: np.asarray(s.metrics["accuracy"]) for name, s in finals.items()},
    }
    y_pool = np.asarray(data.y_pool)
    rare_share = {
        name: (y_pool[np.asarray(s.acquired)] == rare).mean(axis=(1, 2)).tolist()
        for name, s in finals.items()
    }
    recall = {
        name: rare_recall(posterior, s.params, data, rare).tolist() for name, s in finals.items()
    }
    recall_curves = {name: np.asarray(v)[:, None] for name, v in recall.items()}  # [S, 1]
    summary = _common.summary(config, result, time.perf_counter() - began)
    summary |= {
        "pool_size": int(y_pool.shape[0]),
        "pool_rare_share": float((y_pool == rare).mean()),
        "initial_rare_labels": (np.asarray(start.labelled) & (y_pool == rare)).sum(1).tolist(),
        "rare_share_acquired": rare_share,
        "rare_recall": recall,
        "round_s": seconds,
        "round_speedup": seconds["entropy"] / seconds["anchoral:entropy"],
        "paper": PAPER,
        "claims": _common.claims(CLAIMS, result | {"rare recall": recall_curves}),
    }
    _common.write_json(summary, out / "results.json")
    if record:
        setting = f"imbalanced blobs, N = {y_pool.shape[0]}, sub-pool {S}"
        _common.record_run("anchoral_imbalanced", summary, setting=setting)
    title = f"imbalanced-blobs, N = {y_pool.shape[0]}, S = {S}"
    _common.plot_curves(
        out / "results.png", [(title, result["labels"], result["accuracy"])], ylabel="accuracy"
    )
    columns = ["strategy", "accuracy", "rare recall", "rare share acquired", "round (ms)"]
    rows = [
        [
            name,
            _common.mean_std(result["accuracy"][name][:, -1]),
            _common.mean_std(recall[name]),
            _common.mean_std(rare_share[name]),
            f"{1e3 * seconds[name]:.1f}",
        ]
        for name in named
    ]
    console = Console()
    console.print(_common.table(f"{title}: after {result['labels'][-1]} labels", columns, rows))
    console.print(
        f"pool rare share {summary['pool_rare_share']:.3f}; initial rare labels per seed "
        f"{summary['initial_rare_labels']}; AnchorAL round "
        f"{summary['round_speedup']:.1f}x faster than entropy on the full pool. {PAPER}"
    )
    console.print(_common.claims_table(summary["claims"]))
    console.print(f"{summary['wall_time_s']:.0f} s; wrote {out / 'results.json'} and results.png")


if __name__ == "__main__":
    typer.run(main)
