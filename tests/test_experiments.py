"""Smoke tests: every reproduction in experiments/ runs its ``main`` at ``--quick`` size.

(The demo's toy-size run is in tests/test_demo.py.) The experiments on ``jaxal.loop`` compile one
round program per strategy and take 13-65 s each at quick size on a shared 2-core CPU.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

EXPERIMENTS = Path(__file__).parent.parent / "experiments"
sys.path.insert(0, str(EXPERIMENTS))  # the scripts import their shared helpers as `_common`


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(path: Path, keys: set[str]) -> dict:
    result = json.loads(path.read_text())
    assert keys <= result.keys()
    return result


QUICK = [
    pytest.param("epig_vs_bald", "results.json", {"labels", "accuracy", "epig_beats_bald"}),
    pytest.param("active_testing", "results.json", {"config", "paper", "experiments"}),
    pytest.param("ev_gp", "results.json", {"rows", "pool_size", "selection_s"}),
    pytest.param(
        "batch_epig_repeated",
        "results.json",
        {"labels", "accuracy", "duplicate_fraction", "fewer_duplicates", "claim"},
    ),
    pytest.param("regression_kernels", "results.json", {"tasks", "mean_log_rmse", "paper"}),
    pytest.param(
        "batchbald_repeated",
        "results.json",
        {"labels", "accuracy", "duplicate_fraction", "beats_bald", "paper"},
    ),
    pytest.param(
        "stochastic_batch",
        "results.json",
        {"labels", "accuracy", "selection_s", "selection_speedup", "paper"},
    ),
    pytest.param(
        "vessal_stream",
        "results.json",
        {"labels", "accuracy", "query_rate", "vessal_beats_random", "paper"},
    ),
    pytest.param(
        "tailor_imbalanced",
        "results.json",
        {"labels", "accuracy", "rare_labels", "tailor_arms", "tailor_vs_best_candidate"},
    ),
    pytest.param(
        "candidate_set",
        "results.json",
        {"labels", "accuracy", "cost", "cost_to_reach", "cost_saving_vs_entropy"},
    ),
    pytest.param(
        "anchoral_imbalanced",
        "results.json",
        {"labels", "accuracy", "rare_recall", "rare_share_acquired", "round_s", "round_speedup"},
    ),
    pytest.param(
        "ldm", "results.json", {"labels", "accuracy", "ldm_minus_entropy", "ldm_minus_random"}
    ),
]


@pytest.mark.parametrize(("name", "filename", "keys"), QUICK)
def test_quick_run_writes_results(tmp_path, name, filename, keys):
    load(name).main(out=tmp_path, quick=True)
    record(tmp_path / filename, {"config"} | keys)
    assert any(path.suffix == ".png" for path in tmp_path.iterdir())


def test_duplicate_fraction_counts_copies_within_a_batch():
    repeated = load("batchbald_repeated")
    # copies of original n are rows 3n, 3n+1, 3n+2
    acquired_S_R_B = np.array([[[0, 1, 2, 3], [0, 3, 6, 9]]])
    np.testing.assert_allclose(repeated.duplicate_fraction(acquired_S_R_B), [[0.5, 0.0]])
