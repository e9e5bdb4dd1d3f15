"""EPIG and Gaussian EPIG against numpy transcriptions, bounds and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jaxal
from tests.conftest import DTYPES, TRANSFORMS
from tests.reference import random_log_probs


def epig_reference(log_probs_pool, log_probs_target):
    """Double loop over pool and target points; the joint by an explicit sum over k, y, y*."""
    p = np.exp(np.asarray(log_probs_pool, np.float64))
    q = np.exp(np.asarray(log_probs_target, np.float64))
    K, N, C = p.shape
    M = q.shape[1]
    out = np.zeros(N)
    for n in range(N):
        for m in range(M):
            joint = np.zeros((C, C))
            for k in range(K):
                for y in range(C):
                    for y_star in range(C):
                        joint[y, y_star] += p[k, n, y] * q[k, m, y_star] / K
            outer = np.outer(joint.sum(1), joint.sum(0))
            nz = joint > 0
            out[n] += np.sum(joint[nz] * np.log(joint[nz] / outer[nz])) / M
    return out


def gaussian_epig_reference(mean_pool, var_pool, mean_target, var_target):
    mean_pool, var_pool, mean_target, var_target = (
        np.asarray(a, np.float64) for a in (mean_pool, var_pool, mean_target, var_target)
    )
    K, N = mean_pool.shape
    M = mean_target.shape[1]
    out = np.zeros(N)
    for n in range(N):
        for m in range(M):
            cov = np.cov(mean_pool[:, n], mean_target[:, m], ddof=0)
            var_y = cov[0, 0] + var_pool[:, n].mean()
            var_t = cov[1, 1] + var_target[:, m].mean()
            rho2 = cov[0, 1] ** 2 / (var_y * var_t)
            out[n] += -0.5 * np.log(1 - rho2) / M
    return out


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("zeros", [False, True])
def test_epig_matches_numpy_double_loop(rng, transform, zeros):
    pool = random_log_probs(rng, 4, 5, 3, zeros=zeros)
    target = random_log_probs(rng, 4, 6, 3, zeros=zeros)
    got = transform(jaxal.scores.epig)(pool, target)
    np.testing.assert_allclose(got, epig_reference(pool, target), rtol=1e-9, atol=1e-12)


def test_epig_is_zero_when_samples_agree(rng):
    pool = np.repeat(random_log_probs(rng, 1, 7, 4), 5, axis=0)
    target = random_log_probs(rng, 5, 3, 4)
    np.testing.assert_allclose(jaxal.scores.epig(pool, target), 0.0, atol=1e-12)


def test_epig_of_a_point_with_itself_is_bald_for_deterministic_samples(rng):
    # One-hot samples: y* = y when x* = x, so I(y; y*) = H[y] = BALD.
    labels_K_N = rng.integers(0, 3, size=(6, 4))
    with np.errstate(divide="ignore"):
        log_probs = np.log(np.eye(3)[labels_K_N])
    got = jaxal.scores.epig(log_probs, log_probs[:, :1])
    np.testing.assert_allclose(got[0], jaxal.scores.bald(log_probs)[0], rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    C=st.sampled_from([2, 5]),
    spread=st.floats(0.0, 8.0),
    zeros=st.booleans(),
)
def test_epig_is_between_zero_and_bald(seed, C, spread, zeros):
    # Shapes are fixed per class count so the examples share two compiled programs.
    K, N, M = 5, 6, 4
    rng = np.random.default_rng(seed)
    pool = random_log_probs(rng, K, N, C, spread=spread, zeros=zeros)
    target = random_log_probs(rng, K, M, C, spread=spread, zeros=zeros)
    epig_N = np.asarray(jaxal.scores.epig(pool, target))
    bald_N = np.asarray(jaxal.scores.bald(pool))
    assert np.all(epig_N >= 0.0)
    assert np.all(epig_N <= bald_N + 1e-10)


@pytest.mark.parametrize(("pool_block", "target_block"), [(1, 1), (3, 4), (7, 11), (100, 100)])
def test_chunked_equals_unchunked(rng, pool_block, target_block):
    pool = random_log_probs(rng, 5, 17, 4)
    target = random_log_probs(rng, 5, 13, 4)
    whole = jaxal.scores.epig(pool, target, pool_block_size=17, target_block_size=13)
    chunked = jaxal.scores.epig(
        pool, target, pool_block_size=pool_block, target_block_size=target_block
    )
    np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-14)


def test_vmap_over_a_leading_axis(rng):
    pool = np.stack([random_log_probs(rng, 3, 5, 4) for _ in range(2)])
    target = np.stack([random_log_probs(rng, 3, 6, 4) for _ in range(2)])
    got = jax.vmap(jaxal.scores.epig)(pool, target)
    for i in range(2):
        np.testing.assert_allclose(got[i], jaxal.scores.epig(pool[i], target[i]), rtol=1e-12)


def test_no_recompile_on_second_call(rng):
    pool = random_log_probs(rng, 3, 5, 4)
    target = random_log_probs(rng, 3, 6, 4)
    jaxal.scores.epig(pool, target)
    with jax.log_compiles(True):
        before = jaxal.scores._epig._epig._cache_size()
        jaxal.scores.epig(random_log_probs(rng, 3, 5, 4), random_log_probs(rng, 3, 6, 4))
        assert jaxal.scores._epig._epig._cache_size() == before


def test_float32_matches_float64(rng):
    pool = random_log_probs(rng, 8, 30, 10)
    target = random_log_probs(rng, 8, 20, 10)
    got32 = jaxal.scores.epig(pool.astype(np.float32), target.astype(np.float32))
    assert got32.dtype == jnp.float32
    np.testing.assert_allclose(got32, jaxal.scores.epig(pool, target), atol=2e-5)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_epig_validates_inputs(rng):
    pool = random_log_probs(rng, 3, 5, 4)
    with pytest.raises(ValueError, match="same K"):
        jaxal.scores.epig(pool, random_log_probs(rng, 2, 5, 4))
    with pytest.raises(ValueError, match="same number of classes"):
        jaxal.scores.epig(pool, random_log_probs(rng, 3, 5, 3))
    with pytest.raises(ValueError, match="log_probs_target must be normalised"):
        jaxal.scores.epig(pool, pool + 1.0)
    with pytest.raises(ValueError, match="pool_block_size"):
        jaxal.scores.epig(pool, pool, pool_block_size=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_gaussian_epig_matches_numpy(rng, dtype, transform):
    mean_pool, mean_target = rng.standard_normal((6, 7)), rng.standard_normal((6, 5))
    var_pool, var_target = rng.random((6, 7)) + 0.1, rng.random((6, 5)) + 0.1
    args = [a.astype(dtype) for a in (mean_pool, var_pool, mean_target, var_target)]
    got = transform(lambda *a: jaxal.scores.gaussian_epig(*a, pool_block_size=3))(*args)
    assert got.dtype == dtype
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, gaussian_epig_reference(*args), rtol=rtol)


def test_gaussian_epig_analytic_case():
    # Two samples with means +-a at x and +-c at x*: Cov = a c, Var = a^2 + s2 (and c^2 + t2).
    a, c, s2, t2 = 2.0, 0.5, 1.0, 0.25
    mean_pool, var_pool = np.array([[a], [-a]]), np.full((2, 1), s2)
    mean_target, var_target = np.array([[c, -c]]).T, np.full((2, 1), t2)
    rho2 = (a * c) ** 2 / ((a * a + s2) * (c * c + t2))
    got = jaxal.scores.gaussian_epig(mean_pool, var_pool, mean_target, var_target)
    np.testing.assert_allclose(got, [-0.5 * np.log(1 - rho2)], rtol=1e-12)
    # Zero epistemic variance at the targets: no information.
    flat = jaxal.scores.gaussian_epig(mean_pool, var_pool, np.zeros((2, 1)), var_target)
    np.testing.assert_allclose(flat, [0.0], atol=1e-15)


def test_sample_targets_respects_available(key):
    x = jnp.arange(20.0)[:, None]
    available = jnp.arange(20) % 2 == 0
    got = jaxal.scores.sample_targets(x, 10, key=key, available=available)
    assert got.shape == (10, 1)
    assert len(set(np.asarray(got[:, 0]).tolist())) == 10
    assert np.all(np.asarray(got[:, 0]) % 2 == 0)
    with pytest.raises(ValueError, match="larger than the number of available"):
        jaxal.scores.sample_targets(x, 11, key=key, available=available)
    assert jaxal.scores.sample_targets(x, 30, key=key, replace=True).shape == (30, 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("mean_scale", "var_scale"),
    [(1.0, 1.0), (1e30, 1.0), (1e30, 1e-30), (1e19, 1e38)],
    ids=["moderate", "mean_1e30", "mean_1e30_var_1e-30", "mean_1e19_var_1e38"],
)
def test_gaussian_epig_with_huge_magnitudes(rng, dtype, mean_scale, var_scale):
    # Issue 15: Var(y) = mean((mu - mean mu)^2) + mean(s2) overflowed to inf in float32,
    # which made every correlation, hence every EPIG, 0. rho is scale-free: the reference
    # gets the same problem divided by mean_scale**2.
    mean_pool, mean_target = rng.standard_normal((6, 7)), rng.standard_normal((6, 5))
    var_pool, var_target = rng.random((6, 7)) + 0.1, rng.random((6, 5)) + 0.1
    ratio = var_scale / mean_scale**2
    want = gaussian_epig_reference(mean_pool, var_pool * ratio, mean_target, var_target * ratio)
    args = (mean_pool * mean_scale, var_pool * var_scale, mean_target * mean_scale)
    args = [a.astype(dtype) for a in (*args, var_target * var_scale)]
    got = jaxal.scores.gaussian_epig(*args, pool_block_size=3)
    np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-10)
    assert (np.asarray(got) > 0).all()


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_sample_targets_names_m_and_key(key):
    x = jnp.arange(10.0)[:, None]
    with pytest.raises(ValueError, match=r"m = 11 is larger than the number of available rows"):
        jaxal.scores.sample_targets(x, 11, key=key)
    with pytest.raises(ValueError, match="pass replace=True"):
        jaxal.scores.sample_targets(x, 3, key=key, available=jnp.arange(10) < 2)
    for bad, error in [(0, ValueError), (2.0, TypeError), (True, TypeError)]:
        with pytest.raises(error, match="m must be an int >= 1"):
            jaxal.scores.sample_targets(x, bad, key=key)
    for bad in (None, 5, jnp.zeros(2)):
        with pytest.raises(TypeError, match=r"key must be .*jax\.random\.key"):
            jaxal.scores.sample_targets(x, 3, key=bad)
