"""The ``jaxal`` command line: run, resume after an interruption, plot, list, clear errors."""

import dataclasses
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import jaxal
from jaxal import cli
from jaxal.cli import _list_table, app
from tests.test_loop import flip_64_bytes, largest_data_file

RUNNER = CliRunner()
TINY = ["--rounds", "2", "--batch", "5", "--initial", "10", "--seeds", "2", "--samples", "2"]
TINY += ["--steps", "10"]


def invoke(*args):
    return RUNNER.invoke(app, [str(a) for a in args])


def _ctrl_c_during_the_first_fit(monkeypatch):
    """Send SIGINT to this process while ``run`` fits (and compiles) its initial posterior."""
    init = cli._Experiment.init

    def interrupted_init(self):
        os.kill(os.getpid(), signal.SIGINT)
        return init(self)

    monkeypatch.setattr(cli._Experiment, "init", interrupted_init)


def test_run_resume_plot_and_list(tmp_path, monkeypatch):
    out = tmp_path / "bald"
    # Ctrl-C during the first compilation: the fit finishes, then exit 130 naming the resume.
    handler = signal.getsignal(signal.SIGINT)
    with monkeypatch.context() as patch:
        _ctrl_c_during_the_first_fit(patch)
        result = invoke("run", "--out", out, "--strategy", "bald", *TINY)
    assert result.exit_code == 130, result.output
    output = " ".join(result.output.split())
    assert "Ctrl-C: stopping after the step in flight" in output
    assert f"continue it with `jaxal resume {out}`" in output
    assert signal.getsignal(signal.SIGINT) is handler  # restored
    assert (out / "config.json").exists() and not (out / "results.json").exists()
    result = invoke("resume", out)
    assert result.exit_code == 0, result.output
    assert "starting from the initial fit" in result.output
    record = json.loads((out / "results.json").read_text())
    assert record["labels"] == [10, 15, 20]
    assert np.asarray(record["metrics"]["accuracy"]).shape == (2, 3)
    assert json.loads((out / "config.json").read_text())["config"]["strategy"] == "bald"
    assert (out / "curves.png").stat().st_size > 0
    assert (out / "selection.png").stat().st_size > 0
    assert len((out / "results.csv").read_text().splitlines()) == 1 + 2 * 3

    # Resuming with other settings than the checkpoints': one line naming the mismatch.
    config = (out / "config.json").read_text()
    (out / "config.json").write_text(config.replace('"rounds": 2', '"rounds": 3'))
    result = invoke("resume", out)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "checkpoint step 2" in result.output and "other settings" in result.output
    assert "acquired has shape (2, 2, 5), the requested run's (2, 3, 5)" in result.output
    (out / "config.json").write_text(config)

    # A damaged checkpoint is refused, naming the step, the file and the fix.
    step = out / "checkpoints" / "2"
    data_file = largest_data_file(step)
    flip_64_bytes(data_file)
    result = invoke("resume", out)
    assert result.exit_code == 2, result.output
    assert f"checkpoint step 2 in {out.absolute() / 'checkpoints'} is corrupt" in result.output
    assert data_file.relative_to(step).as_posix() in result.output
    assert f"delete {step.absolute()} to resume from step 1" in result.output

    # Following the fix resumes from step 1, as after an interruption during the last round
    # (its checkpoint and the results never written), to the same results.
    shutil.rmtree(step)
    (out / "results.json").unlink()
    result = invoke("resume", out)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "round 1" in result.output
    assert json.loads((out / "results.json").read_text()) == record

    result = invoke("plot", out, out, "--out", tmp_path / "both.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "both.png").stat().st_size > 0
    result = invoke("plot", out, "--metric", "foo")
    assert result.exit_code == 2, result.output
    assert "no metric 'foo'; choose --metric from ['accuracy', 'cost', 'nll']" in result.output


def test_a_second_ctrl_c_stops_at_once_naming_the_resume(tmp_path):
    """The second SIGINT ends the process (os._exit: no teardown under XLA) with exit 130."""
    script = (
        "import os, signal, time; from pathlib import Path; from jaxal import cli\n"
        f"with cli._interruptible(Path({str(tmp_path)!r})):\n"
        "    os.kill(os.getpid(), signal.SIGINT); os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(60)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 130, done.stderr
    output = " ".join(done.stdout.split())
    assert "Ctrl-C again stops at once" in output
    assert f"interrupted again: stopped; continue it with `jaxal resume {tmp_path}`" in output


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
    result = invoke("run", "--out", tmp_path / "x", "--config", tmp_path / "none.json")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"--config {tmp_path / 'none.json'}: no such file" in " ".join(result.output.split())


def _never_fit(self):
    raise AssertionError("fitted before the run directory was checked")


def test_one_process_per_run_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(cli._Experiment, "init", _never_fit)
    out = tmp_path / "run"
    out.mkdir()
    with (out / cli.LOCK).open("a") as held:  # another process running in `out`
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = invoke("run", "--out", out, *TINY)
        assert result.exit_code == 2 and "in use by another jaxal process" in result.output
        assert not (out / "config.json").exists()
        record = {"config": dataclasses.asdict(cli.RunConfig())}
        (out / "config.json").write_text(json.dumps(record))
        result = invoke("resume", out)
        assert result.exit_code == 2 and "in use by another jaxal process" in result.output
    result = invoke("run", "--out", out, *TINY)  # released: now the directory's run is found
    assert result.exit_code == 2 and "already holds a run" in result.output


def test_an_unwritable_out_fails_before_any_fit(tmp_path, monkeypatch):
    monkeypatch.setattr(cli._Experiment, "init", _never_fit)
    (tmp_path / "file").write_text("")
    result = invoke("run", "--out", tmp_path / "file" / "run", *TINY)
    assert result.exit_code == 2, result.output
    assert f"cannot write to the run directory {tmp_path / 'file' / 'run'}" in result.output


@pytest.mark.parametrize("damage", [lambda text: text[:20], lambda text: "\0" * len(text)])
def test_unreadable_json_files_are_named(tmp_path, damage):
    out = tmp_path / "run"
    out.mkdir()
    record = {"config": dataclasses.asdict(cli.RunConfig()), "labels": [], "metrics": {}}
    for name in ("config.json", "results.json"):
        (out / name).write_text(damage(json.dumps(record)))
    result = invoke("resume", out)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{out / 'config.json'} is truncated or corrupt" in result.output
    assert "restore it" in result.output
    result = invoke("plot", out)
    assert result.exit_code == 2 and f"{out / 'results.json'} is truncated" in result.output
    result = invoke("run", "--out", tmp_path / "new", "--config", out / "config.json")
    assert result.exit_code == 2 and f"{out / 'config.json'} is truncated" in result.output


def test_flags_win_over_the_config_file_even_at_their_default(tmp_path):
    settings = {"rounds": 2, "batch": 200, "initial": 10, "seeds": 1, "samples": 2, "steps": 10}
    (tmp_path / "config.json").write_text(json.dumps(settings))
    # --rounds 10 is the flag's default; with the file's batch of 200 it exceeds the pool.
    args = ("run", "--out", tmp_path / "x", "--config", tmp_path / "config.json")
    result = invoke(*args, "--rounds", "10")
    assert result.exit_code == 2, result.output
    assert "initial + rounds * b = 10 + 10 * 200 = 2010 exceeds the pool" in result.output
    assert not (tmp_path / "x").exists()  # refused before the run directory was made
