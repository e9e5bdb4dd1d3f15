"""What the reproductions in ``experiments/`` share: the CLI options, runs on :mod:`jaxal.loop`,
the selection timing, the claims decided by a paired test, the summary JSON (and the record
``--record`` keeps in ``experiments/results/`` for ``table.py``), the results table and the
mean ± std plot.

Every reproduction compares registered strategies (:mod:`jaxal.strategies`) with
:func:`compare`, which is :func:`jaxal.loop.compare` (all strategies from one shared start,
the seeds under one ``vmap``) returning plain numpy curves; :func:`selection_seconds` times
the selection step alone on one fixed round. The scripts are run as
``python experiments/NAME.py``, so this module is imported as ``_common`` (the tests put
``experiments/`` on ``sys.path``). Shapes: ``S`` seeds, ``R`` rounds (``R + 1`` points per
curve: after the initial fit and after each round), ``B`` batch size, ``N`` pool points.

**Claims.** Each script states what it tests as :class:`Claim` records (a module-level
``CLAIMS``, with the paper's number beside each): "``better`` beats ``worse`` on one summary
of their curves". :func:`claim` decides one from the run's curves with
:func:`jaxal.stats.paired_bootstrap` (95% percentile-bootstrap interval of the mean per-seed
difference; seeds share their start, so the differences are paired) and
:func:`jaxal.stats.verdict`: held, not held or inconclusive. A label count never reached is
censored at the budget plus one batch (:mod:`jaxal.stats` explains what that does to the
verdict). A claim is ``"untested"`` when the run has fewer than 2 seeds or lacks one of its
strategies or label counts (the ``--quick`` runs).
"""

import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any

import jax
import matplotlib
import numpy as np
import typer
from rich.table import Table

import jaxal
from jaxal import loop, stats, strategies
from jaxal.context import Round, Targets
from jaxal.plot import mean_band

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

Out = Annotated[Path, typer.Option(help="Output folder.")]
Quick = Annotated[bool, typer.Option(help="A smoke run (few seeds, rounds and steps).")]
Record = Annotated[
    bool,
    typer.Option(
        help="Also keep the claims' summary in experiments/results/ for table.py (full runs)."
    ),
]

RESULTS = Path(__file__).parent / "results"
"""The committed summaries of full runs, one ``RUN.json`` each, read by ``table.py``."""


def labels(initial: int, b: int, rounds: int) -> list[int]:
    """Labelled points at each point of a curve: ``initial, initial + b, ..., initial + R b``."""
    return [initial + r * b for r in range(rounds + 1)]


def compare(
    dataset,
    names: Iterable[str],
    *,
    posterior,
    key: jax.Array,
    initial: int,
    rounds: int,
    b: int,
    seeds: int,
    targets: Targets | None = None,
    on_round: Callable[[], None] | None = None,
    balanced: bool = False,
) -> dict[str, Any]:
    """The registered strategies ``names`` on :func:`jaxal.loop.compare`, as numpy arrays
    (``balanced``: initial labels equally from every class, :func:`jaxal.loop.init`).

    Returns ``labels [R + 1]``; every metric of the loop (``accuracy``/``nll`` or
    ``rmse``/``nll``) as ``{name: [S, R + 1]}``; ``acquired`` ``{name: [S, R, B]}`` (pool
    indices in acquisition order); ``labelled`` ``{name: [S, N]}`` (final masks, the initial
    labels included) and ``loop_s``, the wall time of the whole comparison.
    """
    began = time.perf_counter()
    finals = loop.compare(
        dataset,
        {name: strategies.get(name) for name in names},
        key=key,
        posterior=posterior,
        initial=initial,
        rounds=rounds,
        b=b,
        seeds=seeds,
        targets=targets,
        on_round=None if on_round is None else lambda state: on_round(),
        progress=False,  # the scripts draw their own bar over all strategies
        balanced=balanced,
    )
    finals = {name: jax.tree.map(np.asarray, state) for name, state in finals.items()}
    result: dict[str, Any] = {"labels": labels(initial, b, rounds)}
    for metric in next(iter(finals.values())).metrics:
        result[metric] = {name: state.metrics[metric] for name, state in finals.items()}
    result["acquired"] = {name: state.acquired for name, state in finals.items()}
    result["labelled"] = {name: state.labelled for name, state in finals.items()}
    result["loop_s"] = time.perf_counter() - began
    return result


