"""Tests for jaxal.kernel_features: base kernels and transforms against explicit kernels."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxal import kernel_features as kf, kernels

from .conftest import DTYPES, TRANSFORMS


def gram(a, c):
    return np.asarray(a, np.float64) @ np.asarray(c, np.float64).T


def random_features(rng, N=30, L=8, P=5, dtype=np.float64):
    return kf.Features(
        jnp.asarray(rng.normal(size=(N, P)), dtype), jnp.asarray(rng.normal(size=(L, P)), dtype)
    )


def gp_posterior(k_a_b, k_a_t, k_t_b, k_t_t, noise):
    """``k(a, b) - k(a, T) (K_TT + s2 I)^-1 k(T, b)`` by a direct solve."""
    return k_a_b - k_a_t @ np.linalg.solve(k_t_t + noise * np.eye(len(k_t_t)), k_t_b)


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize(("L", "P"), [(8, 5), (3, 7), (0, 4)])
@pytest.mark.parametrize("noise", [1e-3, 0.5])
def test_posterior_is_the_gp_posterior_kernel(rng, transform, L, P, noise):
    f = random_features(rng, L=L, P=P)
    post = transform(lambda f: kf.posterior(f, noise=noise))(f)
    pool, train = np.asarray(f.pool), np.asarray(f.train)
    k_tt = gram(train, train)
    for a, b, got in [
        (pool, pool, gram(post.pool, post.pool)),
        (pool, train, gram(post.pool, post.train)),
        (train, train, gram(post.train, post.train)),
    ]:
        expected = gp_posterior(gram(a, b), gram(a, train), gram(train, b), k_tt, noise)
        np.testing.assert_allclose(
            got, expected, atol=1e-10 * max(1.0, np.abs(expected).max(initial=0))
        )
    assert post.pool.shape == f.pool.shape and post.train.shape == f.train.shape


def test_posterior_float32_is_close_to_float64(rng):
    f = random_features(rng)
    exact = kf.posterior(f, noise=1e-2)
    single = kf.posterior(jax.tree.map(lambda x: x.astype(np.float32), f), noise=1e-2)
    assert single.pool.dtype == np.float32
    np.testing.assert_allclose(
        gram(single.pool, single.pool), gram(exact.pool, exact.pool), atol=1e-4
    )


def test_sketch_is_unbiased(key, rng):
    f = random_features(rng, N=6, L=3, P=20)
    exact = gram(f.pool, f.train)
    num_sketches, dim = 4000, 4
    keys = jax.random.split(key, num_sketches)
    sketches = jax.vmap(lambda k: kf.sketch(f, key=k, dim=dim))(keys)
    mean = np.mean(np.einsum("snp,slp->snl", sketches.pool, sketches.train), axis=0)
    # Var of a Gaussian sketch entry: (|a|^2 |b|^2 + (a.b)^2) / m; allow 5 standard errors.
    sq_norms = np.outer(np.sum(f.pool**2, 1), np.sum(f.train**2, 1))
    standard_error = np.sqrt((sq_norms + exact**2) / dim / num_sketches)
    assert np.all(np.abs(mean - exact) < 5 * standard_error)
    assert (
        np.abs(gram(sketches.pool[0], sketches.train[0]) - exact).max() > 3 * standard_error.max()
    )
    big = kf.sketch(f, key=key, dim=20_000)
    np.testing.assert_allclose(gram(big.pool, big.train), exact, atol=0.1 * np.abs(exact).max())
    assert big.pool.shape == (6, 20_000) and big.train.shape == (3, 20_000)


def test_ensemble_is_the_sum_of_grams(rng):
    fs = [random_features(rng, P=P) for P in (2, 5, 3)]
    got = kf.ensemble(*fs)
    assert got.pool.shape == (30, 10) and got.train.shape == (8, 10)
    for part in ("pool", "train"):
        expected = sum(gram(getattr(f, part), f.pool) for f in fs)
        np.testing.assert_allclose(gram(getattr(got, part), got.pool), expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L", [8, 0])
def test_scale_gives_mean_diagonal_one(rng, dtype, L):
    f = random_features(rng, L=L, dtype=dtype)
    got = jax.jit(kf.scale)(f)
    reference = got.train if L else got.pool
    np.testing.assert_allclose(np.mean(np.sum(np.asarray(reference) ** 2, 1)), 1.0, rtol=1e-5)
    ratio = gram(got.pool, got.pool) / gram(f.pool, f.pool)  # a constant factor
    np.testing.assert_allclose(ratio, ratio[0, 0], rtol=1e-4)
    zero = kf.Features(jnp.zeros((3, 2)), jnp.zeros((1, 2)))
    np.testing.assert_array_equal(kf.scale(zero).pool, 0.0)


def test_last_layer_wraps_and_defaults_train(rng):
    x = rng.normal(size=(7, 3)).astype(np.float32)
    f = kf.last_layer(x)
    assert f.train.shape == (0, 3) and f.train.dtype == np.float32
    np.testing.assert_array_equal(f.pool, x)
    f = kf.last_layer(x[:5], x[5:])
    assert f.pool.shape == (5, 3) and f.train.shape == (2, 3)


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.tanh(nn.Dense(6)(x))
        return nn.Dense(1)(x)[:, 0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_exact_is_the_empirical_ntk(key, rng, dtype):
    model = MLP()
    x_pool = jnp.asarray(rng.normal(size=(5, 3)), dtype)
    x_train = jnp.asarray(rng.normal(size=(4, 3)), dtype)
    params = jax.tree.map(lambda p: p.astype(dtype), model.init(key, x_pool))
    flat, unravel = ravel_pytree(params)
    jac = jax.jacfwd(lambda f, x: model.apply(unravel(f), x))
    f = kf.gradient(model.apply, params, x_pool, x_train, key=None, dim=None, batch_size=2)
    num_params = flat.shape[0]
    assert f.pool.shape == (5, num_params) and f.train.shape == (4, num_params)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(f.pool, jac(flat, x_pool), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(f.train, jac(flat, x_train), rtol=rtol, atol=rtol)


def test_gradient_sketch_shares_g_with_empirical_ntk(key, rng):
    model = MLP()
    x_pool, x_train = jnp.asarray(rng.normal(size=(7, 3))), jnp.asarray(rng.normal(size=(3, 3)))
    params = model.init(key, x_pool)
    sketch_key = jax.random.fold_in(key, 1)
    f = kf.gradient(model.apply, params, x_pool, x_train, key=sketch_key, dim=40, batch_size=3)
    assert f.pool.shape == (7, 40) and f.train.shape == (3, 40)
    ntk = kernels.empirical_ntk(model.apply, params, projection_dim=40, key=sketch_key)
    np.testing.assert_allclose(gram(f.pool, f.train), ntk(x_pool, x_train), rtol=1e-10)
    np.testing.assert_allclose(gram(f.pool, f.pool), ntk(x_pool, x_pool), rtol=1e-10)
    # Same G as empirical_ntk's sketch, whose unbiasedness tests/test_kernels.py checks.


def test_gradient_multi_output_sums_outputs(key, rng):
    model = nn.Dense(3)
    x = jnp.asarray(rng.normal(size=(4, 2)))
    params = model.init(key, x)
    f = kf.gradient(model.apply, params, x, key=key, dim=16)
    assert f.pool.shape == (4, 48) and f.train.shape == (0, 48)
    ntk = kernels.empirical_ntk(model.apply, params, projection_dim=16, key=key)
    np.testing.assert_allclose(gram(f.pool, f.pool), ntk(x, x), rtol=1e-10)


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("depth", [2, 3])
def test_nngp_features_converge_to_the_closed_form(key, rng, activation, depth):
    x = rng.normal(size=(6, 3))
    w, b = 1.3, 0.2
    exact = kernels.infinite_width(
        depth, activation=activation, weight_std=w, bias_std=b, kind="nngp"
    )
    expected = np.asarray(exact(jnp.asarray(x), jnp.asarray(x)))

    def estimate(k):
        f = kf.nngp(x[:4], x[4:], key=k, depth=depth, width=4096, activation=activation,
                    weight_std=w, bias_std=b)  # fmt: skip
        phi = jnp.concatenate([f.pool, f.train])
        return phi @ phi.T

    got = np.mean(jax.lax.map(estimate, jax.random.split(key, 8)), axis=0)
    np.testing.assert_allclose(got, expected, rtol=0.03, atol=0.02 * expected.max())


def test_nngp_depth_one_is_exact_and_depth_two_unbiased(key, rng):
    x = jnp.asarray(rng.normal(size=(5, 3)))
    f = kf.nngp(x, key=key, depth=1, weight_std=1.5, bias_std=0.3)
    expected = kernels.infinite_width(1, weight_std=1.5, bias_std=0.3, kind="nngp")(x, x)
    np.testing.assert_allclose(gram(f.pool, f.pool), expected, rtol=1e-12)
    assert f.pool.shape == (5, 4)
    exact = kernels.infinite_width(2, kind="nngp")(x, x)

    def small(k):
        phi = kf.nngp(x, key=k, depth=2, width=8).pool
        return phi @ phi.T

    mean = jnp.mean(jax.jit(jax.vmap(small))(jax.random.split(key, 4000)), axis=0)
    np.testing.assert_allclose(mean, exact, rtol=0.03, atol=0.01 * float(exact.max()))


def test_features_pass_through_jit_and_vmap(key, rng):
    fs = jax.tree.map(lambda *x: jnp.stack(x), *[random_features(rng) for _ in range(3)])
    batched = jax.jit(jax.vmap(lambda f: kf.posterior(kf.scale(f), noise=0.1)))(fs)
    for s in range(3):
        one = kf.posterior(kf.scale(jax.tree.map(lambda x, s=s: x[s], fs)), noise=0.1)
        np.testing.assert_allclose(
            gram(batched.pool[s], batched.pool[s]), gram(one.pool, one.pool), atol=1e-10
        )


def test_invalid_arguments(key, rng):
    x = rng.normal(size=(5, 3))
    with pytest.raises(TypeError, match="floating"):
        kf.last_layer(np.ones((4, 2), int))
    with pytest.raises(ValueError, match="rank 2"):
        kf.last_layer(x[0])
    with pytest.raises(ValueError, match="P = 3"):
        kf.last_layer(x, x[:, :2])
    with pytest.raises(TypeError, match="dtype"):
        kf.last_layer(x, x.astype(np.float32))
    with pytest.raises(ValueError, match="NaN"):
        kf.last_layer(np.where(x > 1, np.nan, x))
    with pytest.raises(ValueError, match="empty"):
        kf.last_layer(x[:0])
    with pytest.raises(TypeError, match="Features"):
        kf.scale(jnp.asarray(x))
    f = kf.last_layer(x, x[:2])
    with pytest.raises(ValueError, match="noise"):
        kf.posterior(f, noise=0.0)
    with pytest.raises(ValueError, match="dim"):
        kf.sketch(f, key=key, dim=0)
    with pytest.raises(ValueError, match="N, L"):
        kf.ensemble(f, kf.last_layer(x[:4], x[:2]))
    with pytest.raises(ValueError, match="at least one"):
        kf.ensemble()
    with pytest.raises(ValueError, match="key"):
        kf.gradient(lambda p, x: x[:, 0] * p, 1.0, x, key=None, dim=8)
    with pytest.raises(ValueError, match="depth"):
        kf.nngp(x, key=key, depth=0)
    with pytest.raises(ValueError, match="activation"):
        kf.nngp(x, key=key, depth=2, activation="tanh")
