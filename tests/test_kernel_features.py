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
    """``(phi [N + L, P], labelled [N + L])`` with the ``L`` labelled rows scattered."""
    phi = jnp.asarray(rng.normal(size=(N + L, P)), dtype)
    return phi, jnp.asarray(rng.permutation(N + L) < L)


def gp_posterior(k_a_b, k_a_t, k_t_b, k_t_t, noise):
    """``k(a, b) - k(a, T) (K_TT + s2 I)^-1 k(T, b)`` by a direct solve."""
    return k_a_b - k_a_t @ np.linalg.solve(k_t_t + noise * np.eye(len(k_t_t)), k_t_b)


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize(("L", "P"), [(8, 5), (3, 7), (0, 4)])
@pytest.mark.parametrize("noise", [1e-3, 0.5])
def test_posterior_is_the_gp_posterior_kernel(rng, transform, L, P, noise):
    phi, labelled = random_features(rng, L=L, P=P)
    post = transform(lambda p, lab: kf.posterior(p, labelled=lab, noise=noise))(phi, labelled)
    x, train = np.asarray(phi), np.asarray(phi)[np.asarray(labelled)]
    expected = gp_posterior(gram(x, x), gram(x, train), gram(train, x), gram(train, train), noise)
    np.testing.assert_allclose(
        gram(post, post), expected, atol=1e-10 * max(1.0, np.abs(expected).max())
    )
    assert post.shape == phi.shape


def test_posterior_float32_is_close_to_float64(rng):
    phi, labelled = random_features(rng)
    exact = kf.posterior(phi, labelled=labelled, noise=1e-2)
    single = kf.posterior(phi.astype(np.float32), labelled=labelled, noise=1e-2)
    assert single.dtype == np.float32
    np.testing.assert_allclose(gram(single, single), gram(exact, exact), atol=1e-4)


def test_sketch_is_unbiased(key, rng):
    phi, _ = random_features(rng, N=6, L=3, P=20)
    exact = gram(phi, phi)
    num_sketches, dim = 4000, 4
    keys = jax.random.split(key, num_sketches)
    sketches = jax.vmap(lambda k: kf.sketch(phi, key=k, dim=dim))(keys)
    mean = np.mean(np.einsum("snp,slp->snl", sketches, sketches), axis=0)
    # Var of a Gaussian sketch entry: (|a|^2 |b|^2 + (a.b)^2) / m; allow 5 standard errors.
    sq_norms = np.outer(np.sum(phi**2, 1), np.sum(phi**2, 1))
    standard_error = np.sqrt((sq_norms + exact**2) / dim / num_sketches)
    assert np.all(np.abs(mean - exact) < 5 * standard_error)
    assert np.abs(gram(sketches[0], sketches[0]) - exact).max() > 3 * standard_error.max()
    big = kf.sketch(phi, key=key, dim=20_000)
    np.testing.assert_allclose(gram(big, big), exact, atol=0.1 * np.abs(exact).max())
    assert big.shape == (9, 20_000)


