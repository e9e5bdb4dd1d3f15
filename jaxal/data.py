"""Offline classification datasets for active-learning experiments (no network access).

Features are ``[N, D]`` float32 in ``[0, 1]`` (before any added noise), labels ``[N]`` int32.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int
from sklearn.datasets import load_digits

from jaxal.typing import Key


class Dataset(NamedTuple):
    """A pool / test split: ``x_pool [N, D]``, ``y_pool [N]``, ``x_test [M, D]``, ``y_test [M]``."""

    x_pool: Float[Array, "N D"]
    y_pool: Int[Array, "N"]
    x_test: Float[Array, "M D"]
    y_test: Int[Array, "M"]
    num_classes: int


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction!r}")


def digits(*, key: Key, test_fraction: float = 0.25) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), shuffled and split.

    Pixels (0..16) are scaled to ``[0, 1]``; ``D = 64``.

    Args:
      key: PRNG key for the shuffle that decides the split.
      test_fraction: share of the points held out as the test set, in ``(0, 1)``.

    Returns:
      A :class:`Dataset` with ``round(test_fraction * 1797)`` test points and the rest as pool.
    """
    _check_fraction(test_fraction)
    bunch = load_digits()
    x_all = jnp.asarray(bunch.data, dtype=jnp.float32) / 16.0
    y_all = jnp.asarray(bunch.target, dtype=jnp.int32)
    order = jax.random.permutation(key, x_all.shape[0])
    num_test = round(test_fraction * x_all.shape[0])
    test, pool = order[:num_test], order[num_test:]
    return Dataset(x_all[pool], y_all[pool], x_all[test], y_all[test], num_classes=10)


def repeated(
    x: Float[Array, "N D"], y: Int[Array, "N"], *, key: Key, copies: int, noise_std: float = 0.1
) -> tuple[Float[Array, "N*R D"], Int[Array, "N*R"]]:
    """Repeat every point ``copies`` times with isotropic Gaussian noise (Repeated-MNIST).

    Kirsch, van Amersfoort & Gal, "BatchBALD", NeurIPS 2019, Sec. 4.1: a pool with many
    near-duplicates, where top-k BALD wastes its batch on copies of one informative point.
    Copy ``r`` of point ``n`` sits at row ``n * copies + r`` and is ``x[n] + noise_std * eps``,
    ``eps ~ N(0, I)`` (not clipped); its label is ``y[n]``.

    Args:
      x: ``[N, D]`` features.
      y: ``[N]`` labels.
      key: PRNG key for the noise.
      copies: ``R >= 1`` copies per point.
      noise_std: standard deviation of the added noise (the paper uses 0.1), ``>= 0``.

    Returns:
      ``(x_rep [N * R, D], y_rep [N * R])``.
    """
    if not (isinstance(copies, int) and copies >= 1):
        raise ValueError(f"copies must be an int >= 1; got {copies!r}")
    if not noise_std >= 0:
        raise ValueError(f"noise_std must be >= 0; got {noise_std!r}")
    x_rep = jnp.repeat(x, copies, axis=0)
    noise = jax.random.normal(key, x_rep.shape, x_rep.dtype)
    return x_rep + noise_std * noise, jnp.repeat(y, copies, axis=0)
