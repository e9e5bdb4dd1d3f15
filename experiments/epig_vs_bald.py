"""EPIG vs BALD when the test distribution is not the pool's (Bickford Smith et al., AISTATS 2023).

BALD spends labels wherever the model is uncertain; EPIG scores a point by the information
its label carries about the predictions on target inputs ``x* ~ p*`` (unlabelled inputs from
the test distribution), so it should prefer points that matter for the test set.
``--setting`` picks the pool (:data:`SETTINGS`):

* ``digits`` (default): scikit-learn digits, 40% held out; the pool holds all ten classes but
  the model is tested on classes 0-4 only. The held-out points of classes 0-4 are split in
  half into unlabelled target inputs and the test set (accuracy of the mean predictive,
  argmax over all ten classes). 20 random initial labels, 8 rounds of 10.
* ``mnist5k-unbalanced``: the authors' *unbalanced* MNIST (their
  ``config/data/mnist/image_unbalanced_test.yaml``): classes 0-4 are ten times rarer in the
  pool than classes 5-9 (authors: 400 vs 4,000 per class), the target inputs and the test
  set are balanced (authors: 1,000 target inputs per class and the MNIST test set), and the
  initial labels are 2 per class. Here on the 5,000 bundled MNIST digits
  (:func:`jaxal.data.mnist5k`, 40% held out): the pool keeps every point of classes 5-9
  (about 300 per class) and a tenth of classes 0-4; the held-out points are split in half
  into target inputs and test set.
* ``mnist5k-redundant``: the authors' *redundant* MNIST (``image_redundant_test.yaml``): the
  pool is balanced, but only 1s and 7s matter. Labels are mapped as in their ``class_map``:
  1 -> 0, 7 -> 1, every other digit -> 2 ("other"); target inputs and test set hold only 1s
  and 7s; the initial labels are 2 of each mapped class (authors: 2 each of 1 and 7, and one
  each of two other digits).

On :mod:`jaxal.loop` (:func:`jaxal.loop.compare`: every strategy from the same initial
labels and initial fit per seed, all seeds under one ``vmap``; balanced initial labels
(``balanced=True``) in the MNIST settings), a deep ensemble (``K`` MLP members) is retrained
from scratch each round; each round adds ``b`` points by the registered strategies ``bald``
(top-``b`` BALD), ``epig`` (top-``b`` EPIG, ``M`` targets drawn afresh every round from the
target inputs, ``jaxal.context.Targets("given", M, inputs=...)``) and, on MNIST, ``random``.
We also report the share of acquired points from the classes the test set weights up
(0-4 in ``digits`` and ``mnist5k-unbalanced``; 1 and 7 in ``mnist5k-redundant``).
Differences from the authors: an MLP ensemble instead of their MC-dropout CNN, batches of 10
to 150 labels (``mnist5k-unbalanced``) or 126 (``mnist5k-redundant``) instead of their 300,
and a 5,000-digit MNIST.

Claims (:data:`CLAIMS`, decided by a paired bootstrap over the seeds, :func:`_common.claim`):
EPIG beats BALD on the area under the test-accuracy curve, takes a larger share of its labels
from the weighted-up classes (mean over rounds) and, on MNIST, beats random.

Run: ``python experiments/epig_vs_bald.py [--quick] [--setting mnist5k-unbalanced] --out
results/epig_vs_bald``. Writes ``results.json`` and ``results.png``; ``--record`` keeps the
claims in ``experiments/results/`` (:data:`SETTINGS` names the file per setting).
"""

import dataclasses
import time
from pathlib import Path
from typing import Annotated

import _common
import jax
import jax.numpy as jnp
import numpy as np
import optax
import typer
from rich.console import Console

from jaxal import data, posterior
from jaxal.context import Targets

PAPER = "qualitative (MNIST with unbalanced / redundant pools, Bickford Smith et al. 2023)"


