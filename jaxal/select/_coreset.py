r"""Core-Set (Sener, Savarese, ICLR 2018): greedy k-center on features.

Distances to the labelled set are computed once in ``[R, N]`` blocks of rows
(:func:`jaxal.select._distances.row_blocks`); each greedy step keeps the ``[N]`` minimum
squared distance, ``O(N D)``. **Memory:** ``memory_budget=`` (:mod:`jaxal.memory`) shrinks the
blocks below ``block_size`` rows until XLA's count of the compiled program fits (the same
selection: each row is computed alone).
"""

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from jaxal import check, memory
from jaxal.select._distances import (
    DEFAULT_BLOCK_SIZE,
    add_centre,
    block_rows,
    row_blocks,
    sq_dist_to,
)
from jaxal.select._greedy import greedy, selection_inputs
from jaxal.select._top_k import masked
from jaxal.typing import Available


def _min_sq_dist_to_set(x_N_D: Array, member_N: Array, block_size: int) -> Array:
    """``[N]`` squared distance of each point to the nearest member (``inf`` if none)."""

    def fn(rows_R, sq_R_N):
        return jnp.min(jnp.where(member_N[None, :], sq_R_N, jnp.inf), axis=1)

    return row_blocks(fn, x_N_D, block_size)


@partial(jax.jit, static_argnames=("b", "block_size"))
def _coreset(
    x_N_D: Array, labelled_N: Array, available_N: Array, *, b: int, block_size: int
) -> Array:
    min_sq_N = _min_sq_dist_to_set(x_N_D, labelled_N, block_size)
    # Before any centre exists every distance is inf: start from the point farthest from the mean.
    centred_sq_N = sq_dist_to(x_N_D, jnp.mean(x_N_D, axis=0))

    def choose(i, min_sq_N, available_N):
        score_N = jnp.where(jnp.isinf(min_sq_N), centred_sq_N, min_sq_N)
        return jnp.argmax(masked(score_N, available_N))

    indices_B = greedy(
        choose, partial(add_centre, x_N_D), min_sq_N, available_N, jnp.zeros((b,), jnp.int32), 0
    )
    return check.picks(indices_B, available_N)


def coreset(
    features: Float[ArrayLike, "N D"],
    b: int,
    *,
    labelled: Bool[ArrayLike, " N"] | None = None,
    available: Available | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""Core-Set batch (Sener, Savarese, ICLR 2018): greedy k-center.

    Repeatedly adds

    .. math:: \arg\max_{x} \min_{c \in L \cup S} \|\phi(x) - \phi(c)\|,

    over available, not yet selected points, with ``L`` the labelled and ``S`` the selected
    points. With no labelled point the first pick is the point farthest from the mean of all
    features (the k-center objective is undefined for an empty centre set). Ties go to the
    lowest index. The distances to ``L`` are computed once in ``[block_size, N]`` blocks;
    each greedy step is ``O(N D)``.

    Args:
      features: ``[N, D]`` features :math:`\phi`.
      b, labelled, available, memory_budget: :mod:`jaxal.select`'s convention; the budget
        shrinks the blocks below ``block_size`` rows until the compiled program fits.
      block_size: rows of the labelled-distance matrix computed at once.

    Returns:
      ``[b]`` distinct selectable indices, in the order they were chosen (the sentinel ``N``
      past the selectable count under ``jit``: :func:`jaxal.check.picks`).

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[0.0], [1.0], [2.0], [10.0]])
      >>> coreset(x, 2, labelled=jnp.array([True, False, False, False])).tolist()
      [3, 2]
    """
    x, labelled, available, b = selection_inputs(features, b, labelled, available, "features")
    N = x.shape[0]
    return memory.in_blocks(
        memory_budget,
        _coreset,
        x,
        labelled,
        available,
        b=b,
        block_size=block_rows(block_size, N),
        what=f"coreset on N = {N} points",
    )
