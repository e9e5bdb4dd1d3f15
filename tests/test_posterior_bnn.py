"""Tests for jaxal.posterior.bnn_svi / bnn_nuts: the numpyro Bayesian MLP on a 2-D toy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxal import posterior, scores
from tests import reference

N = 100
POSTERIORS = {
    "svi": posterior.bnn_svi(2, 32, optimizer=optax.adam(1e-2), num_steps=1000, hidden=8),
    "nuts": posterior.bnn_nuts(2, 200, num_warmup=200, hidden=8),
}
NUM_SAMPLES = {"svi": 32, "nuts": 200}
FAR_TO_NEAR_BALD = {"svi": 1.5, "nuts": 5.0}
"""Lower bounds on the BALD ratio; mean-field SVI stays more uncertain on the data than NUTS."""
FITS = {name: jax.jit(post.fit) for name, post in POSTERIORS.items()}
PREDICTS = {name: jax.jit(post.predict) for name, post in POSTERIORS.items()}

pytestmark = pytest.mark.parametrize("name", list(POSTERIORS))


@pytest.fixture(scope="module")
def blobs():
    """Two separable Gaussian blobs around (-1.5, -1.5) and (1.5, 1.5): ``x [N, 2]``, ``y [N]``."""
    return reference.two_blobs(N, centre=1.5, std=0.5, dtype=jnp.float32)


@pytest.fixture(scope="module")
def fitted(blobs):
    x, y = blobs
    weights_N = jnp.ones(N, jnp.float32)
    return {name: fit(x, y, weights_N, key=jax.random.key(1)) for name, fit in FITS.items()}


def test_predictions_are_normalised_distinct_samples(name, blobs, fitted, key):
    x, _ = blobs
    log_probs_K_N_C = PREDICTS[name](fitted[name], x, key=key)
    assert log_probs_K_N_C.shape == (NUM_SAMPLES[name], N, 2)
    np.testing.assert_allclose(jnp.exp(log_probs_K_N_C).sum(-1), 1.0, rtol=1e-5)
    assert not np.allclose(log_probs_K_N_C[0], log_probs_K_N_C[-1])


def test_fit_separates_the_blobs(name, blobs, fitted, key):
    x, y = blobs
    log_probs_K_N_C = PREDICTS[name](fitted[name], x, key=key)
    mean_log_probs_N_C = jax.nn.logsumexp(log_probs_K_N_C, axis=0)
    assert float(jnp.mean(jnp.argmax(mean_log_probs_N_C, -1) == y)) >= 0.95


def test_zero_weight_points_have_no_influence(name, blobs, fitted, key):
    x, y = blobs
    weights_N = (jnp.arange(N) < 20).astype(jnp.float32)
    unlabelled_N = weights_N == 0
    y_corrupt = jnp.where(unlabelled_N, 1 - y, y)
    x_corrupt = jnp.where(unlabelled_N[:, None], 100.0, x).astype(jnp.float32)
    clean = FITS[name](x, y, weights_N, key=key)
    corrupt = FITS[name](x_corrupt, y_corrupt, weights_N, key=key)
    for a, b in zip(jax.tree.leaves(clean), jax.tree.leaves(corrupt), strict=True):
        np.testing.assert_array_equal(a, b)
    assert FITS[name]._cache_size() == 1  # a new mask reuses the compiled fit


def test_disagreement_is_larger_far_from_the_data(name, blobs, fitted, key):
    x, _ = blobs
    angles_M = jnp.linspace(0.0, 2 * jnp.pi, N, endpoint=False)  # M = N: no recompile
    far_M_2 = (6.0 * jnp.stack([jnp.cos(angles_M), jnp.sin(angles_M)], -1)).astype(jnp.float32)
    predict = PREDICTS[name]
    bald_on_data = jnp.mean(scores.bald(predict(fitted[name], x, key=key)))
    bald_far = jnp.mean(scores.bald(predict(fitted[name], far_M_2, key=key)))
    assert float(bald_far) > FAR_TO_NEAR_BALD[name] * float(bald_on_data)


def test_rejects_bad_arguments(name):
    factory = {"svi": posterior.bnn_svi, "nuts": posterior.bnn_nuts}[name]
    kwargs = {"svi": {"optimizer": optax.adam(1e-2), "num_steps": 10}, "nuts": {}}[name]
    with pytest.raises(ValueError, match="num_samples"):
        factory(2, 0, **kwargs)
    with pytest.raises(ValueError, match="prior_scale"):
        factory(2, 4, prior_scale=0.0, **kwargs)
    with pytest.raises(ValueError, match="hidden"):
        factory(2, 4, hidden=0, **kwargs)
