"""The ``jaxal`` command line: run, resume after an interruption, plot, list, clear errors."""

import json
import shutil

import numpy as np
from typer.testing import CliRunner

from jaxal.cli import app

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

    result = invoke("list")
    assert result.exit_code == 0 and "batchbald" in result.output and "ensemble" in result.output


def test_clear_errors(tmp_path):
    result = invoke("run", "--out", tmp_path / "x", "--strategy", "badl", *TINY)
    assert result.exit_code == 2 and "unknown classification strategy 'badl'" in result.output
    result = invoke("run", "--out", tmp_path / "x", "--posterior", "gp", *TINY)
    assert result.exit_code == 2 and "unknown posterior 'gp'" in result.output
    result = invoke("run", "--out", tmp_path / "x", "--dataset", "mnist", *TINY)
    assert result.exit_code == 2 and "unknown classification dataset 'mnist'" in result.output
    result = invoke("run", "--out", tmp_path / "x", "--rounds", "1000", "--batch", "10")
    assert result.exit_code == 2 and "exceeds the pool" in result.output
    result = invoke("resume", tmp_path / "nothing")
    assert result.exit_code == 2 and "error" in result.output
