"""MNIST-1D (Greydanus, 2020), generated offline by a transcription of the reference generator."""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from jaxal import check
from jaxal.data._common import split
from jaxal.data._registry import Dataset, register
from jaxal.typing import Key

RAW_TEMPLATES = np.array(
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

_PADDING = (36, 60)
_SCALE_COEFF = 0.4
_MAX_TRANSLATION = 48
_CORR_NOISE_SCALE = 0.25
_CORR_NOISE_SIGMA = 2.0
_IID_NOISE_SCALE = 0.02
_SHEAR_SCALE = 0.75
_LENGTH = 40


def templates() -> Float[Array, "10 T"]:
    """Templates standardised per row, shifted to start (and end) at 0, divided by 6."""
    x = RAW_TEMPLATES - RAW_TEMPLATES.mean(axis=1, keepdims=True)
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


def transform(
    template_T: Float[Array, " T"],
    *,
    padding: Int[ArrayLike, ""],
    scale: Float[ArrayLike, ""],
    shift: Int[ArrayLike, ""],
    corr_eps_L: Float[Array, " L"],
    iid_eps_L: Float[Array, " L"],
    shear: Float[ArrayLike, ""],
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
    corr_noise_L = _gaussian_smooth(_CORR_NOISE_SCALE * corr_eps_L, _CORR_NOISE_SIGMA)
    x_L = jnp.where(is_signal_L, signal_L, corr_noise_L) + _IID_NOISE_SCALE * iid_eps_L
    x_L = x_L - shear * jnp.linspace(-0.5, 0.5, L, dtype=dtype)
    return _interpolate(x_L, jnp.linspace(0.0, L - 1, _LENGTH, dtype=dtype))


def _draws(*, key: Key, num_samples: int, length: int) -> dict[str, Array]:
    """The reference generator's random draws for ``N`` signals of ``L = length`` points."""
    keys = jax.random.split(key, 6)
    N, L, f32 = num_samples, length, jnp.float32
    low, high = _PADDING
    return {
        "padding": jax.random.randint(keys[0], (N,), low, high + 1),
        "scale": 1.0 + _SCALE_COEFF * (jax.random.uniform(keys[1], (N,), f32) - 0.5),
        "shift": jax.random.randint(keys[2], (N,), 0, _MAX_TRANSLATION),
        "corr_eps_L": jax.random.normal(keys[3], (N, L), f32),
        "iid_eps_L": jax.random.normal(keys[4], (N, L), f32),
        "shear": _SHEAR_SCALE * (jax.random.uniform(keys[5], (N,), f32) - 0.5),
    }


@jax.jit
def _signals(y_N: Int[Array, " N"], *, key: Key) -> Float[Array, "N 40"]:
    """MNIST-1D signals for the labels ``y``, standardised by their global mean and std."""
    template_N_T = templates()[y_N]
    N, T = template_N_T.shape
    draws = _draws(key=key, num_samples=N, length=T + _PADDING[1])
    x_N_40 = jax.vmap(lambda template_T, draw: transform(template_T, **draw))(template_N_T, draws)
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
    x_all = _signals(y_all, key=signal_key)
    return Dataset(*split(x_all, y_all, key=split_key, test_fraction=test_fraction), num_classes=10)
