r"""TypiClust (Hacohen, Dekel, Weinshall, ICML 2022) and its k-means.

k-means (Lloyd, k-means++ seeding from :func:`jaxal.select._badge.d2_seeding`) clusters the
pool; each point's nearest unlabelled cluster-mates are found once in ``[R, N]`` blocks of
rows, and a compiled greedy loop picks the most typical point of the next cluster.
**Memory:** ``memory_budget=`` (:mod:`jaxal.memory`) shrinks the blocks below
``block_size`` rows until XLA's count of the compiled program fits; k-means' ``[N, k]``
distances are needed throughout.
"""

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from jaxal import check, memory
from jaxal.select._badge import d2_seeding
from jaxal.select._distances import DEFAULT_BLOCK_SIZE, block_rows, row_blocks, sq_dists
from jaxal.select._greedy import greedy, selection_inputs
from jaxal.typing import Available, Key

DEFAULT_KMEANS_ITERATIONS = 100
"""Lloyd iterations of TypiClust's k-means."""

MAX_CLUSTERS = 500
"""TypiClust's cap on the number of clusters (the authors' ``MAX_NUM_CLUSTERS``)."""

MIN_CLUSTER_SIZE = 5
"""TypiClust samples clusters of more than this many points first (the authors'
``MIN_CLUSTER_SIZE``)."""

TYPICALITY_EPS = 1e-5
"""Added to TypiClust's mean squared neighbour distance before inverting (the authors')."""


def _assign(x_N_D: Array, centres_K_D: Array, active: Array | None = None) -> Array:
    """``[N]`` nearest centre; only the first ``active`` centres count when given."""
    sq_N_K = sq_dists(x_N_D, centres_K_D)
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
    centres_K_D = x_N_D[d2_seeding(keys, x_N_D, first, jnp.ones((N,), bool))]
    ones_N = jnp.ones((N,), x_N_D.dtype)

    def lloyd(_, centres_K_D):
        labels_N = _assign(x_N_D, centres_K_D, active)
        sums_K_D = jax.ops.segment_sum(x_N_D, labels_N, num_clusters)
        counts_K = jax.ops.segment_sum(ones_N, labels_N, num_clusters)
        means_K_D = sums_K_D / jnp.maximum(counts_K, 1.0)[:, None]
        return jnp.where(counts_K[:, None] > 0, means_K_D, centres_K_D)  # empty: keep centre

    return _assign(x_N_D, jax.lax.fori_loop(0, iterations, lloyd, centres_K_D), active)


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
    centre. ``memory_budget`` bounds the working memory, checked against the compiled
    program (the ``[N, k]`` distances are needed throughout: nothing is chunked, a smaller
    budget raises ``ValueError``).

    >>> x = jnp.array([[0.0], [0.1], [5.0], [5.1]])
    >>> labels = kmeans(x, 2, key=jax.random.key(0))
    >>> bool(labels[0] == labels[1]) and bool(labels[2] == labels[3] != labels[0])
    True
    """
    x_N_D = check.points(features, "features")
    key = check.key(key)
    num_clusters = check.integer(num_clusters, "num_clusters")
    iterations = check.integer(iterations, "iterations")
    if num_clusters > x_N_D.shape[0]:
        raise ValueError(f"num_clusters = {num_clusters} exceeds the N = {x_N_D.shape[0]} points")
    N = x_N_D.shape[0]
    static = {"num_clusters": num_clusters, "iterations": iterations}
    return memory.call_within(
        memory_budget,
        _kmeans_jit,
        key,
        x_N_D,
        what=f"kmeans on N = {N} points with {num_clusters} clusters",
        hint="raise it, or cluster fewer points",
        **static,
    )


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

    return row_blocks(fn, x_N_D, block_size)


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
    indices_B = greedy(choose, update, state, available_N, jnp.zeros((b,), jnp.int32), 0)
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
      b, labelled, available, memory_budget: :mod:`jaxal.select`'s convention; the budget
        shrinks the blocks below ``block_size`` rows until the compiled program fits.
      key: PRNG key (k-means initialisation).
      num_neighbours: neighbours in the typicality (paper: 20).
      kmeans_iterations: Lloyd iterations.
      num_clusters: static cluster count; ``None`` means ``min(|L| + b, max_clusters)``.
      max_clusters: the cap on the cluster count (authors: 500).
      min_cluster_size: clusters of at most this many points are used only once no larger
        one has a selectable point (authors: 5; 0 uses every cluster from the start).
      block_size: rows of the pairwise distance matrix computed at once.

    Returns:
      ``[b]`` distinct selectable indices, in the order they were chosen (the sentinel ``N``
      past the selectable count under ``jit``: :func:`jaxal.check.picks`).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.array([0.0, 0.4, 0.5, 0.6, 1.0, 10.0, 10.4, 10.5, 10.6, 11.0])[:, None]
      >>> sorted(typiclust(x, 2, key=jax.random.key(0)).tolist())  # each cluster's densest
      [2, 7]
    """
    x, labelled, available, b = selection_inputs(features, b, labelled, available, "features")
    key = check.key(key)
    N = x.shape[0]
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
    return memory.in_blocks(
        memory_budget,
        _typiclust,
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
        block_size=block_rows(block_size, N),
        what=f"typiclust on N = {N} points with {num_clusters} clusters",
    )
