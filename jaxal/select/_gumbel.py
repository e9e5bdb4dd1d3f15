"""Sampling without replacement by the Gumbel-top-k trick (Kool, van Hoof, Welling, 2019)."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int

from jaxal.typing import Key


def gumbel_top_k(key: Key, log_weights: Array, b: int, available: Array) -> Int[Array, " B"]:
    """Draw ``b`` distinct available indices with probability proportional to ``exp(log_weights)``.

    Equivalent in distribution to drawing one index at a time from the renormalised weights
    of the points not yet drawn. Available points of weight 0 (``log_weights = -inf``) are
    drawn only once the positive-weight points are exhausted, in uniformly random order.

    Args:
      key: PRNG key.
      log_weights: ``[N]`` unnormalised log-weights (``-inf`` allowed; no NaN, no ``+inf``).
      b: number of draws (static).
      available: bool ``[N]``.
    """
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
