"""HSIC estimators against direct numpy transcriptions, and their closed-form cases."""

import jax
import numpy as np
import pytest

from jaxal import hsic
from tests.conftest import DTYPES, TRANSFORMS


def gaussian_kernel_reference(x, sigma):
    x = np.asarray(x, np.float64)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigma**2))


def median_reference(x):
    """Gretton's bandwidth rule (``hsicTestGamma.m``, 2007) transcribed to numpy, for
    ``n <= 100`` rows: ``dists = dists - tril(dists)`` (each pair once), then
    ``sqrt(0.5 * median(dists(dists > 0)))``; squared distances by direct differences, so a
    duplicated row gives an exact 0 (the MATLAB Gram form leaves rounding)."""
    x = np.asarray(x, np.float64)
    dists = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    dists = (dists - np.tril(dists)).reshape(-1)
    return np.sqrt(0.5 * np.median(dists[dists > 0])) if (dists > 0).any() else 1.0


def biased_reference(K, L):
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return np.trace(K @ H @ L @ H) / n**2


def unbiased_reference(K, L):
    n = K.shape[0]
    Kt = K - np.diag(np.diag(K))
    Lt = L - np.diag(np.diag(L))
    one = np.ones(n)
    return (
        np.trace(Kt @ Lt)
        + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ Kt @ Lt @ one)
    ) / (n * (n - 3))


def dependent_pair(rng, n=12):
    x = rng.standard_normal((n, 2))
    y = np.concatenate([np.sin(x[:, :1]), x[:, 1:] ** 2], axis=1) + 0.1 * rng.standard_normal(
        (n, 2)
    )
    return x, y


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_hsic_matches_numpy(rng, transform, estimator):
    x, y = dependent_pair(rng)
    K = gaussian_kernel_reference(x, median_reference(x))
    L = gaussian_kernel_reference(y, median_reference(y))
    expected = (biased_reference if estimator == "biased" else unbiased_reference)(K, L)
    got = transform(lambda a, b: hsic.hsic(a, b, estimator=estimator))(x, y)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    from_kernels = hsic.hsic_from_kernels(K, L, estimator=estimator)
    np.testing.assert_allclose(from_kernels, expected, rtol=1e-10)


def test_explicit_bandwidths(rng):
    x, y = dependent_pair(rng)
    K = gaussian_kernel_reference(x, 0.7)
    L = gaussian_kernel_reference(y, 2.5)
    got = hsic.hsic(x, y, sigma_x=0.7, sigma_y=2.5)
    np.testing.assert_allclose(got, biased_reference(K, L), rtol=1e-10)


@pytest.mark.parametrize(
    ("n", "duplicate"),
    [(8, False), (9, True)],  # 28 pairs: the median averages two d^2; 36 - 1 non-zero ones
)
def test_median_heuristic_is_grettons_and_ignores_zero_distances(rng, n, duplicate):
    x = rng.standard_normal((n, 3))
    if duplicate:
        x[3] = x[0]  # its zero distance is left out
    np.testing.assert_allclose(hsic.median_heuristic(x), median_reference(x), rtol=1e-12)
    assert float(hsic.median_heuristic(np.ones((5, 2)))) == 1.0
    # sigma = median distance / sqrt(2): the kernel exp(-d^2 / (2 sigma^2)) is exp(-d^2 / m^2)
    x = np.array([[0.0], [1.0], [3.0]])  # distances 1, 2, 3
    np.testing.assert_allclose(hsic.median_heuristic(x), np.sqrt(2.0), rtol=1e-12)


