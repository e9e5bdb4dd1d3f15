r"""Kernel batch selection for regression (Holzmüller, Zaverkin, Kästner, Steinwart, JMLR 2023).

The selection methods of the paper's framework, on a kernel given by finite features
``phi`` ``[N, P]`` over the whole pool (:mod:`jaxal.kernel_features`,
:math:`k(x, x') = \phi(x) \cdot \phi(x')`), with the kernel distance

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
  :math:`X_{\text{tgt}} = ` unlabelled pool :math:`\cup` labelled, :math:`\sum_{t} k_S(t, t)`
  with noise :math:`\sigma^2`. Forward: greedily add :math:`\arg\max_x \sum_t k_S(t, x)^2 /
  (k_S(x, x) + \sigma^2)` until ``round(overselection_factor * b)`` points are chosen (this
  step is :func:`jaxal.select.ev_gp`'s with the linear kernel on the features); backward:
  repeatedly remove the chosen point whose removal increases the objective least,
  :math:`\sum_t k_S(t, x)^2 / (\sigma^2 - k_S(x, x))`, down to ``b``. Factor 1 is BAIT-F,
  factor 2 (default) the paper's BAIT-FB.

**Labelled points (bmdal's modes).** ``labelled`` (bool ``[N]``, may be traced) marks the
rows of ``phi`` that are labelled, bmdal's training set; they are never selected. As in
bmdal's defaults, the distance methods (MaxDist, k-means++, LCMD) run in *TP mode*: the
labelled rows are the initial centres :math:`C` (``C = labelled ∪ selected``); the others
run in *P mode* and see the unlabelled rows only (MaxDet, BAIT and MaxDiag take the labelled
set into account through the :func:`~jaxal.kernel_features.posterior` transform, as in the
paper's configurations; BAIT also counts the labelled rows among its targets). P mode for a
distance method: pass ``available=~labelled`` and ``labelled=None``; MaxDet in TP mode
equals MaxDet on ``posterior(phi, labelled=labelled, noise=s2)`` with the same ``noise``
(pivoting on the labelled points first is exactly conditioning on them). Without labelled
points, MaxDist and LCMD start from the point of largest :math:`k(x, x)` and k-means++ from
a uniformly random point (bmdal's rules).

**available** (default ``~labelled``). ``available=False`` on an unlabelled row removes it
from the problem, as if it were not in the pool: it is never selected and does not count in
LCMD's cluster sums, Frank-Wolfe's embedding :math:`\mu` or BAIT's targets.

**Arguments and result.** Every method takes ``phi``, the ``[N, P]`` kernel features of the
whole pool (labelled rows included), the batch size ``b`` (a static Python int with
``1 <= b <= #selectable``), ``labelled`` and ``available`` (above) and ``memory_budget``
(bytes or e.g. ``"1GB"``; **Memory** below), and returns ``[b]`` distinct available,
unlabelled indices (under ``jit``/``vmap``, the positions past the available count hold the
sentinel ``N``: :func:`jaxal.check.picks`) in the order its docstring names.

**Compute.** Every greedy method is one compiled ``lax.fori_loop`` with fixed shapes (the
distance methods share :mod:`jaxal.select._greedy`'s loop); no shape depends on the
number ``L`` of labelled points. A step computes one new kernel column
:math:`\Phi \phi(x_{\text{new}})` (``O(N P)``) and updates ``[N]`` statistics; MaxDet keeps
its ``[b, N]`` Cholesky columns (``O(N b)`` a step); BAIT keeps the posterior features
``[N, P]`` and ``[N, P]`` cross features (EV-GP's ``[N, M]`` pool-target cross-covariance
compressed to ``P`` columns by a square root of the ``[P, P]`` target covariance;
``O(N P)`` a step, ``O(N P^2 + P^3)`` once). The distance methods' distances to the
labelled set are computed once, in ``[R, N]`` blocks of ``R`` labelled rows (the labelled
indices come first in a stable ``argsort`` of ``~labelled``), by a ``lax.fori_loop`` whose
trip count is the traced number of blocks ``ceil(L / R)``: ``O(N L P)`` work (at least one
block's ``O(N R P)`` when ``L > 0``) with fixed shapes. Nothing is ``[N, N]``.

**Memory.** Every method takes ``memory_budget=`` (:mod:`jaxal.memory`: the working memory
is XLA's count of the compiled program's temporaries). The distance methods'
``[R, N]`` blocks of distances to the labelled rows shrink below ``R = 64`` rows until the
program fits (the same selection); the rest is state the greedy loop needs throughout (``[N]``
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

import math
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from jaxal import check, memory
from jaxal._numerics import matmul
from jaxal._registry import Registry
from jaxal.kernel_features import DEFAULT_NOISE, Labelled
from jaxal.select._distances import add_centre, largest_norm, sq_dist_to, sq_dists
from jaxal.select._greedy import greedy, selection_inputs
from jaxal.select._gumbel import draw
from jaxal.select._top_k import masked
from jaxal.typing import Available, Key

DEFAULT_OVERSELECTION_FACTOR = 2.0
"""BAIT-FB's forward batch size relative to ``b`` in the paper (1.0 is BAIT-F)."""

