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
from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

Estimator = Literal["biased", "unbiased"]

__all__ = ["Estimator", "gaussian_kernel", "hsic", "hsic_from_kernels", "median_heuristic"]


def _squared_distances(x_n_D: Array) -> Array:
    """``[n, n]`` squared Euclidean distances, exactly 0 on the diagonal and never negative."""
    diff_n_n_D = x_n_D[:, None, :] - x_n_D[None, :, :]
    return jnp.sum(diff_n_n_D**2, axis=-1)


def median_heuristic(x: Float[ArrayLike, "n D"]) -> Float[Array, ""]:
    """Median of the non-zero pairwise Euclidean distances between the rows of ``x``.

    Zero distances (the diagonal and duplicated rows) are left out, as in the ICAL authors'
    code; each unordered pair counts twice, which leaves the median unchanged. When every
    distance is 0 (constant ``x``) it returns 1 (any bandwidth gives a constant kernel).
    """
    x = _check_samples(x, "x")
    distance_n_n = jnp.sqrt(_squared_distances(x))
    median = jnp.nanmedian(jnp.where(distance_n_n > 0, distance_n_n, jnp.nan))
    return jnp.where(jnp.isnan(median), jnp.ones_like(median), median)


def gaussian_kernel(x: Float[ArrayLike, "n D"], sigma: float | Array) -> Float[Array, "n n"]:
    r"""Gaussian kernel matrix :math:`k(a, b) = \exp(-\|a - b\|^2 / (2 \sigma^2))`."""
    x = _check_samples(x, "x")
    return jnp.exp(-_squared_distances(x) / (2 * jnp.asarray(sigma, x.dtype) ** 2))


def _centred(K_n_n: Array) -> Array:
    """``H K H``: subtract row and column means, add back the grand mean."""
    return (
        K_n_n
        - jnp.mean(K_n_n, axis=0, keepdims=True)
        - jnp.mean(K_n_n, axis=1, keepdims=True)
        + jnp.mean(K_n_n)
    )


def _biased(K_n_n: Array, L_n_n: Array) -> Array:
    n = K_n_n.shape[0]
    return jnp.sum(_centred(K_n_n) * L_n_n) / n**2


def _unbiased(K_n_n: Array, L_n_n: Array) -> Array:
    n = K_n_n.shape[0]
    off_diagonal = 1.0 - jnp.eye(n, dtype=K_n_n.dtype)
    Kt_n_n, Lt_n_n = K_n_n * off_diagonal, L_n_n * off_diagonal
    trace = jnp.sum(Kt_n_n * Lt_n_n)  # tr(Kt Lt), both symmetric
    product = jnp.sum(Kt_n_n) * jnp.sum(Lt_n_n) / ((n - 1) * (n - 2))
    cross = jnp.sum(Kt_n_n, axis=0) @ jnp.sum(Lt_n_n, axis=1)  # 1^T Kt Lt 1
    return (trace + product - 2.0 / (n - 2) * cross) / (n * (n - 3))


_ESTIMATORS = {"biased": _biased, "unbiased": _unbiased}


def _check_estimator(estimator: str, n: int) -> None:
    if estimator not in _ESTIMATORS:
        raise ValueError(f"estimator must be one of {sorted(_ESTIMATORS)}; got {estimator!r}")
    if estimator == "unbiased" and n < 4:
        raise ValueError(f"the unbiased estimator needs n >= 4 samples; got n = {n}")


def _check_samples(x: ArrayLike, name: str) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating dtype; got {x.dtype}")
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape [n, d] with n >= 1; got {x.shape}")
    return x


def _check_kernel(K: ArrayLike, name: str) -> Array:
    K = jnp.asarray(K)
    if not jnp.issubdtype(K.dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating dtype; got {K.dtype}")
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"{name} must be a square [n, n] kernel matrix; got {K.shape}")
    return K


@partial(jax.jit, static_argnames=("estimator",))
def _hsic_from_kernels(K_n_n: Array, L_n_n: Array, *, estimator: str) -> Array:
    return _ESTIMATORS[estimator](K_n_n, L_n_n)


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
) -> Float[Array, ""]:
    r"""HSIC between paired samples with Gaussian kernels.

    .. math:: k(a, b) = \exp\!\big(-\|a - b\|^2 / (2 \sigma^2)\big),

    with ``sigma`` the :func:`median_heuristic` (median of the non-zero pairwise distances)
    when not given. Each kernel matrix is computed once.

    Args:
      x: ``[n, dx]`` samples of the first variable.
      y: ``[n, dy]`` paired samples of the second.
      sigma_x, sigma_y: kernel bandwidths; ``None`` means the median heuristic.
      estimator: ``"biased"`` or ``"unbiased"`` (see the module docstring).

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
    dtype = jnp.result_type(x.dtype, y.dtype)
    sigma_x = median_heuristic(x) if sigma_x is None else sigma_x
    sigma_y = median_heuristic(y) if sigma_y is None else sigma_y
    K_n_n = gaussian_kernel(x.astype(dtype), sigma_x)
    L_n_n = gaussian_kernel(y.astype(dtype), sigma_y)
    return _hsic_from_kernels(K_n_n, L_n_n, estimator=estimator)