def first_round(
    dataset,
    *,
    posterior,
    key: jax.Array,
    initial: int,
    rounds: int,
    b: int,
    targets: Targets | None = None,
) -> Round:
    """The round context of one seed's first acquisition (``initial`` random labels, fitted),
    whose entries are computed eagerly when read."""
    init_key, round_key = jax.random.split(key)
    state = loop.init(
        dataset, key=init_key, posterior=posterior, initial=initial, rounds=rounds, b=b
    )
    return Round.from_posterior(
        posterior,
        state.params,
        key=round_key,
        x_pool=dataset.x_pool,
        labelled=state.labelled,
        targets=targets,
        x_test=dataset.x_test,
        y_pool=dataset.y_pool,
    )


def selection_seconds(
    names: Iterable[str], r: Round, b: int, *, sources: Sequence[str], repeats: int
) -> dict[str, float]:
    """Median wall time of one jitted selection of ``b`` points, per registered strategy.

    The strategies see a round built from the ``sources`` of ``r`` (e.g. ``("pool",)``, or
    ``("x_pool", "x_target")``), read once beforehand, so what is timed is the selection
    alone: no posterior fit or prediction. Each is compiled and run once, then timed as the
    median of ``repeats`` calls with ``block_until_ready``.
    """
    arrays = {source: getattr(r, source) for source in sources}
    seconds = {}
    for name in names:
        strategy = strategies.get(name)

        @jax.jit
        def select(key, labelled, arrays, strategy=strategy):
            return strategy(Round(key=key, labelled=labelled, **arrays), b)

        select(jax.random.key(0), r.labelled, arrays).block_until_ready()
        times = []
        for repeat in range(repeats):
            began = time.perf_counter()
            select(jax.random.key(repeat), r.labelled, arrays).block_until_ready()
            times.append(time.perf_counter() - began)
        seconds[name] = float(np.median(times))
    return seconds


def labels_to_reach(accuracy_S_R: np.ndarray, labels_R, threshold: float) -> float:
    """Median over seeds of :func:`jaxal.stats.labels_to_reach` (the first label count with
    accuracy ``>= threshold``; inf: never). ``labels_R`` may be ``[S, R]`` (e.g. a cost)."""
    return float(np.median(stats.labels_to_reach(accuracy_S_R, labels_R, threshold)))


def _finite_or_none(value: float) -> float | None:
    return None if np.isinf(value) else value


def format_labels(labels: float | None) -> str:
    """A label count of :func:`summary`'s ``labels_to_reach`` for a table (``None``: never)."""
    return "never" if labels is None else f"{labels:.0f}"


def summary(
    config,
    result: dict,
    wall_time_s: float,
    *,
    metric: str = "accuracy",
    thresholds: Sequence[float] = (),
) -> dict:
    """The JSON fields every reproduction on the loop writes: the version, the config, the
    curves of ``metric`` ``{name: [S, R + 1]}``, their final means, the labels needed to
    reach each of ``thresholds`` (median over seeds; null: not reached) and the wall time."""
    curves = result[metric]
    record = {
        "jaxal_version": jaxal.__version__,
        "config": dataclasses.asdict(config),
        "labels": result["labels"],
        metric: {name: np.asarray(v).tolist() for name, v in curves.items()},
        f"final_{metric}_mean": {name: float(np.mean(v[:, -1])) for name, v in curves.items()},
    }
    if thresholds:
        record["labels_to_reach"] = {
            f"{t:.2f}": {
                name: _finite_or_none(labels_to_reach(v, result["labels"], t))
                for name, v in curves.items()
            }
            for t in thresholds
        }
    record["wall_time_s"] = wall_time_s
    return record


