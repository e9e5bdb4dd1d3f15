r"""Sub-pool active learning: run any strategy on a small, fixed-size part of the pool.

**AnchorAL** (Lesci & Vlachos, NAACL 2024). Each round, ``A`` *anchors* are drawn from each
class of the labelled set (k-means++ seeding within the class, all of its points when it has
at most ``A``); each anchor retrieves its ``k`` nearest unlabelled neighbours by cosine
similarity of fixed embeddings; a retrieved point scores its mean similarity to the anchors
that retrieved it,

.. math:: s(x) = \frac{1}{|\mathcal A(x)|} \sum_{a \in \mathcal A(x)} \cos(e(a), e(x)),
   \qquad \mathcal A(x) = \{a : x \in \mathrm{kNN}_k(a)\},

and the ``S`` highest-scoring points form the sub-pool on which the inner strategy runs
(:meth:`jaxal.context.Round.subpool`: its predictions are computed on the ``S`` points only).
Class-specific anchors make the sub-pool class-balanced, and drawing new anchors each round
keeps it from settling on the initial decision boundary. This is the authors' scoring
(``pietrolesci/anchoral``, ``src/anchoral.py``; ``small-text``'s ``AnchorSubsampling``) with
exact nearest neighbours instead of an HNSW index.

**Fixed shapes.** ``S = min(subpool_size, N)`` is static, so one program serves every round.
When fewer than ``S`` points were retrieved (the authors then return a smaller sub-pool), the
sub-pool is filled with the other unlabelled points by their largest similarity to any anchor
(with no anchor at all, uniformly at random), and then, only when fewer than ``S`` points are
unlabelled, with unavailable points, which the inner strategy cannot pick.

**Embeddings.** The paper retrieves with a fixed encoder's embeddings, computed once for the
pool. The default here is the pool inputs (``r.features("inputs")``): fixed, free and needing
no model call on the pool, which is what makes a round cost ``O(S)`` predictions. Pass
``features="last-layer"`` (or any :data:`jaxal.context.FEATURES` kind) to retrieve with the
model's own features, at the price of embedding the whole pool each round.

Shapes: ``N`` pool points, ``S`` sub-pool points, ``C`` classes, ``A`` anchors per class,
``P`` embedding dimension.
"""

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from jaxal import check
from jaxal.context import MissingSource, Round
from jaxal.select._badge import d2_seeding as _d2_seeding
from jaxal.typing import Key

__all__ = [
    "DEFAULT_ANCHORS_PER_CLASS",
    "DEFAULT_NUM_NEIGHBOURS",
    "DEFAULT_SUBPOOL_SIZE",
    "anchoral",
    "anchoral_subpool",
    "class_anchors",
]

Strategy = Callable[[Round, int], Array]

DEFAULT_SUBPOOL_SIZE = 500
"""Sub-pool size ``S`` (``small-text``'s default; the paper's 10,000 is for pools of 10^5+)."""

DEFAULT_ANCHORS_PER_CLASS = 10
"""Anchors per class ``A`` (the authors' setting for their main model; ``small-text``'s)."""

DEFAULT_NUM_NEIGHBOURS = 50
"""Neighbours ``k`` each anchor retrieves (the authors' and ``small-text``'s)."""


def _unit_rows(x_N_P: Array) -> Array:
    norm_N = jnp.linalg.norm(x_N_P, axis=1, keepdims=True)
    return x_N_P / jnp.maximum(norm_N, jnp.finfo(x_N_P.dtype).tiny)


