r"""VeSSAL (Saran, Yousefi, Krishnamurthy, Langford, Ash, ICML 2023): streaming volume sampling.

Points arrive one at a time; each is queried, or skipped for good, on arrival. The query
probability is the point's volume gain under the covariance of the points queried so far,
normalised so that the expected number of queries matches the budget:

.. math::

    p_t = \min\Big(1,\ \zeta_t\, g_t^\top A_{t-1}^{-1} g_t\Big), \qquad
    \zeta_t = \frac{r_t}{\operatorname{tr}(\Sigma_t A_{t-1}^{-1})}, \qquad
    r_t = \frac{b - q_{t-1}}{n - (t - 1)},

with :math:`g_t` the gradient embedding of the ``t``-th point of the stream (``t = 1..n``),
:math:`q_{t-1}` the queries so far, :math:`\Sigma_t = \frac1t \sum_{s \le t} g_s g_s^\top`
the running mean of every seen embedding's outer product (queried or not: the estimate of
:math:`\mathbb E[g g^\top]` that makes :math:`\mathbb E[p_t] \approx r_t`), and
:math:`A_t = A_0 + \sum_{s \le t \text{ queried}} g_s g_s^\top` with
:math:`A_0^{-1} = \lambda I` (``cov_inv_scaling``, the authors' default 100).
:math:`g^\top A^{-1} g = \det(A + g g^\top) / \det A - 1` is the volume gain (matrix determinant
lemma). A queried point updates :math:`A^{-1}` by Sherman-Morrison,
:math:`A^{-1} \leftarrow A^{-1} - A^{-1} g g^\top A^{-1} / (1 + g^\top A^{-1} g)`. The rate
:math:`r_t` is the remaining budget over the remaining stream, so the queries never exceed
``b`` (:math:`r_t = 0` once ``b`` points are queried) and adapt when they fall behind.

This is the authors' ``StreamingSampling.streaming_sampler`` (``query_strategies/vessal.py``
of github.com/asaran/VeSSAL, with their defaults ``rank = 1``, ``cov_inv_scaling = 100``,
no early stop) step for step; their overflow guard ``inf_replace`` is not needed.
:math:`A^{-1}` and :math:`\Sigma` are ``[P, P]``: a step costs ``O(P^2)``.
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from jaxal import check, kernel_features
from jaxal.select._gumbel import draw
from jaxal.typing import Available, Key

DEFAULT_COV_INV_SCALING = 100.0
"""The authors' :math:`A_0^{-1} = 100 I` (``--cov_inv_scaling``)."""


class VessalState(NamedTuple):
    """What VeSSAL carries along a stream (a pytree; a leading seed axis under ``vmap``).

    Attributes:
      covariance: ``[P, P]`` :math:`\\Sigma_t`, the mean of :math:`g g^\\top` over the points
        seen.
      covariance_inv: ``[P, P]`` :math:`A_t^{-1}`, the inverse of the queried points' scatter
        plus :math:`A_0`.
      seen: int32 scalar, points of the stream seen so far (``t``).
      queried: int32 scalar, points queried so far (``q_t``).
      budget: int32 scalar, the queries wanted over the whole stream (``b``).
      length: int32 scalar, the length of the whole stream (``n``).
      key: raw PRNG key data of the stream: point ``t``'s uniform is drawn from
        ``fold_in(key, t)``, so a stream cut into chunks draws what one pass draws.
    """

    covariance: Array
    covariance_inv: Array
    seen: Array
    queried: Array
    budget: Array
    length: Array
    key: Array


def _count(value, name: str, low: int) -> Array:
    """An int32 scalar ``>= low``: checked now when concrete, only its type when traced."""
    if isinstance(value, jax.Array | np.ndarray):
        if value.ndim != 0 or not jnp.issubdtype(value.dtype, jnp.integer):
            raise TypeError(
                f"{name} must be an integer scalar; got dtype {value.dtype}, shape {value.shape}"
            )
        if not check.is_concrete(value):
            return jnp.asarray(value, jnp.int32)
        value = int(value)
    return jnp.asarray(check.integer(value, name, low=low), jnp.int32)


