r"""EV-GP (Hemachandra, Dai, Singh, Ng, Low, ICML 2023): training-free greedy variance reduction.

A GP with a neural kernel :math:`\Theta` (the network's infinite-width NTK at initialisation)
and observation noise :math:`s^2`. With :math:`\Theta_L` its posterior covariance given the
labelled and already selected points, adding :math:`x` lowers the summed posterior variance
over the targets :math:`X_T` by

.. math:: \Delta(x) = \sum_{t \in X_T} \frac{\Theta_L(t, x)^2}{\Theta_L(x, x) + s^2},

and the greedy step adds :math:`\arg\max_x \Delta(x)`, then updates the posterior by the
rank-one formula :math:`\Theta_{L+x}(a, c) = \Theta_L(a, c) - v(a) v(c)`,
:math:`v(\cdot) = \Theta_L(\cdot, x) / \sqrt{\Theta_L(x, x) + s^2}`. Only ``[N, M]``
cross-covariances and ``[N]`` variances are stored; the pool column
:math:`\Theta_L(\text{pool}, x)` of the chosen point is recomputed from the kernel callable
at each step (``O(N (L + b))``), so nothing is ``[N, N]``. A step costs ``O(N M)``.
"""

from functools import partial

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_factor, solve_triangular
from jaxtyping import Array, ArrayLike, Float, Int

from jaxal import check, memory
from jaxal.kernels import Kernel, diagonal
from jaxal.typing import Available

DEFAULT_NOISE = 1e-3
"""The authors' observation-noise variance :math:`s^2`."""


@partial(jax.jit, static_argnames=("kernel", "b"))
def _ev_gp(
    kernel: Kernel,
    x_pool_N_D: Array,
    x_target_M_D: Array,
    x_labelled_L_D: Array | None,
    available_N: Array,
    noise: Array,
    *,
    b: int,
) -> Array:
    N = x_pool_N_D.shape[0]
    cross_N_M = kernel(x_pool_N_D, x_target_M_D)
    var_N = diagonal(kernel, x_pool_N_D)
    dtype = cross_N_M.dtype
    noise = jnp.asarray(noise, dtype)
    if x_labelled_L_D is None:
        whitened_L_N = jnp.zeros((0, N), dtype)
    else:
        L = x_labelled_L_D.shape[0]
        gram_L_L = kernel(x_labelled_L_D, x_labelled_L_D) + noise * jnp.eye(L, dtype=dtype)
        chol_L_L, _ = cho_factor(gram_L_L, lower=True)
        whitened_L_N = solve_triangular(chol_L_L, kernel(x_labelled_L_D, x_pool_N_D), lower=True)
        whitened_L_M = solve_triangular(chol_L_L, kernel(x_labelled_L_D, x_target_M_D), lower=True)
        cross_N_M = cross_N_M - whitened_L_N.T @ whitened_L_M
        var_N = var_N - jnp.sum(whitened_L_N**2, axis=0)

    def step(i, carry):
        cross_N_M, var_N, updates_B_N, available_N, indices_B = carry
        var_N = jnp.maximum(var_N, 0.0)
        gain_N = jnp.sum(cross_N_M**2, axis=1) / (var_N + noise)
        new = jnp.argmax(jnp.where(available_N, gain_N, -jnp.inf))
        prior_column_N = kernel(x_pool_N_D, x_pool_N_D[new][None])[:, 0]
        column_N = (
            prior_column_N
            - whitened_L_N.T @ whitened_L_N[:, new]
            - updates_B_N.T @ updates_B_N[:, new]
        )
        scale = jax.lax.rsqrt(var_N[new] + noise)
        update_N = column_N * scale
        cross_N_M = cross_N_M - update_N[:, None] * (cross_N_M[new] * scale)[None, :]
        return (
            cross_N_M,
            var_N - update_N**2,
            updates_B_N.at[i].set(update_N),
            available_N.at[new].set(False),
            indices_B.at[i].set(new.astype(jnp.int32)),
        )

    carry = (cross_N_M, var_N, jnp.zeros((b, N), dtype), available_N, jnp.zeros((b,), jnp.int32))
    return jax.lax.fori_loop(0, b, step, carry)[-1]


