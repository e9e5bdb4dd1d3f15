"""Tests for jaxal.posterior's last-layer Laplace (classification) and Bayesian linear regression.

Oracles: ``jax.hessian`` of an independent transcription of the Laplace objective, and the
numpy closed form of Bayesian linear regression and of its log evidence.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxal import posterior
from tests import reference

N, K, LAMBDA = 100, 64, 2.0


def identity(x):
    return x


def cubic(x):
    return jnp.concatenate([x, x**2, x**3], axis=-1)


CLASSIFIER = posterior.laplace_last_layer(identity, 2, K, prior_precision=LAMBDA)
FIT_CLASSIFIER = jax.jit(CLASSIFIER.fit)


@pytest.fixture(scope="module")
def blobs():
    """Two overlapping Gaussian blobs (so the MAP is finite without the prior): float64."""
    return reference.two_blobs(N, centre=1.0, std=0.8)


@pytest.fixture(scope="module")
def wave():
    """Cubic regression ``y = x^3 / 4 - x + 0.1 eps`` on ``[-2, 2]``: ``x [N, 1]``, ``y [N]``."""
    x_N = jax.random.uniform(jax.random.key(0), (N,), minval=-2.0, maxval=2.0)
    y_N = x_N**3 / 4 - x_N + 0.1 * jax.random.normal(jax.random.key(1), (N,))
    return x_N[:, None], y_N


def with_bias(x_N_F):
    return np.concatenate([np.asarray(x_N_F), np.ones((x_N_F.shape[0], 1))], axis=1)


def test_laplace_is_the_hessian_at_the_map(blobs, key):
    x, y = blobs
    weights_N = (jnp.arange(N) < 60).astype(x.dtype)
    params = FIT_CLASSIFIER(x, y, weights_N, key=key)
    phi_N_P = jnp.asarray(with_bias(x))

    def neg_log_joint(w_P_C):
        log_lik_N = jnp.take_along_axis(jax.nn.log_softmax(phi_N_P @ w_P_C), y[:, None], 1)
        return -jnp.sum(weights_N * log_lik_N[:, 0]) + 0.5 * LAMBDA * jnp.sum(w_P_C**2)

    derivatives = jax.jit(lambda w: (jax.grad(neg_log_joint)(w), jax.hessian(neg_log_joint)(w)))
    grad_P_C, hessian_P_C_P_C = derivatives(params.mean.reshape(3, 2))
    np.testing.assert_allclose(grad_P_C, 0.0, atol=1e-6)
    hessian = hessian_P_C_P_C.reshape(6, 6)
    L = params.precision_cholesky
    np.testing.assert_allclose(L @ L.T, hessian, rtol=1e-10, atol=1e-10)


def test_classification_predictions(blobs, key):
    x, y = blobs
    params = FIT_CLASSIFIER(x, y, jnp.ones(N), key=key)
    log_probs_K_N_C = jax.jit(CLASSIFIER.predict)(params, x, key=key)
    assert log_probs_K_N_C.shape == (K, N, 2)
    np.testing.assert_allclose(jnp.exp(log_probs_K_N_C).sum(-1), 1.0, rtol=1e-10)
    assert not np.allclose(log_probs_K_N_C[0], log_probs_K_N_C[1])
    accuracy = jnp.mean(jnp.argmax(jax.nn.logsumexp(log_probs_K_N_C, 0), -1) == y)
    assert float(accuracy) >= 0.9  # the blobs overlap; the Bayes rate is about 0.96


def test_classification_zero_weight_points_have_no_influence(blobs, key):
    x, y = blobs
    weights_N = (jnp.arange(N) < 30).astype(x.dtype)
    unlabelled_N = weights_N == 0
    clean = FIT_CLASSIFIER(x, y, weights_N, key=key)
    corrupt = FIT_CLASSIFIER(
        jnp.where(unlabelled_N[:, None], 100.0, x),
        jnp.where(unlabelled_N, 1 - y, y),
        weights_N,
        key=key,
    )
    for a, b in zip(clean, corrupt, strict=True):
        np.testing.assert_array_equal(a, b)
    assert FIT_CLASSIFIER._cache_size() == 1


def test_samples_have_the_posterior_covariance(key):
    precision = np.array([[2.0, 0.5], [0.5, 1.0]])
    gaussian = posterior.GaussianWeights(jnp.array([1.0, -1.0]), jnp.linalg.cholesky(precision))
    samples_K_P = posterior.sample_gaussian(gaussian, 200_000, key=key)
    np.testing.assert_allclose(samples_K_P.mean(0), gaussian.mean, atol=0.01)
    np.testing.assert_allclose(np.cov(samples_K_P.T), np.linalg.inv(precision), atol=0.01)


def test_mlp_features_are_the_penultimate_activations(blobs, key):
    x, _ = blobs
    model = posterior.MLP(num_classes=2, hidden=(16, 8))
    params = jax.jit(model.init)(key, x[:1])
    dense = jax.tree.map(np.asarray, params["params"])
    hidden_N_16 = np.maximum(
        np.asarray(x) @ dense["Dense_0"]["kernel"] + dense["Dense_0"]["bias"], 0.0
    )
    expected_N_8 = np.maximum(
        hidden_N_16 @ dense["Dense_1"]["kernel"] + dense["Dense_1"]["bias"], 0
    )
    features_N_8 = jax.jit(posterior.mlp_features(model, params))(x)
    np.testing.assert_allclose(features_N_8, expected_N_8, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="hidden"):
        posterior.mlp_features(posterior.MLP(num_classes=2, hidden=()), params)


def blr_numpy(phi_N_P, y_N, noise_variance, prior_precision):
    """Exact Bayesian linear regression: posterior precision and mean."""
    precision = prior_precision * np.eye(phi_N_P.shape[1]) + phi_N_P.T @ phi_N_P / noise_variance
    return precision, np.linalg.solve(precision, phi_N_P.T @ y_N / noise_variance)


def log_evidence_numpy(phi_N_P, y_N, noise_variance, prior_precision):
    """``log N(y | 0, s2 I + Phi Phi^T / lambda)`` up to a constant."""
    cov = noise_variance * np.eye(len(y_N)) + phi_N_P @ phi_N_P.T / prior_precision
    return -0.5 * (np.linalg.slogdet(cov)[1] + y_N @ np.linalg.solve(cov, y_N))


@pytest.mark.parametrize("noise_variance", [0.05, None], ids=["fixed", "evidence"])
def test_regression_matches_the_closed_form(wave, key, noise_variance):
    x, y = wave
    post = posterior.bayesian_last_layer_regression(
        cubic, K, prior_precision=LAMBDA, noise_variance=noise_variance
    )
    labelled_N = np.arange(N) < 70
    params = jax.jit(post.fit)(x, y, jnp.asarray(labelled_N, x.dtype), key=key)
    phi_L_P, y_L = with_bias(cubic(x))[labelled_N], np.asarray(y)[labelled_N]
    s2 = float(params.noise_variance)
    if noise_variance is None:  # a maximum of the evidence over the noise variance
        best = log_evidence_numpy(phi_L_P, y_L, s2, LAMBDA)
        for factor in (0.98, 1.02):
            assert log_evidence_numpy(phi_L_P, y_L, factor * s2, LAMBDA) < best
        assert 0.005 < s2 < 0.02  # true noise variance 0.01
    else:
        assert s2 == noise_variance
    precision, mean = blr_numpy(phi_L_P, y_L, s2, LAMBDA)
    L = params.weights.precision_cholesky
    np.testing.assert_allclose(L @ L.T, precision, rtol=1e-8)
    np.testing.assert_allclose(params.weights.mean, mean, rtol=1e-8, atol=1e-10)

    mean_K_N, var_K_N = post.predict(params, x, key=key)
    assert mean_K_N.shape == var_K_N.shape == (K, N)
    np.testing.assert_array_equal(var_K_N, s2)
    np.testing.assert_allclose(mean_K_N.mean(0), with_bias(cubic(x)) @ mean, atol=0.05)


def test_regression_zero_weight_points_have_no_influence(wave, key):
    x, y = wave
    post = posterior.bayesian_last_layer_regression(cubic, K)
    weights_N = (jnp.arange(N) < 30).astype(x.dtype)
    clean = jax.jit(post.fit)(x, y, weights_N, key=key)
    corrupt = jax.jit(post.fit)(x, jnp.where(weights_N == 0, 1e3, y), weights_N, key=key)
    for a, b in zip(jax.tree.leaves(clean), jax.tree.leaves(corrupt), strict=True):
        np.testing.assert_array_equal(a, b)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_samples"):
        posterior.laplace_last_layer(identity, 2, 0)
    with pytest.raises(ValueError, match="prior_precision"):
        posterior.laplace_last_layer(identity, 2, 4, prior_precision=0.0)
    with pytest.raises(ValueError, match="noise_variance"):
        posterior.bayesian_last_layer_regression(identity, 4, noise_variance=-1.0)
