"""Tests for jaxal.kernels: closed forms, Monte Carlo wide networks, empirical NTK, sketch."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxal import kernels

from .conftest import DTYPES

CONFIGS = [
    (depth, activation, kind)
    for depth in (1, 2, 3, 4)
    for activation in ("relu", "erf")
    for kind in ("ntk", "nngp")
]


def numpy_kernel(x1, x2, depth, activation, weight_std, bias_std, kind):
    """Pair-by-pair transcription of the layer recursion with Python's math module."""
    w2, b2 = weight_std**2, bias_std**2

    def expectations(k11, k22, k12):
        if activation == "relu":
            cos = max(-1.0, min(1.0, k12 / math.sqrt(k11 * k22)))
            t = math.acos(cos)
            value = math.sqrt(k11 * k22) / (2 * math.pi) * (math.sin(t) + (math.pi - t) * cos)
            return value, (math.pi - t) / (2 * math.pi)
        a, c = 1 + 2 * k11, 1 + 2 * k22
        value = 2 / math.pi * math.asin(2 * k12 / math.sqrt(a * c))
        return value, 4 / math.pi / math.sqrt(a * c - 4 * k12**2)

    out = np.zeros((len(x1), len(x2)))
    D = x1.shape[1]
    for i, a in enumerate(x1):
        for j, b in enumerate(x2):
            k11, k22, k12 = (w2 * float(np.dot(u, v)) / D + b2 for u, v in ((a, a), (b, b), (a, b)))
            ntk = k12
            for _ in range(depth - 1):
                value, derivative = expectations(k11, k22, k12)
                new12 = w2 * value + b2
                ntk = new12 + w2 * derivative * ntk
                k11 = w2 * expectations(k11, k11, k11)[0] + b2
                k22 = w2 * expectations(k22, k22, k22)[0] + b2
                k12 = new12
            out[i, j] = ntk if kind == "ntk" else k12
    return out


class NTKDense(nn.Module):
    """Dense layer in NTK parametrisation: ``sigma_w W x / sqrt(fan_in) + sigma_b b``."""

    features: int
    weight_std: float
    bias_std: float

    @nn.compact
    def __call__(self, x):
        w = self.param("w", nn.initializers.normal(1.0), (x.shape[-1], self.features))
        b = self.param("b", nn.initializers.normal(1.0), (self.features,))
        return self.weight_std * x @ w / jnp.sqrt(x.shape[-1]) + self.bias_std * b[None]


class NTKMLP(nn.Module):
    widths: tuple[int, ...]
    weight_std: float = 1.0
    bias_std: float = 0.1
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        phi = nn.relu if self.activation == "relu" else jax.scipy.special.erf
        for i, width in enumerate(self.widths):
            if i:
                x = phi(x)
            x = NTKDense(width, self.weight_std, self.bias_std)(x)
        return x


def inputs(rng, n=5, D=3):
    return rng.normal(size=(n, D))


@pytest.mark.parametrize(("depth", "activation", "kind"), CONFIGS)
def test_matches_numpy_transcription(rng, depth, activation, kind):
    x1, x2 = inputs(rng, 4), inputs(rng, 3)
    kernel = kernels.infinite_width(
        depth, activation=activation, weight_std=1.3, bias_std=0.2, kind=kind
    )
    expected = numpy_kernel(x1, x2, depth, activation, 1.3, 0.2, kind)
    np.testing.assert_allclose(kernel(jnp.asarray(x1), jnp.asarray(x2)), expected, rtol=1e-10)


