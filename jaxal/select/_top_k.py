"""Deterministic top-k selection."""

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int

from jaxal import check, memory
from jaxal.typing import Available, Scores


def masked(scores: Array, available: Array) -> Array:
    """``scores`` with unavailable points set to ``-inf``."""
    return jnp.where(available, scores, -jnp.inf)


@partial(jax.jit, static_argnames=("b", "chunk"))
def _top_k_chunked(scores_N: Array, available_N: Array, *, b: int, chunk: int) -> Array:
    """Exact top-``b`` indices, ``chunk`` points at a time, merged into the running best.

    The running best comes first in every merge and ``lax.top_k`` prefers the lower position,
    so ties break towards the lower index as in one ``lax.top_k`` over all points. The last
    chunk is shifted back to end at ``N``; the points it shares with the one before are
    masked so that no index is seen twice. With ``chunk >= N``: one ``lax.top_k``.
    """
    N = scores_N.shape[0]
    if chunk >= N:
        return _sentinel(*jax.lax.top_k(masked(scores_N, available_N), b), N)
    offset_n = jnp.arange(chunk, dtype=jnp.int32)

    def merge(i, best):
        best_B, index_B = best
        start = jnp.minimum(i * chunk, N - chunk)
        scores_n = jax.lax.dynamic_slice_in_dim(scores_N, start, chunk)
        fresh_n = jax.lax.dynamic_slice_in_dim(available_N, start, chunk) & (
            start + offset_n >= i * chunk
        )
        chunk_B, position_B = jax.lax.top_k(masked(scores_n, fresh_n), min(b, chunk))
        best_B, merged_B = jax.lax.top_k(jnp.concatenate([best_B, chunk_B]), b)
        return best_B, jnp.concatenate([index_B, start + position_B])[merged_B]

    best = (jnp.full((b,), -jnp.inf, scores_N.dtype), jnp.zeros((b,), jnp.int32))
    best_B, index_B = jax.lax.fori_loop(0, -(-N // chunk), merge, best)
    return _sentinel(best_B, index_B, N)


def _sentinel(best_B: Array, index_B: Array, N: int) -> Array:
    """``index_B`` with the sentinel ``N`` where no available point was left (score ``-inf``):
    :func:`jaxal.check.picks`' rule, read off the masked scores instead of a count."""
    return jnp.where(best_B > -jnp.inf, index_B, N)


def top_k(
    scores: Scores,
    b: int,
    *,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    """Indices of the ``b`` highest scores among the available points, best first.

    Ties are broken towards the lower index.

    Working memory: the masked scores and a sort's values and indices (XLA's count of the
    compiled program, :mod:`jaxal.memory`). Over ``memory_budget`` the scores are scanned in
    the largest chunks of ``n`` points that fit, each merged into the running best ``b``; the
    indices are identical, ties included.

    Args:
      scores: ``[N]`` finite acquisition scores (higher = more worth labelling).
      b: batch size, a static Python int with ``1 <= b <= #available``.
      available: optional bool ``[N]``; ``False`` marks labelled or excluded points.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``;
        :mod:`jaxal.memory`); ``ValueError`` when not even one point per chunk fits.

    Returns:
      ``[b]`` int32 pool indices, distinct and all available (under ``jit``/``vmap``, the
      positions past the available count hold the sentinel ``N``: :func:`jaxal.check.picks`).

    Example:
      >>> import jax.numpy as jnp
      >>> scores = jnp.array([0.3, 0.9, 0.1, 0.9])
      >>> top_k(scores, 2).tolist(), top_k(scores, 2, available=scores < 0.5).tolist()
      ([1, 3], [0, 2])
    """
    scores = check.scores(scores, on_trace="skip")
    N = scores.shape[0]
    available = check.available(available, N, on_trace="skip")
    b = check.batch_size(b, available, on_trace="skip")
    chunk = memory.chunk_size(
        memory_budget,
        N,
        lambda n: memory.temp_bytes(_top_k_chunked, scores, available, b=b, chunk=n),
        what=f"top_k of b = {b}",
    )
    return _top_k_chunked(scores, available, b=b, chunk=chunk)
