r"""Geometric batch selection on features: BADGE, Core-Set, TypiClust and ProbCover.

All four work on a ``[N, D]`` feature matrix (penultimate activations, self-supervised
embeddings or BADGE gradient embeddings, see :mod:`jaxal.embeddings`) with Euclidean
distances. Greedy loops are compiled ``lax.fori_loop`` with fixed shapes and keep ``[N]``
running statistics, so a step costs ``O(N D)`` (``O(N^2)`` bits for ProbCover). Everything
that needs all pairwise distances (distances to the labelled set, nearest neighbours within
a cluster, ProbCover's graph, purity) is computed in blocks of ``block_size`` rows, so no
``[N, N]`` float matrix is ever held; only ProbCover stores an ``[N, N]`` bool graph.

**Memory.** Each function documents its working memory in numbers (times the itemsize, at
least 4 bytes) and takes ``memory_budget=`` (:mod:`jaxal.memory`): the ``[R, N]`` distance
blocks shrink below ``block_size`` rows until the model fits (the same selection: each row
is computed alone), and ``ValueError`` names the minimum when even one row does not; the
rest (``[N]`` statistics, TypiClust's ``[N, k]`` k-means distances, ProbCover's graph) is
needed throughout.
"""

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from jaxal import check, memory
from jaxal.select._distances import sq_dist_to as _sq_dist_to, sq_dists as _sq_dists
from jaxal.select._greedy import greedy as _greedy, selection_masks as _selectable
from jaxal.select._gumbel import draw, gumbel_words
from jaxal.typing import Available, Key

DEFAULT_BLOCK_SIZE = 1024
"""Rows of the pairwise squared-distance matrix computed at once (``[block_size, N]``)."""

DEFAULT_KMEANS_ITERATIONS = 100
"""Lloyd iterations of TypiClust's k-means."""

MAX_CLUSTERS = 500
"""TypiClust's cap on the number of clusters (the authors' ``MAX_NUM_CLUSTERS``)."""

MIN_CLUSTER_SIZE = 5
"""TypiClust samples clusters of more than this many points first (the authors'
``MIN_CLUSTER_SIZE``)."""

TYPICALITY_EPS = 1e-5
"""Added to TypiClust's mean squared neighbour distance before inverting (the authors')."""


