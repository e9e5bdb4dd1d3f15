r"""Kernel batch selection for regression (Holzmüller, Zaverkin, Kästner, Steinwart, JMLR 2023).

The selection methods of the paper's framework, on a kernel given by finite features
(:class:`jaxal.kernel_features.Features`: pool rows :math:`\phi(x)` ``[N, P]`` and training
rows ``[L, P]``, :math:`k(x, x') = \phi(x) \cdot \phi(x')`), with the kernel distance

.. math:: d(x, x')^2 = k(x, x) + k(x', x') - 2 k(x, x') = \|\phi(x) - \phi(x')\|^2.

* **MaxDiag**: the ``b`` largest :math:`k(x, x)` (with :func:`~jaxal.kernel_features.posterior`
  features: the largest posterior variances), no interaction within the batch.
* **MaxDet**: greedy maximisation of :math:`\log\det(K_{SS} + \sigma^2 I)`, i.e. a pivoted
  Cholesky of :math:`K + \sigma^2 I`: add the point of largest conditional variance
  :math:`k_S(x, x) + \sigma^2`, then subtract the square of the new Cholesky column.
* **MaxDist**: greedy k-center, add :math:`\arg\max_x \min_{c \in C} d(x, c)^2`.
* **k-means++**: add :math:`x` with probability :math:`\propto \min_{c \in C} d(x, c)^2`.
* **LCMD** (largest-cluster maximum distance): assign every pool point to its nearest centre
  in :math:`C`, take the cluster with the largest sum of :math:`d^2` to its centre, and add its
  point farthest from the centre.
* **Frank-Wolfe**: Frank-Wolfe steps approximating the kernel mean embedding of the pool,
  :math:`\mu = \sum_x \phi(x)`, by a weighted sum of the chosen :math:`\phi(x)`, each chosen
  as :math:`\arg\max_x \langle \phi(x) / \|\phi(x)\|, \mu - \mu_S \rangle`, then
  :math:`\mu_S \leftarrow (1 - \gamma)\mu_S + \gamma r \phi(x) / \|\phi(x)\|`,
  :math:`r = \sum_x \|\phi(x)\|`, with the line-search :math:`\gamma`.
* **BAIT** (forward-backward): minimise the summed GP posterior variance over the targets
  :math:`X_{\text{tgt}} = ` pool :math:`\cup` train, :math:`\sum_{t} k_S(t, t)` with noise
  :math:`\sigma^2`. Forward: greedily add :math:`\arg\max_x \sum_t k_S(t, x)^2 / (k_S(x, x) +
  \sigma^2)` until ``round(overselection_factor * b)`` points are chosen (this step is
  :func:`jaxal.select.ev_gp`'s with the linear kernel on the features); backward: repeatedly
  remove the chosen point whose removal increases the objective least,
  :math:`\sum_t k_S(t, x)^2 / (\sigma^2 - k_S(x, x))`, down to ``b``. Factor 1 is BAIT-F,
  factor 2 (default) the paper's BAIT-FB.

**Training data (bmdal's modes).** As in bmdal's defaults, the distance methods (MaxDist,
k-means++, LCMD) run in *TP mode*: the training points are the initial centres :math:`C`
(``C = train ∪ selected``); the others run in *P mode* and see the pool only (MaxDet, BAIT
and MaxDiag take the training set into account through the
:func:`~jaxal.kernel_features.posterior` transform, as in the paper's configurations; BAIT
also counts the training points among its targets). P mode for a distance method: pass
``Features(f.pool, f.train[:0])``; MaxDet in TP mode equals MaxDet on
``posterior(f, noise=s2)`` with the same ``noise`` (pivoting on the training points first
is exactly conditioning on them). Without training points, MaxDist and LCMD start from the
point of largest :math:`k(x, x)` and k-means++ from a uniformly random point (bmdal's rules).

**available.** ``available=False`` removes a pool point from the problem, as if it were not
in the pool: it is never selected and does not count in LCMD's cluster sums, Frank-Wolfe's
embedding :math:`\mu` or BAIT's targets. Points already labelled belong in ``train``.

**Compute.** Every greedy method is one compiled ``lax.fori_loop`` with fixed shapes (the
distance methods share :mod:`jaxal.select._geometry`'s loop). A step computes one new
kernel column :math:`\Phi_{\text{pool}} \phi(x_{\text{new}})` (``O(N P)``) and updates ``[N]``
statistics; MaxDet keeps its ``[b, N]`` Cholesky columns (``O(N b)`` a step); BAIT keeps the
posterior features ``[N, P]`` and ``[N, P]`` cross features (EV-GP's ``[N, M]`` pool-target
cross-covariance compressed to ``P`` columns by a square root of the ``[P, P]`` target
covariance; ``O(N P)`` a step, ``O(N P^2 + P^3)`` once). Distances to the training set are
computed in ``[1024, N]`` blocks. Nothing is ``[N, N]``.

**Memory.** Every method takes ``memory_budget=`` (:mod:`jaxal.memory`) and documents its
working memory in numbers (times the itemsize, at least 4 bytes). The distance methods'
``[R, N]`` blocks of distances to the training set shrink below 1024 rows until the model
fits (the same selection); the rest is state the greedy loop needs throughout (``[N]``
statistics, MaxDet's ``[b, N]`` Cholesky columns, BAIT's two ``[N, P]`` feature matrices,
Frank-Wolfe's ``[N, P]`` unit features), checked against the budget: a smaller one raises
``ValueError``.

**Differences from bmdal_reg** (``bmdal/selection.py``): where bmdal's selection fails
numerically it fills the batch with random points; here the loops cannot fail (a zero
conditional variance or step size skips that update) and always return distinct available
indices. BAIT's forward score has no ``+1e-8`` in its denominator and BAIT needs
``noise > 0``; instead of bmdal's incrementally updated ``[P, P]`` target covariance and
``[N]`` scores (whose float32 round-off grows as the scores shrink), BAIT updates the
cross features and recomputes every score from them (same selections in exact
arithmetic). MaxDiag returns the indices best first. LCMD weighs clusters by squared
distances (bmdal's default ``dist_weight_mode="sq-dist"``, the paper's method). Posterior
updates in float32 with the paper's ``noise = 1e-6`` are inaccurate, which matters most for
BAIT's backward (down-dating) steps; bmdal runs them in float64, and so should you
(``jax_enable_x64``).
"""

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int

