"""Smoke tests: every reproduction in experiments/ runs its ``main`` at ``--quick`` size.

(The demo's toy-size run is in tests/test_demo.py.) The experiments on ``jaxal.loop`` compile one
round program per strategy and take 13-65 s each at quick size on a shared 2-core CPU.
"""

import importlib.util
import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

EXPERIMENTS = Path(__file__).parent.parent / "experiments"
sys.path.insert(0, str(EXPERIMENTS))  # the scripts import their shared helpers as `_common`


KEY = jax.random.key(0)


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
    pytest.param(
        "epig_vs_bald", "results.json", {"labels", "accuracy", "epig_beats_bald", "claims"}
    ),
    pytest.param("active_testing", "results.json", {"config", "paper", "experiments"}),
    pytest.param("ev_gp", "results.json", {"rows", "pool_size", "selection_s", "claims"}),
    pytest.param(
        "batch_epig_repeated",
        "results.json",
        {"labels", "accuracy", "duplicate_fraction", "fewer_duplicates", "claims"},
    ),
    pytest.param(
        "regression_kernels", "results.json", {"tasks", "mean_log_rmse", "paper", "claims"}
    ),
    pytest.param(
        "batchbald_repeated",
        "results.json",
        {"labels", "accuracy", "duplicate_fraction", "beats_bald", "claims"},
    ),
    pytest.param(
        "stochastic_batch",
        "results.json",
        {"labels", "accuracy", "selection_s", "selection_speedup", "claims"},
    ),
    pytest.param(
        "vessal_stream",
        "results.json",
        {"labels", "accuracy", "query_rate", "vessal_beats_random", "claims"},
    ),
    pytest.param(
        "tailor_imbalanced",
        "results.json",
        {"labels", "accuracy", "rare_labels", "tailor_arms", "claims"},
    ),
    pytest.param(
        "candidate_set",
        "results.json",
        {"labels", "accuracy", "cost", "cost_to_reach", "claims"},
    ),
    pytest.param(
        "anchoral_imbalanced",
        "results.json",
        {"labels", "accuracy", "rare_recall", "round_s", "round_speedup", "claims"},
    ),
    pytest.param("ldm", "results.json", {"labels", "accuracy", "ldm_minus_entropy", "claims"}),
]


@pytest.mark.parametrize(("name", "filename", "keys"), QUICK)
def test_quick_run_writes_results(tmp_path, name, filename, keys):
    module = load(name)
    module.main(out=tmp_path, quick=True)
    result = record(tmp_path / filename, {"config"} | keys)
    assert any(path.suffix == ".png" for path in tmp_path.iterdir())
    if "claims" in keys:  # one record per claim, each decided or marked untested
        assert [c["claim"] for c in result["claims"]] == [c.text for c in module.CLAIMS]
        assert {c["verdict"] for c in result["claims"]} <= VERDICTS


VERDICTS = {"held", "not held", "inconclusive", "untested"}


def test_claim_is_decided_by_the_paired_bootstrap_with_censored_label_counts():
    common = load("_common")
    # seed s of both strategies shares a start: a is 0.05 better on every seed
    base_S_R = np.linspace(0.5, 0.88, 5)[None, :] + np.linspace(0.0, 0.04, 6)[:, None]
    result = {"labels": [20, 30, 40, 50, 60], "accuracy": {"a": base_S_R + 0.05, "b": base_S_R}}
    auc = common.claim(common.Claim("a beats b", "a", "b", paper="-"), result, key=KEY)
    assert auc["verdict"] == "held" and auc["seeds"] == 6
    assert auc["mean_diff"] == pytest.approx(0.05) and auc["ci"][0] > 0
    # b never reaches 0.925 (censored at the budget plus one batch, 70), a at 60 labels
    spec = common.Claim("a fewer", "a", "b", paper="-", metric="labels_to", threshold=0.925)
    reach = common.claim(spec, result, key=KEY)
    assert reach["censored"] == {"a": 0, "b": 6}
    assert reach["values"] == {"a": [60.0] * 6, "b": [70.0] * 6}
    assert reach["verdict"] == "held"  # b's true counts are larger still
    one_seed = {
        "labels": result["labels"],
        "accuracy": {k: v[:1] for k, v in result["accuracy"].items()},
    }
    untested = common.claim(common.Claim("a beats b", "a", "b", paper="-"), one_seed, key=KEY)
    assert (untested["verdict"], untested["reason"]) == ("untested", "1 seed")
    # a spread claim: a's final accuracies vary far less over the 6 seeds than b's
    final_S = np.array([0.0, 0.2, -0.2, 0.1, -0.1, 0.05])
    steady = {"labels": [20, 30], "accuracy": {"a": np.stack([final_S * 0.1 + 0.8] * 2, 1),
                                               "b": np.stack([final_S + 0.8] * 2, 1)}}  # fmt: skip
    spec = common.Claim(
        "a varies less", "a", "b", paper="-", metric="final", higher_is_better=False,
        statistic="std",
    )  # fmt: skip
    spread = common.claim(spec, steady, key=KEY)
    assert spread["metric"] == "spread over seeds (std) of the final accuracy"
    assert spread["mean_diff"] == pytest.approx(-0.9 * final_S.std(ddof=1))
    assert spread["verdict"] == "held"