def ev_gp_words(N: int, M: int, b: int, L: int = 0) -> int:
    """Working memory of :func:`ev_gp` in numbers: ``3 N M + (b + 2 L + 8) N + 2 L M + 2 L^2
    + 256`` (the ``[N, M]`` cross-covariance, its conditioning and update, the ``[b, N]``
    updates, the ``[L, N]`` and ``[L, M]`` whitened kernels and the Cholesky factor)."""
    return 3 * N * M + (b + 2 * L + 8) * N + 2 * L * M + 2 * L * L + 256


def _features(x: ArrayLike, name: str, num_features: int | None = None) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating dtype; got {x.dtype}")
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape [n, D] with n >= 1; got {x.shape}")
    if num_features is not None and x.shape[1] != num_features:
        raise ValueError(f"{name} must have D = {num_features} features (as x_pool); got {x.shape}")
    return x


def ev_gp(
    kernel: Kernel,
    x_pool: Float[ArrayLike, "N D"],
    x_target: Float[ArrayLike, "M D"],
    b: int,
    *,
    noise: float = DEFAULT_NOISE,
    x_labelled: Float[ArrayLike, "L D"] | None = None,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""Greedy EV-GP batch: minimise the mean GP posterior variance over ``x_target``.

    Conditions the GP with kernel ``kernel`` and noise variance ``noise`` on ``x_labelled``
    once (a Cholesky solve), then adds ``b`` points greedily, each maximising
    :math:`\sum_t \Theta_L(t, x)^2 / (\Theta_L(x, x) + s^2)` (module docstring) among the
    available points not chosen yet. Compiled (``lax.fori_loop``); jitted with ``kernel``
    static, so reuse one kernel object to avoid recompiling. Memory ``O(N (M + b + L))``,
    time ``O(b N M)`` plus the kernel evaluations. With the authors' setting, ``kernel`` is
    :func:`jaxal.kernels.infinite_width` ``(3)`` (the NTK of a 2-hidden-layer ReLU MLP) and
    ``x_target`` is the pool (subsampled to at most 10,000 points).

    Args:
      kernel: ``kernel(x1 [n1, D], x2 [n2, D]) -> [n1, n2]``, e.g. from :mod:`jaxal.kernels`.
      x_pool: ``[N, D]`` candidate points.
      x_target: ``[M, D]`` points whose mean posterior variance is minimised.
      b: batch size, static Python int with ``1 <= b <= #available``.
      noise: observation-noise variance :math:`s^2 > 0` (authors: ``1e-3``).
      x_labelled: optional ``[L, D]`` labelled points the GP is conditioned on first.
      available: optional bool ``[N]`` mask of selectable points.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``;
        :mod:`jaxal.memory`), modelled as ``3 N M + (b + 2 L + 8) N + 2 L M + 2 L^2 + 256``
        numbers (:func:`ev_gp_words`), plus whatever ``kernel`` allocates beyond its
        output (nothing for :mod:`jaxal.kernels`' closed forms). Every step updates the
        whole ``[N, M]`` cross-covariance, so nothing is chunked: a smaller budget raises
        ``ValueError``; subsample ``x_target``.

    Returns:
      ``[b]`` distinct pool indices, in the order they were chosen.

    >>> from jaxal import kernels
    >>> x = jnp.array([[0.0, 1.0], [0.0, 1.1], [1.0, 0.0]])
    >>> ev_gp(kernels.infinite_width(3), x, x, 2).tolist()
    [1, 2]
    """
    if not callable(kernel):
        raise TypeError(f"kernel must be callable; got {type(kernel).__name__}")
    x_pool = _features(x_pool, "x_pool")
    N, D = x_pool.shape
    x_target = _features(x_target, "x_target", D)
    if x_labelled is not None:
        x_labelled = _features(x_labelled, "x_labelled", D)
    if check.is_concrete(noise) and not float(noise) > 0:
        raise ValueError(f"noise must be > 0; got {noise}")
    available = check.available(available, N, on_trace="skip")
    b = check.batch_size(b, available, on_trace="skip")
    M = x_target.shape[0]
    L = 0 if x_labelled is None else x_labelled.shape[0]
    memory.require(
        memory_budget,
        ev_gp_words(N, M, b, L) * memory.itemsize(x_pool),
        what=f"ev_gp on N = {N} points and M = {M} targets",
        hint="raise it, or use fewer targets M (the [N, M] cross-covariance is needed throughout)",
    )
    return _ev_gp(kernel, x_pool, x_target, x_labelled, available, noise, b=b)
