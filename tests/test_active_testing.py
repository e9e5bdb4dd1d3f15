"""Active testing: sampling, LURE / PURE against exact enumeration, proposals against numpy."""

import importlib.util
import itertools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxal import active_testing as at
from tests import reference
from tests.conftest import DTYPES, TRANSFORMS

TOLERANCE = {np.float32: 2e-5, np.float64: 1e-12}
EXPERIMENT = Path(__file__).parent.parent / "experiments" / "active_testing.py"


# ---- independent numpy transcriptions -------------------------------------------------------


def draw_probabilities(scores, remaining, mix_uniform):
    """Probabilities of the next draw among the ``remaining`` points (METHODS.md)."""
    weights = np.where(remaining, np.asarray(scores, np.float64), 0.0)
    uniform = remaining / remaining.sum()
    if weights.sum() == 0:
        return uniform
    return (1 - mix_uniform) * weights / weights.sum() + mix_uniform * uniform


def sequential_q(scores, indices, mix_uniform, available=None):
    """``q [M]`` of drawing ``indices`` in this order, one at a time without replacement."""
    remaining = np.ones(len(scores), bool) if available is None else np.array(available)
    q = []
    for i in indices:
        q.append(draw_probabilities(scores, remaining, mix_uniform)[i])
        remaining[i] = False
    return np.array(q)


def lure(losses, q, N):
    M = len(q)
    v = [1 + (N - M) / (N - m) * (1 / ((N - m + 1) * q[m - 1]) - 1) for m in range(1, M + 1)]
    return np.mean(np.array(v) * losses)


def pure(losses, q, N):
    M = len(q)
    return np.mean([(losses[:m].sum() + losses[m] / q[m]) / N for m in range(M)])