def test_ensemble_is_the_sum_of_grams(rng):
    phis = [random_features(rng, P=P)[0] for P in (2, 5, 3)]
    got = kf.ensemble(*phis)
    assert got.shape == (38, 10)
    np.testing.assert_allclose(gram(got, got), sum(gram(p, p) for p in phis), rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("L", [8, 0])
def test_scale_gives_mean_diagonal_one_over_the_labelled_rows(rng, dtype, L):
    phi, labelled = random_features(rng, L=L, dtype=dtype)
    got = jax.jit(lambda p, lab: kf.scale(p, labelled=lab))(phi, labelled)
    reference = np.asarray(got)[np.asarray(labelled)] if L else np.asarray(got)
    np.testing.assert_allclose(np.mean(np.sum(reference**2, 1)), 1.0, rtol=1e-5)
    ratio = gram(got, got) / gram(phi, phi)  # a constant factor
    np.testing.assert_allclose(ratio, ratio[0, 0], rtol=1e-4)
    if not L:  # no labelled row: the mean over every row, as with labelled=None
        np.testing.assert_array_equal(kf.scale(phi), got)
    np.testing.assert_array_equal(kf.scale(jnp.zeros((3, 2)), labelled=jnp.ones(3, bool)), 0.0)


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.tanh(nn.Dense(6)(x))
        return nn.Dense(1)(x)[:, 0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_exact_is_the_empirical_ntk(key, rng, dtype):
    model = MLP()
    x = jnp.asarray(rng.normal(size=(9, 3)), dtype)
    params = jax.tree.map(lambda p: p.astype(dtype), model.init(key, x))
    flat, unravel = ravel_pytree(params)
    jac = jax.jacfwd(lambda f, x: model.apply(unravel(f), x))
    phi = kf.gradient(model.apply, params, x, key=None, dim=None, batch_size=2)
    assert phi.shape == (9, flat.shape[0])
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(phi, jac(flat, x), rtol=rtol, atol=rtol)


def test_gradient_sketch_shares_g_with_empirical_ntk(key, rng):
    model = MLP()
    x = jnp.asarray(rng.normal(size=(10, 3)))
    params = model.init(key, x)
    sketch_key = jax.random.fold_in(key, 1)
    phi = kf.gradient(model.apply, params, x, key=sketch_key, dim=40, batch_size=3)
    assert phi.shape == (10, 40)
    ntk = kernels.empirical_ntk(model.apply, params, projection_dim=40, key=sketch_key)
    np.testing.assert_allclose(gram(phi, phi), ntk(x, x), rtol=1e-10)
    # Same G as empirical_ntk's sketch, whose unbiasedness tests/test_kernels.py checks.


def test_gradient_multi_output_sums_outputs(key, rng):
    model = nn.Dense(3)
    x = jnp.asarray(rng.normal(size=(4, 2)))
    params = model.init(key, x)
    phi = kf.gradient(model.apply, params, x, key=key, dim=16)
    assert phi.shape == (4, 48)
    ntk = kernels.empirical_ntk(model.apply, params, projection_dim=16, key=key)
    np.testing.assert_allclose(gram(phi, phi), ntk(x, x), rtol=1e-10)


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
        phi = kf.nngp(x, key=k, depth=depth, width=4096, activation=activation, weight_std=w,
                      bias_std=b)  # fmt: skip
        return phi @ phi.T

    got = np.mean(jax.lax.map(estimate, jax.random.split(key, 8)), axis=0)
    np.testing.assert_allclose(got, expected, rtol=0.03, atol=0.02 * expected.max())


def test_nngp_depth_one_is_exact_and_depth_two_unbiased(key, rng):
    x = jnp.asarray(rng.normal(size=(5, 3)))
    phi = kf.nngp(x, key=key, depth=1, weight_std=1.5, bias_std=0.3)
    expected = kernels.infinite_width(1, weight_std=1.5, bias_std=0.3, kind="nngp")(x, x)
    np.testing.assert_allclose(gram(phi, phi), expected, rtol=1e-12)
    assert phi.shape == (5, 4)
    exact = kernels.infinite_width(2, kind="nngp")(x, x)

    def small(k):
        phi = kf.nngp(x, key=k, depth=2, width=8)
        return phi @ phi.T

    mean = jnp.mean(jax.jit(jax.vmap(small))(jax.random.split(key, 4000)), axis=0)
    np.testing.assert_allclose(mean, exact, rtol=0.03, atol=0.01 * float(exact.max()))


def test_transforms_vmap_over_masks_with_different_numbers_of_labelled_rows(rng):
    phis = jnp.stack([random_features(rng, N=38 - L, L=L)[0] for L in (0, 3, 11)])
    masks = jnp.stack([random_features(rng, N=38 - L, L=L)[1] for L in (0, 3, 11)])

    def transform(phi, labelled):
        return kf.posterior(kf.scale(phi, labelled=labelled), labelled=labelled, noise=0.1)

    batched = jax.jit(jax.vmap(transform))(phis, masks)
    for s in range(3):
        one = transform(phis[s], masks[s])
        np.testing.assert_allclose(gram(batched[s], batched[s]), gram(one, one), atol=1e-10)


def test_no_recompile_when_the_labelled_set_grows(rng):
    phi, labelled = random_features(rng)
    kf.posterior(kf.scale(phi, labelled=labelled), labelled=labelled)
    cores = (kf._scale, kf._posterior)
    before = [core._cache_size() for core in cores]
    grown = labelled | jnp.asarray(rng.random(38) < 0.5)
    kf.posterior(kf.scale(phi + 1.0, labelled=grown), labelled=grown, noise=0.5)
    assert [core._cache_size() for core in cores] == before


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_invalid_arguments(key, rng):
    x = rng.normal(size=(5, 3))
    with pytest.raises(TypeError, match="floating"):
        kf.scale(np.ones((4, 2), int))
    with pytest.raises(ValueError, match="rank 2"):
        kf.sketch(x[0], key=key)
    with pytest.raises(ValueError, match="NaN"):
        kf.scale(np.where(x > 1, np.nan, x))
    with pytest.raises(ValueError, match="empty"):
        kf.scale(x[:0])
    with pytest.raises(TypeError, match="labelled must be a boolean"):
        kf.posterior(x, labelled=np.ones(5, int))
    with pytest.raises(ValueError, match="labelled must have shape"):
        kf.scale(x, labelled=np.ones(4, bool))
    with pytest.raises(ValueError, match="noise"):
        kf.posterior(x, labelled=np.ones(5, bool), noise=0.0)
    with pytest.raises(ValueError, match="dim"):
        kf.sketch(x, key=key, dim=0)
    with pytest.raises(ValueError, match="N = 4"):
        kf.ensemble(x, x[:4])
    with pytest.raises(TypeError, match="dtype"):
        kf.ensemble(x, x.astype(np.float32))
    with pytest.raises(ValueError, match="at least one"):
        kf.ensemble()
    with pytest.raises(ValueError, match="key"):
        kf.gradient(lambda p, x: x[:, 0] * p, 1.0, x, key=None, dim=8)
    with pytest.raises(ValueError, match="depth"):
        kf.nngp(x, key=key, depth=0)
    with pytest.raises(ValueError, match="activation"):
        kf.nngp(x, key=key, depth=2, activation="tanh")


def linear_model(p, x):
    return x[:, 0] * p


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda x, k: kf.gradient(linear_model, 1.0, x.at[0, 0].set(np.nan), key=k, dim=4),
         ValueError, "x contains NaN"),
        (lambda x, k: kf.nngp(x.at[1, 2].set(np.inf), key=k, depth=2, width=4),
         ValueError, "x contains NaN"),
        (lambda x, k: kf.nngp(x, key=k, depth=2, weight_std=np.inf), ValueError, "weight_std"),
        (lambda x, k: kf.nngp(x, key=k, depth=2, bias_std=-0.1), ValueError, "bias_std"),
        (lambda x, k: kf.nngp(x, key=k, depth=True), TypeError, "depth"),
        (lambda x, k: kf.posterior(x, labelled=np.ones(5, bool), noise=np.inf),
         ValueError, "noise must be finite"),
        (lambda x, k: kf.nngp(x, key=0, depth=2), TypeError, "key=jax.random.key"),
        (lambda x, k: kf.sketch(x, key=None), TypeError, "key=jax.random.key"),
        (lambda x, k: kf.gradient(linear_model, 1.0, x, key=7, dim=4),
         TypeError, "key=jax.random.key"),
    ],
)  # fmt: skip
def test_nan_inf_hyperparameters_and_keys_are_rejected(key, rng, call, error, match):
    """Issue 15: NaN / inf inputs, non-finite hyperparameters and non-key keys raise eagerly."""
    with pytest.raises(error, match=match):
        call(jnp.asarray(rng.normal(size=(5, 3))), key)


def test_numpy_integer_sizes_are_accepted(key, rng):
    """check.integer: NumPy integers are valid sizes (the local helpers rejected them)."""
    x = jnp.asarray(rng.normal(size=(5, 3)))
    assert kf.sketch(x, key=key, dim=np.int64(4)).shape == (5, 4)
    assert kf.nngp(x, key=key, depth=np.int32(2), width=np.int64(6)).shape == (5, 7)