def vessal_init(
    dim: int,
    *,
    key: Key,
    budget: int | Int[Array, ""],
    length: int | Int[Array, ""],
    cov_inv_scaling: float = DEFAULT_COV_INV_SCALING,
    dtype=None,
) -> VessalState:
    r"""The state before the first point of a stream: :math:`\Sigma_0 = 0`, :math:`A_0^{-1} =
    \lambda I`, nothing seen or queried.

    Args:
      dim: ``P``, the embedding dimension.
      key: PRNG key of the whole stream (kept in the state).
      budget: ``b``, the number of queries wanted over the stream (``>= 0``; may be traced).
      length: ``n``, the number of points the stream will have (``>= 1``; may be traced). A
        stream that runs past ``n`` keeps the rate of its last point's remaining budget.
      cov_inv_scaling: :math:`\lambda`, ``> 0`` (the authors' default 100).
      dtype: floating dtype of the matrices (default: JAX's default float).

    Returns:
      A :class:`VessalState`.
    """
    dim = check.integer(dim, "dim")
    key = check.key(key)
    scaling = check.scalar(cov_inv_scaling, "cov_inv_scaling", dtype=dtype)
    dtype = scaling.dtype if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype; got {dtype}")
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)
    return VessalState(
        covariance=jnp.zeros((dim, dim), dtype),
        covariance_inv=scaling * jnp.eye(dim, dtype=dtype),
        seen=jnp.zeros((), jnp.int32),
        queried=jnp.zeros((), jnp.int32),
        budget=_count(budget, "budget", 0),
        length=_count(length, "length", 1),
        key=jax.random.key_data(key),
    )


def stream_uniform(key_data: Array, t: Array, dtype) -> Array:
    """The uniform on ``[0, 1)`` that decides the ``t``-th point (0-based) of a stream."""
    key = jax.random.fold_in(jax.random.wrap_key_data(key_data), t)
    return jax.random.uniform(key, dtype=dtype)


def query_probability(state: VessalState, g_P: Array) -> tuple[Array, Array, Array]:
    r"""The next point's query probability (before clipping to 1), with the state's updated
    :math:`\Sigma_t` and :math:`A_{t-1}^{-1} g_t` (module docstring)."""
    t = state.seen.astype(g_P.dtype)
    inv_g_P = state.covariance_inv @ g_P
    gain = jnp.abs(g_P @ inv_g_P)
    remaining = jnp.maximum(state.length - state.seen, 1).astype(g_P.dtype)
    rate = (state.budget - state.queried).astype(g_P.dtype) / remaining
    covariance = (t / (t + 1)) * state.covariance + jnp.outer(g_P, g_P) / (t + 1)
    zeta = rate / jnp.sum(covariance * state.covariance_inv.T)  # tr(Sigma_t A^{-1})
    return jnp.abs(zeta) * gain, covariance, inv_g_P


def _step(state: VessalState, inputs: tuple[Array, Array]) -> tuple[VessalState, Array]:
    g_P, ok = inputs
    p, covariance, inv_g_P = query_probability(state, g_P)
    uniform = stream_uniform(state.key, state.seen, g_P.dtype)
    query = ok & (uniform < p)
    downdate = jnp.outer(inv_g_P, g_P @ state.covariance_inv) / (1 + g_P @ inv_g_P)
    return (
        state._replace(
            covariance=jnp.where(ok, covariance, state.covariance),
            covariance_inv=jnp.where(query, state.covariance_inv - downdate, state.covariance_inv),
            seen=state.seen + ok,
            queried=state.queried + query,
        ),
        query,
    )


@jax.jit
def _stream(state: VessalState, g_n_P: Array, available_n: Array) -> tuple[Array, VessalState]:
    state, query_n = jax.lax.scan(_step, state, (g_n_P, available_n))
    return query_n, state


SKETCH_DIM = 512
"""Width above which the strategy and the streaming loop sketch the embeddings
(:func:`sketched`)."""


def sketched(g_N_P: Array, *, key: Key) -> Array:
    """``g_N_P`` projected to :data:`SKETCH_DIM` features (:func:`jaxal.kernel_features.sketch`)
    when wider, else as is.

    The stream updates a ``[P, P]`` inverse covariance at every point: an ensemble's BADGE
    embeddings (``P = K C H``, 6,400 for the command line's default) cost minutes per pass on
    a CPU. The Gaussian sketch keeps the quadratic forms ``g^T A^{-1} g`` the sampling reads
    to a relative error ``O(1 / sqrt(SKETCH_DIM))``; one ``key`` for a whole stream keeps its
    points in one space.
    """
    if g_N_P.shape[1] <= SKETCH_DIM:
        return g_N_P
    return kernel_features.sketch(g_N_P, key=key, dim=SKETCH_DIM)


def _embeddings(x: ArrayLike, name: str = "embeddings") -> Array:
    """``x`` as floating ``[N, P]`` embeddings, ``N >= 1``, finite (checked when concrete)."""
    x = check.float_array(x, name)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(
            f"{name} must have shape [N, P] (one gradient embedding per point) with N, P >= 1; "
            f"got {x.shape}"
        )
    return check.finite(x, name, on_trace="skip")


