"""Tests for jaxal.data: offline datasets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxal import data


def test_digits_shapes_dtypes_ranges(key):
    ds = data.digits(key=key, test_fraction=0.25)
    assert ds.x_pool.shape == (1797 - 449, 64) and ds.x_test.shape == (449, 64)
    assert ds.y_pool.shape == (1348,) and ds.y_test.shape == (449,)
    assert ds.x_pool.dtype == jnp.float32 and ds.y_pool.dtype == jnp.int32
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
