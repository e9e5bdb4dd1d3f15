r"""The Hilbert-Schmidt independence criterion (Gretton et al., 2005) with Gaussian kernels.

For paired samples ``x [n, dx]`` and ``y [n, dy]`` with kernel matrices ``K`` and ``L``,
``H = I - 11^T / n``:

* **biased** (Gretton et al., 2005):
  :math:`\mathrm{HSIC}_b = \frac{1}{n^2} \operatorname{tr}(K H L H)`, always ``>= 0``;
* **unbiased** (Song et al., JMLR 2012), with :math:`\tilde K, \tilde L` the kernels with
  zeroed diagonals and ``n >= 4``:

  .. math::
      \mathrm{HSIC}_u = \frac{1}{n(n-3)} \Big[\operatorname{tr}(\tilde K \tilde L)
        + \frac{1^T \tilde K 1 \; 1^T \tilde L 1}{(n-1)(n-2)}
        - \frac{2}{n-2} 1^T \tilde K \tilde L 1\Big].

Both are ``O(n^2)`` once the kernel matrices exist (``tr(K H L H)`` is the sum of the
elementwise product of the doubly centred ``K`` with ``L``). Both are 0 when either kernel
is constant. :func:`hsic_from_kernels` takes kernel matrices directly (ICAL uses it).
"""

from functools import partial
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from jaxal import check

Estimator = Literal["biased", "unbiased"]

__all__ = ["Estimator", "gaussian_kernel", "hsic", "hsic_from_kernels", "median_heuristic"]


def _squared_distances(a_n_D: Array, b_m_D: Array) -> Array:
    """``[n, m]`` squared Euclidean distances from the Gram form, clipped at 0.

    ``||a||^2 + ||b||^2 - 2 a.b`` needs no ``[n, m, D]`` intermediate; rounding can make it
    slightly negative (clipped) or leave ~1e-7 on the diagonal of ``a = b``.
    """
    a2_n = jnp.sum(a_n_D**2, axis=-1)
    b2_m = jnp.sum(b_m_D**2, axis=-1)
    gram_n_m = jnp.einsum("nd,md->nm", a_n_D, b_m_D, precision=jax.lax.Precision.HIGHEST)
    return jnp.maximum(a2_n[:, None] + b2_m[None, :] - 2.0 * gram_n_m, 0.0)


BANDWIDTH = " (a kernel bandwidth, e.g. median_heuristic(x))"

MEDIAN_POINTS = 2048
"""The median heuristic uses at most this many (evenly spaced) rows: ``O(MEDIAN_POINTS^2)``."""


def median_heuristic(x: Float[ArrayLike, "n D"]) -> Float[Array, ""]:
    r"""Gretton's median heuristic: :math:`\sigma = \sqrt{\operatorname{median}(d^2) / 2}`.

    ``d^2`` runs over the non-zero squared Euclidean distances between the rows of ``x``, so
    the kernel :math:`\exp(-\|a - b\|^2 / (2 \sigma^2))` is :math:`\exp(-\|a - b\|^2 /
    \operatorname{median}(d^2))`. This is the rule of Gretton's reference HSIC code
    (``hsicTestGamma.m``, Gretton 2007: ``params.sigx = sqrt(0.5*median(dists(dists>0)))``,
    "rbf_dot has factor of two in kernel"), which takes at most the first 100 rows; here at
    most ``MEDIAN_POINTS`` evenly spaced rows are used. Zero distances (the diagonal and
    duplicated rows) are left out as there; each unordered pair counts twice, which leaves
    the median unchanged. When every distance is 0 (constant ``x``) it returns 1 (any
    bandwidth gives a constant kernel). ICAL does not use it: the ICAL authors' code has no
    median heuristic (its label kernels are a fixed rational-quadratic mixture,
    :mod:`jaxal.select._ical`).
    """
    return _median_heuristic(_check_samples(x, "x"))


