r"""BADGE (Ash et al., ICLR 2020): k-means++ seeding on gradient embeddings.

:func:`d2_seeding` (the ``D^2`` sampling of k-means++) is shared with TypiClust's k-means
(:mod:`jaxal.select._typiclust`). Compiled ``lax.fori_loop`` with ``[N]`` state: ``O(N D)`` a
step. **Memory:** ``memory_budget=`` (:mod:`jaxal.memory`) is checked against XLA's count of
the compiled program; all of it is ``[N]`` state needed throughout, so nothing is chunked.
"""

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from jaxal import check, memory
from jaxal.select._distances import add_centre, largest_norm, sq_dist_to
from jaxal.select._greedy import greedy
from jaxal.select._gumbel import draw
from jaxal.typing import Available, Key


def d2_seeding(keys_B: Array, x_N_D: Array, first: Array, available_N: Array) -> Array:
    """k-means++ seeding from centre ``first``: ``B = len(keys) + 1`` distinct indices.

    Each further centre is drawn with probability proportional to its squared distance to
    the nearest centre so far (``D^2`` sampling); if every remaining point coincides with a
    centre, uniformly among the remaining available points.
    """
    B = keys_B.shape[0] + 1
    min_sq_N = sq_dist_to(x_N_D, x_N_D[first])
    indices_B = jnp.zeros((B,), jnp.int32).at[0].set(first.astype(jnp.int32))
    available_N = available_N.at[first].set(False)

    def choose(i, min_sq_N, available_N):
        return draw(keys_B[i - 1], jnp.log(min_sq_N), 1, available_N)[0]

    return greedy(choose, partial(add_centre, x_N_D), min_sq_N, available_N, indices_B, start=1)


@partial(jax.jit, static_argnames=("b",))
def _badge(key: Key, x_N_D: Array, available_N: Array, *, b: int) -> Array:
    first = largest_norm(x_N_D, available_N)
    indices_B = d2_seeding(jax.random.split(key, b - 1), x_N_D, first, available_N)
    return check.picks(indices_B, available_N)


# Duplicates (reason): the signature (and the docstring's Returns/Example) follow jaxal.select's
# convention, as gumbel_top_k's, coreset's and probcover's do; the logic differs.
def badge(
    embeddings: Float[ArrayLike, "N D"],
    b: int,
    *,
    key: Key,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""BADGE batch (Ash et al., ICLR 2020): k-means++ seeding on gradient embeddings.

    The first centre is the available point of largest norm :math:`\|g(x)\|` (as in the
    authors' code: the largest expected gradient); each further point is
    drawn from the available points not chosen yet with probability

    .. math:: P(x) \propto \min_{c \in \text{chosen}} \|g(x) - g(c)\|^2.

    If all remaining points have distance 0 (duplicates of chosen ones) it draws uniformly.
    Compiled ``fori_loop`` keeping the ``[N]`` minimum squared distance: ``O(N D)`` a step.

    Args:
      embeddings: ``[N, D]`` embeddings, typically :func:`jaxal.embeddings.badge` (``D = C H``;
        the negative of the authors' sign, which no norm or distance sees).
      b, available, memory_budget: :mod:`jaxal.select`'s convention; the budget is checked
        against the compiled program, all ``[N]`` state: a smaller one raises ``ValueError``.
      key: PRNG key.

    Returns:
      ``[b]`` distinct available indices, in the order they were chosen (the sentinel ``N``
      past the available count under ``jit``: :func:`jaxal.check.picks`).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> g = jnp.array([[3.0, 0.0], [3.0, 0.0], [0.0, 1.0]])
      >>> badge(g, 2, key=jax.random.key(0)).tolist()  # largest norm; its copy has weight 0
      [0, 2]
    """
    x = check.points(embeddings, "embeddings")
    key = check.key(key)
    N = x.shape[0]
    available = check.available(available, N, on_trace="skip")
    b = check.batch_size(b, available, on_trace="skip")
    return memory.call_within(
        memory_budget,
        _badge,
        key,
        x,
        available,
        b=b,
        what=f"badge on N = {N} points",
        hint="raise it (the [N] distances are needed throughout)",
    )
