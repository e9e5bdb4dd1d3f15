r"""ProbCover (Yehuda et al., NeurIPS 2022): greedy max coverage of ``radius``-balls.

The graph is a dense ``[N, N]`` bool matrix built, and its rows counted, in ``[R, N]`` blocks
of rows. **Memory:** ``memory_budget=`` (:mod:`jaxal.memory`) shrinks the blocks below
``block_size`` rows until XLA's count of the compiled program fits; the graph itself is
needed throughout.
"""

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from jaxal import check, memory
from jaxal.select._distances import DEFAULT_BLOCK_SIZE, block_rows, row_blocks, sq_dists
from jaxal.select._greedy import greedy, selection_inputs
from jaxal.typing import Available


def _count_rows(graph_N_N: Array, mask_N: Array, block_size: int) -> Array:
    """``[N]`` number of ``mask`` points in each row of the graph, ``block_size`` rows at once.

    Counted as int32 in row blocks: XLA would otherwise widen the whole graph to integers.
    """

    def count(rows_R_N):
        return jnp.sum(rows_R_N & mask_N[None, :], axis=1, dtype=jnp.int32)

    return memory.map_points(count, [graph_N_N], chunk=block_size, axis=0)


def _radius(radius, dtype) -> Array:
    """ProbCover's ``radius`` as a scalar of ``dtype``: finite and ``>= 0`` when concrete.

    ``0`` is valid (each ball then holds only the points coincident with its centre): the
    paper's rule, :func:`probcover_radius`, returns it when no positive radius keeps the
    purity, as on pools of a few dozen points.
    """
    if radius is None:
        raise TypeError(
            "radius is None: probcover needs radius= (the ball radius delta >= 0); it depends on "
            "the features, so choose it with jaxal.select.probcover_radius(features, labels)"
        )
    return check.scalar(radius, "radius", dtype=dtype, positive=False, what=" (the ball radius)")


@partial(jax.jit, static_argnames=("b", "block_size"))
def _probcover(
    x_N_D: Array,
    labelled_N: Array,
    available_N: Array,
    radius: Array,
    *,
    b: int,
    block_size: int,
) -> Array:
    radius_sq = radius**2

    def within(rows_R_D):
        return sq_dists(rows_R_D, x_N_D) <= radius_sq

    graph_N_N = memory.map_points(within, [x_N_D], chunk=block_size, axis=0)
    covered_N = _count_rows(graph_N_N, labelled_N, block_size) > 0

    def choose(i, covered_N, available_N):
        gain_N = _count_rows(graph_N_N, ~covered_N, block_size)
        return jnp.argmax(jnp.where(available_N, gain_N, -1))

    def update(covered_N, new):
        return covered_N | graph_N_N[new]

    indices_B = greedy(choose, update, covered_N, available_N, jnp.zeros((b,), jnp.int32), 0)
    return check.picks(indices_B, available_N)