from jaxal import check, memory
from jaxal._registry import Registry
from jaxal.kernel_features import DEFAULT_NOISE, Features, _matmul, _validate
from jaxal.select._geometry import (
    DEFAULT_BLOCK_SIZE,
    _greedy,
    _sq_dist_to,
    _sq_dists,
    budgeted_block,
)
from jaxal.select._gumbel import gumbel_top_k, gumbel_words
from jaxal.select._top_k import masked, top_k_words
from jaxal.typing import Available, Key

DEFAULT_OVERSELECTION_FACTOR = 2.0
"""BAIT-FB's forward batch size relative to ``b`` in the paper (1.0 is BAIT-F)."""

_METHODS = Registry("kernel selection method")


def _diag(phi_N_P: Array) -> Array:
    """``[N]`` kernel diagonal :math:`k(x, x) = \\|\\phi(x)\\|^2`."""
    return jnp.sum(phi_N_P**2, axis=1)


def _prepare(features: Features, b: int, available: Available | None):
    features = _validate(features)
    available = check.available(available, features.pool.shape[0], on_trace="skip")
    b = check.batch_size(b, available, on_trace="skip")
    return features, available, b


def _require(budget: memory.Budget, words: int, features: Features, method: str) -> None:
    """Check a method's working memory, ``words`` numbers, against ``memory_budget``."""
    memory.require(
        budget,
        words * memory.itemsize(features.pool),
        what=f"{method} on N = {features.pool.shape[0]} points",
        hint="raise it (this state is needed throughout the greedy loop)",
    )


def _check_noise(noise, *, positive: bool) -> None:
    if check.is_concrete(noise):
        ok = float(noise) > 0 if positive else float(noise) >= 0
        if not ok:
            raise ValueError(f"noise must be {'>' if positive else '>='} 0; got {noise}")


# --- MaxDiag -------------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("b",))
def _maxdiag(features: Features, available_N: Array, *, b: int) -> Array:
    return jax.lax.top_k(masked(_diag(features.pool), available_N), b)[1]


def maxdiag_words(N: int, b: int) -> int:
    """Working memory of :func:`maxdiag` in numbers: ``4 N + 4 b + 64`` (the ``[N]`` diagonal
    and :func:`jaxal.select.top_k`'s)."""
    return N + top_k_words(N, b)


