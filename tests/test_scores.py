"""Scores against numpy transcriptions, analytic cases and the inequalities of METHODS.md."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jaxal
from tests import reference
from tests.conftest import DTYPES, TRANSFORMS
from tests.test_compilation import count_compilations

TOLERANCE = {np.float32: 2e-5, np.float64: 1e-10}


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("zeros", [False, True], ids=["positive", "with_zeros"])
@pytest.mark.parametrize("name", sorted(reference.CLASSIFICATION))
def test_classification_score_matches_numpy(name, dtype, transform, zeros, rng):
    log_probs = reference.random_log_probs(rng, K=7, N=50, C=5, zeros=zeros, dtype=dtype)
    got = transform(jaxal.scores.get(name))(jnp.asarray(log_probs))
    assert got.dtype == dtype
    assert np.all(np.isfinite(got))
    want = reference.CLASSIFICATION[name](log_probs.astype(np.float64))
    np.testing.assert_allclose(got, want, atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype])


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(reference.REGRESSION))
def test_regression_score_matches_numpy(name, dtype, transform, rng):
    mean = rng.standard_normal((6, 40)).astype(dtype)
    var = rng.uniform(0.1, 2.0, (6, 40)).astype(dtype)
    got = transform(jaxal.scores.get(name))(mean, var)
    assert got.dtype == dtype
    want = reference.REGRESSION[name](mean.astype(np.float64), var.astype(np.float64))
    np.testing.assert_allclose(got, want, atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype])


def test_an_eager_score_compiles_nothing_on_its_second_call(rng):
    """Outside ``jit`` a score's loops are compiled once per shape, not once per call."""
    log_probs = jnp.asarray(reference.random_log_probs(rng, K=3, N=9, C=4, dtype=np.float32))
    mean, var = jnp.ones((3, 9)), jnp.ones((3, 9))
    for name in jaxal.scores.names():
        args = (mean, var) if name in reference.REGRESSION else (log_probs,)
        jaxal.scores.get(name)(*args)
        with count_compilations() as compiled:
            jaxal.scores.get(name)(*args)
        assert not compiled, name


def test_registry_lists_every_score():
    assert jaxal.scores.names(task="classification") == sorted(reference.CLASSIFICATION)
    assert jaxal.scores.names(task="regression") == sorted(reference.REGRESSION)
    with pytest.raises(ValueError, match="unknown score 'nope'"):
        jaxal.scores.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        jaxal.scores.register("bald")(lambda x: x)


# ---- analytic cases -------------------------------------------------------------------------


def test_one_hot_samples_that_disagree_give_log_k():
    # K = 3 samples, each certain of a different class: BALD = H[pbar] = log 3, E H = 0.
    log_probs = jnp.log(jnp.eye(3))[:, None, :]  # [K=3, N=1, C=3]
    np.testing.assert_allclose(jaxal.scores.bald(log_probs), [np.log(3)], rtol=1e-12)
    np.testing.assert_allclose(jaxal.scores.expected_entropy(log_probs), [0.0], atol=1e-12)
    np.testing.assert_allclose(jaxal.scores.variation_ratios(log_probs), [2 / 3], rtol=1e-12)
    assert np.isfinite(jax.grad(lambda x: jaxal.scores.bald(x).sum())(log_probs)).all()


def test_identical_samples_give_zero_bald(rng):
    one = reference.random_log_probs(rng, K=1, N=20, C=4)
    log_probs = jnp.asarray(np.repeat(one, 6, axis=0))
    np.testing.assert_allclose(jaxal.scores.bald(log_probs), 0.0, atol=1e-12)
    np.testing.assert_allclose(jaxal.scores.mean_std(log_probs), 0.0, atol=1e-12)
    np.testing.assert_allclose(jaxal.scores.variation_ratios(log_probs), 0.0, atol=1e-12)


def test_uniform_predictive_gives_log_c():
    C = 6
    log_probs = jnp.full((4, 3, C), -np.log(C))
    np.testing.assert_allclose(jaxal.scores.predictive_entropy(log_probs), np.log(C), rtol=1e-12)
    np.testing.assert_allclose(jaxal.scores.least_confidence(log_probs), 1 - 1 / C, rtol=1e-12)
    np.testing.assert_allclose(jaxal.scores.margin(log_probs), 1.0, rtol=1e-12)


def test_gaussian_scores_analytic():
    # Two samples with means -1, +1 and unit variance: Var mu = 1, E s2 = 1.
    mean = jnp.array([[-1.0], [1.0]])
    var = jnp.ones((2, 1))
    np.testing.assert_allclose(jaxal.scores.predictive_variance(mean, var), [2.0])
    np.testing.assert_allclose(jaxal.scores.epistemic_variance(mean, var), [1.0])
    np.testing.assert_allclose(jaxal.scores.gaussian_bald(mean, var), [0.5 * np.log(2.0)])