@dataclasses.dataclass(frozen=True)
class Config:
    setting: str = "digits"
    seeds: int = 5
    rounds: int = 8
    batch: int = 10
    initial: int = 20
    balanced: bool = False
    members: int = 5
    steps: int = 300
    minibatch: int = 64
    hidden: int = 128
    learning_rate: float = 1e-3
    num_targets: int = 100
    strategies: tuple[str, ...] = ("bald", "epig")


@dataclasses.dataclass(frozen=True)
class Setting:
    """A pool and test distribution: the full-run ``config``, the ``run`` name ``--record``
    writes (``experiments/results/RUN.json``), the ``weighted`` classes (of the pool's labels)
    whose share of the acquisitions is reported, in words ``classes``, and a description."""

    config: Config
    run: str
    weighted: tuple[int, ...]
    classes: str
    describe: str


MNIST = dict(balanced=True, strategies=("random", "bald", "epig"))
SETTINGS = {
    "digits": Setting(
        Config(), "epig_vs_bald", (0, 1, 2, 3, 4), "classes 0-4", "digits, test on classes 0-4"
    ),
    "mnist5k-unbalanced": Setting(
        Config(setting="mnist5k-unbalanced", rounds=13, **MNIST),
        "epig_vs_bald_mnist5k_unbalanced",
        (0, 1, 2, 3, 4),
        "the rare classes 0-4",
        "MNIST-5k, classes 0-4 ten times rarer in the pool, balanced test",
    ),
    "mnist5k-redundant": Setting(
        Config(setting="mnist5k-redundant", initial=6, rounds=12, **MNIST),
        "epig_vs_bald_mnist5k_redundant",
        (0, 1),
        "1s and 7s",
        "MNIST-5k, test on 1s and 7s, every other digit one class",
    ),
}


def claims_for(setting: Setting) -> tuple[_common.Claim, ...]:
    """What ``setting`` tests: EPIG beats BALD (and random on MNIST) on the area under the
    test-accuracy curve and takes more labels from the weighted-up classes than BALD."""
    found = [
        _common.Claim("EPIG beats BALD on the test distribution", "epig", "bald", paper=PAPER),
        _common.Claim(
            f"EPIG takes more labels from {setting.classes} than BALD",
            "epig",
            "bald",
            paper="qualitative",
            metric="mean",
            curve=f"share of labels from {setting.classes}",
        ),
    ]
    if "random" in setting.config.strategies:
        found.append(
            _common.Claim(
                "EPIG beats random on the test distribution", "epig", "random", paper=PAPER
            )
        )
    return tuple(found)


CLAIMS = claims_for(SETTINGS["digits"])
"""What the default setting tests (:func:`claims_for` gives each setting's)."""


def held_out_halves(dataset: data.Dataset, keep: np.ndarray) -> tuple[data.Dataset, jax.Array]:
    """``dataset`` tested on the first half of its held-out points ``keep``; the second half
    are the target inputs."""
    half = len(keep) // 2
    test, target = keep[:half], keep[half:]
    evaluated = dataset._replace(x_test=dataset.x_test[test], y_test=dataset.y_test[test])
    return evaluated, dataset.x_test[target]


def split(setting: str, key: jax.Array) -> tuple[data.Dataset, jax.Array]:
    """The pool and test set of ``setting`` (:data:`SETTINGS`), and the target inputs."""
    if setting == "digits":
        dataset = data.digits(key=key, test_fraction=0.4)
        return held_out_halves(dataset, np.flatnonzero(np.asarray(dataset.y_test) < 5))
    dataset = data.mnist5k(key=key, test_fraction=0.4)
    y_pool, y_test = np.asarray(dataset.y_pool), np.asarray(dataset.y_test)
    if setting == "mnist5k-unbalanced":
        rank = np.zeros_like(y_pool)  # place of each point among the pool points of its class
        for c in range(10):
            rank[y_pool == c] = np.arange((y_pool == c).sum())
        keep = np.flatnonzero((y_pool >= 5) | (rank % 10 == 0))
        dataset = dataset._replace(x_pool=dataset.x_pool[keep], y_pool=dataset.y_pool[keep])
        return held_out_halves(dataset, np.arange(len(y_test)))
    assert setting == "mnist5k-redundant"
    mapped = np.full(10, 2, np.int32)
    mapped[1], mapped[7] = 0, 1  # the authors' class_map: 1 -> 0, 7 -> 1, others -> 2
    dataset = dataset._replace(
        y_pool=jnp.asarray(mapped[y_pool]), y_test=jnp.asarray(mapped[y_test]), num_classes=3
    )
    return held_out_halves(dataset, np.flatnonzero(mapped[y_test] < 2))