def class_anchors(
    embeddings: Float[Array, "N P"],
    labels: Int[Array, " N"],
    *,
    num_classes: int,
    anchors_per_class: int,
    key: Key,
) -> Int[Array, "C A"]:
    """``A`` anchors of each class: k-means++ seeding among the points labelled ``c``.

    The first anchor of a class is uniform among its points, each further one drawn with
    probability proportional to its squared distance to the nearest anchor so far (the
    authors' ``kmeans_pp_sampling``). A class with at most ``A`` points contributes all of
    them; slots it cannot fill hold the sentinel ``N``.

    Args:
      embeddings: ``[N, P]`` embeddings.
      labels: ``[N]`` class of each labelled point, ``-1`` for unlabelled points.
      num_classes: ``C``, static.
      anchors_per_class: ``A``, static.
      key: PRNG key.

    Returns:
      ``[C, A]`` pool indices, sentinel ``N`` in unfilled slots.
    """
    N = embeddings.shape[0]
    A = min(check.integer(anchors_per_class, "anchors_per_class"), N)
    num_classes = check.integer(num_classes, "num_classes")
    return _class_anchors(key, embeddings, labels, num_classes=num_classes, A=A)


@partial(jax.jit, static_argnames=("num_classes", "A"))
def _class_anchors(key: Key, embeddings: Array, labels: Array, *, num_classes: int, A: int):
    def one_class(key, c):
        member_N = labels == c
        first_key, keys = jax.random.split(key)
        first = jax.random.categorical(first_key, jnp.where(member_N, 0.0, -jnp.inf))
        if A == 1:
            anchors_A = first[None].astype(jnp.int32)
        else:
            anchors_A = _d2_seeding(jax.random.split(keys, A - 1), embeddings, first, member_N)
        return check.picks(anchors_A, member_N)

    keys_C = jax.random.split(key, num_classes)
    return jax.vmap(one_class)(keys_C, jnp.arange(num_classes))


def anchoral_subpool(
    embeddings: Float[Array, "N P"],
    anchors: Int[Array, " A"],
    subpool_size: int,
    *,
    num_neighbours: int = DEFAULT_NUM_NEIGHBOURS,
    available: Bool[Array, " N"],
    key: Key,
) -> Int[Array, " S"]:
    """The ``S`` pool points AnchorAL retrieves for ``anchors`` (see the module docstring).

    Each valid anchor (index ``< N``; the sentinel ``N`` is skipped) retrieves its
    ``num_neighbours`` most cosine-similar available points; retrieved points are ranked by
    their mean similarity to the anchors that retrieved them, then the other available points
    by their largest similarity to an anchor (uniformly at random without anchors), then the
    unavailable ones. One ``lax.scan`` over the anchors with ``[N]`` state: ``O(A N P)`` time,
    ``O(N)`` memory.

    Args:
      embeddings: ``[N, P]`` pool embeddings (any scale: similarities are cosine).
      anchors: ``[A]`` anchor indices (sentinel ``N`` for none).
      subpool_size: ``S``, static, ``1 <= S <= N``.
      num_neighbours: ``k``, neighbours per anchor.
      available: bool ``[N]`` points that may be retrieved (the unlabelled ones).
      key: PRNG key of the random fill when no anchor is valid.

    Returns:
      ``[S]`` distinct pool indices, best first.
    """
    N = embeddings.shape[0]
    S = check.integer(subpool_size, "subpool_size")
    if S > N:
        raise ValueError(f"subpool_size must be at most the pool size N = {N}; got {S}")
    k = min(check.integer(num_neighbours, "num_neighbours"), N)
    return _anchoral_subpool(key, embeddings, anchors, available, S=S, k=k)


