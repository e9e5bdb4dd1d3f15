"""Entropy primitives in log space (0 log 0 = 0; log-probabilities of -inf are allowed)."""

import jax.numpy as jnp
from jax.scipy.special import logsumexp

from jaxal.typing import Array


def entropy(log_p: Array, axis: int = -1) -> Array:
    """``H[p] = -sum p log p`` along ``axis`` from log-probabilities, with ``0 log 0 = 0``."""
    finite = jnp.isfinite(log_p)
    safe = jnp.where(finite, log_p, 0.0)
    return -jnp.sum(jnp.where(finite, jnp.exp(safe) * safe, 0.0), axis=axis)


def mean_log_probs(log_probs: Array) -> Array:
    """Log of the predictive ``pbar = (1/K) sum_k p_k``: ``[K, N, C] -> [N, C]``."""
    K = log_probs.shape[0]
    return logsumexp(log_probs, axis=0) - jnp.log(K).astype(log_probs.dtype)


def predictive_entropy(log_probs: Array) -> Array:
    """``H[pbar]``: ``[K, N, C] -> [N]`` (no validation)."""
    return entropy(mean_log_probs(log_probs))


def expected_entropy(log_probs: Array) -> Array:
    """``E_k H[p_k]``: ``[K, N, C] -> [N]`` (no validation)."""
    return jnp.mean(entropy(log_probs), axis=0)


def bald(log_probs: Array) -> Array:
    """``H[pbar] - E_k H[p_k]`` clipped at 0 (rounding only): ``[K, N, C] -> [N]``."""
    return jnp.maximum(predictive_entropy(log_probs) - expected_entropy(log_probs), 0.0)