def test_depth_two_relu_is_the_arc_cosine_kernel(rng):
    x1, x2 = inputs(rng, 6, 4), inputs(rng, 5, 4)
    D = 4
    norm = np.linalg.norm(x1, axis=1)[:, None] * np.linalg.norm(x2, axis=1)[None]
    theta = np.arccos(np.clip(x1 @ x2.T / norm, -1, 1))
    arc_cosine_1 = norm / np.pi * (np.sin(theta) + (np.pi - theta) * np.cos(theta))  # Cho & Saul
    kernel = kernels.infinite_width(2, weight_std=1.5, bias_std=0.0, kind="nngp")
    # K^2 = w^2 E[relu(u) relu(v)] with u = w a.x / sqrt(D): w^4 k_1(x, x') / (2 D)
    expected = 1.5**4 * arc_cosine_1 / (2 * D)
    np.testing.assert_allclose(kernel(jnp.asarray(x1), jnp.asarray(x2)), expected, rtol=1e-10)


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_nngp_matches_wide_random_networks(key, rng, activation):
    """Hidden units of a width-4096 random network sample the NNGP: average over units."""
    x_N_D = jnp.asarray(inputs(rng, 5, 3), dtype=jnp.float32)
    width, depth, w, b = 4096, 3, 1.2, 0.3
    phi = jax.nn.relu if activation == "relu" else jax.scipy.special.erf

    @jax.jit
    def last_layer_covariance(k):
        k1, k2, k3, k4 = jax.random.split(k, 4)
        normal = jax.random.normal
        h_N_W = w * x_N_D @ normal(k1, (3, width)) / jnp.sqrt(3.0) + b * normal(k2, (1, width))
        h_N_W = w * phi(h_N_W) @ normal(k3, (width, width)) / jnp.sqrt(width)
        h_N_W = h_N_W + b * normal(k4, (1, width))
        post_N_W = phi(h_N_W)
        return w**2 * post_N_W @ post_N_W.T / width + b**2

    estimate = jnp.mean(jax.lax.map(last_layer_covariance, jax.random.split(key, 4)), axis=0)
    exact = kernels.infinite_width(
        depth, activation=activation, weight_std=w, bias_std=b, kind="nngp"
    )(x_N_D, x_N_D)
    # Monte Carlo error of 4 x 4096 units: about 2% of the largest entry.
    np.testing.assert_allclose(estimate, exact, rtol=0.03, atol=0.04 * float(exact.max()))


def test_empirical_ntk_of_wide_mlp_matches_infinite_width(key, rng):
    x = jnp.asarray(inputs(rng, 4, 3), dtype=jnp.float32)
    model = NTKMLP((2048, 2048, 1))  # depth 3, the authors' std 1 / 0.1

    @jax.jit
    def ntk(k):
        params = model.init(k, x)
        return kernels.empirical_ntk(model.apply, params, batch_size=4)(x, x)

    # One width-2048 network is within about 5% of the limit; 8 of them about 2%.
    estimate = jnp.mean(jax.lax.map(ntk, jax.random.split(key, 8)), axis=0)
    exact = kernels.infinite_width(3)(x, x)
    np.testing.assert_allclose(estimate, exact, rtol=0.05, atol=0.03 * float(exact.max()))


def tiny_model():
    return nn.Sequential([nn.Dense(5), nn.tanh, nn.Dense(3)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("output", "transform"),
    [
        pytest.param(None, lambda f: f, id="sum-eager"),
        pytest.param(None, jax.jit, id="sum-jit"),
        pytest.param(1, jax.jit, id="one-output-jit"),
    ],
)
def test_empirical_ntk_matches_jacfwd(key, rng, dtype, output, transform):
    model = tiny_model()
    x1 = jnp.asarray(inputs(rng, 5, 2), dtype)
    x2 = jnp.asarray(inputs(rng, 3, 2), dtype)
    params = jax.tree.map(lambda p: p.astype(dtype), model.init(key, x1))
    flat, unravel = ravel_pytree(params)

    def jacobian(x):  # [n, O, P]
        return jax.jacfwd(lambda f: model.apply(unravel(f), x))(flat)

    j1, j2 = jacobian(x1), jacobian(x2)
    if output is None:
        expected = jnp.einsum("nop,mop->nm", j1, j2)
    else:
        expected = j1[:, output] @ j2[:, output].T
    kernel = kernels.empirical_ntk(model.apply, params, output=output, batch_size=2)
    got = transform(kernel)(x1, x2)
    assert got.shape == (5, 3) and got.dtype == dtype
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol)


def test_sketch_is_unbiased(key, rng):
    model = tiny_model()
    x = jnp.asarray(inputs(rng, 4, 2))
    params = model.init(key, x)
    exact = kernels.empirical_ntk(model.apply, params)(x, x)

    def sketched(k):
        return kernels.empirical_ntk(model.apply, params, projection_dim=8, key=k, batch_size=3)(
            x, x
        )

    samples = jax.jit(jax.vmap(sketched))(jax.random.split(jax.random.fold_in(key, 1), 2000))
    scale = float(jnp.abs(exact).max())
    np.testing.assert_allclose(samples.mean(0), exact, atol=0.05 * scale)
    assert float(jnp.abs(samples[0] - exact).max()) > 1e-3 * scale  # a single sketch is noisy
    np.testing.assert_allclose(samples[0], samples[0].T, atol=1e-12)