def _row_blocks(fn: Callable, x_N_D: Array, block_size: int):
    """``fn(rows_R, sq_dist_R_N)`` over blocks of rows of the pairwise distance matrix.

    ``rows_R`` are the row indices of the block; results (leading axis ``R``) are
    concatenated to ``[N, ...]``.
    """
    N = x_N_D.shape[0]
    R = max(1, min(block_size, N))
    num_blocks = -(-N // R)
    rows = jnp.minimum(jnp.arange(num_blocks * R), N - 1).reshape(num_blocks, R)

    def block(rows_R):
        return fn(rows_R, _sq_dists(x_N_D[rows_R], x_N_D))

    out = jax.lax.map(block, rows)
    return jax.tree.map(lambda o: o.reshape(num_blocks * R, *o.shape[2:])[:N], out)


def _features(x: ArrayLike, name: str = "features") -> Array:
    """``x`` as floating ``[N, D]`` features, ``N >= 1``, finite (checked when concrete)."""
    x = check.float_array(x, name)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(
            f"{name} must have shape [N, D] (one row per pool point) with N >= 1; got {x.shape}"
        )
    return check.finite(x, name, on_trace="skip")


def budgeted_block(
    budget: memory.Budget,
    block_size: int,
    num_rows: int,
    words: Callable[[int], int],
    *,
    itemsize: int,
    what: str,
) -> int:
    """The largest block of rows, at most ``block_size``, whose working memory ``words(rows)``
    (numbers, linear in the rows) fits the budget; ``block_size`` itself without a budget."""
    if budget is None:
        return block_size
    return memory.chunk_size(
        budget,
        min(block_size, num_rows),
        per_point=(words(1) - words(0)) * itemsize,
        fixed=words(0) * itemsize,
        what=what,
    )


# --- k-means++ seeding (BADGE, and TypiClust's k-means initialisation) -------------------------


def _d2_seeding(keys_B: Array, x_N_D: Array, first: Array, available_N: Array) -> Array:
    """k-means++ seeding from centre ``first``: ``B = len(keys) + 1`` distinct indices.

    Each further centre is drawn with probability proportional to its squared distance to
    the nearest centre so far (``D^2`` sampling); if every remaining point coincides with a
    centre, uniformly among the remaining available points.
    """
    B = keys_B.shape[0] + 1
    min_sq_N = _sq_dist_to(x_N_D, x_N_D[first])
    indices_B = jnp.zeros((B,), jnp.int32).at[0].set(first.astype(jnp.int32))
    available_N = available_N.at[first].set(False)

    def choose(i, min_sq_N, available_N):
        return draw(keys_B[i - 1], jnp.log(min_sq_N), 1, available_N)[0]

    def update(min_sq_N, new):
        return jnp.minimum(min_sq_N, _sq_dist_to(x_N_D, x_N_D[new]))

    return _greedy(choose, update, min_sq_N, available_N, indices_B, start=1)


def badge_words(N: int, b: int) -> int:
    """Working memory of :func:`badge` in numbers: ``11 N + 4 b + 772`` (``[N]`` distances,
    log-weights and one Gumbel draw per step)."""
    return gumbel_words(N, 1) + 6 * N + 4 * b + 256


@partial(jax.jit, static_argnames=("b",))
def _badge(key: Key, x_N_D: Array, available_N: Array, *, b: int) -> Array:
    first = jnp.argmax(jnp.where(available_N, jnp.sum(x_N_D**2, axis=1), -jnp.inf))
    indices_B = _d2_seeding(jax.random.split(key, b - 1), x_N_D, first, available_N)
    return check.picks(indices_B, available_N)


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
      b: batch size, static Python int with ``1 <= b <= #available``.
      key: PRNG key.
      available: optional bool ``[N]`` mask of selectable points.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``), modelled
        as ``11 N + 4 b + 772`` numbers (:func:`badge_words`), all ``[N]`` state: a smaller
        budget raises ``ValueError``.

    Returns:
      ``[b]`` distinct available indices, in the order they were chosen (under
      ``jit``/``vmap``, positions past the available count hold the sentinel ``N``:
      :func:`jaxal.check.picks`).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> g = jnp.array([[3.0, 0.0], [3.0, 0.0], [0.0, 1.0]])
      >>> badge(g, 2, key=jax.random.key(0)).tolist()  # largest norm; its copy has weight 0
      [0, 2]
    """
    x = _features(embeddings, "embeddings")
    key = check.key(key)
    N = x.shape[0]
    available = check.available(available, N, on_trace="skip")
    b = check.batch_size(b, available, on_trace="skip")
    memory.require(
        memory_budget,
        badge_words(N, b) * memory.itemsize(x),
        what=f"badge on N = {N} points",
        hint="raise it (the [N] distances are needed throughout)",
    )
    return _badge(key, x, available, b=b)


# --- Core-Set (greedy k-center) -----------------------------------------------------------------


def _min_sq_dist_to_set(x_N_D: Array, member_N: Array, block_size: int) -> Array:
    """``[N]`` squared distance of each point to the nearest member (``inf`` if none)."""

    def fn(rows_R, sq_R_N):
        return jnp.min(jnp.where(member_N[None, :], sq_R_N, jnp.inf), axis=1)

    return _row_blocks(fn, x_N_D, block_size)


def coreset_words(N: int, D: int, b: int, block_size: int) -> int:
    """Working memory of :func:`coreset` in numbers: ``16 N + 4 b + 256`` (``[N]`` state)
    ``+ (N + D + 2) R`` (a block of ``R = min(block_size, N)`` rows of squared distances)."""
    return 16 * N + 4 * b + 256 + (N + D + 2) * min(block_size, N)


@partial(jax.jit, static_argnames=("b", "block_size"))
def _coreset(
    x_N_D: Array, labelled_N: Array, available_N: Array, *, b: int, block_size: int
) -> Array:
    min_sq_N = _min_sq_dist_to_set(x_N_D, labelled_N, block_size)
    # Before any centre exists every distance is inf: start from the point farthest from the mean.
    centred_sq_N = _sq_dist_to(x_N_D, jnp.mean(x_N_D, axis=0))

    def choose(i, min_sq_N, available_N):
        score_N = jnp.where(jnp.isinf(min_sq_N), centred_sq_N, min_sq_N)
        return jnp.argmax(jnp.where(available_N, score_N, -jnp.inf))

    def update(min_sq_N, new):
        return jnp.minimum(min_sq_N, _sq_dist_to(x_N_D, x_N_D[new]))

    indices_B = _greedy(choose, update, min_sq_N, available_N, jnp.zeros((b,), jnp.int32), 0)
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
      b: batch size, static Python int with ``1 <= b <= #selectable``.
      labelled: optional bool ``[N]``, the current labelled set; ``None``: none labelled.
      available: optional bool ``[N]`` mask of selectable points; ``None``: ``~labelled``.
        Labelled points are never selected whatever the mask says.
      block_size: rows of the labelled-distance matrix computed at once.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``), modelled
        as ``16 N + 4 b + 256 + (N + D + 2) R`` numbers for blocks of ``R`` rows
        (:func:`coreset_words`); ``R`` shrinks below ``block_size`` until it fits.

    Returns:
      ``[b]`` distinct selectable indices, in the order they were chosen (under
      ``jit``/``vmap``, positions past the selectable count hold the sentinel ``N``:
      :func:`jaxal.check.picks`).

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[0.0], [1.0], [2.0], [10.0]])
      >>> coreset(x, 2, labelled=jnp.array([True, False, False, False])).tolist()
      [3, 2]
    """
    x = _features(features)
    N, D = x.shape
    labelled, available = _selectable(labelled, available, N)
    b = check.batch_size(b, available, on_trace="skip")
    block_size = budgeted_block(
        memory_budget,
        check.integer(block_size, "block_size"),
        N,
        lambda R: coreset_words(N, D, b, R),
        itemsize=memory.itemsize(x),
        what=f"coreset on N = {N} points",
    )
    return _coreset(x, labelled, available, b=b, block_size=block_size)


