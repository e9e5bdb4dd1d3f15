"""Batch EPIG on repeated digits: top-k EPIG fills its batch with copies, joint EPIG does not.

Claim tested: the BatchBALD argument (Kirsch, van Amersfoort & Gal, NeurIPS 2019,
Repeated-MNIST) applied to EPIG (Bickford Smith et al., AISTATS 2023). A single-point score
ignores the redundancy between the points of a batch, so on a pool where every point appears
several times top-``b`` EPIG takes copies of the same few informative points; scoring the
batch jointly, ``EPIG(B) = (1/M) sum_m I(y_B; y*_m)``, avoids them and should be at least as
accurate at equal labels. We know of no published Repeated-MNIST figure for joint EPIG, so
there is no paper number to quote.

Protocol: the repeated-digits setup of ``batchbald_repeated.py`` (every digits pool point 3
times with noise std 0.1; copy ``r`` of point ``n`` is row ``n * 3 + r``; a deep ensemble
retrained from scratch every round; ``initial`` random labels, then ``rounds`` batches of
``b``; :mod:`jaxal.loop` with every strategy from the same start and the seeds under one
``vmap``), with the registered strategies ``random``, ``epig`` (top-``b`` EPIG) and
``batch-epig`` (greedy joint EPIG, :func:`jaxal.select.batch_epig`). The target
distribution is the test inputs: each round ``M`` of them (unlabelled) are drawn
(``jaxal.context.Targets("test", M)``), the same for both EPIG strategies; accuracy is
measured on the whole test set. The strategy scores every unlabelled point (no
shortlist since batch EPIG's sampled steps draw one target per configuration: a step costs
about two BatchBALD steps), with :data:`jaxal.strategies.BATCH_EPIG_SAMPLES` sampled label
configurations. We report the *in-batch duplicate fraction* of ``batchbald_repeated.py``
(the share of a batch that repeats an original already in it), the labels needed to reach
80% / 90% accuracy and the selection time of one batch: jitted on the round context of the
initial fit (one seed), after its first (compiling) call (:func:`_common.selection_seconds`).

Claims (:data:`CLAIMS`, decided by a paired bootstrap over the seeds, :func:`_common.claim`):
batch EPIG beats top-k EPIG on the area under the accuracy curve and takes fewer in-batch
copies (mean over rounds of the duplicate fraction).

Run: ``python experiments/batch_epig_repeated.py [--quick] --out results/batch_epig_repeated``.
Writes ``results.json`` and ``results.png``; ``--record`` keeps the claims in
``experiments/results/batch_epig_repeated.json``.
"""

import dataclasses
import time
from pathlib import Path

import _common
import batchbald_repeated as repeated
import typer
from rich.console import Console

from jaxal import strategies
from jaxal.context import Targets

CLAIM = (
    "Claim: joint (batch) EPIG takes fewer in-batch copies than top-k EPIG on a pool of "
    "repeated points and is at least as accurate at equal labels (BatchBALD's argument, "
    "Kirsch et al. 2019, applied to EPIG; no published number to compare with)."
)
STRATEGIES = ("random", "epig", "batch-epig")
CLAIMS = (
    _common.Claim("batch EPIG beats top-k EPIG", "batch-epig", "epig", paper="none published"),
    _common.Claim(
        "batch EPIG takes fewer in-batch copies than top-k EPIG",
        "batch-epig",
        "epig",
        paper="none published",
        metric="mean",
        curve="duplicate fraction",
        higher_is_better=False,
    ),
)


@dataclasses.dataclass(frozen=True)
class Config(repeated.Config):
    """``batchbald_repeated``'s repeated-digits settings and ``num_targets`` (``M``)."""

    num_targets: int = 100


def config_for(*, quick: bool) -> Config:
    """The full run, or the smoke run (1 seed, 2 rounds of 4, K = 3, 50 steps, M = 10)."""
    config = Config(**dataclasses.asdict(repeated.config_for("repeated-digits", quick=quick)))
    return dataclasses.replace(config, batch=4, num_targets=10) if quick else config


def main(
    out: _common.Out = Path("results/batch_epig_repeated"),
    quick: _common.Quick = False,
    record: _common.Record = False,
) -> None:
    config = config_for(quick=quick)
    targets = Targets("test", config.num_targets)
    began = time.perf_counter()
    result = repeated.run(config, STRATEGIES, targets=targets)
    seconds = repeated.selection_seconds(
        config,
        STRATEGIES,
        sources=("pool", "target"),
        repeats=2 if quick else 5,
        targets=targets,
    )
    dataset, _ = repeated.setup(config)
    summary = _common.summary(
        config, result, time.perf_counter() - began, thresholds=repeated.THRESHOLDS
    )
    final = {k: v[:, -1] for k, v in result["accuracy"].items()}
    duplicates = {k: repeated.duplicate_fraction(v) for k, v in result["acquired"].items()}
    fewer_duplicates = bool(duplicates["batch-epig"].mean() < duplicates["epig"].mean())
    at_least_as_accurate = bool(final["batch-epig"].mean() >= final["epig"].mean())
    summary |= {
        "sizes": {"pool": int(dataset.x_pool.shape[0]), "test": int(dataset.x_test.shape[0])},
        "batch_epig": {"num_samples": strategies.BATCH_EPIG_SAMPLES},
        "acquired": {k: v.tolist() for k, v in result["acquired"].items()},
        "duplicate_fraction": {k: v.tolist() for k, v in duplicates.items()},
        "selection_s": seconds,
        "fewer_duplicates": fewer_duplicates,
        "at_least_as_accurate": at_least_as_accurate,
        "claim": CLAIM,
        "claims": _common.claims(CLAIMS, result | {"duplicate fraction": duplicates}),
    }
    _common.write_json(summary, out / "results.json")
    title = f"{repeated.describe(config)}, M={config.num_targets} targets"
    if record:
        _common.record_run("batch_epig_repeated", summary, setting=title)
    _common.plot_curves(
        out / "results.png", [(title, result["labels"], result["accuracy"])], ylabel="test accuracy"
    )

    columns = ["strategy", "accuracy (mean ± std)", "in-batch duplicates"]
    columns += [f"labels to {t:.0%}" for t in repeated.THRESHOLDS] + ["selection (s)"]
    rows = [
        [
            name,
            _common.mean_std(final[name]),
            f"{duplicates[name].mean():.0%}",
            *(_common.format_labels(row[name]) for row in summary["labels_to_reach"].values()),
            f"{seconds[name]:.3g}",
        ]
        for name in STRATEGIES
    ]
    console = Console()
    title = f"Test accuracy at {result['labels'][-1]} labels (repeated digits)"
    console.print(_common.table(title, columns, rows))
    console.print(
        f"Batch EPIG took {'fewer' if fewer_duplicates else 'NOT fewer'} in-batch copies than "
        f"top-k EPIG and was {'at least as' if at_least_as_accurate else 'LESS'} accurate."
    )
    console.print(_common.claims_table(summary["claims"]))
    console.print(CLAIM)
    console.print(f"{summary['wall_time_s']:.0f} s; wrote {out / 'results.json'} and results.png")


if __name__ == "__main__":
    typer.run(main)
