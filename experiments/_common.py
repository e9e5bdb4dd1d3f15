"""What the reproductions in ``experiments/`` share: the CLI options, runs on :mod:`jaxal.loop`,
the selection timing, the summary JSON, the results table and the mean ± std plot.

Every reproduction compares registered strategies (:mod:`jaxal.strategies`) with
:func:`compare`, which is :func:`jaxal.loop.compare` (all strategies from one shared start,
the seeds under one ``vmap``) returning plain numpy curves; :func:`selection_seconds` times
the selection step alone on one fixed round. The scripts are run as
``python experiments/NAME.py``, so this module is imported as ``_common`` (the tests put
``experiments/`` on ``sys.path``). Shapes: ``S`` seeds, ``R`` rounds (``R + 1`` points per
curve: after the initial fit and after each round), ``B`` batch size, ``N`` pool points.
"""

import dataclasses
import json
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
from jaxal import loop, strategies
from jaxal.context import Round, Targets
from jaxal.plot import mean_band

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

Out = Annotated[Path, typer.Option(help="Output folder.")]
Quick = Annotated[bool, typer.Option(help="A smoke run (few seeds, rounds and steps).")]


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
) -> dict[str, Any]:
    """The registered strategies ``names`` on :func:`jaxal.loop.compare`, as numpy arrays.

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
    """Median over seeds of the first label count with accuracy ``>= threshold``; inf: never."""
    reached_S_R = np.asarray(accuracy_S_R) >= threshold
    first_S = np.where(reached_S_R.any(-1), np.asarray(labels_R)[reached_S_R.argmax(-1)], np.inf)
    return float(np.median(first_S))


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
