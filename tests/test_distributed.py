"""Multi-process BALD: 2 processes x 4 CPU devices (``jax.distributed``, gloo) select what one
device selects on the same pool.

``experiments/multihost_bald.py --launch-local 2`` spawns the processes with a localhost
coordinator; each generates only its devices' rows of the pool.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import jaxal

ROOT = Path(__file__).parent.parent
SCRIPT = ROOT / "experiments" / "multihost_bald.py"
N, K, C, B = 4_999, 8, 5, 10  # N is not a multiple of the 8 devices: the pool is padded


def load_script():
    spec = importlib.util.spec_from_file_location("multihost_bald", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pool_does_not_depend_on_the_split():
    script = load_script()
    whole = script.pool_slice(0, 3000, K=K, C=C, seed=1)
    parts = [
        script.pool_slice(a, z, K=K, C=C, seed=1) for a, z in [(0, 1), (1, 1500), (1500, 3000)]
    ]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
    padded = script.padded_rows(2990, 3010, N=3000, K=K, C=C, seed=1)
    np.testing.assert_array_equal(padded[:, :10], whole[:, 2990:])
    np.testing.assert_allclose(np.exp(padded[:, 10:]), 1 / C, rtol=1e-6)


def test_two_processes_select_what_one_device_selects(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    command = [sys.executable, str(SCRIPT), "--launch-local", "2", "--cpu-devices", "4"]
    command += [f"--n={N}", f"--k={K}", f"--c={C}", f"--b={B}", "--seed=3", f"--out={tmp_path}"]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    print(result.stdout, result.stderr[-3000:])
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "results.json").read_text())
    assert (record["num_processes"], record["devices"], record["local_devices"]) == (2, 8, 4)
    assert record["padded_N"] == 5000
    assert "process 1/2: generated pool rows [(2500, 3125)" in result.stdout

    log_probs = load_script().pool_slice(0, N, K=K, C=C, seed=3)
    scores_N = jaxal.scores.bald(log_probs)
    expected_B = jaxal.select.top_k(scores_N, B)
    np.testing.assert_array_equal(record["indices"], expected_B)
    np.testing.assert_allclose(record["scores"], scores_N[expected_B], rtol=1e-5)
