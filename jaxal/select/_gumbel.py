"""Sampling without replacement by the Gumbel-top-k trick (Kool, van Hoof, Welling, 2019)."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from jaxal import check, memory
from jaxal.typing import Available, Key

NOT_CHUNKED = (
    "raise memory_budget (sampling needs all N weights, their Gumbel noise and a top-k at once)"
)
"""The fix named when a sampling selection does not fit its ``memory_budget``."""


def draw(key: Key, log_weights_N: Array, b: int, available_N: Array) -> Array:
    """:func:`gumbel_top_k` on valid input, without checks: for compiled loops inside jaxal.

    Positions past the number of available points get the sentinel ``N``
    (:func:`jaxal.check.picks`' rule, read off the perturbed keys: ``-inf`` marks no point).
    """
    gumbel_N = jax.random.gumbel(key, log_weights_N.shape, dtype=log_weights_N.dtype)
    positive_N = available_N & (log_weights_N > -jnp.inf)
    _, drawn_B = jax.lax.top_k(jnp.where(positive_N, log_weights_N + gumbel_N, -jnp.inf), b)
    zero_weight_N = available_N & ~positive_N
    fallback_key_B, fallback_B = jax.lax.top_k(jnp.where(zero_weight_N, gumbel_N, -jnp.inf), b)
    num_positive = jnp.sum(positive_N)
    position_B = jnp.arange(b)
    slot_B = jnp.clip(position_B - num_positive, 0, b - 1)  # position among the fallbacks
    index_B = jnp.where(position_B < num_positive, drawn_B, fallback_B[slot_B])
    valid_B = (position_B < num_positive) | (fallback_key_B[slot_B] > -jnp.inf)
    return jnp.where(valid_B, index_B, log_weights_N.shape[0])


compiled_draw = jax.jit(
    lambda key, log_weights_N, available_N, *, b: draw(key, log_weights_N, b, available_N),
    static_argnames=("b",),
)
"""``compiled_draw(key, log_weights_N, available_N, b=)``: :func:`draw` as one compiled
program, whose working memory :func:`jaxal.memory.temp_bytes` counts."""


def gumbel_top_k(
    log_weights: Float[ArrayLike, " N"],
    b: int,
    *,
    key: Key,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    """Draw ``b`` distinct available indices with probability proportional to ``exp(log_weights)``.

    Equivalent in distribution to drawing one index at a time from the renormalised weights
    of the points not yet drawn. Available points of weight 0 (``log_weights = -inf``) are
    drawn only once the positive-weight points are exhausted, in uniformly random order.

    Args:
      log_weights: ``[N]`` unnormalised log-weights (``-inf`` allowed; no NaN, no ``+inf``).
      b: number of draws, a static Python int with ``1 <= b <= #available``.
      key: PRNG key.
      available: optional bool ``[N]`` mask of selectable points.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``;
        :mod:`jaxal.memory`), checked against XLA's count of the compiled program. Nothing
        is chunked (the noise of every point is needed at once, and chunked noise would draw
        a different batch): a smaller budget raises ``ValueError``.

    Returns:
      ``[b]`` distinct available indices, in order of drawing (under ``jit``/``vmap``, the
      positions past the available count hold the sentinel ``N``: :func:`jaxal.check.picks`).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> log_weights = jnp.log(jnp.array([0.0, 1.0, 3.0]))
      >>> sorted(gumbel_top_k(log_weights, 2, key=jax.random.key(0)).tolist())
      [1, 2]
    """
    log_weights_N = check.float_array(log_weights, "log_weights")
    if log_weights_N.ndim != 1 or log_weights_N.shape[0] < 1:
        raise ValueError(
            f"log_weights must have shape [N] with N >= 1 (one per pool point); "
            f"got {log_weights_N.shape}"
        )
    check.require(
        ~jnp.any(jnp.isnan(log_weights_N) | jnp.isposinf(log_weights_N)),
        "log_weights contains NaN or +inf; log-weights must be finite or -inf",
        "skip",
    )
    key = check.key(key)
    N = log_weights_N.shape[0]
    available_N = check.available(available, N, on_trace="skip")
    b = check.batch_size(b, available_N, on_trace="skip")
    what = f"gumbel_top_k on N = {N} points"
    return memory.call_within(
        memory_budget,
        compiled_draw,
        key,
        log_weights_N,
        available_N,
        b=b,
        what=what,
        hint=NOT_CHUNKED,
    )