def all_kernels(key, x):
    model = tiny_model()
    params = jax.tree.map(lambda p: p.astype(x.dtype), model.init(key, x))
    infinite = {
        f"{activation}-{kind}-{depth}": kernels.infinite_width(
            depth, activation=activation, kind=kind
        )
        for depth, activation, kind in CONFIGS
        if depth in (1, 3)
    }
    return {
        **infinite,
        "empirical": kernels.empirical_ntk(model.apply, params),
        "sketch": kernels.empirical_ntk(model.apply, params, projection_dim=4, key=key),
    }


def test_gram_matrices_are_symmetric_psd_with_matching_diagonal(key, rng):
    x = jnp.asarray(inputs(rng, 12, 3))
    for name, kernel in all_kernels(key, x).items():
        gram = np.asarray(jax.jit(kernel)(x, x))
        np.testing.assert_allclose(gram, gram.T, rtol=1e-10, atol=1e-12, err_msg=name)
        eigenvalues = np.linalg.eigvalsh(gram)
        assert eigenvalues.min() >= -1e-8 * eigenvalues.max(), name
        np.testing.assert_allclose(
            jax.jit(kernels.diagonal, static_argnums=0)(kernel, x),
            np.diag(gram),
            rtol=1e-10,
            err_msg=name,
        )


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_invalid_arguments():
    with pytest.raises(ValueError, match="depth"):
        kernels.infinite_width(0)
    with pytest.raises(ValueError, match="activation"):
        kernels.infinite_width(2, activation="tanh")
    with pytest.raises(ValueError, match="kind"):
        kernels.infinite_width(2, kind="rbf")
    with pytest.raises(ValueError, match="key"):
        kernels.empirical_ntk(lambda p, x: x, {}, projection_dim=3)


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_relu_float32_coincident_inputs_are_exact_and_opposite_accurate(rng, kind):
    """Issue 17: k(x, x) in float32 was 2e-4 off float64 (the angle of a cosine rounded below
    1); the arctan2 angle with the Gram's own diagonal gives theta = 0 exactly."""
    kernel = kernels.infinite_width(3, kind=kind)
    x = rng.normal(size=(6, 20))
    exact = np.diag(np.asarray(kernel(jnp.asarray(x), jnp.asarray(x))))
    x32 = jnp.asarray(x, jnp.float32)
    for got in (
        kernels.diagonal(kernel, x32),
        jax.jit(kernels.diagonal, static_argnums=0)(kernel, x32),
        jnp.diagonal(kernel(x32, x32)),
        jnp.diagonal(jax.jit(lambda x: kernel(x, x))(x32)),
    ):
        assert got.dtype == jnp.float32
        np.testing.assert_allclose(got, exact, rtol=1e-6)
    opposite = np.asarray(kernel(jnp.asarray(x), -jnp.asarray(x)))
    np.testing.assert_allclose(kernel(x32, -x32), opposite, rtol=1e-5, atol=1e-6 * exact.max())


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: kernels.infinite_width(True), TypeError, "depth"),
        (lambda: kernels.infinite_width(2, weight_std=np.inf), ValueError, "weight_std"),
        (lambda: kernels.infinite_width(2, bias_std=np.nan), ValueError, "bias_std"),
        (lambda: kernels.infinite_width(2, weight_std=jnp.ones(2)), TypeError, "weight_std"),
        (lambda: kernels.empirical_ntk(lambda p, x: x, {}, projection_dim=3, key=0),
         TypeError, "key=jax.random.key"),
        (lambda: kernels.empirical_ntk(lambda p, x: x, {}, batch_size=0), ValueError, "batch_size"),
    ],
)  # fmt: skip
def test_hyperparameters_and_keys_are_validated(call, error, match):
    """Issue 15: non-finite stds, bool depths and int keys raise (they were accepted)."""
    with pytest.raises(error, match=match):
        call()
    assert kernels.infinite_width(np.int64(2))(jnp.ones((1, 2)), jnp.ones((1, 2))).shape == (1, 1)
