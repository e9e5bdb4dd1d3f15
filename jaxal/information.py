"""Entropy and information of posterior samples: the unchecked primitives behind
:mod:`jaxal.scores` (which validates its input), shared by the selections, the loop and the
benchmarks (0 log 0 = 0; log-probabilities of -inf are allowed).

The per-point scores need two statistics of the ``K`` samples: the predictive
``pbar = (1/K) sum_k p_k`` and the mean ``(1/K) sum_k sum_c p_k log p_k``. Both come from one
pass over the samples (:func:`sample_moments`), a ``fori_loop`` that reads each ``[N, C]``
slice once: on CPU this is several times faster than XLA's reduction over the leading axis.
"""

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from jaxal import check
from jaxal.typing import Array, ArrayLike


def xlogx(p: Array) -> Array:
    """``p log p`` for ``p >= 0`` with ``0 log 0 = 0``, by clamping instead of selecting.

    ``p log max(p, tiny)`` equals ``p log p`` for every normal ``p`` and is exactly 0 at 0 (the
    gradient there is finite). On XLA:CPU the clamp keeps fused ``log``-and-sum loops
    vectorised, where a select (``where(p > 0, ...)``, ``xlogy``) runs about 6x slower
    (``benchmarks/roofline.py``).
    """
    return p * jnp.log(jnp.maximum(p, jnp.finfo(p.dtype).tiny))


def entropy(log_p: ArrayLike, axis: int = -1) -> Array:
    """``H[p] = -sum p log p`` along ``axis`` from log-probabilities, with ``0 log 0 = 0``.

    ``log_p`` must have a floating dtype (``TypeError`` otherwise: integers are not
    log-probabilities).
    """
    log_p = check.float_array(log_p, "log_p")
    finite = jnp.isfinite(log_p)
    safe = jnp.where(finite, log_p, 0.0)
    return -jnp.sum(jnp.where(finite, jnp.exp(safe) * safe, 0.0), axis=axis)


SAMPLES_PER_STEP = 4
"""Posterior samples :func:`sample_moments` adds per loop step (one fused pass over them)."""


@jax.jit
def sample_moments(log_probs: Array) -> tuple[Array, Array]:
    """``(pbar [N, C], mean_k sum_c p_k log p_k [N])`` in one pass over the ``K`` samples.

    A ``fori_loop`` adds :data:`SAMPLES_PER_STEP` ``[N, C]`` slices per step into two ``[N,
    C]`` running sums (the classes are summed once, at the end): on XLA:CPU this is 1.5-2x
    faster than one slice per step and several times faster than XLA's reduction over the
    leading axis (``benchmarks/README.md``, "BALD's sample loop"). ``p log p`` is ``p *
    max(log p, lowest)``, select-free and 0 at ``p = 0``. Jitted: an eager call (a score
    outside ``jit``) reuses the compiled loop for the shape, where a bare ``fori_loop`` would
    trace and compile its fresh body on every call.
    """
    K, N, C = log_probs.shape
    G = SAMPLES_PER_STEP
    lowest = jnp.finfo(log_probs.dtype).min

    def add(log_p_G_N_C, sums):
        sum_p_N_C, sum_plogp_N_C = sums
        for log_p_N_C in log_p_G_N_C:
            p_N_C = jnp.exp(log_p_N_C)
            sum_p_N_C = sum_p_N_C + p_N_C
            sum_plogp_N_C = sum_plogp_N_C + p_N_C * jnp.maximum(log_p_N_C, lowest)
        return sum_p_N_C, sum_plogp_N_C

    def add_step(g, sums):
        return add(jax.lax.dynamic_slice_in_dim(log_probs, g * G, G), sums)

    zeros = jnp.zeros((N, C), log_probs.dtype)
    sums = jax.lax.fori_loop(0, K // G, add_step, (zeros, zeros)) if K >= G else (zeros, zeros)
    sum_p_N_C, sum_plogp_N_C = add(log_probs[K - K % G :], sums)  # the last K mod G samples
    return sum_p_N_C / K, jnp.sum(sum_plogp_N_C, axis=-1) / K


def mean_log_probs(log_probs: Array) -> Array:
    """Log of the predictive ``pbar = (1/K) sum_k p_k``: ``[K, N, C] -> [N, C]`` (log space)."""
    K = log_probs.shape[0]
    return logsumexp(log_probs, axis=0) - jnp.log(K).astype(log_probs.dtype)


def entropy_terms(log_probs: Array) -> tuple[Array, Array]:
    """``(H[pbar], E_k H[p_k])``, each ``[N]``, from one pass over the samples."""
    pbar_N_C, mean_plogp_N = sample_moments(log_probs)
    return -jnp.sum(xlogx(pbar_N_C), axis=-1), -mean_plogp_N


def predictive_entropy(log_probs: Array) -> Array:
    """``H[pbar]``: ``[K, N, C] -> [N]`` (no validation)."""
    return entropy_terms(log_probs)[0]


def expected_entropy(log_probs: Array) -> Array:
    """``E_k H[p_k]``: ``[K, N, C] -> [N]`` (no validation)."""
    return entropy_terms(log_probs)[1]


def bald(log_probs: Array) -> Array:
    """``H[pbar] - E_k H[p_k]`` clipped at 0 (rounding only): ``[K, N, C] -> [N]``."""
    predictive_N, expected_N = entropy_terms(log_probs)
    return jnp.maximum(predictive_N - expected_N, 0.0)