LABELLED_BLOCK_SIZE = 64
"""Labelled rows per block: of distances ``[R, N]`` in the distance methods, of rank-``R``
updates in :func:`jaxal.select.ev_gp`."""

_METHODS = Registry("kernel selection method")

Phi = Float[ArrayLike, "N P"]
"""Kernel features of the whole pool, labelled rows included."""

# Duplicates (reason): the public methods repeat one signature and its Args line on purpose
# (explicit, documented, type-checked); their bodies share selection_inputs,
# memory.call_within and _centre_method.


def _diag(phi_N_P: Array) -> Array:
    """``[N]`` kernel diagonal :math:`k(x, x) = \\|\\phi(x)\\|^2`."""
    return jnp.sum(phi_N_P**2, axis=1)


GREEDY_STATE = "raise it (this state is needed throughout the greedy loop)"
"""The fix named when a method's greedy state does not fit its ``memory_budget``."""


# --- MaxDiag -------------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("b",))
def _maxdiag(phi_N_P: Array, selectable_N: Array, *, b: int) -> Array:
    return jax.lax.top_k(masked(_diag(phi_N_P), selectable_N), b)[1]


@_METHODS.register("maxdiag")
def maxdiag(
    phi: Phi,
    b: int,
    *,
    labelled: Labelled | None = None,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""MaxDiag: the ``b`` selectable points of largest :math:`k(x, x)`, best first.

    Naive active learning: with :func:`~jaxal.kernel_features.posterior` features
    :math:`k(x, x)` is the posterior variance. Ties go to the lower index.

    Args:
      phi, b, labelled, available, memory_budget: as for every method (module docstring).

    Returns:
      ``[b]`` indices, best first.
    """
    phi, _, selectable, b = selection_inputs(phi, b, labelled, available, "phi")
    what = f"maxdiag on N = {phi.shape[0]} points"
    indices = memory.call_within(
        memory_budget, _maxdiag, phi, selectable, b=b, what=what, hint=GREEDY_STATE
    )
    return check.picks(indices, selectable)


# --- MaxDet --------------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("b",))
def _maxdet(phi_N_P: Array, selectable_N: Array, noise: Array, *, b: int) -> Array:
    N = phi_N_P.shape[0]
    dtype = phi_N_P.dtype
    noise = jnp.asarray(noise, dtype)

    def choose(i, state, available_N):
        return jnp.argmax(masked(state[0], available_N))

    def update(state, new):
        var_N, factors_B_N, count = state
        column_N = (
            matmul(phi_N_P, phi_N_P[new])
            + noise * (jnp.arange(N) == new)
            - factors_B_N.T @ factors_B_N[:, new]
        )
        pivot = var_N[new]
        scale = jnp.where(pivot > 0, jax.lax.rsqrt(jnp.where(pivot > 0, pivot, 1.0)), 0.0)
        update_N = column_N * scale
        return var_N - update_N**2, factors_B_N.at[count].set(update_N), count + 1

    state = (_diag(phi_N_P) + noise, jnp.zeros((b, N), dtype), 0)
    return greedy(choose, update, state, selectable_N, jnp.zeros((b,), jnp.int32), start=0)


@_METHODS.register("maxdet")
def maxdet(
    phi: Phi,
    b: int,
    *,
    labelled: Labelled | None = None,
    available: Available | None = None,
    noise: float = DEFAULT_NOISE,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""MaxDet: greedy maximisation of :math:`\log\det(K_{SS} + \sigma^2 I)`.

    Each step adds the selectable point of largest conditional variance
    :math:`k_S(x, x) + \sigma^2` given the chosen set ``S`` (a pivoted Cholesky
    decomposition of :math:`K + \sigma^2 I`; the conditional variances are updated by the
    square of each new Cholesky column). P mode: condition on the labelled rows with
    :func:`~jaxal.kernel_features.posterior` first (the paper's ``maxdet-p ... train``);
    with the same ``noise`` that is bmdal's TP mode. If every remaining point has zero
    conditional variance (only possible with ``noise = 0``) the rest are taken by index.

    Args:
      phi, b, labelled, available, memory_budget: as for every method (module docstring).
      noise: finite :math:`\sigma^2 \ge 0` added to the diagonal (paper: ``1e-6``; 0 is the
        plain log-determinant of :math:`K_{SS}`).

    Returns:
      ``[b]`` indices, in the order they were chosen.
    """
    phi, _, selectable, b = selection_inputs(phi, b, labelled, available, "phi")
    check.scalar(noise, "noise", positive=False, what=" (a noise variance)")
    what = f"maxdet on N = {phi.shape[0]} points"
    indices = memory.call_within(
        memory_budget, _maxdet, phi, selectable, noise, b=b, what=what, hint=GREEDY_STATE
    )
    return check.picks(indices, selectable)


# --- centre methods: MaxDist, k-means++, LCMD ----------------------------------------------------


def _centre_method(
    method: str,
    program: Callable,
    phi: Phi,
    b: int,
    labelled: Labelled | None,
    available: Available | None,
    budget: memory.Budget,
    *lead,
) -> Array:
    """A centre method's selection: validate (:func:`selection_inputs`), run
    ``program(*lead, phi, labelled, selectable, b=, block_size=R)`` with ``R`` labelled rows
    per distance block, :data:`LABELLED_BLOCK_SIZE` or fewer to fit the budget
    (:func:`jaxal.memory.in_blocks`), and check the picks."""
    phi, labelled, selectable, b = selection_inputs(phi, b, labelled, available, "phi")
    N = phi.shape[0]
    args = (*lead, phi, labelled, selectable)
    R = min(LABELLED_BLOCK_SIZE, N)
    what = f"{method} on N = {N} points"
    indices = memory.in_blocks(budget, program, *args, b=b, block_size=R, what=what)
    return check.picks(indices, selectable)


def over_labelled_blocks(fn: Callable, init, labelled_N: Array, block_size: int):
    """Fold ``carry = fn(rows_R, valid_R, carry)`` over blocks of ``R`` labelled row indices.

    The labelled indices, in increasing order, come first in a stable ``argsort`` of
    ``~labelled``; block ``j`` is positions ``[j R, (j + 1) R)`` of that order, ``valid_R``
    marking the positions below ``L`` (the rest are unlabelled rows, to be ignored). A
    ``fori_loop`` over the traced number of blocks ``ceil(L / R)``: the work follows the
    number of labelled rows ``L`` while every shape is fixed (``R = min(block_size, N)``).
    """
    N = labelled_N.shape[0]
    R = min(block_size, N)
    num_labelled = jnp.sum(labelled_N, dtype=jnp.int32)
    order_N = jnp.argsort(~labelled_N, stable=True).astype(jnp.int32)
    order_N = jnp.pad(order_N, (0, -(-N // R) * R - N))

    def block(j, carry):
        rows_R = jax.lax.dynamic_slice_in_dim(order_N, j * R, R)
        valid_R = j * R + jnp.arange(R, dtype=jnp.int32) < num_labelled
        return fn(rows_R, valid_R, carry)

    return jax.lax.fori_loop(0, (num_labelled + R - 1) // R, block, init)


def _nearest_labelled(
    phi_N_P: Array, labelled_N: Array, block_size: int
) -> tuple[Array, Array, Array]:
    """Squared distance ``[N]`` to the nearest labelled row, its index (first on ties), and
    whether any row is labelled (else the distances are ``inf``). ``O(N L P)``."""

    def block(rows_R, valid_R, carry):
        min_sq_N, nearest_N = carry
        sq_R_N = jnp.where(valid_R[:, None], sq_dists(phi_N_P[rows_R], phi_N_P), jnp.inf)
        block_min_N = jnp.min(sq_R_N, axis=0)
        closer_N = block_min_N < min_sq_N
        return (
            jnp.where(closer_N, block_min_N, min_sq_N),
            jnp.where(closer_N, rows_R[jnp.argmin(sq_R_N, axis=0)], nearest_N),
        )

    N = phi_N_P.shape[0]
    init = (jnp.full((N,), jnp.inf, phi_N_P.dtype), jnp.zeros((N,), jnp.int32))
    min_sq_N, nearest_N = over_labelled_blocks(block, init, labelled_N, block_size)
    return min_sq_N, nearest_N, jnp.any(labelled_N)


def _closer(min_sq_N: Array, phi_N_P: Array, new: Array) -> tuple[Array, Array]:
    """Distances to the new centre ``new``; mask of points strictly closer to it."""
    sq_N = sq_dist_to(phi_N_P, phi_N_P[new])
    return sq_N, sq_N < min_sq_N


def _or_first(i: Array, has_labelled: Array, first: Array, pick: Array) -> Array:
    """Step ``i``'s pick: ``first`` at step 0 when there is no labelled centre, else ``pick``."""
    return jnp.where((i == 0) & ~has_labelled, first, pick)


def _from_centres(
    phi_N_P: Array,
    labelled_N: Array,
    selectable_N: Array,
    first: Array,
    pick: Callable,
    b: int,
    block_size: int,
) -> Array:
    """MaxDist's and k-means++'s loop: step ``i`` adds ``pick(i, min_sq_N, available_N)``
    (``first`` at step 0 when no row is labelled), ``min_sq_N`` the ``[N]`` squared distance
    to the nearest centre in ``labelled ∪ S``."""
    min_sq_N, _, has_labelled = _nearest_labelled(phi_N_P, labelled_N, block_size)

    def choose(i, min_sq_N, available_N):
        return _or_first(i, has_labelled, first, pick(i, min_sq_N, available_N))

    indices_B = jnp.zeros((b,), jnp.int32)
    return greedy(choose, partial(add_centre, phi_N_P), min_sq_N, selectable_N, indices_B, 0)


@partial(jax.jit, static_argnames=("b", "block_size"))
def _maxdist(
    phi_N_P: Array, labelled_N: Array, selectable_N: Array, *, b: int, block_size: int
) -> Array:
    def farthest(i, min_sq_N, available_N):
        return jnp.argmax(masked(min_sq_N, available_N))

    first = largest_norm(phi_N_P, selectable_N)
    return _from_centres(phi_N_P, labelled_N, selectable_N, first, farthest, b, block_size)


@_METHODS.register("maxdist")
def maxdist(
    phi: Phi,
    b: int,
    *,
    labelled: Labelled | None = None,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""MaxDist: greedy k-center in the kernel distance, labelled rows as centres.

    Adds :math:`\arg\max_x \min_{c \in \text{labelled} \cup S} d(x, c)^2` among the
    selectable points (ties to the lower index). Without labelled points the first pick is
    the point of largest :math:`k(x, x)` (bmdal). ``O(N P)`` a step plus ``O(N L P)`` once.

    Args:
      phi, b, labelled, available, memory_budget: as for every method (module docstring);
        the labelled rows are the initial centres.

    Returns:
      ``[b]`` indices, in the order they were chosen.
    """
    return _centre_method("maxdist", _maxdist, phi, b, labelled, available, memory_budget)


@partial(jax.jit, static_argnames=("b", "block_size"))
def _kmeanspp(
    key: Key, phi_N_P: Array, labelled_N: Array, selectable_N: Array, *, b: int, block_size: int
) -> Array:
    keys_B = jax.random.split(key, b)
    first = draw(keys_B[0], jnp.zeros(selectable_N.shape, phi_N_P.dtype), 1, selectable_N)[0]

    def d2_sample(i, min_sq_N, available_N):
        return draw(keys_B[i], jnp.log(min_sq_N), 1, available_N)[0]

    return _from_centres(phi_N_P, labelled_N, selectable_N, first, d2_sample, b, block_size)


@_METHODS.register("kmeanspp", random=True)
def kmeanspp(
    phi: Phi,
    b: int,
    *,
    key: Key,
    labelled: Labelled | None = None,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""k-means++ seeding in the kernel distance, labelled rows as centres.

    Draws each point with probability :math:`\propto \min_{c \in \text{labelled} \cup S}
    d(x, c)^2` among the selectable points not chosen yet (points at distance 0 only once
    all others are exhausted, then uniformly). Without labelled points the first pick is
    uniform (bmdal). Gumbel-max sampling, one key per step.

    Args:
      phi, b, labelled, available, memory_budget: as for every method (module docstring);
        the labelled rows are the initial centres.
      key: PRNG key (``jax.random.key(seed)``).

    Returns:
      ``[b]`` indices, in the order they were drawn.
    """
    key = check.key(key)
    return _centre_method("kmeanspp", _kmeanspp, phi, b, labelled, available, memory_budget, key)


@partial(jax.jit, static_argnames=("b", "block_size"))
def _lcmd(
    phi_N_P: Array, labelled_N: Array, selectable_N: Array, *, b: int, block_size: int
) -> Array:
    N = phi_N_P.shape[0]
    min_sq_N, centre_N, has_labelled = _nearest_labelled(phi_N_P, labelled_N, block_size)
    first = largest_norm(phi_N_P, selectable_N)

    def choose(i, state, available_N):
        min_sq_N, centre_N = state
        weight_N = jnp.where(available_N, min_sq_N, 0.0)
        size_N = jax.ops.segment_sum(weight_N, centre_N, num_segments=N)  # per centre row
        in_largest_N = size_N[centre_N] == jnp.max(size_N)
        pick = jnp.argmax(masked(jnp.where(in_largest_N, min_sq_N, -1.0), available_N))
        return _or_first(i, has_labelled, first, pick)

    def update(state, new):
        min_sq_N, centre_N = state
        sq_N, closer_N = _closer(min_sq_N, phi_N_P, new)
        new_centre = new.astype(jnp.int32)
        return jnp.where(closer_N, sq_N, min_sq_N), jnp.where(closer_N, new_centre, centre_N)

    state = (min_sq_N, centre_N)
    return greedy(choose, update, state, selectable_N, jnp.zeros((b,), jnp.int32), start=0)


@_METHODS.register("lcmd")
def lcmd(
    phi: Phi,
    b: int,
    *,
    labelled: Labelled | None = None,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""LCMD: the farthest point of the largest cluster around labelled :math:`\cup` selected.

    Each step assigns every selectable point to its nearest centre (``labelled ∪ S``, ties
    to the earlier centre: the lower labelled index, labelled before selected, then the
    earlier selected), sums :math:`d(x, c)^2` per cluster, and adds the selectable point
    farthest from its centre within the cluster of largest sum (all clusters tied at the
    maximum compete, as in bmdal). Without labelled points the first pick is the point of
    largest :math:`k(x, x)`. Cluster sums are a ``jax.ops.segment_sum`` over ``N`` fixed
    segments (one per possible centre row): ``O(N P)`` a step, plus ``O(N L P)`` once.
    The paper's best method with the sketched gradient kernel.

    Args:
      phi, b, labelled, available, memory_budget: as for every method (module docstring);
        the labelled rows are the initial centres.

    Returns:
      ``[b]`` indices, in the order they were chosen.
    """
    return _centre_method("lcmd", _lcmd, phi, b, labelled, available, memory_budget)


# --- Frank-Wolfe ---------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("b",))
def _frankwolfe(phi_N_P: Array, selectable_N: Array, *, b: int) -> Array:
    dtype = phi_N_P.dtype
    norm_N = jnp.sqrt(_diag(phi_N_P))
    unit_N_P = phi_N_P / (norm_N + 1e-30)[:, None]
    weight_N = selectable_N.astype(dtype)
    mean_embedding_P = matmul(weight_N, phi_N_P)
    radius = jnp.sum(weight_N * norm_N)

    def choose(i, embedding_P, available_N):
        return jnp.argmax(masked(matmul(unit_N_P, mean_embedding_P - embedding_P), available_N))

    def update(embedding_P, new):
        vertex_P = radius * unit_N_P[new]
        direction_P = vertex_P - embedding_P
        sq_length = jnp.dot(direction_P, direction_P)
        gain = jnp.dot(direction_P, mean_embedding_P - embedding_P)
        gamma = jnp.where(sq_length > 0, gain / jnp.where(sq_length > 0, sq_length, 1.0), 0.0)
        return embedding_P + gamma * direction_P

    embedding_P = jnp.zeros(phi_N_P.shape[1], dtype)
    return greedy(choose, update, embedding_P, selectable_N, jnp.zeros((b,), jnp.int32), start=0)


@_METHODS.register("frankwolfe")
def frankwolfe(
    phi: Phi,
    b: int,
    *,
    labelled: Labelled | None = None,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""Frank-Wolfe: approximate the pool's kernel mean embedding (bmdal's feature-space FW).

    With :math:`\mu = \sum_x \phi(x)` over the selectable pool, :math:`r = \sum_x \|\phi(x)\|`
    and :math:`\mu_S` the current approximation (0 at the start), each step adds
    :math:`x^* = \arg\max_x \langle \phi(x) / \|\phi(x)\|, \mu - \mu_S \rangle` among the
    selectable points not chosen yet and moves :math:`\mu_S` towards the vertex
    :math:`v = r \phi(x^*) / \|\phi(x^*)\|` by the exact line search
    :math:`\gamma = \langle v - \mu_S, \mu - \mu_S \rangle / \|v - \mu_S\|^2`.
    P mode (labelled rows are only excluded). ``O(N P)`` a step.

    Args:
      phi, b, labelled, available, memory_budget: as for every method (module docstring);
        the available points are the ones embedded.

    Returns:
      ``[b]`` indices, in the order they were chosen.
    """
    phi, _, selectable, b = selection_inputs(phi, b, labelled, available, "phi")
    what = f"frankwolfe on N = {phi.shape[0]} points"
    indices = memory.call_within(
        memory_budget, _frankwolfe, phi, selectable, b=b, what=what, hint=GREEDY_STATE
    )
    return check.picks(indices, selectable)


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
    dot_N = matmul(phi_N_P, phi_P)
    return (
        phi_N_P - sign * beta * jnp.outer(dot_N, phi_P),
        cross_N_P - sign * jnp.outer(dot_N / denominator, cross_N_P[new]),
    )


@partial(jax.jit, static_argnames=("b", "num_forward"))
def _bait(
    phi_N_P: Array,
    labelled_N: Array,
    selectable_N: Array,
    noise: Array,
    *,
    b: int,
    num_forward: int,
) -> Array:
    dtype = phi_N_P.dtype
    noise = jnp.asarray(noise, dtype)
    target_N = (selectable_N | labelled_N).astype(dtype)
    cov_P_P = matmul(phi_N_P.T * target_N[None, :], phi_N_P)
    eigenvalues_P, eigenvectors_P_P = jnp.linalg.eigh(cov_P_P)
    root_P_P = eigenvectors_P_P * jnp.sqrt(jnp.maximum(eigenvalues_P, 0.0))[None, :]
    state = (phi_N_P, matmul(phi_N_P, root_P_P))

    def forward(i, carry):
        state, available_N, order_F, kept_F = carry
        phi_N_P, cross_N_P = state
        decrease_N = _diag(cross_N_P) / (_diag(phi_N_P) + noise)
        new = jnp.argmax(masked(decrease_N, available_N))
        valid = jnp.any(available_N)  # fewer than num_forward selectable: stop adding
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
    carry = (state, selectable_N, order_F, jnp.zeros((num_forward,), bool))
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


@_METHODS.register("bait")
def bait(
    phi: Phi,
    b: int,
    *,
    labelled: Labelled | None = None,
    available: Available | None = None,
    noise: float = DEFAULT_NOISE,
    overselection_factor: float = DEFAULT_OVERSELECTION_FACTOR,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""BAIT forward-backward: minimise the summed posterior variance over pool and labelled.

    The objective is :math:`V(S) = \sum_{t \in X_{\text{tgt}}} k_S(t, t)`, the GP posterior
    variance (noise :math:`\sigma^2`) after observing ``S``, summed over the targets: the
    selectable points and the labelled rows. Forward: add
    :math:`\arg\max_x \sum_t k_S(t, x)^2 / (k_S(x, x) + \sigma^2)` (the largest decrease of
    :math:`V`) until ``round(overselection_factor * b)`` points (at most ``N``) are chosen;
    backward: remove the point with the smallest increase
    :math:`\sum_t k_S(t, x)^2 / (\sigma^2 - k_S(x, x))` until ``b`` remain. Returns the
    survivors in forward order. P mode: apply :func:`~jaxal.kernel_features.posterior` first
    to condition on the labelled rows (the paper's ``bait-fb-p ... train``). Works in feature
    space: the posterior features ``[N, P]`` and cross features ``[N, P]`` (whose squared
    row norms are :math:`\sum_t k_S(t, x)^2`) are updated by rank-one maps, ``O(N P)`` a
    step after an ``O(N P^2 + P^3)`` start.

    Down-dating divides by :math:`\sigma^2 - k_S(x, x) \le \sigma^2`: with the paper's
    :math:`\sigma^2 = 10^{-6}` use float64.

    Args:
      phi, b, labelled, available, memory_budget: as for every method (module docstring);
        the targets are the labelled rows (not conditioned on) and the available points.
      noise: finite :math:`\sigma^2 > 0` (paper: ``1e-6``).
      overselection_factor: forward batch size over ``b``, finite and ``>= 1``; 1 gives
        BAIT-F, the paper's BAIT-FB uses 2.

    Returns:
      ``[b]`` indices, the survivors in forward order.
    """
    phi, labelled, selectable, b = selection_inputs(phi, b, labelled, available, "phi")
    check.scalar(noise, "noise", what=" (a noise variance)")
    if not (math.isfinite(overselection_factor) and overselection_factor >= 1):
        raise ValueError(
            f"overselection_factor must be finite and >= 1; got {overselection_factor}"
        )
    N, P = phi.shape
    num_forward = max(b, min(round(overselection_factor * b), N))
    args = (phi, labelled, selectable, noise)
    what = f"bait on N = {phi.shape[0]} points"
    indices = memory.call_within(
        memory_budget, _bait, *args, b=b, num_forward=num_forward, what=what, hint=GREEDY_STATE
    )
    return check.picks(indices, selectable)


# --- dispatch ------------------------------------------------------------------------------------


def kernel_batch(
    phi: Phi,
    b: int,
    *,
    method: str = "lcmd",
    key: Key | None = None,
    labelled: Labelled | None = None,
    available: Available | None = None,
    memory_budget: memory.Budget = None,
    **kwargs,
) -> Int[Array, " B"]:
    """Select a batch with the kernel method named ``method`` (default: the paper's LCMD).

    ``method`` is one of ``"bait"``, ``"frankwolfe"``, ``"kmeanspp"``, ``"lcmd"``,
    ``"maxdet"``, ``"maxdiag"``, ``"maxdist"`` (a registry; an unknown name raises
    ``ValueError`` listing them). ``key`` is required by the random methods (k-means++) and
    ignored (but, when given, validated) by the others; ``labelled``, ``available``,
    ``memory_budget`` (:mod:`jaxal.memory`) and ``kwargs`` go to the method (``noise=``,
    ``overselection_factor=``); each method documents its memory model.

    >>> import jax
    >>> phi = jax.random.normal(jax.random.key(0), (100, 8))
    >>> labelled = jnp.arange(100) >= 90
    >>> kernel_batch(phi, 5, method="maxdist", labelled=labelled).shape
    (5,)
    """
    fn = _METHODS.get(method)
    if method in _METHODS.names(random=True):
        if key is None:
            raise ValueError(f"method {method!r} is random and needs key=jax.random.key(seed)")
        kwargs["key"] = key
    elif key is not None:
        check.key(key)
    return fn(phi, b, labelled=labelled, available=available, memory_budget=memory_budget, **kwargs)
