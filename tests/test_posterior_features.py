"""Tests for the posteriors' ``embed`` (last-layer features) and ``apply`` (network outputs).

Oracle: a network's outputs are its last-layer features times the last ``nn.Dense``'s kernel
plus its bias, so ``embed`` and ``apply`` (and ``predict``) must agree through that layer.
Untrained parameters suffice: the identities hold for any weights.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxal import posterior

M, D, C, H, K = 7, 3, 4, 5, 3


class SmallCNN(nn.Module):
    """Conv -> ReLU -> pool -> Dense(H) -> ReLU -> Dense(C) on ``[M, 6, 6, 1]`` images."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(2, (3, 3))(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Dense(H)(x.reshape(x.shape[0], -1)))
        return nn.Dense(C)(x)


def head(features, layer):
    """The output layer applied to the features ``[..., H]``: ``features @ kernel + bias``."""
    bias = layer["bias"].reshape((1,) * (features.ndim - 1) + layer["bias"].shape)
    return features @ layer["kernel"] + bias


@pytest.fixture
def x(key):
    return jax.random.normal(key, (M, D), jnp.float32)


def test_last_layer_inputs_of_an_mlp_are_the_head_input(x, key):
    model = posterior.MLP(num_classes=C, hidden=(6, H))
    params = model.init(key, x[:1])
    features_M_H = posterior.last_layer_inputs(model, params, x)
    assert features_M_H.shape == (M, H)
    assert bool(jnp.all(features_M_H >= 0))  # after the ReLU
    np.testing.assert_allclose(
        head(features_M_H, params["params"]["Dense_2"]), model.apply(params, x), rtol=1e-5
    )
    jitted = jax.jit(lambda p, x: posterior.last_layer_inputs(model, p, x))
    np.testing.assert_allclose(jitted(params, x), features_M_H, rtol=1e-5)


def test_last_layer_inputs_of_a_dropout_mlp_share_the_forward_pass(x, key):
    model = posterior.DropoutMLP(num_classes=C, hidden=(H,))
    params = model.init({"params": key, "dropout": key}, x[:1])
    rngs = {"dropout": jax.random.fold_in(key, 1)}
    features_M_H = posterior.last_layer_inputs(model, params, x, rngs=rngs)
    assert features_M_H.shape == (M, H)
    assert bool(jnp.any(features_M_H == 0))  # dropped units
    np.testing.assert_allclose(
        head(features_M_H, params["params"]["Dense_1"]),
        model.apply(params, x, rngs=rngs),
        rtol=1e-5,
    )


def test_last_layer_inputs_of_a_cnn(key):
    images = jax.random.normal(key, (M, 6, 6, 1), jnp.float32)
    model = SmallCNN()
    params = model.init(key, images[:1])
    features_M_H = posterior.last_layer_inputs(model, params, images)
    assert features_M_H.shape == (M, H)
    np.testing.assert_allclose(
        head(features_M_H, params["params"]["Dense_1"]), model.apply(params, images), rtol=1e-5
    )


def test_last_layer_inputs_need_a_dense_layer(x, key):
    model = nn.Conv(2, (1,))
    params = model.init(key, x[:1, :, None])
    with pytest.raises(ValueError, match="no nn.Dense"):
        posterior.last_layer_inputs(model, params, x[:, :, None])


def test_ensemble_embed_and_apply(x, key):
    model = posterior.MLP(num_classes=C, hidden=(H,))
    post = posterior.ensemble(model, K, optimizer=optax.adam(1e-2), num_steps=1, batch_size=2)
    params = posterior.init_ensemble(model, x[:1], K, key=key)
    features_K_M_H = post.embed(params, x, key=key)
    logits_K_M_C = post.apply(params, x)
    assert features_K_M_H.shape == (K, M, H) and logits_K_M_C.shape == (K, M, C)
    np.testing.assert_allclose(
        jax.vmap(head)(features_K_M_H, params["params"]["Dense_1"]), logits_K_M_C, rtol=1e-5
    )
    log_probs_K_M_C = post.predict(params, x, key=key)
    np.testing.assert_allclose(jax.nn.log_softmax(logits_K_M_C), log_probs_K_M_C, rtol=1e-5)
    assert not np.allclose(features_K_M_H[0], features_K_M_H[1])  # members differ


def test_apply_is_differentiable_in_the_parameters(x, key):
    model = posterior.MLP(num_classes=C, hidden=(H,))
    post = posterior.ensemble(model, K, optimizer=optax.adam(1e-2), num_steps=1, batch_size=2)
    params = posterior.init_ensemble(model, x[:1], K, key=key)
    grads = jax.grad(lambda p: jnp.sum(post.apply(p, x) ** 2))(params)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads))