# ---- properties -----------------------------------------------------------------------------

# A few fixed shapes (each new shape recompiles); values, spreads and seeds vary freely.
shapes = st.sampled_from([(1, 4, 2), (5, 3, 6), (3, 5, 3), (8, 2, 10)])


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1), spread=st.floats(0.0, 8.0))
def test_bald_is_bounded_by_entropy_and_logs(shape, seed, spread):
    K, N, C = shape
    log_probs = jnp.asarray(
        reference.random_log_probs(np.random.default_rng(seed), K, N, C, spread=spread)
    )
    bald = np.asarray(jaxal.scores.bald(log_probs))
    entropy = np.asarray(jaxal.scores.predictive_entropy(log_probs))
    tol = 1e-9
    assert np.all(bald >= 0)
    assert np.all(bald <= entropy + tol)
    assert np.all(entropy <= np.log(C) + tol)
    assert np.all(bald <= np.log(K) + tol)


@settings(max_examples=10, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1))
def test_scores_are_invariant_to_permuting_samples(shape, seed):
    K, N, C = shape
    rng = np.random.default_rng(seed)
    log_probs = reference.random_log_probs(rng, K, N, C)
    permuted = log_probs[rng.permutation(K)]
    for name in jaxal.scores.names(task="classification"):
        score = jaxal.scores.get(name)
        np.testing.assert_allclose(score(permuted), score(log_probs), atol=1e-12, err_msg=name)


# ---- issue 15: exact zeros, huge magnitudes, dtypes and values ------------------------------


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gaussian_bald_is_exactly_zero_for_one_sample_and_never_negative(dtype, transform, rng):
    # K = 1: the mixture is one Gaussian, BALD is 0; it was +-1 ulp under jit (the two
    # logarithms were computed in different fusions).
    mean = (rng.standard_normal((1, 40)) * 10.0 ** rng.uniform(-3, 3, 40)).astype(dtype)
    var = (10.0 ** rng.uniform(-6, 6, (1, 40))).astype(dtype)
    score = transform(jaxal.scores.gaussian_bald)
    np.testing.assert_array_equal(score(mean, var), 0.0)
    # K = 8 with nearly equal variances and equal means: Jensen's gap is below rounding.
    near = (1.0 + 1e-3 * rng.standard_normal((8, 40))).astype(dtype)
    assert (np.asarray(score(np.zeros_like(near), near)) >= 0.0).all()


MAGNITUDES = {
    "var_1e38": (1.0, 1e38),
    "mean_1e30": (1e30, 1.0),
    "mean_1e30_var_1e-30": (1e30, 1e-30),
    "mean_1e19_var_1e38": (1e19, 1e38),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("magnitude", MAGNITUDES)
@pytest.mark.parametrize("name", sorted(reference.REGRESSION))
def test_regression_scores_with_huge_magnitudes(name, magnitude, dtype, rng):
    # Issue 15: squares and sums of 1e30 means or 1e38 variances overflowed to inf in float32.
    mean_scale, var_scale = MAGNITUDES[magnitude]
    mean = rng.standard_normal((6, 20)) * mean_scale
    var = rng.uniform(0.1, 2.0, (6, 20)) * var_scale
    got = np.asarray(jaxal.scores.get(name)(mean.astype(dtype), var.astype(dtype)))
    want = reference.REGRESSION[name](mean, var)  # float64: every value is representable
    representable = np.abs(want) <= np.finfo(dtype).max
    assert np.isinf(got[~representable]).all()  # a variance of 1e60 is inf in float32
    np.testing.assert_allclose(got[representable], want[representable], rtol=TOLERANCE[dtype])
    if name == "gaussian-bald":
        assert representable.all()


def test_entropy_rejects_integer_input_naming_the_argument():
    with pytest.raises(TypeError, match="log_p must have a floating dtype"):
        jaxal.scores.entropy(jnp.array([0, 1]))
    with np.errstate(divide="ignore"):
        log_p = np.log(np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]))
    np.testing.assert_allclose(jaxal.scores.entropy(log_p), reference.entropy(np.exp(log_p)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["mean", "var"])
@pytest.mark.parametrize("name", sorted(reference.REGRESSION))
def test_regression_scores_reject_nan_and_inf(name, where, bad):
    mean, var = np.zeros((3, 4)), np.ones((3, 4))
    {"mean": mean, "var": var}[where][1, 2] = bad
    for budget in (None, 64):  # unchunked and chunked
        with pytest.raises(ValueError, match=f"{where} contains NaN or inf"):
            jaxal.scores.get(name)(mean, var, memory_budget=budget)