@_METHODS.register("maxdiag")
def maxdiag(
    features: Features,
    b: int,
    *,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""MaxDiag: the ``b`` available points of largest :math:`k(x, x)`, best first.

    Naive active learning: with :func:`~jaxal.kernel_features.posterior` features
    :math:`k(x, x)` is the posterior variance. Ties go to the lower index.

    Args:
      features: the kernel (:class:`~jaxal.kernel_features.Features`); ``train`` is unused.
      b: batch size, static Python int with ``1 <= b <= #available``.
      available: optional bool ``[N]`` mask of selectable points.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``),
        ``4 N + 4 b + 64`` numbers (:func:`maxdiag_words`).

    Returns:
      ``[b]`` distinct available indices.
    """
    features, available, b = _prepare(features, b, available)
    _require(memory_budget, maxdiag_words(features.pool.shape[0], b), features, "maxdiag")
    return _maxdiag(features, available, b=b)


# --- MaxDet --------------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("b",))
def _maxdet(features: Features, available_N: Array, noise: Array, *, b: int) -> Array:
    phi_N_P = features.pool
    N = phi_N_P.shape[0]
    dtype = phi_N_P.dtype
    noise = jnp.asarray(noise, dtype)

    def choose(i, state, available_N):
        return jnp.argmax(masked(state[0], available_N))

    def update(state, new):
        var_N, factors_B_N, count = state
        column_N = (
            _matmul(phi_N_P, phi_N_P[new])
            + noise * (jnp.arange(N) == new)
            - factors_B_N.T @ factors_B_N[:, new]
        )
        pivot = var_N[new]
        scale = jnp.where(pivot > 0, jax.lax.rsqrt(jnp.where(pivot > 0, pivot, 1.0)), 0.0)
        update_N = column_N * scale
        return var_N - update_N**2, factors_B_N.at[count].set(update_N), count + 1

    state = (_diag(phi_N_P) + noise, jnp.zeros((b, N), dtype), 0)
    return _greedy(choose, update, state, available_N, jnp.zeros((b,), jnp.int32), start=0)


def maxdet_words(N: int, b: int) -> int:
    """Working memory of :func:`maxdet` in numbers: ``(b + 8) N + 4 b + 256`` (the
    ``[b, N]`` Cholesky columns, the conditional variances and a new column)."""
    return (b + 8) * N + 4 * b + 256


@_METHODS.register("maxdet")
def maxdet(
    features: Features,
    b: int,
    *,
    noise: float = DEFAULT_NOISE,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""MaxDet: greedy maximisation of :math:`\log\det(K_{SS} + \sigma^2 I)`.

    Each step adds the available point of largest conditional variance
    :math:`k_S(x, x) + \sigma^2` given the chosen set ``S`` (a pivoted Cholesky
    decomposition of :math:`K + \sigma^2 I`; the conditional variances are updated by the
    square of each new Cholesky column). P mode: condition on the training set with
    :func:`~jaxal.kernel_features.posterior` first (the paper's ``maxdet-p ... train``);
    with the same ``noise`` that is bmdal's TP mode. If every remaining point has zero
    conditional variance (only possible with ``noise = 0``) the rest are taken by index.

    Args:
      features: the kernel; ``train`` is unused.
      b: batch size, static Python int with ``1 <= b <= #available``.
      noise: :math:`\sigma^2 \ge 0` added to the diagonal (paper: ``1e-6``).
      available: optional bool ``[N]`` mask of selectable points.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``),
        ``(b + 8) N + 4 b + 256`` numbers (:func:`maxdet_words`).

    Returns:
      ``[b]`` distinct available indices, in the order they were chosen.
    """
    features, available, b = _prepare(features, b, available)
    _check_noise(noise, positive=False)
    _require(memory_budget, maxdet_words(features.pool.shape[0], b), features, "maxdet")
    return _maxdet(features, available, noise, b=b)


# --- centre methods: MaxDist, k-means++, LCMD ----------------------------------------------------


def centre_words(method: str, N: int, P: int, L: int, b: int, block_size: int) -> int:
    """Working memory of the distance methods in numbers: ``10 N + 4 b + 256`` (``[N]``
    distances, centres and scores), ``+ 5 N + 516`` for k-means++ (a Gumbel draw per step),
    ``+ 2 (L + b)`` for LCMD (cluster sums), ``+ (N + P + 2) R`` (a block of ``R`` training
    rows' distances to the pool, ``R = min(block_size, L)``)."""
    words = 10 * N + 4 * b + 256 + (N + P + 2) * min(block_size, L)
    if method == "kmeanspp":
        words += gumbel_words(N, 1)
    if method == "lcmd":
        words += 2 * (L + b)
    return words


