"""The README's quickstart runs as written."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quickstart_runs():
    code = re.search(r"## Quickstart\s+```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    batch, labelled = np.asarray(namespace["batch"]), np.asarray(namespace["labelled"])
    assert batch.shape == (10,) and len(set(batch.tolist())) == 10
    assert not labelled[batch].any()
    assert np.all(np.diff(namespace["joint_mi"]) >= -1e-3)