def vessal_stream(
    state: VessalState,
    embeddings: Float[ArrayLike, "n P"],
    *,
    available: Bool[ArrayLike, " n"] | None = None,
) -> tuple[Bool[Array, " n"], VessalState]:
    """Decide the next ``n`` points of a stream, in order: ``(query [n], new state)``.

    One compiled ``lax.scan`` of the module docstring's rule over the chunk. Unavailable
    points are skipped (they change nothing and count for nothing). Feeding a stream chunk
    by chunk, the state of one call into the next, decides exactly what one call on the
    whole stream decides.

    Args:
      state: from :func:`vessal_init` or the previous chunk.
      embeddings: ``[n, P]`` gradient embeddings of the chunk's points, in stream order
        (cast to the state's dtype).
      available: optional bool ``[n]``: ``False`` = not part of the stream (padding, labelled).

    Returns:
      ``query``: bool ``[n]``, the points to label; the new :class:`VessalState`.
    """
    if not isinstance(state, VessalState):
        raise TypeError(f"state must be a VessalState (from vessal_init); got {type(state)}")
    g = _embeddings(embeddings)
    P = state.covariance.shape[-1]
    if g.shape[1] != P:
        raise ValueError(
            f"embeddings have dimension P = {g.shape[1]}, the state's is {P}: make the state "
            f"with vessal_init({g.shape[1]}, ...)"
        )
    n = g.shape[0]
    available = jnp.ones((n,), bool) if available is None else jnp.asarray(available)
    if available.dtype != jnp.bool_ or available.shape != (n,):
        raise TypeError(
            f"available must be a bool mask of shape [n] = ({n},) (an all-False chunk is "
            f"fine); got dtype {available.dtype}, shape {available.shape}"
        )
    return _stream(state, g.astype(state.covariance.dtype), available)


@partial(jax.jit, static_argnames=("b",))
def _fill(key: Key, query_N: Array, available_N: Array, *, b: int) -> Array:
    """``[b]`` indices: the queried points in stream order, then uniformly random fillers
    among the available points not queried (sentinel ``N`` past the available count)."""
    N = query_N.shape[0]
    num_queried = jnp.sum(query_N)
    queried_B = jnp.nonzero(query_N, size=b, fill_value=N)[0]
    filler_B = draw(key, jnp.zeros((N,)), b, available_N & ~query_N)
    position_B = jnp.arange(b)
    slot_B = jnp.clip(position_B - num_queried, 0, b - 1)
    index_B = jnp.where(position_B < num_queried, queried_B, filler_B[slot_B])
    return check.picks(index_B.astype(jnp.int32), available_N)


# Duplicates (reason): only the shape of the selection signature is shared (scores._epig).
def vessal(
    embeddings: Float[ArrayLike, "N P"],
    b: int,
    *,
    key: Key,
    available: Available | None = None,
    cov_inv_scaling: float = DEFAULT_COV_INV_SCALING,
) -> Int[Array, " B"]:
    r"""VeSSAL on a pool: one pass of the stream, then random fillers up to ``b``.

    The available points are streamed in the order given (unavailable ones skipped) through
    :func:`vessal_stream` with budget ``b`` and length ``n`` = the number of available
    points, so the first point's rate is :math:`b / n` (module docstring for the rule). The
    stream never queries more than ``b`` points but may query fewer; as in the authors'
    code (``fill_random``, their default) the remaining slots are filled with distinct
    available points drawn uniformly among those not queried. For another stream order,
    permute the rows (and ``available``) and map the indices back.

    Args:
      embeddings: ``[N, P]`` gradient embeddings (:func:`jaxal.embeddings.badge`; the
        authors use the last layer's gradient under the predicted label, rank 1).
      b: batch size, static Python int with ``1 <= b <= #available``.
      key: PRNG key (split into the stream's uniforms and the fillers' draw).
      available: optional bool ``[N]`` mask of selectable points.
      cov_inv_scaling: :math:`A_0^{-1} = \lambda I`, ``> 0`` (the authors' default 100).

    Returns:
      ``[b]`` distinct available indices: the queried points in stream order, then the
      fillers (under ``jit``/``vmap``, positions past the available count hold the sentinel
      ``N``: :func:`jaxal.check.picks`).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> g = jax.random.normal(jax.random.key(0), (20, 3))
      >>> index = vessal(g, 5, key=jax.random.key(1))
      >>> index.shape, len(set(index.tolist()))
      ((5,), 5)
    """
    g = _embeddings(embeddings)
    key = check.key(key)
    N, P = g.shape
    available = check.available(available, N, on_trace="skip")
    b = check.batch_size(b, available, on_trace="skip")
    stream_key, fill_key = jax.random.split(key)
    state = vessal_init(
        P,
        key=stream_key,
        budget=b,
        length=jnp.maximum(jnp.sum(available), 1),
        cov_inv_scaling=cov_inv_scaling,
        dtype=g.dtype,
    )
    query_N, _ = _stream(state, g, available)
    return _fill(fill_key, query_N, available, b=b)