def test_results_table_in_the_readme_is_up_to_date():
    table = load("table")
    text = table.README.read_text()
    assert table.update(text, table.render()) == text, "run python experiments/table.py"


def test_table_renders_a_recorded_run(tmp_path):
    table = load("table")
    claim = {
        "claim": "a beats b", "paper": "0.9 vs 0.8", "metric": "final accuracy", "margin": 0.0,
        "better": "a", "worse": "b", "mean": {"a": 0.91, "b": 0.88}, "std": {"a": 0.01, "b": 0.02},
        "mean_diff": 0.03, "ci": [0.01, 0.05], "seeds": 5, "verdict": "held",
    }  # fmt: skip
    run = {"run": "x", "script": "x.py", "command": "python experiments/x.py --record",
           "setting": "digits", "claims": [claim], "wall_time_s": 125.0}  # fmt: skip
    (tmp_path / "x.json").write_text(json.dumps(run))
    row = table.render(tmp_path).splitlines()[2]
    assert row == (
        "| `x.py` (digits) | a beats b (final accuracy) | 0.9 vs 0.8 | a 0.910 ± 0.010, "
        "b 0.880 ± 0.020 | +0.030 [+0.010, +0.050], 5 seeds | held | 2 min 5 s | "
        "`python experiments/x.py --record` |"
    )


def test_duplicate_fraction_counts_copies_within_a_batch():
    repeated = load("batchbald_repeated")
    # copies of original n are rows 3n, 3n+1, 3n+2
    acquired_S_R_B = np.array([[[0, 1, 2, 3], [0, 3, 6, 9]]])
    np.testing.assert_allclose(repeated.duplicate_fraction(acquired_S_R_B), [[0.5, 0.0]])


def test_epig_settings_follow_the_authors_pools():
    """EPIG's MNIST settings (the authors' configs): unbalanced: classes 0-4 a tenth of
    5-9 in the pool, balanced test; redundant: labels 1 -> 0, 7 -> 1, others -> 2, test and
    targets of 1s and 7s only; the test and target halves never share a point."""
    module = load("epig_vs_bald")
    key = jax.random.key(0)
    unbalanced, x_target = module.split("mnist5k-unbalanced", key)
    counts = np.bincount(np.asarray(unbalanced.y_pool), minlength=10)
    assert np.all(counts[5:] >= 9 * counts[:5]) and np.all(counts[:5] >= 25), counts
    test_counts = np.bincount(np.asarray(unbalanced.y_test), minlength=10)
    assert test_counts.min() >= 0.7 * test_counts.max(), test_counts  # balanced up to the split
    assert x_target.shape[0] == unbalanced.x_test.shape[0] == 1000
    redundant, x_target = module.split("mnist5k-redundant", key)
    full = module.data.mnist5k(key=key, test_fraction=0.4)
    expected = np.select([np.asarray(full.y_pool) == 1, np.asarray(full.y_pool) == 7], [0, 1], 2)
    np.testing.assert_array_equal(redundant.y_pool, expected)
    assert redundant.num_classes == 3 and set(np.asarray(redundant.y_test).tolist()) == {0, 1}
    ones_and_sevens = np.isin(np.asarray(full.y_test), (1, 7))
    held_out = np.asarray(full.x_test)[ones_and_sevens]
    assert x_target.shape[0] + redundant.x_test.shape[0] == held_out.shape[0]
    both = np.concatenate([np.asarray(x_target), np.asarray(redundant.x_test)])
    assert np.unique(both, axis=0).shape[0] == np.unique(held_out, axis=0).shape[0]
