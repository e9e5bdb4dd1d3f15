"""Repeated pools (BatchBALD's Repeated-MNIST): every point several times with noise."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from jaxal import check
from jaxal.data._registry import Dataset
from jaxal.typing import Key


def repeated(
    x: Float[Array, "N D"], y: Int[Array, " N"], *, key: Key, copies: int, noise_std: float = 0.1
) -> tuple[Float[Array, "NR D"], Int[Array, " NR"]]:
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
    check.key(key)
    check.integer(copies, "copies")
    check.nonnegative(noise_std, "noise_std")
    x_rep = jnp.repeat(x, copies, axis=0)
    noise = jax.random.normal(key, x_rep.shape, x_rep.dtype)
    return x_rep + noise_std * noise, jnp.repeat(y, copies, axis=0)


def with_repeated_pool(
    base, *, key: Key, copies: int, noise_std: float, test_fraction: float
) -> Dataset:
    """``base(key=..., test_fraction=...)`` with :func:`repeated` applied to its pool only."""
    split_key, noise_key = jax.random.split(key)
    ds = base(key=split_key, test_fraction=test_fraction)
    x_pool, y_pool = repeated(
        ds.x_pool, ds.y_pool, key=noise_key, copies=copies, noise_std=noise_std
    )
    return ds._replace(x_pool=x_pool, y_pool=y_pool)
