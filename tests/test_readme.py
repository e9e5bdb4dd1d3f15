"""The README's code runs as written."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(heading: str) -> str:
    return re.search(rf"{heading}\s+```python\n(.*?)```", README.read_text(), re.S).group(1)


def test_quickstart_and_loop_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the loop example checkpoints under results/
    namespace: dict = {}
    exec(compile(_block("## Quickstart"), str(README), "exec"), namespace)
    batch, labelled = np.asarray(namespace["batch"]), np.asarray(namespace["labelled"])
    assert batch.shape == (10,) and len(set(batch.tolist())) == 10
    assert not labelled[batch].any()
    assert np.all(np.diff(namespace["joint_mi"]) >= -1e-3)

    exec(compile(_block("### The loop"), str(README), "exec"), namespace)
    accuracy = np.asarray(namespace["state"].metrics["accuracy"])
    assert accuracy.shape == (3, 11) and np.all(accuracy[:, -1] > 0.8)
    assert (tmp_path / "results" / "my_run").is_dir()