def _median_heuristic(x: Array) -> Array:
    x = x[:: -(-x.shape[0] // MEDIAN_POINTS)]
    sq_distance_n_n = jnp.where(jnp.eye(x.shape[0], dtype=bool), 0.0, _squared_distances(x, x))
    median_sq = jnp.nanmedian(jnp.where(sq_distance_n_n > 0, sq_distance_n_n, jnp.nan))
    return jnp.where(jnp.isnan(median_sq), jnp.ones_like(median_sq), jnp.sqrt(0.5 * median_sq))


def _gaussian(a_n_D: Array, b_m_D: Array, sigma: Array) -> Array:
    return jnp.exp(-_squared_distances(a_n_D, b_m_D) / (2 * sigma**2))


def gaussian_kernel(x: Float[ArrayLike, "n D"], sigma: float | Array) -> Float[Array, "n n"]:
    r"""Gaussian kernel matrix :math:`k(a, b) = \exp(-\|a - b\|^2 / (2 \sigma^2))`.

    ``sigma`` must be finite and ``> 0`` (checked when concrete), e.g. :func:`median_heuristic`.
    """
    x = _check_samples(x, "x")
    K_n_n = _gaussian(x, x, check.scalar(sigma, "sigma", dtype=x.dtype, what=BANDWIDTH))
    return jnp.where(jnp.eye(x.shape[0], dtype=bool), 1.0, K_n_n)


class _Statistics(NamedTuple):
    """What both estimators need from ``K`` and ``L``: ``sum K*L``, row sums, diagonals."""

    sum_KL: Array
    row_K_n: Array
    row_L_n: Array
    diag_K_n: Array
    diag_L_n: Array


def _statistics(K_n_n: Array, L_n_n: Array) -> _Statistics:
    return _Statistics(
        jnp.sum(K_n_n * L_n_n),
        jnp.sum(K_n_n, axis=1),
        jnp.sum(L_n_n, axis=1),
        jnp.diagonal(K_n_n),
        jnp.diagonal(L_n_n),
    )


def _biased(t: _Statistics) -> Array:
    r"""``tr(KHLH) / n^2`` expanded: :math:`\frac{1}{n^2}[\sum K \circ L
    - \frac{2}{n} (K1)^T (L1) + \frac{1}{n^2} 1^TK1 \, 1^TL1]`."""
    n = t.row_K_n.shape[0]
    cross = t.row_K_n @ t.row_L_n
    return (t.sum_KL - 2.0 / n * cross + jnp.sum(t.row_K_n) * jnp.sum(t.row_L_n) / n**2) / n**2


def _unbiased(t: _Statistics) -> Array:
    n = t.row_K_n.shape[0]
    row_Kt_n, row_Lt_n = t.row_K_n - t.diag_K_n, t.row_L_n - t.diag_L_n  # zeroed diagonals
    trace = t.sum_KL - t.diag_K_n @ t.diag_L_n  # tr(Kt Lt), both symmetric
    product = jnp.sum(row_Kt_n) * jnp.sum(row_Lt_n) / ((n - 1) * (n - 2))
    cross = row_Kt_n @ row_Lt_n  # 1^T Kt Lt 1
    return (trace + product - 2.0 / (n - 2) * cross) / (n * (n - 3))


_ESTIMATORS = {"biased": _biased, "unbiased": _unbiased}


def _check_estimator(estimator: str, n: int) -> None:
    if estimator not in _ESTIMATORS:
        raise ValueError(f"estimator must be one of {sorted(_ESTIMATORS)}; got {estimator!r}")
    if estimator == "unbiased" and n < 4:
        raise ValueError(f"the unbiased estimator needs n >= 4 samples; got n = {n}")


def _check_samples(x: ArrayLike, name: str) -> Array:
    """``x`` as floating ``[n, d]`` samples, ``n >= 1``, finite (checked when concrete)."""
    x = check.float_array(x, name)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape [n, d] with n >= 1; got {x.shape}")
    return check.finite(x, name, on_trace="skip")


def _check_kernel(K: ArrayLike, name: str) -> Array:
    """``K`` as a floating square ``[n, n]`` matrix, finite (checked when concrete)."""
    K = check.float_array(K, name)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"{name} must be a square [n, n] kernel matrix; got {K.shape}")
    return check.finite(K, name, on_trace="skip")


@partial(jax.jit, static_argnames=("estimator",))
def _hsic_from_kernels(K_n_n: Array, L_n_n: Array, *, estimator: str) -> Array:
    return _ESTIMATORS[estimator](_statistics(K_n_n, L_n_n))


def hsic_from_kernels(
    K: Float[ArrayLike, "n n"], L: Float[ArrayLike, "n n"], *, estimator: Estimator = "biased"
) -> Float[Array, ""]:
    r"""HSIC from two symmetric ``[n, n]`` kernel matrices over the same ``n`` samples.

    Args:
      K, L: kernel matrices of the two variables.
      estimator: ``"biased"`` (:math:`\frac{1}{n^2}\operatorname{tr}(KHLH)`, ``>= 0`` for
        positive semi-definite kernels) or ``"unbiased"`` (Song et al., 2012; ``n >= 4``).

    Returns:
      A scalar.
    """
    K, L = _check_kernel(K, "K"), _check_kernel(L, "L")
    if K.shape != L.shape:
        raise ValueError(f"K and L must have the same shape; got {K.shape} and {L.shape}")
    _check_estimator(estimator, K.shape[0])
    dtype = jnp.result_type(K.dtype, L.dtype)
    return _hsic_from_kernels(K.astype(dtype), L.astype(dtype), estimator=estimator)


def hsic(
    x: Float[ArrayLike, "n Dx"],
    y: Float[ArrayLike, "n Dy"],
    *,
    sigma_x: float | None = None,
    sigma_y: float | None = None,
    estimator: Estimator = "biased",
    block_size: int = 1024,
) -> Float[Array, ""]:
    r"""HSIC between paired samples with Gaussian kernels.

    .. math:: k(a, b) = \exp\!\big(-\|a - b\|^2 / (2 \sigma^2)\big),

    with ``sigma`` the :func:`median_heuristic` (Gretton's :math:`\sqrt{\operatorname{median}
    (d^2) / 2}` over the non-zero squared pairwise distances) when not given. The kernel
    matrices are computed once, in ``[block_size, n]`` row blocks that are reduced at once to
    the estimators' statistics (``sum K*L`` and the row sums), so memory is
    ``O(block_size * n)``, never ``O(n^2)``.

    Args:
      x: ``[n, dx]`` samples of the first variable.
      y: ``[n, dy]`` paired samples of the second.
      sigma_x, sigma_y: kernel bandwidths; ``None`` means the median heuristic.
      estimator: ``"biased"`` or ``"unbiased"`` (see the module docstring).
      block_size: rows of the kernel matrices held at once.

    Returns:
      A scalar; ``0`` when either variable is constant.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.linspace(0.0, 1.0, 8)[:, None]
      >>> abs(float(hsic(x, jnp.zeros((8, 1))))) < 1e-6  # a constant y is independent of x
      True
    """
    x, y = _check_samples(x, "x"), _check_samples(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must hold the same number of paired samples; got {x.shape[0]} and "
            f"{y.shape[0]}"
        )
    _check_estimator(estimator, x.shape[0])
    block_size = check.integer(block_size, "block_size")
    dtype = jnp.result_type(x.dtype, y.dtype)
    bandwidth_x = _median_heuristic(x) if sigma_x is None else sigma_x
    bandwidth_y = _median_heuristic(y) if sigma_y is None else sigma_y
    sigmas = (
        check.scalar(bandwidth_x, "sigma_x", dtype=dtype, what=BANDWIDTH),
        check.scalar(bandwidth_y, "sigma_y", dtype=dtype, what=BANDWIDTH),
    )
    statistics = _blocked_statistics(
        x.astype(dtype), y.astype(dtype), *sigmas, block_size=min(block_size, x.shape[0])
    )
    return _ESTIMATORS[estimator](statistics)


@partial(jax.jit, static_argnames=("block_size",))
def _blocked_statistics(x_n_Dx, y_n_Dy, sigma_x, sigma_y, *, block_size):
    """The estimators' statistics from ``[block_size, n]`` row blocks of ``K`` and ``L``."""
    n = x_n_Dx.shape[0]
    num_blocks = -(-n // block_size)
    pad = num_blocks * block_size - n
    rows_x = jnp.pad(x_n_Dx, ((0, pad), (0, 0))).reshape(num_blocks, block_size, -1)
    rows_y = jnp.pad(y_n_Dy, ((0, pad), (0, 0))).reshape(num_blocks, block_size, -1)
    valid = (jnp.arange(num_blocks * block_size) < n).reshape(num_blocks, block_size)

    def block(args):
        bx_B_Dx, by_B_Dy, valid_B = args
        K_B_n = _gaussian(bx_B_Dx, x_n_Dx, sigma_x) * valid_B[:, None]
        L_B_n = _gaussian(by_B_Dy, y_n_Dy, sigma_y) * valid_B[:, None]
        return jnp.sum(K_B_n * L_B_n), jnp.sum(K_B_n, axis=1), jnp.sum(L_B_n, axis=1)

    sum_KL_b, row_K_b_B, row_L_b_B = jax.lax.map(block, (rows_x, rows_y, valid))
    # exp(0) = 1 on the diagonal of a Gaussian kernel; the Gram form leaves ~1e-7 there.
    ones_n = jnp.ones((n,), x_n_Dx.dtype)
    return _Statistics(
        jnp.sum(sum_KL_b),
        row_K_b_B.reshape(-1)[:n],
        row_L_b_B.reshape(-1)[:n],
        ones_n,
        ones_n,
    )
