"""ICAL: distinct available picks, zero-dependence points, brute-force greedy, jit/vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxal
from jaxal.select._ical import label_kernels, rational_quadratic_mixture
from tests.conftest import TRANSFORMS
from tests.reference import random_log_probs

ALPHAS = (0.2, 0.5, 1.0, 2.0, 5.0)


def kappa_reference(d2):
    return np.mean([(1 + d2 / (2 * a)) ** (-a) for a in ALPHAS])


def point_kernel_reference(labels_K, C):
    onehot = np.eye(C)[labels_K]
    d2 = ((onehot[:, None, :] - onehot[None, :, :]) ** 2).sum(-1)
    return np.vectorize(kappa_reference)(d2)


def biased_hsic_reference(K, L):
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return np.trace(K @ H @ L @ H) / n**2


def ical_brute_force(labels_K_N, C, b, available):
    """Greedy ICAL with every point in the condense set and no batch subsampling."""
    K, N = labels_K_N.shape
    kernels = [point_kernel_reference(labels_K_N[:, n], C) for n in range(N)]
    condense = np.mean([kernels[n] for n in range(N) if available[n]], axis=0)
    chosen = []
    for _ in range(b):
        candidates = [n for n in range(N) if available[n] and n not in chosen]
        values = [
            biased_hsic_reference(condense, np.mean([kernels[j] for j in chosen + [n]], axis=0))
            for n in candidates
        ]
        chosen.append(candidates[int(np.argmax(values))])
    return np.array(chosen)


def deterministic_log_probs(labels_K_N, C):
    """Each sample puts probability 1 on its label, so sampled labels are known exactly."""
    with np.errstate(divide="ignore"):
        return np.log(np.eye(C)[labels_K_N])


def test_kernel_values():
    np.testing.assert_allclose(rational_quadratic_mixture(jnp.array(2.0)), kappa_reference(2.0))
    assert abs(float(rational_quadratic_mixture(jnp.array(2.0))) - 0.524) < 1e-3
    labels_K_N = np.array([[0, 1], [2, 1], [0, 0]])
    got = label_kernels(jnp.asarray(labels_K_N), jnp.float64)
    for n in range(2):
        np.testing.assert_allclose(got[n], point_kernel_reference(labels_K_N[:, n], 3))


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_greedy_matches_brute_force(rng, key, transform):
    K, N, C, b = 6, 14, 3, 5
    labels_K_N = rng.integers(0, C, size=(K, N))
    available = rng.random(N) < 0.8
    log_probs = deterministic_log_probs(labels_K_N, C)
    got = transform(
        lambda k, lp, a: jaxal.select.ical(lp, b, key=k, num_pool_samples=N, available=a)
    )(key, log_probs, jnp.asarray(available))
    np.testing.assert_array_equal(got, ical_brute_force(labels_K_N, C, b, available))


@pytest.mark.parametrize(("num_pool_samples", "max_batch_samples"), [(200, 20), (7, 3)])
def test_selects_distinct_available_indices(rng, key, num_pool_samples, max_batch_samples):
    N, b = 40, 12
    log_probs = random_log_probs(rng, 8, N, 5)
    available = jnp.asarray(rng.random(N) < 0.6).at[:b].set(True)
    got = np.asarray(
        jaxal.select.ical(
            log_probs,
            b,
            key=key,
            num_pool_samples=num_pool_samples,
            max_batch_samples=max_batch_samples,
            available=available,
        )
    )
    assert got.shape == (b,)
    assert len(set(got.tolist())) == b
    assert np.all(np.asarray(available)[got])


def test_agreeing_point_has_zero_hsic_and_is_not_picked_first(rng):
    K, N, C = 8, 10, 4
    labels_K_N = rng.integers(0, C, size=(K, N))
    labels_K_N[:, 3] = 2  # every sample agrees on point 3: constant kernel
    log_probs = deterministic_log_probs(labels_K_N, C)
    constant = point_kernel_reference(labels_K_N[:, 3], C)
    other = point_kernel_reference(labels_K_N[:, 0], C)
    assert abs(float(jaxal.hsic.hsic_from_kernels(other, constant))) < 1e-15
    for seed in range(4):
        first = jaxal.select.ical(log_probs, 1, key=jax.random.key(seed), num_pool_samples=5)
        assert int(first[0]) != 3


def test_vmap_over_keys(rng, key):
    log_probs = random_log_probs(rng, 6, 30, 4)
    keys = jax.random.split(key, 3)
    batched = jax.vmap(lambda k: jaxal.select.ical(log_probs, 4, key=k, num_pool_samples=10))(keys)
    for i in range(3):
        single = jaxal.select.ical(log_probs, 4, key=keys[i], num_pool_samples=10)
        np.testing.assert_array_equal(batched[i], single)


def test_float32(rng, key):
    log_probs = random_log_probs(rng, 6, 30, 4, dtype=np.float32)
    got = jaxal.select.ical(log_probs, 5, key=key)
    assert len(set(np.asarray(got).tolist())) == 5


def test_validation(rng, key):
    log_probs = random_log_probs(rng, 3, 5, 2)
    with pytest.raises(ValueError, match="num_pool_samples"):
        jaxal.select.ical(log_probs, 2, key=key, num_pool_samples=0)
    with pytest.raises(ValueError, match="larger than the pool"):
        jaxal.select.ical(log_probs, 6, key=key)
