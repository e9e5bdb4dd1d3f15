"""Tests for jaxal.posterior.mc_dropout: MC dropout as a Posterior on a 2-D toy problem."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxal import posterior, scores
from tests import reference

N, K = 100, 16
POST = posterior.mc_dropout(
    posterior.DropoutMLP(num_classes=2, hidden=(32,)),
    K,
    optimizer=optax.adam(1e-2),
    num_steps=300,
    batch_size=32,
)
FIT = jax.jit(POST.fit)
PREDICT = jax.jit(POST.predict)


@pytest.fixture(scope="module")
def blobs():
    """Two separable Gaussian blobs around (-1.5, -1.5) and (1.5, 1.5): ``x [N, 2]``, ``y [N]``."""
    return reference.two_blobs(N, centre=1.5, std=0.5, dtype=jnp.float32)


@pytest.fixture(scope="module")
def params(blobs):
    x, y = blobs
    return FIT(x, y, jnp.ones(N, jnp.float32), key=jax.random.key(1))


def test_predictions_are_normalised_samples_driven_by_the_key(blobs, params, key):
    x, _ = blobs
    log_probs_K_N_C = PREDICT(params, x, key=key)
    assert log_probs_K_N_C.shape == (K, N, 2)
    np.testing.assert_allclose(jnp.exp(log_probs_K_N_C).sum(-1), 1.0, rtol=1e-5)
    assert not np.allclose(log_probs_K_N_C[0], log_probs_K_N_C[1])  # different masks
    np.testing.assert_allclose(POST.predict(params, x, key=key), log_probs_K_N_C, atol=1e-5)
    other_key = jax.random.fold_in(key, 1)
    assert not np.allclose(PREDICT(params, x, key=other_key), log_probs_K_N_C)


def test_fit_separates_the_blobs(blobs, params, key):
    x, y = blobs
    mean_log_probs_N_C = jax.nn.logsumexp(PREDICT(params, x, key=key), axis=0)
    assert float(jnp.mean(jnp.argmax(mean_log_probs_N_C, -1) == y)) >= 0.95


def test_zero_weight_points_have_no_influence(blobs, key):
    x, y = blobs
    weights_N = (jnp.arange(N) < 20).astype(jnp.float32)
    unlabelled_N = weights_N == 0
    y_corrupt = jnp.where(unlabelled_N, 1 - y, y)
    x_corrupt = jnp.where(unlabelled_N[:, None], 100.0, x).astype(jnp.float32)
    clean = FIT(x, y, weights_N, key=key)
    corrupt = FIT(x_corrupt, y_corrupt, weights_N, key=key)
    for a, b in zip(jax.tree.leaves(clean), jax.tree.leaves(corrupt), strict=True):
        np.testing.assert_array_equal(a, b)


def test_new_mask_does_not_recompile(blobs, params, key):
    x, y = blobs
    for n in (10, 30):
        FIT(x, y, (jnp.arange(N) < n).astype(jnp.float32), key=key)
    assert FIT._cache_size() == 1


def test_disagreement_is_larger_far_from_the_data(blobs, params, key):
    x, _ = blobs
    angles_M = jnp.linspace(0.0, 2 * jnp.pi, N, endpoint=False)  # M = N: no recompile
    far_M_2 = (6.0 * jnp.stack([jnp.cos(angles_M), jnp.sin(angles_M)], -1)).astype(jnp.float32)
    bald_on_data = jnp.mean(scores.bald(PREDICT(params, x, key=key)))
    bald_far = jnp.mean(scores.bald(PREDICT(params, far_M_2, key=key)))
    assert float(bald_far) > 5 * float(bald_on_data)


# ---------------------------------------------------------------------------------------------
# Consistent masks: sample k is one network for every point


def test_chunked_and_permuted_scoring_match_scoring_at_once(blobs, params, key):
    x, _ = blobs
    whole_K_N_C = PREDICT(params, x, key=key)  # float32: matmul blocking may differ by 1 ulp
    chunks = [PREDICT(params, x[a:b], key=key) for a, b in [(0, 17), (17, 60), (60, N)]]
    np.testing.assert_allclose(jnp.concatenate(chunks, axis=1), whole_K_N_C, rtol=1e-5, atol=1e-6)
    order_N = jax.random.permutation(key, N)
    permuted_K_N_C = PREDICT(params, x[order_N], key=key)
    np.testing.assert_allclose(permuted_K_N_C, whole_K_N_C[:, order_N], rtol=1e-5, atol=1e-6)


def test_copies_of_a_point_agree_in_every_sample(blobs, params, key):
    x, _ = blobs
    x_with_copies = jnp.concatenate([x[:5], x[:1], x[3:4], x[:1]])  # rows 0, 5, 7 and 3, 6
    log_probs_K_N_C = PREDICT(params, x_with_copies, key=key)
    for a, b in [(0, 5), (0, 7), (3, 6)]:
        np.testing.assert_array_equal(log_probs_K_N_C[:, a], log_probs_K_N_C[:, b])
    # ... while the samples themselves differ: the shared masks are redrawn per k.
    assert len(np.unique(np.asarray(log_probs_K_N_C[:, 0].min(-1)))) == K


def test_sample_k_does_not_depend_on_the_number_of_samples(blobs, params, key):
    x, _ = blobs
    model = posterior.DropoutMLP(num_classes=2, hidden=(32,))
    few_k_N_C = posterior.dropout_log_probs(params, model, x, 4, key=key)
    np.testing.assert_allclose(few_k_N_C, PREDICT(params, x, key=key)[:4], rtol=1e-5, atol=1e-6)


def test_training_masks_are_per_example(blobs, params, key):
    x, _ = blobs
    model = posterior.DropoutMLP(num_classes=2, hidden=(32,))
    logits_N_C = model.apply(params, jnp.repeat(x[:1], 8, axis=0), rngs={"dropout": key})
    assert len(np.unique(np.asarray(logits_N_C[:, 0]))) > 1


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_rate_and_scaling(key, rate):
    # First layer outputs relu(0 x + 1) = 1 for every unit, the output layer is the identity,
    # so the logits are the mask scaled by 1 / (1 - rate): log-probs show which units dropped.
    W, num_samples = 64, 1000
    model = posterior.DropoutMLP(num_classes=W, hidden=(W,), rate=rate)
    params = {
        "params": {
            "Dense_0": {"kernel": jnp.zeros((3, W)), "bias": jnp.ones(W)},
            "Dense_1": {"kernel": jnp.eye(W), "bias": jnp.zeros(W)},
        }
    }
    x_M_3 = jax.random.normal(key, (5, 3))
    log_probs_K_M_W = posterior.dropout_log_probs(params, model, x_M_3, num_samples, key=key)
    gap_K_M_W = log_probs_K_M_W.max(-1, keepdims=True) - log_probs_K_M_W
    np.testing.assert_allclose(jnp.where(gap_K_M_W > 0.5, gap_K_M_W, 0.0).max(), 1 / (1 - rate))
    dropped_K_M_W = np.asarray(gap_K_M_W > 0.5)
    np.testing.assert_array_equal(dropped_K_M_W, dropped_K_M_W[:, :1].repeat(5, axis=1))
    assert abs(dropped_K_M_W[:, 0].mean() - rate) < 0.01  # std 0.0016 at rate 0.5


def test_rejects_bad_sample_count():
    with pytest.raises(ValueError, match="num_samples"):
        posterior.mc_dropout(
            posterior.DropoutMLP(2), 0, optimizer=optax.adam(1e-2), num_steps=1, batch_size=1
        )
