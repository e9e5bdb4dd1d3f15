"""Tests for jaxal.posterior: deep ensembles trained under vmap."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxal import posterior, scores
from tests import reference

MODEL = posterior.MLP(num_classes=2, hidden=(16,))
OPTIMIZER = optax.adam(1e-2)


@pytest.fixture
def blobs():
    """Two separable Gaussian blobs: ``x [N, 2]`` float32, ``y [N]`` int32, N = 64."""
    return reference.two_blobs(64, centre=2.0, std=0.5, dtype=jnp.float32)


def train(params, x, y, weights, *, key, optimizer=OPTIMIZER):
    return posterior.train_ensemble(
        params,
        x,
        y,
        weights,
        key=key,
        model=MODEL,
        optimizer=optimizer,
        num_steps=100,
        batch_size=16,
    )


def test_log_probs_shape_normalised_and_members_differ(key, blobs):
    x, _ = blobs
    params = posterior.init_ensemble(MODEL, x[:1], 3, key=key)
    log_probs_K_N_C = posterior.ensemble_log_probs(params, MODEL, x)
    assert log_probs_K_N_C.shape == (3, 64, 2)
    np.testing.assert_allclose(jnp.exp(log_probs_K_N_C).sum(-1), 1.0, rtol=1e-5)
    assert not np.allclose(log_probs_K_N_C[0], log_probs_K_N_C[1])
    mean_N_C = posterior.predictive_log_probs(params, MODEL, x)
    np.testing.assert_allclose(jnp.exp(mean_N_C), jnp.exp(log_probs_K_N_C).mean(0), rtol=1e-5)


def test_training_fits_a_separable_problem(key, blobs):
    x, y = blobs
    init_key, train_key = jax.random.split(key)
    params = posterior.init_ensemble(MODEL, x[:1], 3, key=init_key)
    params = train(params, x, y, jnp.ones(64), key=train_key)
    log_probs_K_N_C = posterior.ensemble_log_probs(params, MODEL, x)
    accuracy_K = jnp.mean(jnp.argmax(log_probs_K_N_C, -1) == y[None], axis=1)
    assert float(accuracy_K.min()) >= 0.95


def test_zero_weight_points_have_no_influence(key, blobs):
    x, y = blobs
    init_key, train_key = jax.random.split(key)
    params = posterior.init_ensemble(MODEL, x[:1], 2, key=init_key)
    weights_N = (jnp.arange(64) < 10).astype(jnp.float32)
    unlabelled_N = weights_N == 0
    y_corrupt = jnp.where(unlabelled_N, 1 - y, y)
    x_corrupt = jnp.where(unlabelled_N[:, None], 100.0, x)
    clean = train(params, x, y, weights_N, key=train_key)
    corrupt = train(params, x_corrupt, y_corrupt, weights_N, key=train_key)
    for a, b in zip(jax.tree.leaves(clean), jax.tree.leaves(corrupt), strict=True):
        np.testing.assert_array_equal(a, b)


def test_new_mask_does_not_recompile(key, blobs):
    x, y = blobs
    traces = itertools.count()  # an iterator is fingerprinted by identity, not by its state
    adam = optax.adam(1e-2)

    def counting_init(params):
        next(traces)  # runs once per trace of train_ensemble
        return adam.init(params)

    optimizer = optax.GradientTransformation(counting_init, adam.update)
    params = posterior.init_ensemble(MODEL, x[:1], 2, key=key)
    for n in (10, 30):
        weights_N = (jnp.arange(64) < n).astype(jnp.float32)
        train(params, x, y, weights_N, key=key, optimizer=optimizer)
    assert next(traces) == 1


def test_init_ensemble_rejects_bad_member_count(key, blobs):
    with pytest.raises(ValueError, match="num_members"):
        posterior.init_ensemble(MODEL, blobs[0][:1], 0, key=key)
    with pytest.raises(TypeError, match="num_members"):
        posterior.init_ensemble(MODEL, blobs[0][:1], 2.0, key=key)


def test_ensemble_disagreement_grows_off_distribution(key, blobs):
    x, y = blobs
    post = posterior.ensemble(MODEL, 5, optimizer=OPTIMIZER, num_steps=200, batch_size=16)
    params = jax.jit(post.fit)(x, y, jnp.ones(64, jnp.float32), key=key)
    angles_M = jnp.linspace(0.0, 2 * jnp.pi, 64, endpoint=False)
    # Far along the decision boundary (the line x1 = -x2), where members extrapolate differently.
    far_M_2 = 8.0 * jnp.stack([jnp.cos(angles_M), jnp.sin(angles_M)], -1).astype(jnp.float32)
    bald_on_data = float(jnp.mean(scores.bald(post.predict(params, x))))
    bald_far = float(jnp.mean(scores.bald(post.predict(params, far_M_2))))
    assert bald_far > 5 * bald_on_data


def test_log_probs_from_numpy_and_dlpack_arrays(rng):
    log_probs = reference.random_log_probs(rng, 3, 7, 4).astype(np.float32)
    from_numpy = posterior.as_log_probs(log_probs)
    np.testing.assert_array_equal(from_numpy, log_probs)
    torch = pytest.importorskip("torch")
    from_torch = posterior.as_log_probs(torch.from_numpy(log_probs))
    np.testing.assert_array_equal(from_torch, log_probs)
    with pytest.raises(ValueError, match="normalised"):
        posterior.as_log_probs(log_probs + 1.0)


class _DLPackOnly:
    """An array-like that only speaks DLPack (as GPU tensors of other frameworks do)."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def test_log_probs_from_a_dlpack_only_object(rng):
    log_probs = reference.random_log_probs(rng, 2, 5, 3)
    got = posterior.as_log_probs(_DLPackOnly(log_probs))
    np.testing.assert_array_equal(got, log_probs)


