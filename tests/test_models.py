"""Tests for the papers' networks (jaxal/posterior/_models.py), the patch convolutions of
training (jaxal/posterior/_patches.py), and every posterior on a CNN, on tiny inputs."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxal import posterior
from jaxal.posterior._models import images
from jaxal.posterior._patches import convolutions_as_matmuls, patch_conv

N, C, K = 16, 3, 4
SMALL_CNN = posterior.ConvNet(C, channels=(4, 8), hidden=16)  # 28x28 -> 24 -> 12 -> 8 -> 4
SETTINGS = dict(optimizer=optax.adam(1e-2), num_steps=3, batch_size=8)


@pytest.fixture(scope="module")
def pool():
    """``N`` random 28x28 images as ``[N, 784]`` rows, labels ``[N]``, a mask of 10 labels."""
    x = jax.random.uniform(jax.random.key(0), (N, 784), jnp.float32)
    y = jnp.arange(N, dtype=jnp.int32) % C
    return x, y, (jnp.arange(N) < 10).astype(jnp.float32)


@pytest.mark.parametrize(
    ("strides", "padding"),
    [((1, 1), "VALID"), ((2, 2), "SAME"), ((2, 1), ((1, 1), (1, 1))), ((1, 1), ((2, 0), (0, 1)))],
)
def test_patch_conv_equals_xla_convolution(strides, padding):
    x_key, w_key = jax.random.split(jax.random.key(1))
    x = jax.random.normal(x_key, (2, 7, 6, 3), jnp.float64)
    kernel = jax.random.normal(w_key, (3, 2, 3, 5), jnp.float64)
    expected = jax.lax.conv_general_dilated(
        x, kernel, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    got = patch_conv(x, kernel, strides=strides, padding=padding)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "model",
    [
        posterior.ConvNet(C, channels=(4, 8), hidden=16, rate=0.0),
        posterior.ResNet(C, image_shape=(8, 8, 3), stage_sizes=(1, 1), width=8, rate=0.0),
    ],
    ids=["convnet", "resnet"],
)
def test_training_convolutions_give_xla_outputs_and_gradients(model):
    D = int(np.prod(model.image_shape))
    x = jax.random.uniform(jax.random.key(2), (5, D), jnp.float32)
    params = model.init(jax.random.key(3), x[:1])

    def loss(p):
        return jnp.sum(jnp.sin(model.apply(p, x)))

    def patched(p):
        with convolutions_as_matmuls():
            return loss(p)

    assert model.apply(params, x).shape == (5, C)
    np.testing.assert_allclose(patched(params), loss(params), rtol=1e-5)
    for got, expected in zip(
        jax.tree.leaves(jax.grad(patched)(params)),
        jax.tree.leaves(jax.grad(loss)(params)),
        strict=True,
    ):
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-5)


def test_convnet_is_the_authors_architecture():
    """conv 5x5 32 -> pool -> conv 5x5 64 -> pool -> 1024 -> 128 -> C on 28x28 (BatchBALD)."""
    params = posterior.ConvNet(10).init(
        {"params": jax.random.key(0), "dropout": jax.random.key(1)}, jnp.zeros((1, 784))
    )["params"]
    shapes = {name: layer["kernel"].shape for name, layer in params.items()}
    assert shapes == {
        "Conv_0": (5, 5, 1, 32),
        "Conv_1": (5, 5, 32, 64),
        "Dense_0": (1024, 128),
        "Dense_1": (128, 10),
    }


def test_convnet_drops_whole_feature_maps():
    """Dropout2d: a dropped channel is zero at every pixel (the authors' MCDropout2d)."""
    captured = []

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if isinstance(context.module, nn.Dropout) and out.ndim == 4:
            captured.append(out)
        return out

    model = posterior.ConvNet(C, channels=(8,), hidden=4, rate=0.5)
    x = jax.random.uniform(jax.random.key(4), (3, 784)) + 0.1
    params = model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x)
    with nn.intercept_methods(record):
        model.apply(params, x, rngs={"dropout": jax.random.key(5)})
    zero_B_C = jnp.all(captured[0] == 0, axis=(1, 2))
    some_B_C = jnp.any(captured[0] == 0, axis=(1, 2))
    np.testing.assert_array_equal(zero_B_C, some_B_C)  # all or nothing per (example, channel)
    assert 0 < int(zero_B_C.sum()) < zero_B_C.size


def test_models_name_a_wrong_image_shape():
    with pytest.raises(ValueError, match=r"D = 64 .* image_shape = \(28, 28, 1\)"):
        images(jnp.zeros((2, 64)), (28, 28, 1))