def probcover(
    features: Float[ArrayLike, "N D"],
    b: int,
    *,
    radius: float | Array | None = None,
    labelled: Bool[ArrayLike, " N"] | None = None,
    available: Available | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""ProbCover batch (Yehuda et al., NeurIPS 2022): greedy max coverage of ``radius``-balls.

    The graph has an edge ``x -> x'`` when :math:`\|x - x'\| \le \delta` (``radius``). Points
    within ``delta`` of a labelled point start covered; each step adds the selectable point
    whose ball holds the most uncovered points and marks them covered. Once everything is
    covered the gains are 0 and ties go to the lowest index (the authors pick at random).

    The graph is held as a dense ``[N, N]`` bool matrix (built, and its rows counted, in
    ``[block_size, N]`` blocks): ``N^2`` bytes, fine up to ``N ~ 30k`` points; a step costs
    ``O(N^2)``.

    Args:
      features: ``[N, D]`` (self-supervised) features.
      b, labelled, available, memory_budget: :mod:`jaxal.select`'s convention; the budget
        shrinks the blocks below ``block_size`` rows until the compiled program fits (the
        graph is ``N^2`` bytes of it), and ``ValueError`` says when even one row does not.
      radius: ball radius :math:`\delta \ge 0`, required (no paper default: it depends on the
        features), e.g. from :func:`probcover_radius`.
      block_size: rows of the distance matrix computed at once.

    Returns:
      ``[b]`` distinct selectable indices, in the order they were chosen (the sentinel ``N``
      past the selectable count under ``jit``: :func:`jaxal.check.picks`).

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[0.0], [0.5], [1.0], [5.0]])
      >>> probcover(x, 2, radius=0.6).tolist()  # the ball around 0.5 covers three points
      [1, 3]
    """
    x, labelled, available, b = selection_inputs(features, b, labelled, available, "features")
    radius = _radius(radius, x.dtype)
    N = x.shape[0]
    return memory.in_blocks(
        memory_budget,
        _probcover,
        x,
        labelled,
        available,
        radius,
        b=b,
        block_size=block_rows(block_size, N),
        what=f"probcover on N = {N} points (an [N, N] bool graph)",
    )


@partial(jax.jit, static_argnames=("block_size",))
def _probcover_radius(
    x_N_D: Array, labels_N: Array, candidates: Array | None, purity, *, block_size: int
) -> Array:
    N = x_N_D.shape[0]

    def fn(rows_R, sq_R_N):
        other_R_N = labels_N[rows_R][:, None] != labels_N[None, :]
        return jnp.min(jnp.where(other_R_N, sq_R_N, jnp.inf), axis=1)

    # [N] distance from each point to the nearest point with another label (inf if none).
    impure_N = jnp.sqrt(row_blocks(fn, x_N_D, block_size))
    if candidates is None:
        candidates = jnp.where(jnp.isinf(impure_N), 0.0, impure_N)
    candidates_Q = jnp.concatenate([jnp.zeros((1,), x_N_D.dtype), candidates])
    # Purity of each candidate: the fraction of points with m(x) > candidate, by a sorted
    # search (O((N + Q) log N), no [Q, N] comparison).
    num_pure_Q = N - jnp.searchsorted(jnp.sort(impure_N), candidates_Q, side="right")
    purity_Q = num_pure_Q / N
    return jnp.max(jnp.where(purity_Q >= purity, candidates_Q, 0.0))


def probcover_radius(
    features: Float[ArrayLike, "N D"],
    cluster_labels: Int[ArrayLike, " N"],
    *,
    purity: float = 0.95,
    candidates: Float[ArrayLike, " R"] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    memory_budget: memory.Budget = None,
) -> Array:
    r"""ProbCover's radius: the largest :math:`\delta` whose balls keep ``purity``.

    A ball :math:`B(x, \delta)` is pure when every point in it shares ``x``'s cluster label,
    i.e. when :math:`\delta < m(x)`, the distance from ``x`` to the nearest point of another
    cluster. The purity of :math:`\delta` is the fraction of pure balls, and the result is the
    largest candidate with purity :math:`\ge` ``purity`` (0 if none). By default the
    candidates are ``0`` and the values :math:`m(x)` themselves, so the result is exact up to
    the gap to the next candidate. Computed in ``[block_size, N]`` blocks (``O(N^2 D)``).

    Args:
      features: ``[N, D]`` features (the ones passed to :func:`probcover`).
      cluster_labels: int ``[N]`` (self-supervised / k-means) cluster labels.
      purity: required fraction of pure balls (paper: 0.95).
      candidates: optional ``[R]`` radii to choose from.
      block_size: rows of the distance matrix computed at once.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``): blocks
        of ``R`` rows shrink below ``block_size`` until the compiled program fits.

    Returns:
      Scalar radius; 0 when no positive candidate keeps ``purity`` (:func:`probcover`
      rejects it).
    """
    x = check.points(features, "features")
    labels = jnp.asarray(cluster_labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer) or labels.shape != (x.shape[0],):
        raise ValueError(
            f"cluster_labels must be an int array of shape [N] = ({x.shape[0]},); "
            f"got {labels.dtype} {labels.shape}"
        )
    if not 0 <= purity <= 1:
        raise ValueError(f"purity must be in [0, 1]; got {purity}")
    N = x.shape[0]
    if candidates is not None:
        candidates = check.finite(
            jnp.asarray(candidates, x.dtype).ravel(), "candidates", on_trace="skip"
        )
    return memory.in_blocks(
        memory_budget,
        _probcover_radius,
        x,
        labels,
        candidates,
        purity,
        block_size=block_rows(block_size, N),
        what=f"probcover_radius on N = {N} points",
    )