# --- TypiClust -----------------------------------------------------------------------------------


def _assign(x_N_D: Array, centres_K_D: Array, active: Array | None = None) -> Array:
    """``[N]`` nearest centre; only the first ``active`` centres count when given."""
    sq_N_K = _sq_dists(x_N_D, centres_K_D)
    if active is not None:
        sq_N_K = jnp.where(jnp.arange(centres_K_D.shape[0])[None, :] < active, sq_N_K, jnp.inf)
    return jnp.argmin(sq_N_K, axis=1)


def _kmeans(
    key: Key, x_N_D: Array, num_clusters: int, iterations: int, active: Array | None = None
) -> Array:
    """Lloyd's k-means with k-means++ initialisation; returns the ``[N]`` cluster labels.

    ``num_clusters`` (static) is the capacity; with ``active`` (traced) only the first
    ``active`` centres of the k-means++ sequence are used, so the cluster count can change
    between calls without changing any shape.
    """
    N = x_N_D.shape[0]
    first_key, seed_key = jax.random.split(key)
    first = jax.random.randint(first_key, (), 0, N)
    keys = jax.random.split(seed_key, num_clusters - 1)
    centres_K_D = x_N_D[_d2_seeding(keys, x_N_D, first, jnp.ones((N,), bool))]
    ones_N = jnp.ones((N,), x_N_D.dtype)

    def lloyd(_, centres_K_D):
        labels_N = _assign(x_N_D, centres_K_D, active)
        sums_K_D = jax.ops.segment_sum(x_N_D, labels_N, num_clusters)
        counts_K = jax.ops.segment_sum(ones_N, labels_N, num_clusters)
        means_K_D = sums_K_D / jnp.maximum(counts_K, 1.0)[:, None]
        return jnp.where(counts_K[:, None] > 0, means_K_D, centres_K_D)  # empty: keep centre

    return _assign(x_N_D, jax.lax.fori_loop(0, iterations, lloyd, centres_K_D), active)