# ---------------------------------------------------------------------------------------------
# Regression ensemble (squared error)

REGRESSION_MODEL = posterior.MLP(num_classes=1, hidden=(32,))


def test_regression_ensemble_fits_a_line_and_reports_its_residual_noise(key):
    x_key, noise_key, fit_key = jax.random.split(key, 3)
    x_N_1 = jax.random.uniform(x_key, (128, 1), jnp.float32, -1.0, 1.0)
    y_N = 2.0 * x_N_1[:, 0] + 0.1 * jax.random.normal(noise_key, (128,))
    weights_N = (jnp.arange(128) < 96).astype(jnp.float32)
    post = posterior.ensemble_regression(
        REGRESSION_MODEL, 3, optimizer=optax.adam(1e-2), num_steps=400, batch_size=32
    )
    fitted = post.fit(x_N_1, y_N, weights_N, key=fit_key)
    mean_K_M, var_K_M = post.predict(fitted, x_N_1)
    assert mean_K_M.shape == var_K_M.shape == (3, 128)
    # The members fit the line, and sigma_k^2 is exactly the weighted mean squared residual.
    assert float(jnp.sqrt(jnp.mean((mean_K_M - 2.0 * x_N_1[None, :, 0]) ** 2))) < 0.1
    residual_K = jnp.sum((mean_K_M - y_N[None]) ** 2 * weights_N[None], axis=1) / jnp.sum(weights_N)
    np.testing.assert_allclose(var_K_M[:, 0], residual_K, rtol=1e-5)
    np.testing.assert_allclose(var_K_M, var_K_M[:, :1] * jnp.ones((1, 128)))
    assert 0.005 < float(var_K_M.mean()) < 0.03  # the true noise variance is 0.01