def write_json(record: dict, path: Path) -> None:
    """Write ``record`` as indented JSON to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


@dataclasses.dataclass(frozen=True)
class Claim:
    """A claim that strategy ``better`` beats ``worse`` on one per-seed summary of a curve.

    ``curve`` names the metric in the result (``accuracy``, ``rmse``, ...), whose ``{name:
    [S, R + 1]}`` curves are summarised per seed by ``metric``:

    * ``"auc"``: :func:`jaxal.stats.area_under_curve` against ``x``;
    * ``"mean"``: the mean over the curve's points (e.g. the paper's mean over rounds);
    * ``"final"``: the last point; ``"at"``: the point at ``at`` labels;
    * ``"labels_to"``: :func:`jaxal.stats.labels_to_reach` of ``threshold`` (fewer is better).

    ``x`` names the x axis in the result: ``labels [R + 1]`` or per strategy ``{name: [S,
    R + 1]}`` (e.g. ``cost``). ``higher_is_better`` is the curve's sense (accuracy yes, RMSE
    no); ``margin`` makes it a non-inferiority claim (``better`` no worse than ``worse`` by
    more than ``margin``, :func:`jaxal.stats.verdict`). ``statistic="std"`` compares the
    spreads of the per-seed summaries instead of their means (e.g. "lower variance across
    initialisations"; ``higher_is_better=False`` claims the smaller spread).
    ``paper`` is the paper's number for it.
    """

    text: str
    better: str
    worse: str
    paper: str
    metric: str = "auc"
    curve: str = "accuracy"
    x: str = "labels"
    threshold: float | None = None
    at: int | None = None
    higher_is_better: bool = True
    margin: float = 0.0
    statistic: str = "mean"

    def describe(self) -> str:
        """The summary in words, e.g. ``"area under the accuracy curve"``."""
        if self.statistic == "std":
            return f"spread over seeds (std) of the {self._summary()}"
        return self._summary()

    def _summary(self) -> str:
        if self.metric == "labels_to":
            return f"{self.x} to reach {self.threshold:.0%} {self.curve}"
        if self.metric == "at":
            return f"{self.curve} at {self.at} labels"
        return {
            "auc": f"area under the {self.curve} curve",
            "mean": f"mean {self.curve} over rounds",
            "final": f"final {self.curve}",
        }[self.metric]


CLAIM_LEVEL = 0.95
"""Level of the paired-bootstrap intervals the claims are decided by."""


def claim(spec: Claim, result: dict, *, key: jax.Array) -> dict:
    """Decide ``spec`` on ``result`` (``{spec.curve: {name: [S, R + 1]}, spec.x: ...}``).

    Returns a JSON-able record: ``claim``, ``paper``, ``metric`` (in words), ``better`` /
    ``worse``, their per-seed ``values`` with ``mean`` and ``std``, ``mean_diff`` (better -
    worse), ``ci`` (``[low, high]`` at ``level``), ``censored`` seeds, ``verdict`` and
    ``seeds``; ``verdict`` is ``"untested"`` (with a ``reason``) when the run cannot decide.
    """
    names = (spec.better, spec.worse)
    record: dict[str, Any] = {
        "claim": spec.text,
        "paper": spec.paper,
        "metric": spec.describe(),
        "better": spec.better,
        "worse": spec.worse,
        "margin": spec.margin,
    }
    curves, x = result[spec.curve], result[spec.x]

    def x_of(name: str) -> np.ndarray:
        """``[R + 1]`` or ``[S, R + 1]``: the x values of ``name``'s curves."""
        return np.asarray(x[name] if isinstance(x, dict) else x, dtype=float)

    missing = [name for name in names if name not in curves]
    seeds = 0 if missing else np.asarray(curves[spec.better]).shape[0]
    if missing:
        reason = f"not run: {', '.join(missing)}"
    elif spec.metric == "at" and spec.at not in x_of(spec.better):
        reason = f"no point at {spec.at} labels"
    elif seeds < 2:
        reason = f"{seeds} seed"
    else:
        reason = None
    if reason is not None:
        return record | {"seeds": seeds, "verdict": "untested", "reason": reason}

    def summarise(name: str) -> np.ndarray:
        curve_S_R = np.asarray(curves[name], dtype=float)
        if spec.metric == "auc":
            return np.asarray(stats.area_under_curve(curve_S_R, x_of(name)))
        if spec.metric == "labels_to":
            assert spec.threshold is not None
            return np.asarray(stats.labels_to_reach(curve_S_R, x_of(name), spec.threshold))
        if spec.metric == "at":
            return curve_S_R[:, list(x_of(name)).index(spec.at)]
        return curve_S_R.mean(-1) if spec.metric == "mean" else curve_S_R[:, -1]

    values = {name: summarise(name) for name in names}
    lower_is_better = spec.metric == "labels_to" or not spec.higher_is_better
    censor = None
    if spec.metric == "labels_to":  # never reached: the largest budget plus one batch
        x_N_R = np.concatenate([np.atleast_2d(x_of(name)) for name in names])
        censor = float(x_N_R[:, -1].max() + (x_N_R[:, -1] - x_N_R[:, -2]).max())
    ci = stats.paired_bootstrap(
        *values.values(), key, level=CLAIM_LEVEL, censor=censor, statistic=spec.statistic
    )
    if censor is not None:  # what the test compared
        values = {name: np.minimum(v, censor) for name, v in values.items()}
    return record | {
        "values": {name: np.round(v, 6).tolist() for name, v in values.items()},
        "mean": {name: float(v.mean()) for name, v in values.items()},
        "std": {name: float(v.std()) for name, v in values.items()},
        "censored": {spec.better: int(ci.censored_a), spec.worse: int(ci.censored_b)},
        "mean_diff": float(ci.mean),
        "ci": [float(ci.low), float(ci.high)],
        "level": CLAIM_LEVEL,
        "verdict": stats.verdict(ci, "less" if lower_is_better else "greater", margin=spec.margin),
        "seeds": seeds,
    }


def claims(specs: Iterable[Claim], result: dict) -> list[dict]:
    """:func:`claim` of every spec, each with its own key (``fold_in`` of its position)."""
    return [
        claim(spec, result, key=jax.random.fold_in(jax.random.key(0), i))
        for i, spec in enumerate(specs)
    ]


def claims_table(records: Sequence[dict]) -> Table:
    """The claims of a run for the console: summary, means, paired interval, verdict."""
    rows = []
    for r in records:
        if r["verdict"] == "untested":
            rows.append([r["claim"], r["metric"], "", "", f"untested ({r['reason']})"])
            continue
        ours = f"{r['mean'][r['better']]:.3f} vs {r['mean'][r['worse']]:.3f}"
        interval = f"{r['mean_diff']:+.3f} [{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}]"
        rows.append([r["claim"], r["metric"], ours, interval, r["verdict"]])
    columns = ["claim", "metric", "ours (better vs worse)", "difference [95% CI]", "verdict"]
    return table("Claims (paired bootstrap over seeds)", columns, rows)


def record_run(run: str, record: dict, *, setting: str) -> Path:
    """Keep the claims of a full run in ``experiments/results/RUN.json`` for ``table.py``:
    the command line that made it, the ``setting`` in words, the config, the claims, the
    wall time and the jaxal version. Returns the path."""
    argv = [Path(sys.argv[0]).name, *sys.argv[1:]]
    path = RESULTS / f"{run}.json"
    write_json(
        {
            "run": run,
            "script": f"{Path(sys.argv[0]).stem}.py",
            "command": "python experiments/" + shlex.join(argv),
            "setting": setting,
            "jaxal_version": record["jaxal_version"],
            "config": record["config"],
            "claims": record["claims"],
            "wall_time_s": record["wall_time_s"],
        },
        path,
    )
    return path


def mean_std(values) -> str:
    """``"mean ± std"`` of ``values`` (over seeds), 3 decimals."""
    values = np.asarray(values)
    return f"{values.mean():.3f} ± {values.std():.3f}"


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    """A rich table: the first column left-aligned (names), the others right-aligned."""
    result = Table(title=title)
    for i, column in enumerate(columns):
        result.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        result.add_row(*row)
    return result


def plot_curves(
    path: Path,
    panels: Sequence[tuple[str, Sequence[int], dict[str, Any]]],
    *,
    ylabel: str,
    xlabel: str = "number of labelled points",
    yscale: str | None = None,
) -> None:
    """Mean ± std over seeds of each strategy's curve ``[S, R + 1]`` against labels, one
    panel per ``(title, labels, {name: curve})``; saved to ``path``."""
    fig, axes = plt.subplots(
        1, len(panels), figsize=(6 if len(panels) == 1 else 4.2 * len(panels), 4), squeeze=False
    )
    for ax, (title, x_R, curves) in zip(axes[0], panels, strict=True):
        for name, curve_S_R in curves.items():
            mean_band(ax, np.asarray(x_R), np.asarray(curve_S_R), label=name)
        if yscale is not None:
            ax.set_yscale(yscale)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