def kmeans_words(N: int, D: int, num_clusters: int) -> int:
    """Working memory of :func:`kmeans` in numbers: ``(k + 16) N + 3 k D + 256`` plus the
    k-means++ draw (the k-means part of :func:`typiclust_words`)."""
    return (num_clusters + 16) * N + 3 * num_clusters * D + gumbel_words(N, 1) + 256


def kmeans(
    features: Float[ArrayLike, "N D"],
    num_clusters: int,
    *,
    key: Key,
    iterations: int = DEFAULT_KMEANS_ITERATIONS,
    memory_budget: memory.Budget = None,
) -> Int[Array, " N"]:
    """Cluster labels ``[N]`` of Lloyd's k-means with k-means++ seeding (TypiClust's clusters).

    ProbCover's self-supervised clusters (:func:`probcover_radius`) come from here too.
    Compiled (``iterations`` Lloyd steps in a ``fori_loop``); an emptied cluster keeps its
    centre. ``memory_budget`` bounds the working memory, modelled as :func:`kmeans_words`
    numbers (the ``[N, k]`` distances are needed throughout: nothing is chunked, a smaller
    budget raises ``ValueError``).

    >>> x = jnp.array([[0.0], [0.1], [5.0], [5.1]])
    >>> labels = kmeans(x, 2, key=jax.random.key(0))
    >>> bool(labels[0] == labels[1]) and bool(labels[2] == labels[3] != labels[0])
    True
    """
    x_N_D = _features(features)
    key = check.key(key)
    num_clusters = check.integer(num_clusters, "num_clusters")
    iterations = check.integer(iterations, "iterations")
    if num_clusters > x_N_D.shape[0]:
        raise ValueError(f"num_clusters = {num_clusters} exceeds the N = {x_N_D.shape[0]} points")
    N, D = x_N_D.shape
    memory.require(
        memory_budget,
        kmeans_words(N, D, num_clusters) * memory.itemsize(x_N_D),
        what=f"kmeans on N = {N} points with {num_clusters} clusters",
        hint="raise it, or cluster fewer points",
    )
    return _kmeans_jit(key, x_N_D, num_clusters=num_clusters, iterations=iterations)


_kmeans_jit = jax.jit(_kmeans, static_argnames=("num_clusters", "iterations"))


def _neighbours(
    x_N_D: Array, labels_N: Array, labelled_N: Array, num_slots: int, block_size: int
) -> tuple[Array, Array]:
    """The ``T = num_slots`` nearest unlabelled points of each point's own cluster.

    Returns ``([N, T] squared distances, ascending, inf for empty slots; [N, T] indices)``;
    the point itself is excluded.
    """
    N = x_N_D.shape[0]

    def fn(rows_R, sq_R_N):
        mate_R_N = (
            (labels_N[rows_R][:, None] == labels_N[None, :])
            & ~labelled_N[None, :]
            & (rows_R[:, None] != jnp.arange(N)[None, :])
        )
        neg_sq_R_T, index_R_T = jax.lax.top_k(jnp.where(mate_R_N, -sq_R_N, -jnp.inf), num_slots)
        return -neg_sq_R_T, index_R_T

    return _row_blocks(fn, x_N_D, block_size)


