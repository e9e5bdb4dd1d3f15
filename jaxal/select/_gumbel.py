"""Sampling without replacement by the Gumbel-top-k trick (Kool, van Hoof, Welling, 2019)."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int

from jaxal import memory
from jaxal.typing import Key

NOT_CHUNKED = (
    "raise memory_budget (sampling needs all N weights, their Gumbel noise and a top-k at once)"
)
"""The fix named when a sampling selection does not fit its ``memory_budget``."""


def gumbel_words(N: int, b: int) -> int:
    """Working memory of :func:`gumbel_top_k` in numbers: ``5 N + 4 b + 512`` (the Gumbel noise
    and its random bits, the perturbed and the zero-weight keys, two top-``b``)."""
    return 5 * N + 4 * b + 512


def gumbel_top_k(
    key: Key, log_weights: Array, b: int, available: Array, *, memory_budget: memory.Budget = None
) -> Int[Array, " B"]:
    """Draw ``b`` distinct available indices with probability proportional to ``exp(log_weights)``.

    Equivalent in distribution to drawing one index at a time from the renormalised weights
    of the points not yet drawn. Available points of weight 0 (``log_weights = -inf``) are
    drawn only once the positive-weight points are exhausted, in uniformly random order.

    Args:
      key: PRNG key.
      log_weights: ``[N]`` unnormalised log-weights (``-inf`` allowed; no NaN, no ``+inf``).
      b: number of draws (static).
      available: bool ``[N]``.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``;
        :mod:`jaxal.memory`), modelled as :func:`gumbel_words` ``(N, b)`` numbers. Nothing is
        chunked (the noise of every point is needed at once, and chunked noise would draw a
        different batch): a budget below the model raises ``ValueError``.
    """
    N = log_weights.shape[0]
    memory.require(
        memory_budget,
        gumbel_words(N, b) * memory.itemsize(log_weights),
        what=f"gumbel_top_k on N = {N} points",
        hint=NOT_CHUNKED,
    )
    gumbel_N = jax.random.gumbel(key, log_weights.shape, dtype=log_weights.dtype)
    positive_N = available & (log_weights > -jnp.inf)
    _, drawn = jax.lax.top_k(jnp.where(positive_N, log_weights + gumbel_N, -jnp.inf), b)
    zero_weight_N = available & ~positive_N
    _, fallback = jax.lax.top_k(jnp.where(zero_weight_N, gumbel_N, -jnp.inf), b)
    num_positive = jnp.sum(positive_N)
    position_B = jnp.arange(b)
    return jnp.where(
        position_B < num_positive, drawn, fallback[jnp.clip(position_B - num_positive, 0, b - 1)]
    )