def test_biased_hsic_is_nonnegative(rng):
    for _ in range(20):
        x, y = rng.standard_normal((10, 2)), rng.standard_normal((10, 1))
        assert float(hsic.hsic(x, y)) >= -1e-15


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_hsic_is_zero_when_a_kernel_is_constant(rng, estimator):
    x = rng.standard_normal((10, 2))
    np.testing.assert_allclose(hsic.hsic(x, np.zeros((10, 1)), estimator=estimator), 0, atol=1e-14)
    K = gaussian_kernel_reference(x, 1.0)
    ones = np.ones((10, 10))
    np.testing.assert_allclose(hsic.hsic_from_kernels(K, ones, estimator=estimator), 0, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtypes(rng, dtype):
    x, y = dependent_pair(rng)
    got = hsic.hsic(x.astype(dtype), y.astype(dtype))
    assert got.dtype == dtype
    np.testing.assert_allclose(got, hsic.hsic(x, y), rtol=1e-4 if dtype == np.float32 else 0)


def test_dependence_beats_independence(rng):
    x, y = dependent_pair(rng, n=60)
    assert float(hsic.hsic(x, y)) > float(hsic.hsic(x, rng.permutation(y)))


def test_vmap_over_kernel_batches(rng):
    K = np.stack([gaussian_kernel_reference(rng.standard_normal((6, 2)), 1.0) for _ in range(3)])
    L = gaussian_kernel_reference(rng.standard_normal((6, 2)), 1.0)
    got = jax.vmap(hsic.hsic_from_kernels, in_axes=(0, None))(K, L)
    np.testing.assert_allclose(got, [biased_reference(k, L) for k in K], rtol=1e-10)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_validation(rng):
    x = rng.standard_normal((5, 2))
    with pytest.raises(ValueError, match="same number of paired samples"):
        hsic.hsic(x, x[:4])
    with pytest.raises(ValueError, match="estimator must be one of"):
        hsic.hsic(x, x, estimator="fancy")
    with pytest.raises(ValueError, match="n >= 4"):
        hsic.hsic(x[:3], x[:3], estimator="unbiased")
    with pytest.raises(ValueError, match=r"shape \[n, d\]"):
        hsic.hsic(x[:, 0], x[:, 0])
    with pytest.raises(ValueError, match="square"):
        hsic.hsic_from_kernels(np.ones((3, 4)), np.ones((3, 4)))


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_row_blocks_equal_the_full_kernel_matrices(estimator, rng):
    x = rng.standard_normal((37, 3))
    y = x[:, :2] ** 2 + 0.3 * rng.standard_normal((37, 2))
    sigma_x, sigma_y = float(hsic.median_heuristic(x)), float(hsic.median_heuristic(y))
    full = hsic.hsic_from_kernels(
        hsic.gaussian_kernel(x, sigma_x), hsic.gaussian_kernel(y, sigma_y), estimator=estimator
    )
    for block_size in (1, 5, 37, 1000):  # 5 does not divide 37
        got = hsic.hsic(x, y, estimator=estimator, block_size=block_size)
        np.testing.assert_allclose(got, full, rtol=1e-9, atol=1e-12)


def test_large_n_runs_without_an_n_by_n_matrix(rng):
    n = 6_000  # six row blocks of 1024 x n; never an [n, n] kernel (144 MB in float32)
    x = rng.standard_normal((n, 2)).astype(np.float32)
    y = (x[:, :1] + 0.1 * rng.standard_normal((n, 1))).astype(np.float32)
    dependent = float(hsic.hsic(x, y))
    independent = float(hsic.hsic(x, rng.standard_normal((n, 1)).astype(np.float32)))
    assert dependent > 10 * abs(independent) and np.isfinite(dependent)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("argument", ["x", "y", "K", "L", "median_heuristic"])
def test_nonfinite_input_raises_naming_it(rng, argument, bad, dtype):
    x, y = dependent_pair(rng)
    x, y = x.astype(dtype), y.astype(dtype)
    K = gaussian_kernel_reference(x, 1.0).astype(dtype)
    spoilt = {name: a.copy() for name, a in (("x", x), ("y", y), ("K", K))}
    for a in spoilt.values():
        a[0, 0] = bad
    call = {
        "x": lambda: hsic.hsic(spoilt["x"], y),
        "y": lambda: hsic.hsic(x, spoilt["y"]),
        "K": lambda: hsic.hsic_from_kernels(spoilt["K"], K),
        "L": lambda: hsic.hsic_from_kernels(K, spoilt["K"]),
        "median_heuristic": lambda: hsic.median_heuristic(spoilt["x"]),
    }[argument]
    name = "x" if argument == "median_heuristic" else argument
    with pytest.raises(ValueError, match=f"{name} contains NaN or inf"):
        call()


@pytest.mark.parametrize("sigma", [np.nan, np.inf, 0.0, -1.0])
@pytest.mark.parametrize("argument", ["sigma_x", "sigma_y", "sigma"])
def test_bandwidth_must_be_finite_and_positive(rng, argument, sigma):
    x, y = dependent_pair(rng)
    with pytest.raises(ValueError, match=f"{argument} must be finite and > 0"):
        if argument == "sigma":
            hsic.gaussian_kernel(x, sigma)
        else:
            hsic.hsic(x, y, **{argument: sigma})