def _typicality(
    nbr_sq_N_T: Array, nbr_N_T: Array, remaining_N: Array, picked_N: Array, num_neighbours: int
) -> Array:
    """``[N]`` typicality ``1 / (mean of the k smallest squared distances + 1e-5)`` among the
    cluster's points still in the authors' loop (unlabelled, not picked), with
    ``k = min(num_neighbours, remaining // 2)`` and ``remaining`` counting the point itself.

    ``k = 0`` (a lone remaining point; the authors' mean is then NaN) gives ``1 / 1e-5``.
    """
    valid_N_T = jnp.isfinite(nbr_sq_N_T) & ~picked_N[nbr_N_T]
    k_N = jnp.minimum(num_neighbours, remaining_N // 2)
    used_N_T = valid_N_T & (jnp.cumsum(valid_N_T, axis=1) <= k_N[:, None])
    sum_N = jnp.sum(jnp.where(used_N_T, nbr_sq_N_T, 0.0), axis=1)
    return 1.0 / (sum_N / jnp.maximum(k_N, 1) + TYPICALITY_EPS)


def _slots(N: int, b: int, num_neighbours: int) -> int:
    """Neighbour slots kept per point: the ``num_neighbours`` nearest stay exact after up to
    ``b - 1`` of them are picked."""
    return max(1, min(num_neighbours + b - 1, N - 1))


def typiclust_words(
    N: int, D: int, b: int, num_clusters: int, num_neighbours: int, block_size: int
) -> int:
    """Working memory of :func:`typiclust` in numbers: ``(k + 21) N + 3 k D + 4 b + 772``
    (k-means: the ``[N, k]`` distances to the ``k`` centres, seeding, ``[N]`` state)
    ``+ 6 N T`` (the ``[N, T]`` neighbour table and a step's typicality, ``T = min(num_neighbours
    + b - 1, N - 1)``) ``+ (N + D + 4 T + 4) R`` (a block of ``R`` rows of distances and its
    ``T`` nearest neighbours)."""
    k, T, R = num_clusters, _slots(N, b, num_neighbours), min(block_size, N)
    kmeans = (k + 16) * N + 3 * k * D + gumbel_words(N, 1) + 256
    return kmeans + 4 * b + 6 * N * T + (N + D + 4 * T + 4) * R


def _lexicographic_first(candidates_K: Array, *keys_K: Array) -> Array:
    """Index of the candidate with the smallest ``keys`` in lexicographic order (ties: lowest
    index)."""
    for key_K in keys_K:
        best = jnp.min(jnp.where(candidates_K, key_K, jnp.iinfo(key_K.dtype).max))
        candidates_K = candidates_K & (key_K == best)
    return jnp.argmax(candidates_K)


@partial(
    jax.jit,
    static_argnames=(
        "b",
        "num_clusters",
        "num_neighbours",
        "min_cluster_size",
        "iterations",
        "block_size",
    ),
)
def _typiclust(
    key: Key,
    x_N_D: Array,
    labelled_N: Array,
    available_N: Array,
    active: Array | None,
    *,
    b: int,
    num_clusters: int,
    num_neighbours: int,
    min_cluster_size: int,
    iterations: int,
    block_size: int,
) -> Array:
    N = x_N_D.shape[0]
    labels_N = _kmeans(key, x_N_D, num_clusters, iterations, active)
    nbr_sq_N_T, nbr_N_T = _neighbours(
        x_N_D, labels_N, labelled_N, _slots(N, b, num_neighbours), block_size
    )

    def per_cluster(mask_N):
        return jax.ops.segment_sum(mask_N.astype(jnp.int32), labels_N, num_clusters)

    size_K = per_cluster(jnp.ones((N,), bool))
    labelled_K = per_cluster(labelled_N)
    unlabelled_K = size_K - labelled_K
    large_K = size_K > min_cluster_size

    def choose(i, state, available_N):
        picked_K, picked_N = state
        open_K = per_cluster(available_N) > 0
        # The authors' order: clusters of more than ``min_cluster_size`` points (all clusters
        # if none of those has a selectable point left), round-robin through them sorted by
        # labelled count, then size (largest first).
        candidates_K = open_K & (large_K | ~jnp.any(open_K & large_K))
        cluster = _lexicographic_first(candidates_K, picked_K, labelled_K, -size_K)
        remaining_N = (unlabelled_K - picked_K)[labels_N]
        typicality_N = _typicality(nbr_sq_N_T, nbr_N_T, remaining_N, picked_N, num_neighbours)
        in_cluster_N = available_N & (labels_N == cluster)
        return jnp.argmax(jnp.where(in_cluster_N, typicality_N, -jnp.inf))

    def update(state, new):
        picked_K, picked_N = state
        return picked_K.at[labels_N[new]].add(1), picked_N.at[new].set(True)

    state = (jnp.zeros((num_clusters,), jnp.int32), jnp.zeros((N,), bool))
    indices_B = _greedy(choose, update, state, available_N, jnp.zeros((b,), jnp.int32), 0)
    return check.picks(indices_B, available_N)


def typiclust(
    features: Float[ArrayLike, "N D"],
    b: int,
    *,
    key: Key,
    labelled: Bool[ArrayLike, " N"] | None = None,
    available: Available | None = None,
    num_neighbours: int = 20,
    kmeans_iterations: int = DEFAULT_KMEANS_ITERATIONS,
    num_clusters: int | None = None,
    max_clusters: int = MAX_CLUSTERS,
    min_cluster_size: int = MIN_CLUSTER_SIZE,
    block_size: int = DEFAULT_BLOCK_SIZE,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""TypiClust batch (Hacohen, Dekel, Weinshall, ICML 2022): typical points of new clusters.

    Follows the authors' code (``avihu111/TypiClust``, ``deep-al/pycls/al/typiclust.py``,
    ``TypiClust.select_samples`` and ``calculate_typicality``) exactly, given the clusters.
    Clusters all ``N`` points by k-means (Lloyd, ``kmeans_iterations`` steps, k-means++
    initialisation from ``key``) into ``min(|L| + b, max_clusters)`` clusters (the authors
    cap them at 500). The clusters of more than ``min_cluster_size`` points (authors: 5) are
    sorted by their number of labelled points, then by size, largest first, and the ``b``
    picks go round-robin through that list (ties: lowest cluster index); each takes the
    cluster's most typical selectable point,

    .. math:: \text{typicality}(x) = \Big(\frac1k \sum_{x' \in \text{kNN}(x)} \|x - x'\|^2
              + 10^{-5}\Big)^{-1},

    with *squared* distances (the authors' faiss ``IndexFlatL2`` returns squared distances)
    to the ``k = min(num_neighbours, n // 2)`` nearest of the ``n`` points of the cluster
    that are neither labelled nor already picked (``n`` counts ``x``; the authors recompute
    the typicality after every pick, and so does this, exactly, from each point's
    ``T = min(num_neighbours + b - 1, N - 1)`` nearest unlabelled cluster-mates, found once in
    ``[block_size, N]`` blocks: a step costs ``O(N T)``). ``k = 0`` (``x`` is the cluster's
    last point) leaves ``x`` the only choice.

    Where the authors' code fails this returns a selection instead: when no cluster of more
    than ``min_cluster_size`` points has a selectable point left (the authors divide by
    zero), the round-robin runs through all clusters in the same order, and clusters without
    a selectable point (``available``, or all picked) are skipped (the authors index an empty
    cluster).

    The cluster count is read from ``labelled`` when that is concrete. Under ``jit`` with a
    traced ``labelled`` (the active-learning loop) it is traced too: k-means runs with a
    static capacity of ``min(N, max_clusters)`` centres of which the first ``min(|L| + b,
    capacity)`` of the k-means++ sequence are used, so every round reuses one program (at the
    cost of seeding the whole capacity). ``num_clusters`` fixes the count instead.

    Args:
      features: ``[N, D]`` (self-supervised) features.
      b: batch size, static Python int.
      key: PRNG key (k-means initialisation).
      labelled: optional bool ``[N]``, the current labelled set; ``None``: none labelled.
      available: optional bool ``[N]`` mask of selectable points; ``None``: ``~labelled``.
        Labelled points are never selected whatever the mask says.
      num_neighbours: neighbours in the typicality (paper: 20).
      kmeans_iterations: Lloyd iterations.
      num_clusters: static cluster count; ``None`` means ``min(|L| + b, max_clusters)``.
      max_clusters: the cap on the cluster count (authors: 500).
      min_cluster_size: clusters of at most this many points are used only once no larger
        one has a selectable point (authors: 5; 0 uses every cluster from the start).
      block_size: rows of the pairwise distance matrix computed at once.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``), modelled
        as ``(k + 21) N + 3 k D + 4 b + 772 + 6 N T + (N + D + 4 T + 4) R`` numbers for
        ``k`` clusters, blocks of ``R`` rows and ``T = min(num_neighbours + b - 1, N - 1)``
        neighbour slots (:func:`typiclust_words`); ``R`` shrinks below ``block_size`` until it
        fits.

    Returns:
      ``[b]`` distinct selectable indices, in the order they were chosen (under
      ``jit``/``vmap``, positions past the selectable count hold the sentinel ``N``:
      :func:`jaxal.check.picks`).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.array([0.0, 0.4, 0.5, 0.6, 1.0, 10.0, 10.4, 10.5, 10.6, 11.0])[:, None]
      >>> sorted(typiclust(x, 2, key=jax.random.key(0)).tolist())  # each cluster's densest
      [2, 7]
    """
    x = _features(features)
    key = check.key(key)
    N, D = x.shape
    labelled, available = _selectable(labelled, available, N)
    b = check.batch_size(b, available, on_trace="skip")
    active = None
    max_clusters = check.integer(max_clusters, "max_clusters")
    num_neighbours = check.integer(num_neighbours, "num_neighbours")
    min_cluster_size = check.integer(min_cluster_size, "min_cluster_size", low=0)
    kmeans_iterations = check.integer(kmeans_iterations, "kmeans_iterations")
    if num_clusters is None and check.is_concrete(labelled):
        num_clusters = min(int(jnp.sum(labelled)) + b, max_clusters, N)
    elif num_clusters is None:
        num_clusters = min(N, max_clusters)
        active = jnp.minimum(jnp.sum(labelled, dtype=jnp.int32) + b, num_clusters)
    num_clusters = check.integer(num_clusters, "num_clusters")
    if num_clusters > N:
        raise ValueError(f"num_clusters must be in [1, N = {N}]; got {num_clusters}")
    block_size = budgeted_block(
        memory_budget,
        check.integer(block_size, "block_size"),
        N,
        lambda R: typiclust_words(N, D, b, num_clusters, num_neighbours, R),
        itemsize=memory.itemsize(x),
        what=f"typiclust on N = {N} points with {num_clusters} clusters",
    )
    return _typiclust(
        key,
        x,
        labelled,
        available,
        active,
        b=b,
        num_clusters=num_clusters,
        num_neighbours=num_neighbours,
        min_cluster_size=min_cluster_size,
        iterations=kmeans_iterations,
        block_size=block_size,
    )


# --- ProbCover -----------------------------------------------------------------------------------


def probcover_bytes(N: int, D: int, b: int, block_size: int, itemsize: int) -> int:
    """Working memory of :func:`probcover` in bytes: ``N^2`` (the bool graph) plus
    ``12 N + 4 b + 256 + (2 N + D + 2) R`` numbers (``[N]`` state; a block of ``R`` rows of
    squared distances, or of the graph and its counts)."""
    numbers = 12 * N + 4 * b + 256 + (2 * N + D + 2) * min(block_size, N)
    return N * N + numbers * itemsize


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
        return _sq_dists(rows_R_D, x_N_D) <= radius_sq

    graph_N_N = memory.map_points(within, [x_N_D], chunk=block_size, axis=0)
    covered_N = _count_rows(graph_N_N, labelled_N, block_size) > 0

    def choose(i, covered_N, available_N):
        gain_N = _count_rows(graph_N_N, ~covered_N, block_size)
        return jnp.argmax(jnp.where(available_N, gain_N, -1))

    def update(covered_N, new):
        return covered_N | graph_N_N[new]

    indices_B = _greedy(choose, update, covered_N, available_N, jnp.zeros((b,), jnp.int32), 0)
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
      b: batch size, static Python int.
      radius: ball radius :math:`\delta \ge 0`, required (no paper default: it depends on the
        features), e.g. from :func:`probcover_radius`.
      labelled: optional bool ``[N]``, the current labelled set; ``None``: none labelled.
      available: optional bool ``[N]`` mask of selectable points; ``None``: ``~labelled``.
        Labelled points are never selected whatever the mask says.
      block_size: rows of the distance matrix computed at once.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``), modelled
        as ``N^2`` bytes (the graph) plus ``12 N + 4 b + 256 + (2 N + D + 2) R`` numbers for
        blocks of ``R`` rows (:func:`probcover_bytes`); ``R`` shrinks below ``block_size``
        until it fits, and ``ValueError`` says when the graph itself does not.

    Returns:
      ``[b]`` distinct selectable indices, in the order they were chosen (under
      ``jit``/``vmap``, positions past the selectable count hold the sentinel ``N``:
      :func:`jaxal.check.picks`).

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[0.0], [0.5], [1.0], [5.0]])
      >>> probcover(x, 2, radius=0.6).tolist()  # the ball around 0.5 covers three points
      [1, 3]
    """
    x = _features(features)
    radius = _radius(radius, x.dtype)
    N, D = x.shape
    labelled, available = _selectable(labelled, available, N)
    b = check.batch_size(b, available, on_trace="skip")
    itemsize = memory.itemsize(x)
    block_size = budgeted_block(
        memory_budget,
        min(check.integer(block_size, "block_size"), N),
        N,
        lambda R: probcover_bytes(N, D, b, R, itemsize),
        itemsize=1,
        what=f"probcover on N = {N} points (an [N, N] bool graph)",
    )
    return _probcover(x, labelled, available, radius, b=b, block_size=block_size)


@partial(jax.jit, static_argnames=("block_size",))
def _impure_radius(x_N_D: Array, labels_N: Array, *, block_size: int) -> Array:
    """``[N]`` distance from each point to the nearest point with another label (``inf``)."""

    def fn(rows_R, sq_R_N):
        other_R_N = labels_N[rows_R][:, None] != labels_N[None, :]
        return jnp.min(jnp.where(other_R_N, sq_R_N, jnp.inf), axis=1)

    return jnp.sqrt(_row_blocks(fn, x_N_D, block_size))


def probcover_radius_words(N: int, D: int, num_candidates: int, block_size: int) -> int:
    """Working memory of :func:`probcover_radius` in numbers: ``12 N + 3 Q + 256`` (the
    ``[N]`` distances to another cluster, sorted, and the ``Q`` candidates' counts) ``+ (N + D
    + 2) R`` (a block of ``R`` rows of squared distances)."""
    return 12 * N + 3 * num_candidates + 256 + (N + D + 2) * min(block_size, N)


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
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``), modelled
        as ``12 N + 3 Q + 256 + (N + D + 2) R`` numbers for ``Q`` candidates and blocks of
        ``R`` rows (:func:`probcover_radius_words`); ``R`` shrinks below ``block_size``
        until it fits.

    Returns:
      Scalar radius; 0 when no positive candidate keeps ``purity`` (:func:`probcover`
      rejects it).
    """
    x = _features(features)
    labels = jnp.asarray(cluster_labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer) or labels.shape != (x.shape[0],):
        raise ValueError(
            f"cluster_labels must be an int array of shape [N] = ({x.shape[0]},); "
            f"got {labels.dtype} {labels.shape}"
        )
    if not 0 <= purity <= 1:
        raise ValueError(f"purity must be in [0, 1]; got {purity}")
    N, D = x.shape
    if candidates is not None:
        candidates = check.finite(
            jnp.asarray(candidates, x.dtype).ravel(), "candidates", on_trace="skip"
        )
    Q = N if candidates is None else candidates.shape[0]
    block_size = budgeted_block(
        memory_budget,
        check.integer(block_size, "block_size"),
        N,
        lambda R: probcover_radius_words(N, D, Q, R),
        itemsize=memory.itemsize(x),
        what=f"probcover_radius on N = {N} points",
    )
    impure_N = _impure_radius(x, labels, block_size=block_size)
    if candidates is None:
        candidates = jnp.where(jnp.isinf(impure_N), 0.0, impure_N)
    candidates_Q = jnp.concatenate([jnp.zeros((1,), x.dtype), candidates])
    # Purity of each candidate: the fraction of points with m(x) > candidate, by a sorted
    # search (O((N + Q) log N), no [Q, N] comparison).
    num_pure_Q = N - jnp.searchsorted(jnp.sort(impure_N), candidates_Q, side="right")
    purity_Q = num_pure_Q / N
    return jnp.max(jnp.where(purity_Q >= purity, candidates_Q, 0.0))