@partial(jax.jit, static_argnames=("S", "k"))
def _anchoral_subpool(
    key: Key, embeddings: Array, anchors: Array, available: Array, *, S: int, k: int
) -> Array:
    N = embeddings.shape[0]
    unit_N_P = _unit_rows(embeddings)

    def retrieve(carry, anchor):
        sum_N, count_N, best_N = carry
        valid = anchor < N
        sim_N = unit_N_P @ unit_N_P[jnp.minimum(anchor, N - 1)]
        top_sim_k, top_k = jax.lax.top_k(jnp.where(available, sim_N, -jnp.inf), k)
        hit_k = valid & (top_sim_k > -jnp.inf)
        sum_N = sum_N.at[top_k].add(jnp.where(hit_k, top_sim_k, 0.0))
        count_N = count_N.at[top_k].add(hit_k.astype(count_N.dtype))
        best_N = jnp.where(valid, jnp.maximum(best_N, sim_N), best_N)
        return (sum_N, count_N, best_N), None

    zeros_N = jnp.zeros((N,), unit_N_P.dtype)
    init = (zeros_N, jnp.zeros((N,), jnp.int32), jnp.full((N,), -jnp.inf, unit_N_P.dtype))
    (sum_N, count_N, best_N), _ = jax.lax.scan(retrieve, init, anchors)
    retrieved_N = count_N > 0
    mean_N = sum_N / jnp.maximum(count_N, 1).astype(sum_N.dtype)
    random_N = jax.random.uniform(key, (N,), unit_N_P.dtype)
    fill_N = jnp.where(jnp.any(anchors < N), best_N - 2.0, random_N - 3.5)
    rank_N = jnp.where(retrieved_N, mean_N + 2.0, fill_N)  # [1, 3] above [-3.5, -1]
    return jax.lax.top_k(jnp.where(available, rank_N, -jnp.inf), S)[1]


def _num_classes(r: Round) -> int:
    """``C`` without predicting on the pool: the network's output width (or the recorded
    predictions' classes)."""
    try:
        apply, params = r.network
    except MissingSource:
        return r.pool.shape[-1]
    return jax.eval_shape(lambda: apply(params, r.x_pool[:1])).shape[-1]


def anchoral(
    inner: Strategy,
    *,
    subpool_size: int = DEFAULT_SUBPOOL_SIZE,
    anchors_per_class: int = DEFAULT_ANCHORS_PER_CLASS,
    num_neighbours: int = DEFAULT_NUM_NEIGHBOURS,
    features: str = "inputs",
) -> Strategy:
    """The strategy running ``inner`` on AnchorAL's sub-pool of each round.

    Anchors (:func:`class_anchors`, on the round's labels; a round without labels, built
    without ``y_pool``, has its labelled set taken as one class) retrieve the sub-pool
    (:func:`anchoral_subpool`) of ``S = min(subpool_size, N)`` points on the embeddings
    ``r.features(features)``; ``inner`` runs on :meth:`jaxal.context.Round.subpool` and its
    sub-pool indices are mapped back to pool indices (the sub-pool sentinel ``S`` to the
    pool sentinel ``N``).

    Args:
      inner: any strategy ``inner(r, b) -> [b]``.
      subpool_size: ``S`` (clipped to the pool size).
      anchors_per_class: ``A``.
      num_neighbours: ``k``, neighbours each anchor retrieves.
      features: the :data:`jaxal.context.FEATURES` kind retrieval uses (default the inputs,
        see the module docstring).

    Returns:
      ``strategy(r, b) -> [b]`` pool indices.
    """
    check.integer(subpool_size, "subpool_size")
    check.integer(anchors_per_class, "anchors_per_class")
    check.integer(num_neighbours, "num_neighbours")

    def strategy(r: Round, b: int) -> Array:
        N = r.num_points
        S = min(subpool_size, N)
        embeddings_N_P = r.features(features)
        try:
            labels_N = r.labels
        except MissingSource:
            labels_N = jnp.where(r.labelled, 0, -1)
        anchor_key, fill_key = jax.random.split(jax.random.fold_in(r.key, 0x5B))
        anchors_C_A = class_anchors(
            embeddings_N_P,
            jnp.where(r.labelled, labels_N, -1),
            num_classes=_num_classes(r),
            anchors_per_class=anchors_per_class,
            key=anchor_key,
        )
        indices_S = anchoral_subpool(
            embeddings_N_P,
            anchors_C_A.reshape(-1),
            S,
            num_neighbours=num_neighbours,
            available=r.available,
            key=fill_key,
        )
        sub_B = inner(r.subpool(indices_S), b)
        return jnp.where(sub_B < S, indices_S[jnp.minimum(sub_B, S - 1)], N)

    strategy.__doc__ = (
        f"AnchorAL (S = {subpool_size}, A = {anchors_per_class}, k = {num_neighbours}) around "
        f"{getattr(inner, '__name__', 'the inner strategy')}."
    )
    return strategy