def _centre_block(budget: memory.Budget, features: Features, b: int, method: str) -> int:
    """Training rows per distance block: 1024, or fewer to fit ``memory_budget``."""
    (N, P), L = features.pool.shape, features.train.shape[0]
    return budgeted_block(
        budget,
        DEFAULT_BLOCK_SIZE,
        max(L, 1),
        lambda R: centre_words(method, N, P, L, b, R),
        itemsize=memory.itemsize(features.pool),
        what=f"{method} on N = {N} points and L = {L} training points",
    )


def _nearest_train(pool_N_P: Array, train_L_P: Array, block_size: int) -> tuple[Array, Array]:
    """``[N]`` squared distance to the nearest training point and its index (first on ties)."""
    N, L = pool_N_P.shape[0], train_L_P.shape[0]
    R = min(block_size, L)
    num_blocks = -(-L // R)
    rows = jnp.minimum(jnp.arange(num_blocks * R, dtype=jnp.int32), L - 1).reshape(num_blocks, R)

    def block(carry, rows_R):
        min_sq_N, nearest_N = carry
        sq_R_N = _sq_dists(train_L_P[rows_R], pool_N_P)
        closer_N = jnp.min(sq_R_N, axis=0) < min_sq_N
        return (
            jnp.where(closer_N, jnp.min(sq_R_N, axis=0), min_sq_N),
            jnp.where(closer_N, rows_R[jnp.argmin(sq_R_N, axis=0)], nearest_N),
        ), None

    init = (jnp.full((N,), jnp.inf, pool_N_P.dtype), jnp.zeros((N,), jnp.int32))
    return jax.lax.scan(block, init, rows)[0]


def _start(
    features: Features, available_N: Array, first: Callable[[], Array], b: int, block_size: int
) -> tuple[Array, Array, Array, Array, int]:
    """Centres before the greedy loop: the training points, or ``first()`` if ``L = 0``.

    Returns ``(min_sq_N, centre_N, indices_B, available_N, start)``: the squared distance to
    the nearest centre, that centre's label (training point ``l`` is ``l``, the ``i``-th
    selected point ``L + i``), the batch so far and the first step left to do.
    """
    pool_N_P, train_L_P = features
    N, L = pool_N_P.shape[0], train_L_P.shape[0]
    indices_B = jnp.zeros((b,), jnp.int32)
    if L > 0:
        min_sq_N, centre_N = _nearest_train(pool_N_P, train_L_P, block_size)
        return min_sq_N, centre_N, indices_B, available_N, 0
    new = first().astype(jnp.int32)
    min_sq_N = _sq_dist_to(pool_N_P, pool_N_P[new])
    centre_N = jnp.zeros((N,), jnp.int32)
    return min_sq_N, centre_N, indices_B.at[0].set(new), available_N.at[new].set(False), 1


def _closer(min_sq_N: Array, pool_N_P: Array, new: Array) -> tuple[Array, Array]:
    """Distances to the new centre ``new``; mask of points strictly closer to it."""
    sq_N = _sq_dist_to(pool_N_P, pool_N_P[new])
    return sq_N, sq_N < min_sq_N


@partial(jax.jit, static_argnames=("b", "block_size"))
def _maxdist(features: Features, available_N: Array, *, b: int, block_size: int) -> Array:
    pool_N_P = features.pool

    def first():
        return jnp.argmax(masked(_diag(pool_N_P), available_N))

    min_sq_N, _, indices_B, available_N, start = _start(features, available_N, first, b, block_size)

    def choose(i, min_sq_N, available_N):
        return jnp.argmax(masked(min_sq_N, available_N))

    def update(min_sq_N, new):
        return jnp.minimum(min_sq_N, _sq_dist_to(pool_N_P, pool_N_P[new]))

    return _greedy(choose, update, min_sq_N, available_N, indices_B, start)


@_METHODS.register("maxdist")
def maxdist(
    features: Features,
    b: int,
    *,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""MaxDist: greedy k-center in the kernel distance, training points as centres.

    Adds :math:`\arg\max_x \min_{c \in \text{train} \cup S} d(x, c)^2` among the available
    points (ties to the lower index). Without training points the first pick is the point
    of largest :math:`k(x, x)` (bmdal). ``O(N P)`` a step plus ``O(N L P)`` once.

    Args:
      features: the kernel, with the training points as initial centres.
      b: batch size, static Python int with ``1 <= b <= #available``.
      available: optional bool ``[N]`` mask of selectable points.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``),
        ``10 N + 4 b + 256 + (N + P + 2) R`` numbers for blocks of ``R`` training rows
        (:func:`centre_words`); ``R`` shrinks below 1024 until it fits.

    Returns:
      ``[b]`` distinct available indices, in the order they were chosen.
    """
    features, available, b = _prepare(features, b, available)
    block_size = _centre_block(memory_budget, features, b, "maxdist")
    return _maxdist(features, available, b=b, block_size=block_size)


@partial(jax.jit, static_argnames=("b", "block_size"))
def _kmeanspp(
    key: Key, features: Features, available_N: Array, *, b: int, block_size: int
) -> Array:
    pool_N_P = features.pool
    keys_B = jax.random.split(key, b)

    def first():
        return gumbel_top_k(
            keys_B[0], jnp.zeros(available_N.shape, pool_N_P.dtype), 1, available_N
        )[0]

    min_sq_N, _, indices_B, available_N, start = _start(features, available_N, first, b, block_size)

    def choose(i, min_sq_N, available_N):
        return gumbel_top_k(keys_B[i], jnp.log(min_sq_N), 1, available_N)[0]

    def update(min_sq_N, new):
        return jnp.minimum(min_sq_N, _sq_dist_to(pool_N_P, pool_N_P[new]))

    return _greedy(choose, update, min_sq_N, available_N, indices_B, start)


@_METHODS.register("kmeanspp", random=True)
def kmeanspp(
    features: Features,
    b: int,
    *,
    key: Key,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""k-means++ seeding in the kernel distance, training points as centres.

    Draws each point with probability :math:`\propto \min_{c \in \text{train} \cup S}
    d(x, c)^2` among the available points not chosen yet (points at distance 0 only once all
    others are exhausted, then uniformly). Without training points the first pick is
    uniform (bmdal). Gumbel-max sampling, one key per step.

    Args:
      features: the kernel, with the training points as initial centres.
      b: batch size, static Python int with ``1 <= b <= #available``.
      key: PRNG key.
      available: optional bool ``[N]`` mask of selectable points.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``),
        ``10 N + 4 b + 256 + (N + P + 2) R`` numbers (``+ 5 N + 516``) for blocks of ``R``
        training rows (:func:`centre_words`); ``R`` shrinks below 1024 until it fits.

    Returns:
      ``[b]`` distinct available indices, in the order they were drawn.
    """
    features, available, b = _prepare(features, b, available)
    block_size = _centre_block(memory_budget, features, b, "kmeanspp")
    return _kmeanspp(key, features, available, b=b, block_size=block_size)


@partial(jax.jit, static_argnames=("b", "block_size"))
def _lcmd(features: Features, available_N: Array, *, b: int, block_size: int) -> Array:
    pool_N_P = features.pool
    L = features.train.shape[0]

    def first():
        return jnp.argmax(masked(_diag(pool_N_P), available_N))

    min_sq_N, centre_N, indices_B, available_N, start = _start(
        features, available_N, first, b, block_size
    )

    def choose(i, state, available_N):
        min_sq_N, centre_N, _ = state
        weight_N = jnp.where(available_N, min_sq_N, 0.0)
        size_C = jax.ops.segment_sum(weight_N, centre_N, num_segments=L + b)
        in_largest_N = size_C[centre_N] == jnp.max(size_C)
        return jnp.argmax(masked(jnp.where(in_largest_N, min_sq_N, -1.0), available_N))

    def update(state, new):
        min_sq_N, centre_N, label = state
        sq_N, closer_N = _closer(min_sq_N, pool_N_P, new)
        return jnp.where(closer_N, sq_N, min_sq_N), jnp.where(closer_N, label, centre_N), label + 1

    state = (min_sq_N, centre_N, jnp.int32(L + start))
    return _greedy(choose, update, state, available_N, indices_B, start)


@_METHODS.register("lcmd")
def lcmd(
    features: Features,
    b: int,
    *,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""LCMD: the farthest point of the largest cluster around train :math:`\cup` selected.

    Each step assigns every available pool point to its nearest centre
    (``train ∪ S``, ties to the earlier centre), sums :math:`d(x, c)^2` per cluster, and
    adds the available point farthest from its centre within the cluster of largest sum
    (all clusters tied at the maximum compete, as in bmdal). Without training points the
    first pick is the point of largest :math:`k(x, x)`. Cluster sums are a
    ``jax.ops.segment_sum`` over ``L + b`` fixed segments: ``O(N P + L + b)`` a step.
    The paper's best method with the sketched gradient kernel.

    Args:
      features: the kernel, with the training points as initial centres.
      b: batch size, static Python int with ``1 <= b <= #available``.
      available: optional bool ``[N]`` mask of selectable points.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``),
        ``10 N + 4 b + 256 + (N + P + 2) R`` numbers (``+ 2 (L + b)``) for blocks of ``R``
        training rows (:func:`centre_words`); ``R`` shrinks below 1024 until it fits.

    Returns:
      ``[b]`` distinct available indices, in the order they were chosen.
    """
    features, available, b = _prepare(features, b, available)
    block_size = _centre_block(memory_budget, features, b, "lcmd")
    return _lcmd(features, available, b=b, block_size=block_size)


# --- Frank-Wolfe ---------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("b",))
def _frankwolfe(features: Features, available_N: Array, *, b: int) -> Array:
    phi_N_P = features.pool
    dtype = phi_N_P.dtype
    norm_N = jnp.sqrt(_diag(phi_N_P))
    unit_N_P = phi_N_P / (norm_N + 1e-30)[:, None]
    weight_N = available_N.astype(dtype)
    mean_embedding_P = _matmul(weight_N, phi_N_P)
    radius = jnp.sum(weight_N * norm_N)

    def choose(i, embedding_P, available_N):
        return jnp.argmax(masked(_matmul(unit_N_P, mean_embedding_P - embedding_P), available_N))

    def update(embedding_P, new):
        vertex_P = radius * unit_N_P[new]
        direction_P = vertex_P - embedding_P
        sq_length = jnp.dot(direction_P, direction_P)
        gain = jnp.dot(direction_P, mean_embedding_P - embedding_P)
        gamma = jnp.where(sq_length > 0, gain / jnp.where(sq_length > 0, sq_length, 1.0), 0.0)
        return embedding_P + gamma * direction_P

    embedding_P = jnp.zeros(phi_N_P.shape[1], dtype)
    return _greedy(choose, update, embedding_P, available_N, jnp.zeros((b,), jnp.int32), start=0)


def frankwolfe_words(N: int, P: int) -> int:
    """Working memory of :func:`frankwolfe` in numbers: ``N P + 4 N + 2 P + 256`` (the
    ``[N, P]`` unit features, norms and scores)."""
    return N * P + 4 * N + 2 * P + 256


@_METHODS.register("frankwolfe")
def frankwolfe(
    features: Features,
    b: int,
    *,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""Frank-Wolfe: approximate the pool's kernel mean embedding (bmdal's feature-space FW).

    With :math:`\mu = \sum_x \phi(x)` over the available pool, :math:`r = \sum_x \|\phi(x)\|`
    and :math:`\mu_S` the current approximation (0 at the start), each step adds
    :math:`x^* = \arg\max_x \langle \phi(x) / \|\phi(x)\|, \mu - \mu_S \rangle` among the
    available points not chosen yet and moves :math:`\mu_S` towards the vertex
    :math:`v = r \phi(x^*) / \|\phi(x^*)\|` by the exact line search
    :math:`\gamma = \langle v - \mu_S, \mu - \mu_S \rangle / \|v - \mu_S\|^2`.
    P mode (``train`` unused). ``O(N P)`` a step.

    Args:
      features: the kernel.
      b: batch size, static Python int with ``1 <= b <= #available``.
      available: optional bool ``[N]`` mask of selectable points (and of the embedded pool).
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``),
        ``N P + 4 N + 2 P + 256`` numbers (:func:`frankwolfe_words`).

    Returns:
      ``[b]`` distinct available indices, in the order they were chosen.
    """
    features, available, b = _prepare(features, b, available)
    _require(memory_budget, frankwolfe_words(*features.pool.shape), features, "frankwolfe")
    return _frankwolfe(features, available, b=b)


# --- BAIT ----------------------------------------------------------------------------------------


def _bait_condition(state, new: Array, noise: Array, sign: float):
    r"""Add (``sign = 1``) or remove (``sign = -1``) pool point ``new`` from the GP's data.

    ``state = (phi_N_P, cross_N_P)``: posterior pool features :math:`\phi_S` and cross
    features :math:`g_S(x) = R \phi_S(x)`, where :math:`R^\top R = C = \sum_t \phi(t)
    \phi(t)^\top` is the prior target covariance, so that :math:`g_S(x) \cdot g_S(y) =
    \sum_t k_S(t, x) k_S(t, y)`. Conditioning maps :math:`\phi \to M \phi`,
    :math:`M = I - s \beta \phi_x \phi_x^\top`, :math:`\beta = 1 / (e + \sigma \sqrt{e})`,
    :math:`e = \sigma^2 + s k_S(x, x)`, whose square :math:`I - s \phi_x \phi_x^\top / e` is
    the rank-one GP update (a down-date for ``s = -1``; bmdal's BAIT map). Hence
    :math:`g \to g - s\, k_S(\cdot, x)\, g_S(x) / e`: ``O(N P)``, no ``[P, P]`` work.
    """
    phi_N_P, cross_N_P = state
    phi_P = phi_N_P[new]
    denominator = jnp.maximum(noise + sign * jnp.dot(phi_P, phi_P), jnp.finfo(phi_P.dtype).tiny)
    root = jnp.sqrt(denominator)
    beta = 1.0 / (root * (root + jnp.sqrt(noise)))
    dot_N = _matmul(phi_N_P, phi_P)
    return (
        phi_N_P - sign * beta * jnp.outer(dot_N, phi_P),
        cross_N_P - sign * jnp.outer(dot_N / denominator, cross_N_P[new]),
    )


@partial(jax.jit, static_argnames=("b", "num_forward"))
def _bait(
    features: Features, available_N: Array, noise: Array, *, b: int, num_forward: int
) -> Array:
    phi_N_P, train_L_P = features
    dtype = phi_N_P.dtype
    noise = jnp.asarray(noise, dtype)
    target_N = available_N.astype(dtype)
    cov_P_P = _matmul(phi_N_P.T * target_N[None, :], phi_N_P) + _matmul(train_L_P.T, train_L_P)
    eigenvalues_P, eigenvectors_P_P = jnp.linalg.eigh(cov_P_P)
    root_P_P = eigenvectors_P_P * jnp.sqrt(jnp.maximum(eigenvalues_P, 0.0))[None, :]
    state = (phi_N_P, _matmul(phi_N_P, root_P_P))

    def forward(i, carry):
        state, available_N, order_F, kept_F = carry
        phi_N_P, cross_N_P = state
        decrease_N = _diag(cross_N_P) / (_diag(phi_N_P) + noise)
        new = jnp.argmax(masked(decrease_N, available_N))
        valid = jnp.any(available_N)  # fewer than num_forward available: stop adding
        state = jax.lax.cond(
            valid, lambda s: _bait_condition(s, new, noise, 1.0), lambda s: s, state
        )
        return (
            state,
            available_N.at[new].set(False),
            order_F.at[i].set(new.astype(jnp.int32)),
            kept_F.at[i].set(valid),
        )

    order_F = jnp.zeros((num_forward,), jnp.int32)
    carry = (state, available_N, order_F, jnp.zeros((num_forward,), bool))
    state, _, order_F, kept_F = jax.lax.fori_loop(0, num_forward, forward, carry)

    def backward(j, carry):
        state, kept_F = carry
        phi_N_P, cross_N_P = state
        slack_F = jnp.maximum(noise - _diag(phi_N_P[order_F]), jnp.finfo(dtype).tiny)
        increase_F = _diag(cross_N_P[order_F]) / slack_F
        position = jnp.argmin(jnp.where(kept_F, increase_F, jnp.inf))
        valid = jnp.sum(kept_F) > b
        state = jax.lax.cond(
            valid, lambda s: _bait_condition(s, order_F[position], noise, -1.0), lambda s: s, state
        )
        return state, kept_F.at[position].set(kept_F[position] & ~valid)

    _, kept_F = jax.lax.fori_loop(0, num_forward - b, backward, (state, kept_F))
    return order_F[jnp.nonzero(kept_F, size=b)[0]]


def bait_words(N: int, P: int, num_forward: int) -> int:
    """Working memory of :func:`bait` in numbers: ``4 N P + 4 N + 6 P^2 + (2 P + 4) F + 256``
    (the posterior and cross features and their rank-one updates, the ``[P, P]`` target
    covariance and its eigendecomposition, the features of the ``F`` forward picks)."""
    return 4 * N * P + 4 * N + 6 * P * P + (2 * P + 4) * num_forward + 256


@_METHODS.register("bait")
def bait(
    features: Features,
    b: int,
    *,
    noise: float = DEFAULT_NOISE,
    overselection_factor: float = DEFAULT_OVERSELECTION_FACTOR,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""BAIT forward-backward: minimise the summed posterior variance over pool and train.

    The objective is :math:`V(S) = \sum_{t \in X_{\text{tgt}}} k_S(t, t)`, the GP posterior
    variance (noise :math:`\sigma^2`) after observing ``S``, summed over the targets: the
    available pool points and the training points. Forward: add
    :math:`\arg\max_x \sum_t k_S(t, x)^2 / (k_S(x, x) + \sigma^2)` (the largest decrease of
    :math:`V`) until ``round(overselection_factor * b)`` points (at most ``N``) are chosen;
    backward: remove the point with the smallest increase
    :math:`\sum_t k_S(t, x)^2 / (\sigma^2 - k_S(x, x))` until ``b`` remain. Returns the
    survivors in forward order. P mode: apply :func:`~jaxal.kernel_features.posterior` first
    to condition on the training set (the paper's ``bait-fb-p ... train``). Works in feature
    space: the posterior pool features ``[N, P]`` and cross features ``[N, P]`` (whose
    squared row norms are :math:`\sum_t k_S(t, x)^2`) are updated by rank-one maps,
    ``O(N P)`` a step after an ``O(N P^2 + P^3)`` start.

    Down-dating divides by :math:`\sigma^2 - k_S(x, x) \le \sigma^2`: with the paper's
    :math:`\sigma^2 = 10^{-6}` use float64.

    Args:
      features: the kernel (``train`` rows are targets, not conditioned on).
      b: batch size, static Python int with ``1 <= b <= #available``.
      noise: :math:`\sigma^2 > 0` (paper: ``1e-6``).
      overselection_factor: forward batch size over ``b``, ``>= 1``; 1 gives BAIT-F, the
        paper's BAIT-FB uses 2.
      available: optional bool ``[N]`` mask of selectable (and target) pool points.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``),
        ``4 N P + 4 N + 6 P^2 + (2 P + 4) F + 256`` numbers for ``F`` forward picks
        (:func:`bait_words`).

    Returns:
      ``[b]`` distinct available indices.
    """
    features, available, b = _prepare(features, b, available)
    _check_noise(noise, positive=True)
    if not overselection_factor >= 1:
        raise ValueError(f"overselection_factor must be >= 1; got {overselection_factor}")
    N, P = features.pool.shape
    num_forward = max(b, min(round(overselection_factor * b), N))
    _require(memory_budget, bait_words(N, P, num_forward), features, "bait")
    return _bait(features, available, noise, b=b, num_forward=num_forward)


# --- dispatch ------------------------------------------------------------------------------------


def kernel_batch(
    features: Features,
    b: int,
    *,
    method: str = "lcmd",
    key: Key | None = None,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
    **kwargs,
) -> Int[Array, " B"]:
    """Select a batch with the kernel method named ``method`` (default: the paper's LCMD).

    ``method`` is one of ``"bait"``, ``"frankwolfe"``, ``"kmeanspp"``, ``"lcmd"``,
    ``"maxdet"``, ``"maxdiag"``, ``"maxdist"`` (a registry; an unknown name raises
    ``ValueError`` listing them). ``key`` is required by the random methods (k-means++) and
    ignored by the others; ``memory_budget`` (:mod:`jaxal.memory`) and ``kwargs`` go to the
    method (``noise=``, ``overselection_factor=``); each method documents its memory model.

    >>> import jax
    >>> from jaxal import kernel_features
    >>> phi = jax.random.normal(jax.random.key(0), (100, 8))
    >>> f = kernel_features.last_layer(phi[:90], phi[90:])
    >>> kernel_batch(f, 5, method="maxdist").shape
    (5,)
    """
    fn = _METHODS.get(method)
    if method in _METHODS.names(random=True):
        if key is None:
            raise ValueError(f"method {method!r} is random and needs key= (a jax.random key)")
        kwargs["key"] = key
    return fn(features, b, available=available, memory_budget=memory_budget, **kwargs)
