"""The ``jaxal`` command line: run, resume, plot, list and benchmark active learning.

::

    jaxal run --dataset repeated-digits --strategy batchbald --posterior ensemble \\
              --rounds 20 --batch 10 --seeds 5 --out results/x
    jaxal resume results/x          # after Ctrl-C or a kill: continues where it stopped
    jaxal run --strategy vessal --stream --budget 120 --chunk 100 --out results/s  # one pass
    jaxal plot results/x results/y  # overlays runs (mean and spread over seeds)
    jaxal list                      # strategies, posteriors, datasets
    jaxal bench                     # replay every strategy on cached posteriors (seconds)

A run directory holds ``config.json`` (the full configuration and the jaxal version),
``checkpoints/`` (the loop state after the initial fit and after every round, orbax, with
checksums that ``resume`` verifies), ``results.json`` / ``results.csv`` (per seed and round:
labels, metrics, acquired indices), ``curves.png``, ``selection.png`` (the first seed's picks
on a 2-D map of the pool) and ``.jaxal.lock``: ``run`` and ``resume`` hold it for their whole
life, so a second process on the same directory is refused at once. All seeds run in one
compiled program (``jax.vmap``), so the progress bar (:mod:`jaxal.progress`, as in the Python
API) advances per round for all seeds at once. Ctrl-C stops a run after the step in flight
(XLA cannot be interrupted mid-compilation: plain JAX ends in a segmentation fault) and exits
130 naming the ``jaxal resume`` that continues it; a second Ctrl-C stops at once.
Classification and regression datasets alike; the strategies and posteriors a dataset's task
accepts are those ``jaxal list`` shows. ``--config file.json``
sets any field of :class:`RunConfig`; flags given on the command line win over the file.
"""

import contextlib
import csv
import dataclasses
import fcntl
import json
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import jax
import matplotlib
import numpy as np
import rich
import typer
from rich import box
from rich.markup import escape
from rich.table import Table

import jaxal
from jaxal import (
    bench as bench_module,
    check,
    data,
    loop,
    plot as plots,
    posterior,
    strategies,
    streaming,
)
from jaxal.context import Targets

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=(__doc__ or "").split("\n")[0])
console = rich.get_console()  # the console of jaxal.progress's bars too


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on; stored as ``config.json`` so a run can be resumed."""

    dataset: str = "digits"
    strategy: str = "bald"
    inner: str | None = None  # the inner strategy of a wrapper strategy (e.g. anchoral)
    posterior: str = "ensemble"
    rounds: int = 10
    batch: int = 10
    initial: int = 20
    seeds: int = 3
    seed: int = 0
    samples: int = 5
    hidden: int = 128
    steps: int = 300
    minibatch: int = 64
    learning_rate: float = 1e-3
    targets: Literal["pool", "test"] = "pool"
    num_targets: int = 100
    candidates: str = ""  # TAILOR's candidate strategies, comma-separated ("": the default)

    @property
    def task(self) -> str:
        """The dataset's task, ``"classification"`` or ``"regression"``."""
        return data.task_of(self.dataset)

    def validate(self) -> None:
        """Clear errors for unknown names (the budget is checked by :func:`jaxal.loop.init`)."""
        if self.dataset not in data.names():
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {data.names()}")
        task = self.task
        for kind, name in (("strategy", self.strategy), ("posterior", self.posterior)):
            options = accepted(task)["strategies" if kind == "strategy" else "posteriors"]
            if name not in options:
                raise ValueError(f"unknown {task} {kind} {name!r}; choose one of {options}")
        if self.inner is not None:
            wrappers, options = strategies.WRAPPERS.names(), accepted(task)["strategies"]
            if self.strategy not in wrappers:
                raise ValueError(f"--inner needs --strategy in {wrappers}; got {self.strategy!r}")
            if self.inner not in options:
                raise ValueError(f"unknown {task} --inner {self.inner!r}; choose one of {options}")
        if self.targets not in ("pool", "test"):
            raise ValueError(f"targets must be 'pool' or 'test'; got {self.targets!r}")
        if self.candidates and self.strategy != "tailor":
            raise ValueError(f"--candidates is TAILOR's; got --strategy {self.strategy!r}")
        for name in ("seeds", "samples", "hidden", "steps", "minibatch", "num_targets"):
            check.integer(getattr(self, name), name)

    @classmethod
    def from_settings(cls, settings: Any, source: str) -> "RunConfig":
        """The configuration of ``settings`` (a subset of the fields), read from ``source``."""
        fields = [field.name for field in dataclasses.fields(cls)]
        if not isinstance(settings, dict):
            raise ValueError(f"{source} must give RunConfig fields {fields} as a JSON object")
        unknown = sorted(set(settings) - set(fields))
        if unknown:
            raise ValueError(f"{source} has unknown settings {unknown}; the fields are {fields}")
        return cls(**settings)


