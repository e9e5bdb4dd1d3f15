"""Stochastic batch acquisition (Kirsch, Farquhar, Atighehchian, Jesson, Branchaud-Charron, Gal,
TMLR 2023): sample the batch from the scores instead of taking the top-k."""

import math
from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int

from jaxal import check, memory
from jaxal.select._gumbel import NOT_CHUNKED, compiled_draw, draw
from jaxal.select._top_k import masked
from jaxal.typing import Available, Key, Scores

Mode = Literal["power", "softmax", "softrank"]


def log_weights(scores: Array, mode: Mode, beta: float | Array, available: Array) -> Array:
    """Unnormalised log sampling weights ``[N]`` of the three stochastic modes.

    * ``power``: ``p_i ∝ s_i^beta`` (``-inf`` where ``s_i <= 0``),
    * ``softmax``: ``p_i ∝ exp(beta s_i)``,
    * ``softrank``: ``p_i ∝ r_i^(-beta)`` with ``r_i`` the rank among available points (1 = best).
    """
    if mode == "power":
        positive = scores > 0
        return jnp.where(positive, beta * jnp.log(jnp.where(positive, scores, 1.0)), -jnp.inf)
    if mode == "softmax":
        return beta * scores
    if mode == "softrank":
        order_N = jnp.argsort(masked(scores, available), descending=True)
        rank_N = jnp.empty_like(order_N).at[order_N].set(jnp.arange(1, scores.shape[0] + 1))
        return -beta * jnp.log(rank_N.astype(scores.dtype))
    raise ValueError(f"mode must be 'power', 'softmax' or 'softrank'; got {mode!r}")


@partial(jax.jit, static_argnames=("b", "mode"))
def _stochastic(key: Key, scores_N: Array, beta, available_N: Array, *, b: int, mode: Mode):
    return draw(key, log_weights(scores_N, mode, beta, available_N), b, available_N)


def stochastic(
    scores: Scores,
    b: int,
    *,
    key: Key,
    mode: Mode = "power",
    beta: float = 1.0,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""Sample a batch of ``b`` distinct points with probabilities set by their scores.

    Sampling without replacement by Gumbel-top-k on the log-weights (exact: equal in
    distribution to drawing one point at a time from the renormalised remaining weights):

    * ``"power"`` (PowerBALD etc.): :math:`p_i \propto s_i^\beta`; needs ``scores >= 0``;
      points with score 0 are only drawn once the positive ones are exhausted;
    * ``"softmax"``: :math:`p_i \propto \exp(\beta s_i)`;
    * ``"softrank"``: :math:`p_i \propto r_i^{-\beta}`, ``r_i`` the score rank (1 = best).

    ``beta = 1`` is the paper's default; ``beta -> inf`` recovers :func:`top_k`.

    Args:
      scores: ``[N]`` finite scores.
      b: batch size (static Python int, ``1 <= b <= #available``).
      key: PRNG key.
      mode: ``"power"``, ``"softmax"`` or ``"softrank"``.
      beta: inverse temperature, ``> 0`` (may be traced, e.g. to ``vmap`` over it).
      available: optional bool ``[N]`` mask of selectable points.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``;
        :mod:`jaxal.memory`), checked against XLA's count of the compiled program. Nothing is
        chunked (every point's noise is needed at once): a smaller budget raises
        ``ValueError``.

    Returns:
      ``[b]`` distinct available indices, in order of drawing (under ``jit``/``vmap``, the
      positions past the available count hold the sentinel ``N``: :func:`jaxal.check.picks`).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> scores = jnp.array([0.0, 0.5, 2.0])
      >>> sorted(stochastic(scores, 2, key=jax.random.key(0), mode="power").tolist())
      [1, 2]
    """
    if mode not in ("power", "softmax", "softrank"):
        raise ValueError(f"mode must be 'power', 'softmax' or 'softrank'; got {mode!r}")
    if check.is_concrete(beta) and not (float(beta) > 0 and math.isfinite(float(beta))):
        raise ValueError(f"beta must be a finite number > 0; got {beta!r}")
    key = check.key(key)
    scores = check.scores(scores, nonnegative=mode == "power", on_trace="skip")
    available = check.available(available, scores.shape[0], on_trace="skip")
    b = check.batch_size(b, available, on_trace="skip")
    N = scores.shape[0]
    what = f"stochastic ({mode!r}) on N = {N} points"
    return memory.call_within(
        memory_budget,
        _stochastic,
        key,
        scores,
        beta,
        available,
        b=b,
        mode=mode,
        what=what,
        hint=NOT_CHUNKED,
    )


def random(
    num_points: int,
    b: int,
    *,
    key: Key,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    """Uniformly random batch of ``b`` distinct available points out of ``num_points``.

    Args:
      num_points: pool size ``N``.
      b: batch size (static Python int, ``1 <= b <= #available``).
      key: PRNG key.
      available: optional bool ``[N]`` mask of selectable points.
      memory_budget: as :func:`stochastic`'s.

    Returns:
      ``[b]`` distinct available indices, in order of drawing (under ``jit``/``vmap``, the
      positions past the available count hold the sentinel ``N``: :func:`jaxal.check.picks`).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> available = jnp.array([True, False, True, False])
      >>> sorted(random(4, 2, key=jax.random.key(0), available=available).tolist())
      [0, 2]
    """
    num_points = check.integer(num_points, "num_points")
    key = check.key(key)
    available = check.available(available, num_points, on_trace="skip")
    b = check.batch_size(b, available, on_trace="skip")
    uniform_N = jnp.zeros((num_points,))
    what = f"random on N = {num_points} points"
    return memory.call_within(
        memory_budget, compiled_draw, key, uniform_N, available, b=b, what=what, hint=NOT_CHUNKED
    )