# ---- sample ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_q_matches_sequential_reference(dtype, transform, key, rng):
    scores = rng.random(30).astype(dtype)
    scores[:5] = 0.0
    available = rng.random(30) < 0.8
    draw = transform(lambda k, s, a, lam: at.sample(s, 12, key=k, mix_uniform=lam, available=a))
    for mix_uniform, k in zip([0.0, 0.3], jax.random.split(key), strict=True):
        indices, q = draw(k, scores, available, mix_uniform)
        assert indices.shape == (12,) and q.dtype == dtype
        assert len(set(np.asarray(indices).tolist())) == 12 and available[indices].all()
        want = sequential_q(scores, np.asarray(indices), mix_uniform, available)
        np.testing.assert_allclose(q, want, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@pytest.mark.parametrize("mix_uniform", [0.0, 0.25])
def test_first_two_draws_are_distributed_as_sequential_sampling(mix_uniform):
    scores = np.array([0.1, 0.5, 1.0, 2.0, 0.0])
    num_draws = 20_000
    keys = jax.random.split(jax.random.key(1234), num_draws)
    indices, q = jax.vmap(lambda k: at.sample(scores, 2, key=k, mix_uniform=mix_uniform))(keys)
    assert indices.shape == (num_draws, 2) and q.shape == (num_draws, 2)
    for r in range(3):  # vmap over keys equals one call per key
        one_indices, one_q = at.sample(scores, 2, key=keys[r], mix_uniform=mix_uniform)
        np.testing.assert_array_equal(indices[r], one_indices)
        np.testing.assert_allclose(q[r], one_q, rtol=1e-12)
    pairs = list(itertools.permutations(range(5), 2))
    expected = np.array([np.prod(sequential_q(scores, pair, mix_uniform)) for pair in pairs])
    assert np.isclose(expected.sum(), 1.0)
    seen = {pair: 0 for pair in pairs}
    for pair in map(tuple, np.asarray(indices).tolist()):
        seen[pair] += 1
    observed = np.array([seen[pair] for pair in pairs])
    positive = expected > 0
    assert observed[~positive].sum() == 0  # zero-probability pairs never occur
    result = stats.chisquare(observed[positive], num_draws * expected[positive])
    assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("scores", [[0.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 1.0]])
def test_exhausting_the_pool_never_repeats_an_index(scores, key):
    for k in jax.random.split(key, 50):
        indices, q = at.sample(jnp.asarray(scores), 4, key=k)
        assert sorted(np.asarray(indices).tolist()) == [0, 1, 2, 3]
        assert q[-1] == 1.0
    # with mix_uniform = 0, zero-score points come after the positive ones
    if max(scores) > 0:
        assert set(np.asarray(indices[:2]).tolist()) == {1, 3}


@pytest.mark.parametrize("dtype", DTYPES)
def test_mix_uniform_keeps_every_q_positive_with_zero_scores(dtype, key):
    scores = np.zeros(40, dtype)
    scores[3] = 1e6
    indices, q = at.sample(scores, 40, key=key, mix_uniform=0.1)
    remaining = 40 - np.arange(40)
    assert (np.asarray(q) >= 0.1 / remaining * (1 - 1e-5)).all()
    assert (np.asarray(q) <= 1).all()
    assert len(set(np.asarray(indices).tolist())) == 40


def test_zero_scores_give_uniform_q_and_unit_lure_weights(key):
    N, M = 20, 7
    _, q = at.sample(jnp.zeros(N), M, key=key)
    np.testing.assert_allclose(q, 1 / (N - np.arange(M)), rtol=1e-12)
    np.testing.assert_allclose(at.lure_weights(q, N), np.ones(M), atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_huge_scores_are_normalised_in_log_space(dtype, transform, key):
    # Issue 15: scores of 1e37 gave [9, 9, 9, 9] with q = 0 (the reciprocal of their sum,
    # 1e-38, is flushed to 0 in float32; likewise near the float64 maximum).
    big = {np.float32: [1e37, 3e38], np.float64: [1e37, 1e307]}[dtype]
    draw = transform(lambda s, k: at.sample(s, 4, key=k))
    for value in big:
        indices, q = draw(jnp.full(10, value, dtype), key)
        assert len(set(np.asarray(indices).tolist())) == 4
        np.testing.assert_allclose(q, 1 / (10 - np.arange(4)), rtol=TOLERANCE[dtype])
    scores = np.array([big[-1] / 4, big[-1] / 2, 0.0, 1.0, big[-1] / 8, 2.0], dtype)
    indices, q = draw(scores, key)
    want = sequential_q(scores.astype(np.float64), np.asarray(indices), 0.0)
    np.testing.assert_allclose(q, want, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    estimates = at.repeat(key, np.ones(10, dtype), np.full(10, big[-1], dtype), 4, 3)
    np.testing.assert_allclose(estimates.lure, 1.0, rtol=TOLERANCE[dtype])
    np.testing.assert_allclose(estimates.pure, 1.0, rtol=TOLERANCE[dtype])


def test_vmap_over_mix_uniform(key, rng):
    scores = jnp.asarray(rng.random(10))
    mixes = jnp.array([0.0, 0.5, 1.0])
    _, q = jax.vmap(lambda lam: at.sample(scores, 3, key=key, mix_uniform=lam))(mixes)
    np.testing.assert_allclose(q[2], 1 / (10 - np.arange(3)), rtol=1e-12)


# ---- estimators -----------------------------------------------------------------------------


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_lure_weights_are_one_under_uniform_sampling(dtype, transform):
    N, M = 50, 20
    q = (1 / (N - np.arange(M))).astype(dtype)
    got = transform(lambda q: at.lure_weights(q, N))(q)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, np.ones(M), atol=10 * TOLERANCE[dtype])


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_estimators_match_numpy(dtype, transform, rng):
    N, M = 40, 9
    losses = rng.exponential(size=M).astype(dtype)
    q = rng.uniform(0.01, 0.2, M).astype(dtype)
    for fn, want in ((at.lure_risk, lure), (at.pure_risk, pure)):
        got = transform(lambda losses, q, fn=fn: fn(losses, q, N))(losses, q)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want(losses.astype(float), q.astype(float), N), rtol=1e-5)
    terms = np.asarray(at.pure_terms(losses, q, N), np.float64)
    np.testing.assert_allclose(at.standard_error(terms), terms.std(ddof=1) / np.sqrt(M), rtol=1e-12)
    low, high = at.confidence_interval(terms, level=0.9)
    z = stats.norm.ppf(0.95)
    np.testing.assert_allclose(
        [low, high], terms.mean() + np.array([-z, z]) * terms.std(ddof=1) / 3
    )


def test_lure_over_the_whole_pool_is_the_mean(rng):
    losses = rng.exponential(size=6)
    q = rng.uniform(0.1, 1.0, 6)
    np.testing.assert_allclose(at.lure_weights(q, 6), np.ones(6))
    np.testing.assert_allclose(at.lure_risk(losses, q, 6), losses.mean(), rtol=1e-12)


CASES = {
    "positive": ([0.5, 2.0, 1.0, 0.1, 3.0], 0.0),
    "zeros_mixed": ([0.0, 2.0, 0.0, 0.1, 3.0], 0.2),
    "all_zero": ([0.0, 0.0, 0.0, 0.0, 0.0], 0.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_lure_and_pure_are_exactly_unbiased_by_enumeration(case):
    scores, mix_uniform = CASES[case]
    losses = np.array([0.3, 4.0, 1.5, 0.0, 2.2])
    N, M = 5, 3
    sequences = np.array(list(itertools.permutations(range(N), M)))  # all 60 ordered draws
    q_S_M = np.array([sequential_q(scores, seq, mix_uniform) for seq in sequences])
    probability_S = q_S_M.prod(axis=1)
    assert (probability_S > 0).all()
    np.testing.assert_allclose(probability_S.sum(), 1.0, rtol=1e-12)
    losses_S_M = losses[sequences]
    for fn in (at.lure_risk, at.pure_risk):
        estimates_S = jax.vmap(lambda lo, q, fn=fn: fn(lo, q, N))(losses_S_M, q_S_M)
        np.testing.assert_allclose(probability_S @ estimates_S, losses.mean(), atol=1e-12)
    naive_S = losses_S_M.mean(axis=1)
    if case != "all_zero":
        assert abs(probability_S @ naive_S - losses.mean()) > 1e-2  # the naive mean is biased


REPEAT_N, REPEAT_M, REPEATS = 200, 20, 2000  # shared, so the tests reuse one compilation


def test_pure_with_the_optimal_proposal_has_zero_variance(key, rng):
    losses = rng.exponential(size=REPEAT_N) + 0.1
    estimates = at.repeat(key, losses, losses, REPEAT_M, REPEATS)
    np.testing.assert_allclose(estimates.pure, losses.mean(), rtol=1e-12)
    np.testing.assert_allclose(estimates.pure_se, 0.0, atol=1e-12)
    # M = 1: LURE = L_i / (N q_i) = R too
    q = losses / losses.sum()
    np.testing.assert_allclose(at.lure_risk(losses[3:4], q[3:4], REPEAT_N), losses.mean())


@pytest.mark.parametrize("dtype", DTYPES)
def test_repeat_is_unbiased_and_beats_uniform_with_a_good_proposal(dtype, key, rng):
    losses = (rng.exponential(size=REPEAT_N) ** 2).astype(dtype)
    scores = losses * rng.uniform(0.5, 1.5, REPEAT_N).astype(dtype)  # a noisy oracle
    estimates = at.repeat(key, losses, scores, REPEAT_M, REPEATS, mix_uniform=0.1)
    assert estimates.lure.shape == (REPEATS,) and estimates.lure.dtype == dtype
    truth = losses.astype(np.float64).mean()
    for name in ("uniform", "lure", "pure"):
        values = np.asarray(getattr(estimates, name), np.float64)
        assert abs(values.mean() - truth) < 4 * values.std() / np.sqrt(REPEATS), name
    assert np.asarray(estimates.naive).mean() > truth * 1.2
    mse = {
        name: np.mean((np.asarray(getattr(estimates, name), np.float64) - truth) ** 2)
        for name in ("uniform", "lure")
    }
    assert mse["lure"] < 0.5 * mse["uniform"]


# ---- proposals ------------------------------------------------------------------------------


def cross_entropy_reference(surrogate, model):
    pi = reference.predictive(surrogate)
    f = reference.probs(model).reshape(-1, *pi.shape).mean(0)  # [N, C] or mixture of [K', N, C]
    out = np.zeros(pi.shape[0])
    for n, c in itertools.product(range(pi.shape[0]), range(pi.shape[1])):
        if pi[n, c] > 0:
            out[n] -= pi[n, c] * np.log(f[n, c])
    return out


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("model_samples", [None, 3])
def test_expected_cross_entropy_matches_numpy(model_samples, dtype, transform, rng):
    surrogate = reference.random_log_probs(rng, 6, 20, 4, zeros=True, dtype=dtype)
    model = reference.random_log_probs(rng, model_samples or 1, 20, 4, dtype=dtype)
    model = model[0] if model_samples is None else model
    got = transform(at.expected_loss)(surrogate, model)
    assert got.shape == (20,) and got.dtype == dtype
    want = cross_entropy_reference(surrogate.astype(float), model.astype(float))
    np.testing.assert_allclose(got, want, rtol=10 * TOLERANCE[dtype], atol=TOLERANCE[dtype])


def test_expected_cross_entropy_of_the_model_itself_is_its_entropy(rng):
    log_probs = reference.random_log_probs(rng, 5, 30, 3, zeros=True)
    got = at.expected_loss(log_probs, log_probs)
    np.testing.assert_allclose(got, reference.predictive_entropy(log_probs), atol=1e-12)


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("model_samples", [None, 4])
def test_expected_squared_error_matches_numpy(model_samples, dtype, transform, rng):
    mean = rng.standard_normal((5, 25)).astype(dtype)
    var = rng.uniform(0.1, 2.0, (5, 25)).astype(dtype)
    shape = (25,) if model_samples is None else (model_samples, 25)
    model = rng.standard_normal(shape).astype(dtype)
    got = transform(at.expected_loss)((mean, var), model)
    assert got.shape == (25,) and got.dtype == dtype
    mean, var, model = (a.astype(float) for a in (mean, var, model))
    mu_f = model if model.ndim == 1 else model.mean(0)
    want = (mean.mean(0) - mu_f) ** 2 + mean.var(0) + var.mean(0)
    np.testing.assert_allclose(got, want, rtol=10 * TOLERANCE[dtype], atol=TOLERANCE[dtype])
    # One Gaussian surrogate: (mu_pi - mu_f)^2 + s2_pi, its expected loss by Monte Carlo too.
    y = mean[0] + np.sqrt(var[0]) * rng.standard_normal((200_000, 25))
    single = at.expected_loss((mean[:1], var[:1]), mu_f)
    np.testing.assert_allclose(single, ((y - mu_f) ** 2).mean(0), rtol=0.03)


# ---- validation -----------------------------------------------------------------------------

GOOD_Q = np.array([0.5, 0.5])
BAD_CALLS = {
    "q_zero": (lambda k: at.lure_risk([1.0, 1.0], [0.0, 0.5], 4), "q must lie in"),
    "q_above_one": (lambda k: at.pure_risk([1.0, 1.0], [1.5, 0.5], 4), "q must lie in"),
    "q_weights": (lambda k: at.lure_weights([-0.1, 0.5], 4), "q must lie in"),
    "q_rank": (lambda k: at.lure_weights(np.ones((2, 2)) / 2, 4), r"q must have shape \[M\]"),
    "losses_nan": (lambda k: at.lure_risk([np.nan, 1.0], GOOD_Q, 4), "losses contains NaN"),
    "losses_shape": (lambda k: at.pure_risk([1.0, 1.0, 1.0], GOOD_Q, 4), "losses and q"),
    "pool_small": (lambda k: at.lure_risk([1.0, 1.0], GOOD_Q, 1), "pool_size = 1"),
    "m_large": (lambda k: at.sample(np.ones(5), 6, key=k), "m = 6 is larger than the pool"),
    "m_small": (lambda k: at.sample(np.ones(5), 0, key=k), "m must be an int >= 1"),
    "m_available": (
        lambda k: at.sample(np.ones(5), 3, key=k, available=np.array([1, 1, 0, 0, 0], bool)),
        "number of available points",
    ),
    "scores_negative": (lambda k: at.sample(np.array([1.0, -1.0]), 1, key=k), "proposal_scores"),
    "scores_nan": (lambda k: at.sample(np.array([1.0, np.nan]), 1, key=k), "proposal_scores"),
    "scores_rank": (lambda k: at.sample(np.ones((2, 2)), 1, key=k), "proposal_scores"),
    "mix": (lambda k: at.sample(np.ones(3), 1, key=k, mix_uniform=1.5), "mix_uniform"),
    "se_single": (lambda k: at.standard_error([1.0]), "terms needs M >= 2"),
    "level": (lambda k: at.confidence_interval([1.0, 2.0], level=1.0), "level"),
    "repeat_shapes": (lambda k: at.repeat(k, np.ones(4), np.ones(5), 2, 3), "losses and"),
    "repeat_m": (lambda k: at.repeat(k, np.ones(4), np.ones(4), 5, 3), "m = 5"),
    "repeat_count": (lambda k: at.repeat(k, np.ones(4), np.ones(4), 2, 0), "num_repeats"),
    "repeat_losses": (
        lambda k: at.repeat(k, np.array([1.0, np.inf]), np.ones(2), 1, 2),
        "losses contains",
    ),
    "surrogate_classes": (
        lambda k: at.expected_loss(np.log(np.full((2, 3, 4), 0.25)), np.log(np.full((3, 2), 0.5))),
        "share N and C",
    ),
    "model_rank": (
        lambda k: at.expected_loss(np.log(np.full((2, 3, 4), 0.25)), np.zeros(3)),
        "model must be log-probabilities",
    ),
    "surrogate_unnormalised": (
        lambda k: at.expected_loss(np.zeros((2, 3, 4)), np.log(np.full((3, 4), 0.25))),
        "surrogate must be normalised",
    ),
    "model_mean_shape": (
        lambda k: at.expected_loss((np.zeros((2, 3)), np.ones((2, 3))), np.zeros(4)),
        "model must be predictive means",
    ),
    "surrogate_var": (
        lambda k: at.expected_loss((np.zeros((2, 3)), -np.ones((2, 3))), np.zeros(3)),
        "var must be >= 0",
    ),
    "surrogate_tuple": (
        lambda k: at.expected_loss((np.zeros((2, 3)),), np.zeros(3)),
        r"must be \(mean, var\)",
    ),
}


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_inputs_raise_value_error_naming_the_argument(name, key):
    call, message = BAD_CALLS[name]
    with pytest.raises(ValueError, match=message):
        call(key)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_type_errors(key):
    with pytest.raises(TypeError, match="pool_size must be an integer"):
        at.lure_risk([1.0], [0.5], 4.0)
    with pytest.raises(TypeError, match="q must have a floating dtype"):
        at.lure_weights(np.array([1, 1]), 4)
    with pytest.raises(TypeError, match="m must be an int >= 1"):
        at.sample(np.ones(5), 1.0, key=key)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
@pytest.mark.parametrize("bad", [None, 5, np.uint32([0, 1]), jnp.zeros(2)])
def test_key_taking_functions_name_a_bad_key(bad):
    with pytest.raises(TypeError, match=r"key must be .*jax\.random\.key"):
        at.sample(np.ones(3), 1, key=bad)
    with pytest.raises(TypeError, match=r"key must be .*jax\.random\.key"):
        at.repeat(bad, np.ones(3), np.ones(3), 1, 2)


def test_value_checks_are_skipped_under_jit():
    # Documented: inside jit only shapes are checked; q = 0 gives inf instead of an error.
    got = jax.jit(lambda q: at.lure_weights(q, 4))(jnp.array([0.0, 0.5]))
    assert np.isinf(got[0])


# ---- experiment -----------------------------------------------------------------------------


def test_experiment_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("active_testing_experiment", EXPERIMENT)
    experiment = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(experiment)
    experiment.main(out=tmp_path, quick=True)
    record = json.loads((tmp_path / "results.json").read_text())
    assert {"gp_regression", "digits"} <= record["experiments"].keys()
    for result in record["experiments"].values():
        assert np.isfinite(result["true_risk"])
        for estimator in ("uniform", "naive", "lure", "pure"):
            assert len(result["mse"][estimator]) == len(record["config"]["test_sizes"])
    assert (tmp_path / "mse_vs_m.png").stat().st_size > 0