class _Experiment:
    """The dataset, posterior, strategy and targets a configuration names, all validated."""

    def __init__(self, config: RunConfig):
        config.validate()
        self.config = config
        self.dataset = data.load(config.dataset, key=jax.random.key(config.seed))
        loop.check_budget(
            self.dataset.x_pool.shape[0],
            initial=config.initial,
            rounds=config.rounds,
            b=config.batch,
        )
        self.metric = "accuracy" if config.task == "classification" else "rmse"
        self.posterior = posterior.build(
            config.posterior,
            task=config.task,
            num_classes=getattr(self.dataset, "num_classes", None),
            num_samples=config.samples,
            hidden=config.hidden,
            num_steps=config.steps,
            batch_size=config.minibatch,
            learning_rate=config.learning_rate,
        )
        self.strategy = strategies.get(
            config.strategy if config.inner is None else f"{config.strategy}:{config.inner}"
        )
        if config.candidates:
            self.strategy = strategies.tailor(config.candidates.split(","))
        source = self.dataset.x_pool if config.targets == "pool" else self.dataset.x_test
        self.targets = Targets(config.targets, min(config.num_targets, source.shape[0]))

    def init(self) -> loop.LoopState:
        c = self.config
        return loop.init(
            self.dataset,
            key=jax.random.key(c.seed + 1),
            posterior=self.posterior,
            initial=c.initial,
            rounds=c.rounds,
            b=c.batch,
            seeds=c.seeds,
            strategy=self.strategy,  # its memory across rounds, if any (resume's `like`)
        )

    def labels(self) -> list[int]:
        c = self.config
        return [c.initial + r * c.batch for r in range(c.rounds + 1)]


def _fail(error: Exception) -> NoReturn:
    console.print("[red]error:[/red]", escape(str(error)), soft_wrap=True)
    raise typer.Exit(2)


class _Stop(Exception):
    """Raised between steps of a run after a Ctrl-C."""


@contextlib.contextmanager
def _interruptible(out: Path) -> Iterator[Callable[[], None]]:
    """Turn Ctrl-C (SIGINT) into a stop between steps, then exit 130 naming the resume.

    A ``KeyboardInterrupt`` raised while XLA compiles or runs ends in a segmentation fault
    (exit 139, a checkpoint possibly half-written), so the first Ctrl-C only sets a flag and the
    yielded ``stop_if_asked()``, called between steps (after the initial fit, after each
    round's checkpoint), raises :class:`_Stop`: the run ends with exit 130 and the message
    ``continue it with `jaxal resume OUT```. A second Ctrl-C prints the same message and ends
    the process at once (``os._exit``: no interpreter teardown under running XLA threads); the
    last finished checkpoint stays valid. The previous handler is restored on the way out.
    """
    asked = []
    resume = f"continue it with `jaxal resume {out}`"

    def handler(signum, frame):
        if asked:
            console.print(f"[yellow]interrupted again:[/yellow] stopped; {escape(resume)}")
            sys.stdout.flush()
            os._exit(130)
        asked.append(signum)
        console.print(
            "[yellow]Ctrl-C:[/yellow] stopping after the step in flight (a first compilation "
            "can take a while); Ctrl-C again stops at once"
        )

    def stop_if_asked() -> None:
        if asked:
            raise _Stop

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop_if_asked
    except _Stop:
        console.print(f"[yellow]interrupted:[/yellow] {out} keeps the run so far; {escape(resume)}")
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGINT, previous)