def test_regression_ensemble_embed_and_apply(x, key):
    model = posterior.MLP(num_classes=1, hidden=(H,))
    post = posterior.ensemble_regression(
        model, K, optimizer=optax.adam(1e-2), num_steps=2, batch_size=2
    )
    y = x[:, 0]
    fitted = jax.jit(post.fit)(x, y, jnp.ones(M, jnp.float32), key=key)
    features_K_M_H = post.embed(fitted, x, key=key)
    outputs_K_M_1 = post.apply(fitted, x)
    assert features_K_M_H.shape == (K, M, H) and outputs_K_M_1.shape == (K, M, 1)
    np.testing.assert_allclose(
        jax.vmap(head)(features_K_M_H, fitted.params["params"]["Dense_1"]), outputs_K_M_1, rtol=1e-5
    )
    mean_K_M, _ = post.predict(fitted, x)
    np.testing.assert_allclose(outputs_K_M_1[..., 0], mean_K_M, rtol=1e-6)


def test_mc_dropout_embed_uses_the_masks_of_predict(x, key):
    model = posterior.DropoutMLP(num_classes=C, hidden=(H,))
    post = posterior.mc_dropout(model, K, optimizer=optax.adam(1e-2), num_steps=1, batch_size=2)
    params = model.init({"params": key, "dropout": key}, x[:1])
    predict_key = jax.random.fold_in(key, 7)
    features_K_M_H = post.embed(params, x, key=predict_key)
    assert features_K_M_H.shape == (K, M, H)
    logits_K_M_C = head(features_K_M_H, params["params"]["Dense_1"])
    np.testing.assert_allclose(
        jax.nn.log_softmax(logits_K_M_C), post.predict(params, x, key=predict_key), atol=1e-5
    )
    # One mask set per sample, shared by every point: point m's features do not depend on M.
    np.testing.assert_allclose(post.embed(params, x[:2], key=predict_key), features_K_M_H[:, :2])
    assert not np.allclose(features_K_M_H[0], features_K_M_H[1])  # different masks


def test_mc_dropout_apply_is_the_network_without_dropout(x, key):
    model = posterior.DropoutMLP(num_classes=C, hidden=(H,))
    post = posterior.mc_dropout(model, K, optimizer=optax.adam(1e-2), num_steps=1, batch_size=2)
    params = model.init({"params": key, "dropout": key}, x[:1])
    logits_1_M_C = jax.jit(post.apply)(params, x)
    assert logits_1_M_C.shape == (1, M, C)
    same_layers = posterior.MLP(num_classes=C, hidden=(H,))  # no dropout, same parameters
    np.testing.assert_allclose(logits_1_M_C[0], same_layers.apply(params, x), rtol=1e-5)


@pytest.mark.parametrize("name", ["svi", "nuts"])
def test_bnn_embed_and_apply(name, x, key):
    post = {
        "svi": posterior.bnn_svi(C, K, optimizer=optax.adam(1e-2), num_steps=1, hidden=H),
        "nuts": posterior.bnn_nuts(C, K, hidden=H),
    }[name]
    shapes = {"w1": (K, D, H), "b1": (K, H), "w2": (K, H, C), "b2": (K, C)}
    keys = dict(zip(shapes, jax.random.split(key, 4), strict=True))
    samples = {site: jax.random.normal(keys[site], shape) for site, shape in shapes.items()}
    hidden_K_M_H = post.embed(samples, x, key=key)
    logits_K_M_C = post.apply(samples, x)
    assert hidden_K_M_H.shape == (K, M, H) and logits_K_M_C.shape == (K, M, C)
    np.testing.assert_allclose(
        hidden_K_M_H, jnp.tanh(jnp.einsum("md,kdh->kmh", x, samples["w1"]) + samples["b1"][:, None])
    )
    np.testing.assert_allclose(
        jnp.einsum("kmh,khc->kmc", hidden_K_M_H, samples["w2"]) + samples["b2"][:, None],
        logits_K_M_C,
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        jax.nn.log_softmax(logits_K_M_C), post.predict(samples, x), rtol=1e-5
    )


def cubic(x):
    return jnp.concatenate([x, x**3], axis=-1)


@pytest.mark.parametrize("kind", ["laplace", "regression"])
def test_fixed_feature_posteriors_embed_their_feature_map(kind, x, key):
    post = {
        "laplace": posterior.laplace_last_layer(cubic, C, K),
        "regression": posterior.bayesian_last_layer_regression(cubic, K),
    }[kind]
    assert post.apply is None
    y = jnp.arange(M) % C if kind == "laplace" else x[:, 0]
    params = jax.jit(post.fit)(x, y, jnp.ones(M, x.dtype), key=key)
    features_1_M_F = post.embed(params, x, key=key)
    assert features_1_M_F.shape == (1, M, 2 * D)
    np.testing.assert_array_equal(features_1_M_F[0], cubic(x))


def test_neural_linear_embeds_the_trained_network_features(x, key):
    model = posterior.MLP(num_classes=1, hidden=(H,))
    post = posterior.neural_linear_regression(
        model, K, optimizer=optax.adam(1e-2), num_steps=2, batch_size=2
    )
    assert post.apply is None
    network, _ = params = jax.jit(post.fit)(x, x[:, 0], jnp.ones(M, x.dtype), key=key)
    features_1_M_H = post.embed(params, x, key=key)
    assert features_1_M_H.shape == (1, M, H)
    np.testing.assert_allclose(features_1_M_H[0], posterior.last_layer_inputs(model, network, x))