def test_squared_error_ignores_zero_weight_targets(key):
    x_N_1 = jnp.linspace(-1.0, 1.0, 32, dtype=jnp.float32)[:, None]
    weights_N = (jnp.arange(32) % 2 == 0).astype(jnp.float32)
    post = posterior.ensemble_regression(
        REGRESSION_MODEL, 2, optimizer=optax.adam(1e-2), num_steps=20, batch_size=8
    )
    clean = post.fit(x_N_1, x_N_1[:, 0], weights_N, key=key)
    corrupt = post.fit(x_N_1, jnp.where(weights_N > 0, x_N_1[:, 0], 1e3), weights_N, key=key)
    for a, b in zip(jax.tree.leaves(clean), jax.tree.leaves(corrupt), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_unknown_loss_is_a_clear_error(key, blobs):
    x, y = blobs
    params = posterior.init_ensemble(MODEL, x[:1], 1, key=key)
    with pytest.raises(ValueError, match="loss must be 'cross-entropy' or 'squared-error'"):
        posterior.train_ensemble(
            params,
            x,
            y,
            jnp.ones(64),
            key=key,
            model=MODEL,
            optimizer=OPTIMIZER,
            num_steps=1,
            batch_size=4,
            loss="hinge",
        )


# ---------------------------------------------------------------------------------------------
# Posteriors by name and task

CLASSIFICATION = ["bnn-nuts", "bnn-svi", "ensemble", "mc-dropout", "mc-dropout-cnn"]
REGRESSION = ["bayesian-last-layer", "ensemble"]


def test_names_by_task():
    assert posterior.names(task="classification") == CLASSIFICATION
    assert posterior.names(task="regression") == REGRESSION
    assert posterior.names() == sorted(set(CLASSIFICATION + REGRESSION))


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_every_classification_posterior_by_name_offers_features_and_outputs(name):
    post = posterior.build(name, num_classes=3, num_samples=2, hidden=8, num_steps=5)
    assert post.embed is not None and post.apply is not None
    assert post is posterior.build(name, num_classes=3, num_samples=2, hidden=8, num_steps=5)


def test_build_names_the_choices_for_the_task():
    with pytest.raises(ValueError, match=r"choose one of \['bayesian-last-layer', 'ensemble'\]"):
        posterior.build("mc-dropout", task="regression")
    with pytest.raises(ValueError, match="unknown classification posterior 'gp'"):
        posterior.build("gp", num_classes=2)
    with pytest.raises(ValueError, match="task must be one of"):
        posterior.build("ensemble", task="ranking", num_classes=2)
    with pytest.raises(TypeError, match="num_classes must be an int >= 1; got NoneType None"):
        posterior.build("ensemble")
    with pytest.raises(ValueError, match="num_classes must be an int >= 1; got 0"):
        posterior.build("ensemble", num_classes=0)
    with pytest.raises(ValueError, match="already registered"):
        posterior.register("ensemble", task="regression")(lambda **settings: None)


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_posteriors_by_name_fit_a_line(name, key):
    noise_key, fit_key, predict_key = jax.random.split(key, 3)
    x_N_1 = jnp.linspace(-1.0, 1.0, 48, dtype=jnp.float32)[:, None]
    y_N = 2.0 * x_N_1[:, 0] + 0.05 * jax.random.normal(noise_key, (48,), jnp.float32)
    post = posterior.build(
        name, task="regression", num_samples=3, hidden=16, num_steps=300, learning_rate=1e-2
    )
    params = jax.jit(post.fit)(x_N_1, y_N, jnp.ones(48, jnp.float32), key=fit_key)
    mean_K_N, var_K_N = jax.jit(post.predict)(params, x_N_1, key=predict_key)
    assert mean_K_N.shape == var_K_N.shape == (3, 48)
    assert bool(jnp.all(var_K_N > 0))
    rmse = jnp.sqrt(jnp.mean((mean_K_N.mean(0) - 2.0 * x_N_1[:, 0]) ** 2))
    assert float(rmse) < 0.15
    assert post.embed(params, x_N_1, key=predict_key).shape[1:] == (48, 16)
