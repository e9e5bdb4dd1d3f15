"""LDM-S (jaxal.select._ldm) against a numpy transcription of the authors' code
(ipcng00/LDM-S @ bd3334f: utils.py get_ldm_gpu, strategies.py query_by_LDMS)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxal import select
from jaxal.select._ldm import _seeding_weights


def authors_ldm(y0_P, y_P_list, y0_S, y_S_list):
    """get_ldm_gpu's update, one perturbed model at a time (fixed samples, no stop rule)."""
    ldm = np.ones(len(y0_P), np.float32)
    for y_P, y_S in zip(y_P_list, y_S_list, strict=True):
        rhos_P = np.ones(len(y0_P), np.float32)
        rho_S = np.mean(y0_S != y_S).astype(np.float32)
        rhos_P[y0_P != y_P] = rho_S
        ldm = np.minimum(ldm, rhos_P)
    return ldm


def authors_gamma(ldm, nQuery):
    """query_by_LDMS's weights, returned in the original (unsorted) order."""
    idx_ordered = np.argsort(ldm, kind="stable")
    ldm = ldm[idx_ordered]
    ldm_q = ldm[nQuery]
    if ldm_q == 0:
        ldm_q = np.min(ldm[ldm > 0])
    gamma = np.exp(-np.maximum(ldm - ldm_q, 0) / ldm_q)
    gamma[nQuery:] *= nQuery / np.sum(gamma[nQuery:])
    gamma[gamma > 1] = 1
    out = np.empty_like(gamma)
    out[idx_ordered] = gamma
    return out


def test_estimator_is_the_authors_on_the_same_predictions(rng):
    P, N, M, C = 30, 50, 20, 3
    y0_P, y_P = rng.integers(0, C, N), rng.integers(0, C, (P, N))
    flip_P_N = rng.random((P, N)) < np.linspace(0.01, 0.5, P)[:, None]
    y_P = np.where(flip_P_N, y_P, y0_P)
    # the pool as its own reference sample (the default)
    want = authors_ldm(y0_P, list(y_P), y0_P, list(y_P))
    np.testing.assert_allclose(select.least_disagree_metric(y_P, y0_P), want, rtol=1e-6)
    # a separate reference sample X_S, as in the authors' code
    y0_S, y_S = rng.integers(0, C, M), rng.integers(0, C, (P, M))
    rho_P = np.mean(y_S != y0_S, axis=1)
    want = authors_ldm(y0_P, list(y_P), y0_S, list(y_S))
    got = select.least_disagree_metric(y_P, y0_P, disagreement=rho_P)
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("zeros", [0, 8])
def test_seeding_weights_are_the_authors(rng, zeros):
    ldm = rng.random(30)
    ldm[:zeros] = 0.0  # L_q = 0 falls back to the smallest positive LDM
    got = _seeding_weights(jnp.asarray(ldm), jnp.ones(30, bool), 5)
    np.testing.assert_allclose(got, authors_gamma(ldm, 5), rtol=1e-10)


def test_seeding_draws_with_the_authors_probabilities():
    ldm = np.array([0.05, 0.3, 0.2, 0.9, 0.4, 0.1])
    features = np.array([[1, 0], [0, 1], [1, 1], [-1, 0.2], [1, -1], [0.9, 0.1]], float)
    gamma = authors_gamma(ldm, 2)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    distance = np.clip(1 - unit @ unit[0], 0, 2)  # first pick: the smallest LDM
    p = (gamma * distance) ** 2
    p /= p.sum()
    keys = jax.random.split(jax.random.key(0), 4000)
    picks = jax.vmap(lambda k: select.ldm_seeding(ldm, features, 2, key=k))(keys)
    assert (picks[:, 0] == 0).all()
    frequency = np.bincount(np.asarray(picks[:, 1]), minlength=6) / len(keys)
    np.testing.assert_allclose(frequency, p, atol=0.03)


def test_ldm_of_a_linear_classifier_orders_points_as_their_margin():
    # every parameter of (W, c) perturbed by N(0, s^2): the logit gap d(x) moves by
    # N(0, 2 s^2 (|x|^2 + 1)), so on a circle the flip scale grows with |d(x)|
    angle = np.random.default_rng(0).uniform(0, 2 * np.pi, 300)  # 300: rho in steps of 1/300
    x = jnp.asarray(np.stack([np.cos(angle), np.sin(angle)], 1))
    params = (jnp.asarray([[[1.0, -1.0], [0.2, -0.2]]]), jnp.asarray([[0.1, -0.1]]))

    def apply(params, x):
        w, c = params
        return jnp.einsum("nd,kdc->knc", x, w) + c[:, None]

    sigmas = 10.0 ** np.arange(-3.0, 0.1, 0.2)  # the flips happen above 1e-3 here
    labels_P_N, base_N = select.perturbed_labels(
        apply, params, x, key=jax.random.key(0), sigmas=sigmas, samples_per_sigma=8
    )
    ldm = select.least_disagree_metric(labels_P_N, base_N)
    margin = np.abs(np.asarray(apply(params, x)[0] @ np.array([1.0, -1.0])))
    assert stats.spearmanr(ldm, margin).statistic > 0.7
    order = np.argsort(margin)  # the fifth nearest the boundary flips before the farthest
    assert np.max(ldm[order[:60]]) < np.min(ldm[order[-60:]])
    assert labels_P_N.shape == (16 * 8, 300) and len(select._ldm.SIGMAS) == 51


def test_jit_vmap_and_sentinel(rng):
    ldm = jnp.asarray(rng.random(12))
    features = jnp.asarray(rng.standard_normal((12, 3)))
    available = jnp.arange(12) >= 8
    eager = select.ldm_seeding(ldm, features, 3, key=jax.random.key(0), available=available)
    jitted = jax.jit(
        lambda a: select.ldm_seeding(ldm, features, 3, key=jax.random.key(0), available=a)
    )
    np.testing.assert_array_equal(jitted(available), eager)
    assert set(np.asarray(eager).tolist()) <= {8, 9, 10, 11}
    few = jitted(jnp.arange(12) >= 10)  # 2 available: the third slot is the sentinel
    assert sorted(np.asarray(few[:2]).tolist()) == [10, 11] and int(few[2]) == 12
    labels = jnp.asarray(rng.integers(0, 3, (4, 5, 12)))
    batched = jax.vmap(select.least_disagree_metric)(labels, labels[:, 0])
    np.testing.assert_allclose(batched[1], select.least_disagree_metric(labels[1], labels[1, 0]))
