"""The ``jaxal`` command line: run, resume, plot, list and benchmark active learning.

::

    jaxal run --dataset repeated-digits --strategy batchbald --posterior ensemble \\
              --rounds 20 --batch 10 --seeds 5 --out results/x
    jaxal resume results/x          # after Ctrl-C or a kill: continues where it stopped
    jaxal plot results/x results/y  # overlays runs (mean and spread over seeds)
    jaxal list                      # strategies, posteriors, datasets
    jaxal bench                     # replay every strategy on cached posteriors (seconds)

A run directory holds ``config.json`` (the full configuration and the jaxal version),
``checkpoints/`` (the loop state after the initial fit and after every round, orbax),
``results.json`` / ``results.csv`` (per seed and round: labels, metrics, acquired indices)
and ``curves.png``. All seeds run in one compiled program (``jax.vmap``), so the progress bar
advances per round for all seeds at once. Classification datasets only for now.
"""

import csv
import dataclasses
import json
from pathlib import Path
from typing import Annotated

import jax
import matplotlib
import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import jaxal
from jaxal import bench as bench_module, data, loop, posterior, strategies
from jaxal.plot import mean_band

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n")[0])
console = Console()


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on; stored as ``config.json`` so a run can be resumed."""

    dataset: str = "digits"
    strategy: str = "bald"
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

    def validate(self) -> None:
        """Clear errors for unknown names (the budget is checked by :func:`jaxal.loop.init`)."""
        if self.dataset not in data.names(task="classification"):
            raise ValueError(
                f"unknown classification dataset {self.dataset!r}; choose one of "
                f"{data.names(task='classification')}"
            )
        if self.strategy not in strategies.names(task="classification") + ["random"]:
            raise ValueError(
                f"unknown classification strategy {self.strategy!r}; choose one of "
                f"{sorted(strategies.names(task='classification') + ['random'])}"
            )
        if self.posterior not in posterior.names():
            raise ValueError(
                f"unknown posterior {self.posterior!r}; choose one of {posterior.names()}"
            )
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1; got {self.seeds}")


class _Experiment:
    """The dataset, posterior and strategy a configuration names."""

    def __init__(self, config: RunConfig):
        config.validate()
        self.config = config
        self.dataset = data.load(config.dataset, key=jax.random.key(config.seed))
        self.posterior = posterior.build(
            config.posterior,
            num_classes=self.dataset.num_classes,
            num_samples=config.samples,
            hidden=config.hidden,
            num_steps=config.steps,
            batch_size=config.minibatch,
            learning_rate=config.learning_rate,
        )
        self.strategy = strategies.get(config.strategy)

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
        )

    def labels(self) -> list[int]:
        c = self.config
        return [c.initial + r * c.batch for r in range(c.rounds + 1)]


def _fail(error: Exception) -> None:
    console.print(f"[red]error:[/red] {error}")
    raise typer.Exit(2)


def _advance(out: Path, experiment: _Experiment, state: loop.LoopState) -> loop.LoopState:
    """Run the remaining rounds with a progress bar, then write the results."""
    c = experiment.config
    done = int(np.min(state.round))
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[score]}"))
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(
            f"{c.strategy} x {c.seeds} seeds", total=c.rounds, completed=done, score=""
        )

        def on_round(state):
            r = int(np.min(state.round))
            accuracy = np.asarray(state.metrics["accuracy"])[:, r]
            progress.update(task, completed=r, score=f"round {r}: acc {accuracy.mean():.3f}")

        state = loop.run(
            state,
            experiment.dataset,
            posterior=experiment.posterior,
            strategy=experiment.strategy,
            checkpoint_dir=out / "checkpoints",
            on_round=on_round,
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
    (out / "results.json").write_text(json.dumps(record, indent=1))
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seed", "round", "labels", *metrics])
        for s in range(experiment.config.seeds):
            for r, n in enumerate(labels):
                writer.writerow([s, r, n, *(metrics[m][s][r] for m in metrics)])
    _plot([out], out / "curves.png")


def _load(out: Path) -> dict:
    path = out / "results.json"
    if not path.exists():
        raise ValueError(f"{out} has no results.json: is it a finished jaxal run?")
    return json.loads(path.read_text())


def _plot(runs: list[Path], target: Path, metric: str = "accuracy") -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for run in runs:
        record = _load(run)
        values = np.asarray(record["metrics"][metric])
        c = record["config"]
        label = f"{c['strategy']} ({c['posterior']}, {c['dataset']}) [{run.name}]"
        mean_band(ax, record["labels"], values, label=label)
    ax.set_xlabel("number of labelled points")
    ax.set_ylabel(f"test {metric}")
    ax.set_title("mean ± std over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(target, dpi=120)
    plt.close(fig)


def _summary(runs: list[Path]) -> Table:
    table = Table(title="final test accuracy (mean ± std over seeds)")
    for column in ("run", "dataset", "strategy", "posterior", "labels", "accuracy"):
        table.add_column(column)
    for run in runs:
        record = _load(run)
        c, final = record["config"], np.asarray(record["metrics"]["accuracy"])[:, -1]
        table.add_row(
            str(run),
            c["dataset"],
            c["strategy"],
            c["posterior"],
            str(record["labels"][-1]),
            f"{final.mean():.3f} ± {final.std():.3f}",
        )
    return table


@app.command()
def run(
    out: Annotated[Path, typer.Option(help="Run directory (must not hold a run).")],
    dataset: Annotated[str, typer.Option(help="See `jaxal list`.")] = RunConfig.dataset,
    strategy: Annotated[str, typer.Option(help="See `jaxal list`.")] = RunConfig.strategy,
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
    config_file: Annotated[
        Path | None, typer.Option("--config", help="JSON file of RunConfig fields; flags win.")
    ] = None,
) -> None:
    """Run an active-learning experiment; checkpoints every round."""
    settings = json.loads(config_file.read_text()) if config_file else {}
    flags = dict(
        dataset=dataset,
        strategy=strategy,
        posterior=posterior_name,
        rounds=rounds,
        batch=batch,
        initial=initial,
        seeds=seeds,
        seed=seed,
        samples=samples,
        steps=steps,
    )
    defaults = dataclasses.asdict(RunConfig())
    settings.update({k: v for k, v in flags.items() if v != defaults[k]})
    try:
        config = RunConfig(**settings)
        if (out / "config.json").exists():
            raise ValueError(f"{out} already holds a run; continue it with `jaxal resume {out}`")
        experiment = _Experiment(config)
        state = experiment.init()
    except (ValueError, TypeError) as error:
        _fail(error)
    out.mkdir(parents=True, exist_ok=True)
    record = {"jaxal_version": jaxal.__version__, "config": dataclasses.asdict(config)}
    (out / "config.json").write_text(json.dumps(record, indent=1))
    _advance(out, experiment, state)


@app.command()
def resume(out: Annotated[Path, typer.Argument(help="Run directory to continue.")]) -> None:
    """Continue an interrupted run from its last checkpoint (a finished run is rewritten)."""
    try:
        record = json.loads((out / "config.json").read_text())
        experiment = _Experiment(RunConfig(**record["config"]))
        like = jax.eval_shape(experiment.init)
        state = loop.restore(out / "checkpoints", like=like)
    except (OSError, ValueError, TypeError) as error:
        _fail(error)
    if state is None:
        console.print("no checkpoint yet: starting from the initial fit")
        state = experiment.init()
    console.print(f"resuming {out} at round {int(np.min(state.round))}")
    _advance(out, experiment, state)


@app.command()
def plot(
    runs: Annotated[list[Path], typer.Argument(help="Run directories to overlay.")],
    out: Annotated[Path | None, typer.Option(help="PNG to write.")] = None,
    metric: Annotated[str, typer.Option(help="accuracy or nll.")] = "accuracy",
) -> None:
    """Overlay runs: mean and spread over seeds of a test metric vs labels."""
    target = out or runs[0] / "compare.png"
    try:
        _plot(runs, target, metric)
    except (ValueError, KeyError) as error:
        _fail(error)
    console.print(_summary(runs))
    console.print(f"wrote {target}")


@app.command(name="list")
def list_() -> None:
    """Strategies, posteriors and datasets by name."""
    table = Table(title="jaxal")
    table.add_column("kind")
    table.add_column("names")
    table.add_row("strategies (classification)", ", ".join(strategies.names(task="classification")))
    table.add_row("strategies (regression)", ", ".join(strategies.names(task="regression")))
    table.add_row("strategies (any)", ", ".join(strategies.names(task="any")))
    table.add_row("posteriors", ", ".join(posterior.names()))
    table.add_row("datasets (classification)", ", ".join(data.names(task="classification")))
    table.add_row("datasets (regression)", ", ".join(data.names(task="regression")))
    console.print(table)


def _bench_table(result: dict) -> Table:
    table = Table(
        title=f"{result['dataset']}: {len(result['strategies'])} strategies replayed on "
        f"{result['states']} recorded states, b = {result['b']} (ranked by test NLL gain)"
    )
    columns = ("rank", "strategy", "NLL gain", "reweighted acc.", "joint MI", "classes", "ms")
    for column in columns:
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for rank, name in enumerate(result["ranking"], 1):
        m = result["strategies"][name]
        table.add_row(
            str(rank),
            name,
            f"{m['nll_gain']:.4f}",
            f"{m['accuracy']:.3f}",
            f"{m['joint_mi']:.3f}",
            f"{m['classes']:.1f}",
            f"{m['time_ms']:.2f}",
        )
    return table


def _bench_plot(result: dict, target: Path) -> None:
    names = result["ranking"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, metric, label in (
        (axes[0], "nll_gain", "test NLL gain of the reweighted posterior (nats)"),
        (axes[1], "joint_mi", "joint MI of the batch (nats)"),
    ):
        ax.barh(names[::-1], [result["strategies"][n][metric] for n in names[::-1]])
        ax.set_xlabel(label)
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
    out: Annotated[Path, typer.Option(help="Directory for results.json and bench.png.")] = Path(
        "results/bench-cached"
    ),
    cache: Annotated[
        Path | None, typer.Option(help="Cache from `jaxal bench-record` (default: bundled).")
    ] = None,
    strategy: Annotated[
        list[str] | None, typer.Option(help="Strategies to replay (repeat; default: all).")
    ] = None,
    batch: Annotated[int | None, typer.Option(help="Batch size (default: recorded).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the replay keys.")] = 0,
) -> None:
    """Replay acquisition functions on cached posteriors: ranking table, no retraining."""
    try:
        recorded = bench_module.load(cache) if cache else bench_module.load_bundled()
        known = [*strategies.names(task="classification"), *strategies.names(task="any")]
        names = strategy or known
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ValueError(f"unknown classification strategies {unknown}; see `jaxal list`")
        with console.status(f"replaying {len(names)} strategies"):
            result = bench_module.replay(
                recorded,
                {n: strategies.get(n) for n in names},
                key=jax.random.key(seed),
                b=batch,
            )
    except (OSError, ValueError) as error:
        _fail(error)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1))
    _bench_plot(result, out / "bench.png")
    console.print(_bench_table(result))
    console.print(f"wrote {out / 'results.json'} and {out / 'bench.png'}")


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
    steps: Annotated[int, typer.Option(help="Training steps per fit.")] = 300,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Record real training runs' posterior predictions for `jaxal bench`."""
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
            steps=steps,
        )
        experiment = _Experiment(config)
        with console.status(f"recording {names} on {dataset}"):
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
    out.parent.mkdir(parents=True, exist_ok=True)
    bench_module.save(recorded, out)
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