def test_mc_dropout_on_a_cnn(pool):
    x, y, weights = pool
    post = posterior.mc_dropout(SMALL_CNN, K, **SETTINGS)
    params = jax.jit(post.fit)(x, y, weights, key=jax.random.key(0))
    log_probs_K_N_C = jax.jit(post.predict)(params, x, key=jax.random.key(1))
    assert log_probs_K_N_C.shape == (K, N, C)
    np.testing.assert_allclose(jnp.exp(log_probs_K_N_C).sum(-1), 1.0, rtol=1e-5)
    assert float(jnp.std(log_probs_K_N_C, axis=0).max()) > 0  # masks differ across samples
    # one mask set per sample, shared by every point: scoring a part gives the same rows
    part = jax.jit(post.predict)(params, x[3:7], key=jax.random.key(1))
    np.testing.assert_allclose(part, log_probs_K_N_C[:, 3:7], rtol=1e-4, atol=1e-5)
    assert post.embed(params, x, key=jax.random.key(1)).shape == (K, N, 16)
    assert post.apply(params, x).shape == (1, N, C)


def test_ensemble_on_a_cnn_with_dropout_in_training(pool):
    x, y, weights = pool
    post = posterior.ensemble(SMALL_CNN, K, **SETTINGS)
    params = jax.jit(post.fit)(x, y, weights, key=jax.random.key(0))
    log_probs_K_N_C = post.predict(params, x, key=jax.random.key(1))
    assert log_probs_K_N_C.shape == (K, N, C)
    # prediction with dropout off: deterministic given the members, and the members differ
    np.testing.assert_array_equal(log_probs_K_N_C, post.predict(params, x, key=jax.random.key(2)))
    assert float(jnp.abs(log_probs_K_N_C[0] - log_probs_K_N_C[1]).max()) > 0
    assert post.embed(params, x).shape == (K, N, 16)


def test_unlabelled_points_do_not_change_a_cnn_fit(pool):
    x, y, weights = pool
    post = posterior.ensemble(SMALL_CNN, 2, **SETTINGS)
    fit = jax.jit(post.fit)
    a = fit(x, y, weights, key=jax.random.key(0))
    b = fit(x.at[12:].set(0.5), (y + 1).at[:10].set(y[:10]) % C, weights, key=jax.random.key(0))
    for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(leaf_a, leaf_b)


def test_laplace_and_neural_linear_on_cnn_features(pool):
    x, y, weights = pool
    cnn = posterior.ConvNet(C, channels=(4, 8), hidden=16, rate=0.0)
    network = posterior.ensemble(cnn, 1, **SETTINGS)
    params = jax.tree.map(lambda leaf: leaf[0], network.fit(x, y, weights, key=jax.random.key(0)))
    laplace = posterior.laplace_last_layer(
        lambda x: posterior.last_layer_inputs(cnn, params, x), C, K, num_steps=10
    )
    fitted = laplace.fit(x, y, weights, key=jax.random.key(1))
    log_probs_K_N_C = laplace.predict(fitted, x, key=jax.random.key(2))
    assert log_probs_K_N_C.shape == (K, N, C)
    assert bool(jnp.all(jnp.isfinite(log_probs_K_N_C)))
    regression = posterior.neural_linear_regression(
        posterior.ConvNet(1, channels=(4, 8), hidden=16), K, **SETTINGS
    )
    fitted = regression.fit(x, y.astype(jnp.float32), weights, key=jax.random.key(3))
    mean_K_N, var_K_N = regression.predict(fitted, x, key=jax.random.key(4))
    assert mean_K_N.shape == var_K_N.shape == (K, N)
    assert bool(jnp.all(var_K_N > 0))


def test_a_cnn_learns_the_digits():
    """MC dropout on a one-block CNN of the 8x8 digits beats chance (0.1) within 150 steps."""
    from sklearn.datasets import load_digits

    x_raw, y_raw = load_digits(return_X_y=True)
    x = jnp.asarray(x_raw / 16.0, jnp.float32)
    y = jnp.asarray(y_raw, jnp.int32)
    model = posterior.ConvNet(10, image_shape=(8, 8, 1), channels=(8,), kernel_size=3, hidden=32)
    post = posterior.mc_dropout(model, 4, optimizer=optax.adam(1e-2), num_steps=150, batch_size=32)
    weights = (jnp.arange(x.shape[0]) < 300).astype(jnp.float32)
    params = jax.jit(post.fit)(x, y, weights, key=jax.random.key(0))
    log_probs = jax.jit(post.predict)(params, x[1000:], key=jax.random.key(1))
    accuracy = jnp.mean(jnp.argmax(log_probs.mean(0), -1) == y[1000:])
    assert float(accuracy) > 0.5  # chance is 0.1; 0.71 here (load 19)
