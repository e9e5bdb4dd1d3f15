"""Deterministic top-k selection."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int

from jaxal import check
from jaxal.typing import Available, Scores


def masked(scores: Array, available: Array) -> Array:
    """``scores`` with unavailable points set to ``-inf``."""
    return jnp.where(available, scores, -jnp.inf)


def top_k(scores: Scores, b: int, available: Available | None = None) -> Int[Array, " B"]:
    """Indices of the ``b`` highest scores among the available points, best first.

    Ties are broken towards the lower index.

    Args:
      scores: ``[N]`` finite acquisition scores (higher = more worth labelling).
      b: batch size, a static Python int with ``1 <= b <= #available``.
      available: optional bool ``[N]``; ``False`` marks labelled or excluded points.

    Returns:
      ``[b]`` int32 pool indices, distinct and all available.
    """
    scores = check.scores(scores, on_trace="skip")
    available = check.available(available, scores.shape[0], on_trace="skip")
    b = check.batch_size(b, available, on_trace="skip")
    _, indices = jax.lax.top_k(masked(scores, available), b)
    return indices
