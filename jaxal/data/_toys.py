"""Generated toys: 2-D Gaussian blobs with a rare class and a heteroscedastic 1-D sine."""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jaxal import check
from jaxal.data._common import split
from jaxal.data._registry import Dataset, RegressionDataset, register
from jaxal.typing import Key


def _imbalanced_counts(num_samples: int, num_classes: int, rare_fraction: float) -> list[int]:
    """Points per class: ``round(rare_fraction * num_samples)`` for the last class, the rest
    shared as evenly as possible among the others (lower labels take the remainder)."""
    num_rare = round(rare_fraction * num_samples)
    if num_rare < 1 or num_rare > num_samples - (num_classes - 1):
        raise ValueError(
            f"rare_fraction * num_samples must round to a count in [1, num_samples - "
            f"num_classes + 1]; got {rare_fraction!r} * {num_samples!r}"
        )
    common, extra = divmod(num_samples - num_rare, num_classes - 1)
    return [common + (c < extra) for c in range(num_classes - 1)] + [num_rare]


@register("imbalanced-blobs", task="classification")
def imbalanced_blobs(
    *,
    key: Key,
    num_samples: int = 1000,
    num_classes: int = 3,
    rare_fraction: float = 0.05,
    std: float = 0.75,
    test_fraction: float = 0.25,
) -> Dataset:
    """Isotropic Gaussian blobs in 2-D where the last class is rare.

    Class ``c`` is centred at ``2 (cos(2 pi c / C), sin(2 pi c / C))`` with standard deviation
    ``std``. Class ``C - 1`` gets ``round(rare_fraction * num_samples)`` points (5% by default)
    and the others share the rest evenly: by default 475, 475 and 50 points. The pool / test
    split is random, not stratified, so each side holds about ``rare_fraction`` rare points.

    Args:
      key: PRNG key, split into the key of the noise and the key of the split.
      num_samples: total number of points (pool plus test).
      num_classes: ``C >= 2``.
      rare_fraction: share of the points in the rare class ``C - 1``, in ``(0, 1)``.
      std: standard deviation of every blob, ``>= 0``.
      test_fraction: share held out as the test set, in ``(0, 1)``.

    Returns:
      A :class:`Dataset` with ``D = 2`` and ``C = num_classes``.
    """
    check.key(key)
    check.integer(num_samples, "num_samples")
    check.integer(num_classes, "num_classes", low=2)
    check.fraction(rare_fraction, "rare_fraction")
    check.nonnegative(std, "std")
    counts = _imbalanced_counts(num_samples, num_classes, rare_fraction)
    noise_key, split_key = jax.random.split(key)
    y_all = jnp.asarray(np.repeat(np.arange(num_classes), counts), dtype=jnp.int32)
    angle_C = 2.0 * np.pi * np.arange(num_classes) / num_classes
    centre_C_2 = jnp.asarray(
        2.0 * np.stack([np.cos(angle_C), np.sin(angle_C)], axis=1), jnp.float32
    )
    noise = jax.random.normal(noise_key, (num_samples, 2), jnp.float32)
    x_all = centre_C_2[y_all] + std * noise
    return Dataset(
        *split(x_all, y_all, key=split_key, test_fraction=test_fraction), num_classes=num_classes
    )


def _noisy_sine(
    x_N: Float[Array, " N"], *, key: Key, noise_base: float, noise_slope: float
) -> Float[Array, " N"]:
    """``sin(x) + (noise_base + noise_slope |x|) eps`` with ``eps ~ N(0, 1)``."""
    eps = jax.random.normal(key, x_N.shape, x_N.dtype)
    return jnp.sin(x_N) + (noise_base + noise_slope * jnp.abs(x_N)) * eps


@register("sine", task="regression")
def sine(
    *,
    key: Key,
    num_samples: int = 256,
    num_test: int = 256,
    low: float = -4.0,
    high: float = 4.0,
    noise_base: float = 0.05,
    noise_slope: float = 0.1,
) -> RegressionDataset:
    """Heteroscedastic 1-D sine: ``y = sin(x) + (noise_base + noise_slope |x|) eps``.

    ``eps ~ N(0, 1)``, so the noise standard deviation grows linearly with ``|x|`` from 0.05 at
    the centre to 0.45 at the edges by default. Pool inputs are drawn uniformly from
    ``[low, high]``; test inputs are an evenly spaced grid covering ``[low, high]`` (ends
    included), with targets drawn from the same noise model.

    Args:
      key: PRNG key, split into the keys of the pool inputs, pool noise and test noise.
      num_samples: pool size ``N >= 1``.
      num_test: test size ``M >= 1``.
      low: lower end of the input range.
      high: upper end of the input range, ``> low``.
      noise_base: noise standard deviation at ``x = 0``, ``>= 0``.
      noise_slope: growth of the noise standard deviation per unit of ``|x|``, ``>= 0``.

    Returns:
      A :class:`RegressionDataset` with ``x_pool [N, 1]``, ``x_test [M, 1]``.
    """
    check.key(key)
    check.integer(num_samples, "num_samples")
    check.integer(num_test, "num_test")
    if not low < high:
        raise ValueError(f"low must be < high; got low={low!r}, high={high!r}")
    check.nonnegative(noise_base, "noise_base")
    check.nonnegative(noise_slope, "noise_slope")
    x_key, pool_key, test_key = jax.random.split(key, 3)
    x_pool_N = jax.random.uniform(x_key, (num_samples,), jnp.float32, low, high)
    x_test_M = jnp.linspace(low, high, num_test, dtype=jnp.float32)
    noise = {"noise_base": noise_base, "noise_slope": noise_slope}
    return RegressionDataset(
        x_pool_N[:, None],
        _noisy_sine(x_pool_N, key=pool_key, **noise),
        x_test_M[:, None],
        _noisy_sine(x_test_M, key=test_key, **noise),
    )
