"""The ``jaxal`` command line: run, resume after an interruption, plot, list, clear errors."""

import json
import shutil

import numpy as np
from typer.testing import CliRunner

import jaxal
from jaxal.cli import _list_table, app

RUNNER = CliRunner()
TINY = ["--rounds", "2", "--batch", "5", "--initial", "10", "--seeds", "2", "--samples", "2"]
TINY += ["--steps", "10"]


def invoke(*args):
    return RUNNER.invoke(app, [str(a) for a in args])


def test_run_resume_plot_and_list(tmp_path):
    out = tmp_path / "bald"
    result = invoke("run", "--out", out, "--strategy", "bald", *TINY)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "results.json").read_text())
    assert record["labels"] == [10, 15, 20]
    assert np.asarray(record["metrics"]["accuracy"]).shape == (2, 3)
    assert json.loads((out / "config.json").read_text())["config"]["strategy"] == "bald"
    assert (out / "curves.png").stat().st_size > 0
    assert len((out / "results.csv").read_text().splitlines()) == 1 + 2 * 3

    # Interrupted during the last round: its checkpoint and the results never got written.
    shutil.rmtree(out / "checkpoints" / "2")
    (out / "results.json").unlink()
    result = invoke("resume", out)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "round 1" in result.output
    assert json.loads((out / "results.json").read_text()) == record

    result = invoke("plot", out, out, "--out", tmp_path / "both.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "both.png").stat().st_size > 0


def test_list_shows_what_run_accepts_and_regression_runs(tmp_path):
    table = _list_table()
    task_C, kind_C, names_C = (column._cells for column in table.columns)
    registry = {
        "datasets": jaxal.data,
        "strategies": jaxal.strategies,
        "posteriors": jaxal.posterior,
    }
    for task, kind, names in zip(task_C, kind_C, names_C, strict=True):
        assert names.split(", ") == registry[kind].names(task=task)
    assert sorted(zip(task_C, kind_C, strict=True)) == sorted(
        (t, k)
        for t in ("classification", "regression")
        for k in ("datasets", "strategies", "posteriors")
    )
    result = invoke("list")
    assert result.exit_code == 0 and "batchbald" in result.output and "lcmd" in result.output

    out = tmp_path / "lcmd"
    result = invoke("run", "--out", out, "--dataset", "diabetes", "--strategy", "lcmd", *TINY)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "results.json").read_text())
    assert np.asarray(record["metrics"]["rmse"]).shape == (2, 3)
    result = invoke("run", "--out", tmp_path / "y", "--dataset", "diabetes", "--strategy", "bald")
    assert result.exit_code == 2 and "unknown regression strategy 'bald'" in result.output


def test_clear_errors(tmp_path):
    result = invoke("run", "--out", tmp_path / "x", "--strategy", "badl", *TINY)
    assert result.exit_code == 2 and "unknown classification strategy 'badl'" in result.output
    result = invoke("run", "--out", tmp_path / "x", "--posterior", "gp", *TINY)
    assert result.exit_code == 2 and "unknown classification posterior 'gp'" in result.output
    result = invoke("run", "--out", tmp_path / "x", "--dataset", "mnist", *TINY)
    assert result.exit_code == 2 and "unknown dataset 'mnist'" in result.output
    result = invoke("run", "--out", tmp_path / "x", "--rounds", "1000", "--batch", "10")
    assert result.exit_code == 2 and "exceeds the pool" in result.output
    result = invoke("resume", tmp_path / "nothing")
    assert result.exit_code == 2 and "error" in result.output