def run(config: Config) -> dict:
    dataset, x_target = split(config.setting, jax.random.key(0))
    ensemble = posterior.ensemble(
        posterior.MLP(num_classes=dataset.num_classes, hidden=(config.hidden,)),
        config.members,
        optimizer=optax.adam(config.learning_rate),
        num_steps=config.steps,
        batch_size=config.minibatch,
    )
    result = _common.compare(
        dataset,
        config.strategies,
        posterior=ensemble,
        key=jax.random.key(1000),
        initial=config.initial,
        rounds=config.rounds,
        b=config.batch,
        seeds=config.seeds,
        targets=Targets("given", config.num_targets, inputs=x_target),
        balanced=config.balanced,
    )
    y_pool = np.asarray(dataset.y_pool)
    weighted = SETTINGS[config.setting].weighted
    result["weighted_fraction"] = {
        name: np.isin(y_pool[acquired_S_R_B], weighted).mean(-1)
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
    setting: Annotated[
        str, typer.Option(help=f"Pool and test distribution, one of {sorted(SETTINGS)}.")
    ] = "digits",
    record: _common.Record = False,
) -> None:
    if setting not in SETTINGS:
        raise typer.BadParameter(f"unknown setting {setting!r}; choose from {sorted(SETTINGS)}")
    chosen = SETTINGS[setting]
    config = chosen.config
    if quick:
        config = dataclasses.replace(config, seeds=1, rounds=2, steps=100, members=3)
    began = time.perf_counter()
    result = run(config)
    summary = _common.summary(config, result, time.perf_counter() - began)
    final = {name: v[:, -1] for name, v in result["accuracy"].items()}
    epig_wins = bool(final["epig"].mean() > final["bald"].mean())
    share = f"share of labels from {chosen.classes}"
    summary |= {
        "weighted_fraction": {k: v.tolist() for k, v in result["weighted_fraction"].items()},
        "sizes": result["sizes"],
        "epig_beats_bald": epig_wins,
        "claims": _common.claims(claims_for(chosen), result | {share: result["weighted_fraction"]}),
    }
    _common.write_json(summary, out / "results.json")
    if record:
        _common.record_run(chosen.run, summary, setting=f"{chosen.describe}, K={config.members}")
    title = f"{chosen.describe}; K={config.members}, {config.seeds} seeds"
    _common.plot_curves(
        out / "results.png",
        [(title, result["labels"], result["accuracy"])],
        ylabel="test accuracy",
    )

    rows = [
        [name, _common.mean_std(final[name]), f"{result['weighted_fraction'][name].mean():.0%}"]
        for name in config.strategies
    ]
    console = Console()
    console.print(
        _common.table(
            f"Final test accuracy ({result['labels'][-1]} labels), {chosen.describe}",
            ["strategy", "accuracy (mean ± std)", f"acquired from {chosen.classes}"],
            rows,
        )
    )
    verdict = "beat" if epig_wins else "did not beat"
    console.print(f"EPIG {verdict} BALD in final test accuracy.")
    console.print(_common.claims_table(summary["claims"]))
    console.print(f"wrote {out / 'results.json'} and results.png in {summary['wall_time_s']:.0f} s")


if __name__ == "__main__":
    typer.run(main)