LOCK = ".jaxal.lock"
"""The lock file of a run directory, held by the ``run`` or ``resume`` working in it."""


@contextlib.contextmanager
def _locked(out: Path, *, create: bool) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``out / LOCK`` (``out`` made first when ``create``).

    Exits with a clear error, before any work, when ``out`` is not a writable directory or
    another process holds the lock. The OS releases the lock when the process ends, however it
    ends (a crash or ``kill -9`` included), so a stale lock never blocks a later resume.
    """
    try:
        if create:
            out.mkdir(parents=True, exist_ok=True)
        handle = (out / LOCK).open("a+")
    except OSError as error:
        reason = error.strerror or error
        _fail(ValueError(f"cannot write to the run directory {out}: {reason}; choose another"))
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip()
            _fail(
                ValueError(
                    f"{out} is in use by another jaxal process"
                    + (f" (pid {owner})" if owner else "")
                    + ": wait for it to finish, or choose another directory"
                )
            )
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def _read_json(path: Path, fix: str) -> dict:
    """The JSON object in ``path``; ``ValueError`` naming the file and ``fix`` if unreadable."""
    try:
        record = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is truncated or corrupt ({error}); {fix}") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path} must hold a JSON object, not {type(record).__name__}; {fix}")
    return record


def _write_json(path: Path, record: dict) -> None:
    """Write ``record`` to ``path`` atomically: a crash leaves the old file or the new one."""
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(json.dumps(record, indent=1))
    os.replace(partial, path)


def _advance(
    out: Path,
    experiment: _Experiment,
    state: loop.LoopState,
    stop_if_asked: Callable[[], None],
) -> loop.LoopState:
    """Run the remaining rounds with a progress bar, then write the results."""
    c = experiment.config
    stop_if_asked()
    state = loop.run(
        state,
        experiment.dataset,
        posterior=experiment.posterior,
        strategy=experiment.strategy,
        targets=experiment.targets,
        checkpoint_dir=out / "checkpoints",
        on_round=lambda _: stop_if_asked(),
        progress=f"{c.strategy} x {c.seeds} seeds",
    )
    _write_results(out, experiment, state)
    console.print(_summary([out]))
    return state


def _write_results(out: Path, experiment: _Experiment, state: loop.LoopState) -> None:
    labels = experiment.labels()
    metrics = {name: np.asarray(values).tolist() for name, values in state.metrics.items()}
    record = {
        "jaxal_version": jaxal.__version__,
        "config": dataclasses.asdict(experiment.config),
        "labels": labels,
        "metrics": metrics,
        "acquired": np.asarray(state.acquired).tolist(),
    }
    _write_json(out / "results.json", record)
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seed", "round", "labels", *metrics])
        for s in range(experiment.config.seeds):
            for r, n in enumerate(labels):
                writer.writerow([s, r, n, *(metrics[m][s][r] for m in metrics)])
    _plot([out], out / "curves.png")
    fig, ax = plt.subplots(figsize=(6, 5))
    plots.selection_map(
        ax,
        experiment.dataset.x_pool,
        np.asarray(state.acquired)[0],
        labelled=np.asarray(state.labelled)[0],
    )
    ax.set_title(f"{experiment.config.strategy}: picks of seed 0 on the pool (PCA)")
    fig.tight_layout()
    fig.savefig(out / "selection.png", dpi=120)
    plt.close(fig)


def _load(out: Path) -> dict:
    path = out / "results.json"
    if not path.exists():
        raise ValueError(f"{out} has no results.json: is it a finished jaxal run?")
    return _read_json(path, f"`jaxal resume {out}` writes it again")


def _primary_metric(record: dict) -> str:
    """``"accuracy"`` for a classification run, ``"rmse"`` for a regression run."""
    return "accuracy" if "accuracy" in record["metrics"] else "rmse"


def _plot(runs: list[Path], target: Path, metric: str | None = None) -> None:
    records = {run: _load(run) for run in runs}
    metric = metric or _primary_metric(records[runs[0]])
    curves = {}
    for run, record in records.items():
        if metric not in record["metrics"]:
            raise ValueError(
                f"{run} has no metric {metric!r}; choose --metric from {sorted(record['metrics'])}"
            )
        c = record["config"]
        label = f"{c['strategy']} ({c['posterior']}, {c['dataset']}) [{run.name}]"
        curves[label] = (record["labels"], np.asarray(record["metrics"][metric]))
    fig, ax = plt.subplots(figsize=(6, 4))
    plots.learning_curves(ax, curves, metric=metric)
    fig.tight_layout()
    fig.savefig(target, dpi=120)
    plt.close(fig)


def _summary(runs: list[Path]) -> Table:
    table = Table(title="final test metric (mean ± std over seeds)")
    for column in ("run", "dataset", "strategy", "posterior", "labels", "metric", "value"):
        table.add_column(column)
    for run in runs:
        record = _load(run)
        metric = _primary_metric(record)
        c, final = record["config"], np.asarray(record["metrics"][metric])[:, -1]
        table.add_row(
            str(run),
            c["dataset"],
            c["strategy"],
            c["posterior"],
            str(record["labels"][-1]),
            metric,
            f"{final.mean():.3f} ± {final.std():.3f}",
        )
    return table


@app.command()
def run(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Run directory (must not hold a run).")],
    dataset: Annotated[str, typer.Option(help="See `jaxal list`.")] = RunConfig.dataset,
    strategy: Annotated[str, typer.Option(help="See `jaxal list`.")] = RunConfig.strategy,
    inner: Annotated[
        str | None, typer.Option(help="Inner strategy of a wrapper (--strategy anchoral).")
    ] = RunConfig.inner,
    posterior_name: Annotated[
        str, typer.Option("--posterior", help="See `jaxal list`.")
    ] = RunConfig.posterior,
    rounds: Annotated[int, typer.Option(help="Acquisition rounds.")] = RunConfig.rounds,
    batch: Annotated[int, typer.Option(help="Points acquired per round.")] = RunConfig.batch,
    initial: Annotated[int, typer.Option(help="Initial random labels.")] = RunConfig.initial,
    seeds: Annotated[int, typer.Option(help="Seeds, run together.")] = RunConfig.seeds,
    seed: Annotated[int, typer.Option(help="Base seed (data split, seeds).")] = RunConfig.seed,
    samples: Annotated[int, typer.Option(help="Posterior samples K.")] = RunConfig.samples,
    steps: Annotated[int, typer.Option(help="Training steps per fit.")] = RunConfig.steps,
    targets: Annotated[
        str, typer.Option(help="Target inputs of EPIG / batch EPIG / EV-GP: pool or test.")
    ] = RunConfig.targets,
    num_targets: Annotated[
        int, typer.Option(help="Targets drawn each round (M).")
    ] = RunConfig.num_targets,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="JSON file of RunConfig fields; flags win.")
    ] = None,
    candidates: Annotated[
        str, typer.Option(help="TAILOR's candidate strategies, e.g. bald,badge,coreset.")
    ] = RunConfig.candidates,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="Stream the pool once in chunks, deciding each point on arrival (needs "
            "--strategy vessal; not checkpointed).",
        ),
    ] = False,
    chunk: Annotated[
        int, typer.Option(help="--stream: points read per chunk, each followed by a refit.")
    ] = 100,
    budget: Annotated[
        int | None,
        typer.Option(
            help="--stream: labels in all, the initial ones included (default: initial + "
            "rounds * batch); query rate (budget - initial) / (N - initial)."
        ),
    ] = None,
) -> None:
    """Run an active-learning experiment; checkpoints every round."""
    flags = dict(
        candidates=candidates,
        dataset=dataset,
        strategy=strategy,
        inner=inner,
        posterior=posterior_name,
        rounds=rounds,
        batch=batch,
        initial=initial,
        seeds=seeds,
        seed=seed,
        samples=samples,
        steps=steps,
        targets=targets,
        num_targets=num_targets,
    )
    parameters = {"posterior": "posterior_name"}
    given = {
        field: value
        for field, value in flags.items()
        if getattr(ctx.get_parameter_source(parameters.get(field, field)), "name", None)
        == "COMMANDLINE"  # None (no such parameter) is not
    }
    try:
        settings = {}
        if config_file is not None:
            if not config_file.is_file():
                raise ValueError(f"--config {config_file}: no such file")
            settings = _read_json(config_file, "fix it or drop --config")
        source = f"--config {config_file}" if config_file is not None else "the flags"
        config = RunConfig.from_settings({**settings, **given}, source)
        if stream and config.strategy != "vessal":
            raise ValueError(
                f"--stream decides each point on arrival, which only --strategy vessal does; "
                f"got --strategy {config.strategy}"
            )
        experiment = _Experiment(config)
        if stream:
            budget = config.initial + config.rounds * config.batch if budget is None else budget
            streaming.check_settings(
                experiment.dataset.x_pool.shape[0],
                budget=budget,
                initial=config.initial,
                chunk_size=chunk,
            )
    except (OSError, ValueError, TypeError) as error:
        _fail(error)
    if stream:
        assert budget is not None  # set above
        _stream(out, experiment, chunk=chunk, budget=budget)
        return
    with _locked(out, create=True), _interruptible(out) as stop_if_asked:
        if (out / "config.json").exists() or (out / "checkpoints").exists():
            _fail(ValueError(f"{out} already holds a run; continue it with `jaxal resume {out}`"))
        record = {"jaxal_version": jaxal.__version__, "config": dataclasses.asdict(config)}
        _write_json(out / "config.json", record)  # first: a run stopped in its fit resumes
        _advance(out, experiment, experiment.init(), stop_if_asked)


def _stream(out: Path, experiment: _Experiment, *, chunk: int, budget: int) -> None:
    """``jaxal run --stream``: one pass of the pool (:func:`jaxal.streaming.run`), then
    ``results.json`` (curves per chunk; ``labels``: the mean over seeds) and ``curves.png``."""
    c = experiment.config
    with _locked(out, create=True), _interruptible(out) as stop_if_asked:
        if (out / "results.json").exists() or (out / "checkpoints").exists():
            _fail(ValueError(f"{out} already holds a run; choose another --out"))
        assert isinstance(experiment.dataset, data.Dataset)  # vessal's task: classification
        state = streaming.run(
            experiment.dataset,
            key=jax.random.key(c.seed + 1),
            posterior=experiment.posterior,
            budget=budget,
            initial=c.initial,
            chunk_size=chunk,
            seeds=c.seeds,
            on_chunk=lambda _: stop_if_asked(),
            progress=f"{c.strategy} stream x {c.seeds} seeds",
        )
        labelled = np.asarray(state.labels)
        record = {
            "jaxal_version": jaxal.__version__,
            "config": dataclasses.asdict(c),
            "stream": {"chunk": chunk, "budget": budget, "sampler": "vessal"},
            "labels": np.round(labelled.mean(axis=0)).astype(int).tolist(),
            "labelled": labelled.tolist(),
            "metrics": {name: np.asarray(v).tolist() for name, v in state.metrics.items()},
            "acquired": np.asarray(state.acquired).tolist(),
        }
        _write_json(out / "results.json", record)
        _plot([out], out / "curves.png")
        console.print(_summary([out]))


@app.command()
def resume(out: Annotated[Path, typer.Argument(help="Run directory to continue.")]) -> None:
    """Continue an interrupted run from its last checkpoint (a finished run is rewritten)."""
    path = out / "config.json"
    try:
        if not path.is_file():
            raise ValueError(f"{out} has no config.json: `jaxal run --out` makes run directories")
        fix = (
            "it holds the run's settings: restore it (a finished run's results.json keeps them "
            'under "config") or start a new run'
        )
        record = _read_json(path, fix)
        experiment = _Experiment(RunConfig.from_settings(record.get("config"), str(path)))
    except (OSError, ValueError, TypeError) as error:
        _fail(error)
    with _locked(out, create=False), _interruptible(out) as stop_if_asked:
        try:
            like = jax.eval_shape(experiment.init)
            state = loop.restore(out / "checkpoints", like=like)
        except (OSError, ValueError) as error:
            _fail(error)
        if state is None:
            console.print("no checkpoint yet: starting from the initial fit")
            state = experiment.init()
        console.print(f"resuming {out} at round {int(np.min(state.round))}")
        _advance(out, experiment, state, stop_if_asked)


@app.command()
def plot(
    runs: Annotated[list[Path], typer.Argument(help="Run directories to overlay.")],
    out: Annotated[Path | None, typer.Option(help="PNG to write.")] = None,
    metric: Annotated[
        str | None, typer.Option(help="accuracy, rmse or nll (default: accuracy or rmse).")
    ] = None,
) -> None:
    """Overlay runs: mean and spread over seeds of a test metric vs labels."""
    target = out or runs[0] / "compare.png"
    try:
        _plot(runs, target, metric)
    except (ValueError, KeyError) as error:
        _fail(error)
    console.print(_summary(runs))
    console.print(f"wrote {target}")


def accepted(task: str) -> dict[str, list[str]]:
    """What ``jaxal run`` accepts for a task: ``{"datasets", "strategies", "posteriors"}``."""
    return {
        "datasets": data.names(task=task),
        "strategies": strategies.names(task=task),
        "posteriors": posterior.names(task=task),
    }


def _list_table() -> Table:
    table = Table(title="jaxal run --dataset D --strategy S --posterior P")
    for column in ("task", "kind", "names"):
        table.add_column(column)
    for task in ("classification", "regression"):
        for kind, names in accepted(task).items():
            table.add_row(task, kind, ", ".join(names), end_section=kind == "posteriors")
    return table


@app.command(name="list")
def list_() -> None:
    """What `jaxal run` accepts, by task: datasets, strategies, posteriors."""
    console.print(_list_table())


def _bench_table(result: dict) -> Table:
    table = Table(
        title=f"{result['dataset']}: {len(result['strategies'])} strategies replayed on "
        f"{result['states']} recorded states, b = {result['b']} (ranked by test NLL gain)",
        caption="most alike: the strategy (#rank) whose batches overlap most (mean Jaccard)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    columns = ("NLL\ngain", "reweighted\naccuracy", "joint\nMI", "classes", "ms")
    width = max(map(len, result["ranking"]), default=0)
    table.add_column("rank", justify="right")
    table.add_column("strategy", no_wrap=True, min_width=width, overflow="fold")
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("most\nalike", no_wrap=True)
    rank_of = {name: rank for rank, name in enumerate(result["ranking"], 1)}
    for rank, name in enumerate(result["ranking"], 1):
        m = result["strategies"][name]
        others = {o: v for o, v in result["overlap"][name].items() if o != name}
        closest = max(others, key=lambda other: others[other], default=None)
        table.add_row(
            str(rank),
            name,
            f"{m['nll_gain']:.4f}",
            f"{m['accuracy']:.3f}",
            f"{m['joint_mi']:.3f}",
            f"{m['classes']:.1f}",
            f"{m['time_ms']:.2f}",
            "" if closest is None else f"#{rank_of[closest]} {others[closest]:.2f}",
        )
    return table


def _bench_note(result: dict) -> str | None:
    """Why every strategy can lose test NLL in the replay; ``None`` unless all gains < 0."""
    gains = [m["nll_gain"] for m in result["strategies"].values()]
    if not gains or max(gains) >= 0:
        return None
    return (
        "note: every NLL gain is negative. The gain compares the recorded mixture of the K "
        "posterior samples with the same samples reweighted by the batch's true labels; when "
        "the samples disagree on the batch the weights collapse onto one or two of them, whose "
        "test predictions are worse than the uniform mixture's, so the batches the samples "
        "disagree on most (BALD and its family) lose most. Here the ranking measures that "
        "collapse (few samples K), not the batches' value: compare the joint MI column, or "
        "train with `jaxal run`."
    )


def _bench_plot(result: dict, target: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    plots.strategy_ranking(axes[0], result, metric="nll_gain")
    plots.strategy_ranking(axes[1], result, metric="joint_mi")
    for name, curve in result["recorded"].items():
        axes[2].plot(curve, marker="o", label=name)
    axes[2].set_xlabel("round")
    axes[2].set_ylabel("test accuracy (recorded runs)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(target, dpi=120)
    plt.close(fig)


@app.command()
def bench(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Directory for results.json and bench.png (default: results/bench-cached, "
            "or results/bench-NAME for --cache NAME.npz)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the results already in --out.")
    ] = False,
    cache: Annotated[
        Path | None, typer.Option(help="Cache from `jaxal bench-record` (default: bundled).")
    ] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(help="Classification strategies to replay (repeat; default: all)."),
    ] = None,
    batch: Annotated[int | None, typer.Option(help="Batch size (default: recorded).")] = None,
    targets: Annotated[
        int | None,
        typer.Option(
            help="Targets per state, drawn from the test inputs "
            f"(default: {bench_module.DEFAULT_NUM_TARGETS})."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the replay keys.")] = 0,
) -> None:
    """Replay acquisition functions on cached posteriors: ranking table, no retraining."""
    try:
        recorded = bench_module.load(cache) if cache else bench_module.load_bundled()
        known = strategies.names(task="classification")
        names = strategy or known
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ValueError(f"unknown classification strategies {unknown}; choose from {known}")
        out = out or Path("results") / f"bench-{cache.stem if cache else 'cached'}"
        if (out / "results.json").exists() and not force:
            raise ValueError(
                f"{out} already holds bench results: pass --force to overwrite them, or choose "
                "another --out"
            )
        result = bench_module.replay(
            recorded,
            {n: strategies.get(n) for n in names},
            key=jax.random.key(seed),
            b=batch,
            num_targets=targets,
        )
    except (OSError, ValueError) as error:
        _fail(error)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1))
    if result["ranking"]:
        _bench_plot(result, out / "bench.png")
        console.print(_bench_table(result))
        note = _bench_note(result)
        if note is not None:
            console.print(f"[yellow]{escape(note)}[/yellow]")
    for name, reason in result["skipped"].items():
        console.print(f"[yellow]skipped[/yellow] {name}: {reason}")
    console.print(
        f"wrote {out / 'results.json'}" + (f" and {out / 'bench.png'}" if result["ranking"] else "")
    )


@app.command(name="bench-record")
def bench_record(
    out: Annotated[Path, typer.Option(help="The .npz cache to write.")],
    dataset: Annotated[str, typer.Option(help="See `jaxal list`.")] = "digits",
    strategy: Annotated[
        list[str] | None, typer.Option(help="Strategies to record (repeat).")
    ] = None,
    posterior_name: Annotated[str, typer.Option("--posterior")] = "ensemble",
    rounds: Annotated[int, typer.Option()] = 3,
    batch: Annotated[int, typer.Option()] = 10,
    initial: Annotated[int, typer.Option()] = 20,
    samples: Annotated[int, typer.Option(help="Posterior samples K.")] = 8,
    hidden: Annotated[int, typer.Option(help="Hidden width (the embeddings' H).")] = 128,
    steps: Annotated[int, typer.Option(help="Training steps per fit.")] = 300,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Record real training runs for `jaxal bench`: predictions, embeddings, inputs."""
    names = strategy or ["random", "bald"]
    try:
        config = RunConfig(
            dataset=dataset,
            strategy=names[0],
            posterior=posterior_name,
            rounds=rounds,
            batch=batch,
            initial=initial,
            seeds=1,
            seed=seed,
            samples=samples,
            hidden=hidden,
            steps=steps,
        )
        if config.task != "classification":
            raise ValueError(f"jaxal bench records classification datasets; {dataset!r} is not")
        experiment = _Experiment(config)
        assert isinstance(experiment.dataset, data.Dataset)  # a classification dataset
        with warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always")
            recorded = bench_module.record(
                experiment.dataset,
                names,
                key=jax.random.key(seed + 1),
                posterior=experiment.posterior,
                initial=initial,
                rounds=rounds,
                b=batch,
                dataset=dataset,
            )
    except (ValueError, TypeError) as error:
        _fail(error)
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note.message}")
    out.parent.mkdir(parents=True, exist_ok=True)
    bench_module.save(recorded, out)
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
