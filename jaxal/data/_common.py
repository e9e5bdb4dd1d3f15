"""The split and standardisation every dataset shares."""

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxal import check
from jaxal.data._registry import RegressionDataset
from jaxal.typing import Key


def split(
    x: Float[Array, "P D"], y: Array, *, key: Key, test_fraction: float
) -> tuple[Array, Array, Array, Array]:
    """Shuffle into ``(x_pool, y_pool, x_test, y_test)`` with ``round(test_fraction * P)`` test."""
    check.fraction(test_fraction, "test_fraction")
    return _shuffle_split(x, y, key=key, num_test=round(test_fraction * x.shape[0]))


@functools.partial(jax.jit, static_argnames="num_test")
def _shuffle_split(
    x: Float[Array, "P D"], y: Array, *, key: Key, num_test: int
) -> tuple[Array, Array, Array, Array]:
    order = jax.random.permutation(key, x.shape[0])
    test, pool = order[:num_test], order[num_test:]
    return x[pool], y[pool], x[test], y[test]


def numpy_seed(key: Key) -> int:
    """A 32-bit seed for NumPy / scikit-learn generators, derived from ``key``."""
    return int(jax.random.bits(key, (), jnp.uint32))


def standardise(pool: Array, test: Array) -> tuple[Array, Array]:
    """Centre and scale both along axis 0 with the pool's mean and standard deviation only."""
    mean, std = pool.mean(axis=0, keepdims=True), pool.std(axis=0, keepdims=True)
    return (pool - mean) / std, (test - mean) / std


def standardised_split(
    x: Float[Array, "P D"], y: Float[Array, " P"], *, key: Key, test_fraction: float
) -> RegressionDataset:
    """:func:`split` into pool and test, then :func:`standardise` the features and the
    targets with the pool's statistics only, so the test set leaks nothing into them."""
    x_pool, y_pool, x_test, y_test = split(x, y, key=key, test_fraction=test_fraction)
    x_pool, x_test = standardise(x_pool, x_test)
    y_pool, y_test = standardise(y_pool, y_test)
    return RegressionDataset(x_pool, y_pool, x_test, y_test)
