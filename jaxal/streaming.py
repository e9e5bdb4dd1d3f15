r"""Streaming active learning: read the pool once, in chunks, and decide each point on arrival.

The stream-based setting of VeSSAL (Saran et al., ICML 2023; :func:`jaxal.select.vessal`):
the pool is a stream, read in a random order (a permutation of the pool from the seed's
key) in fixed-size chunks of ``chunk_size`` points. The first ``initial`` points of the
stream are labelled to start with. For each following chunk the current posterior computes
the chunk's BADGE gradient embeddings (:meth:`jaxal.context.Round.features` ``"badge"``),
the sampler decides which of its points to query, with its state carried over from the
previous chunk (:func:`jaxal.select.vessal_stream`), the queried points are labelled, up to
``budget`` labels in all, and the posterior is refitted on the labelled points and
evaluated on the test set. A point that is not queried on arrival is never seen again.

Fixed shapes: the labelled set is a buffer of ``budget`` inputs and labels with a count
(the posterior fits it with 0/1 weights), predictions and embeddings are only ever
computed for one chunk (``[K, chunk_size, C]`` and ``[chunk_size, P]``, never the whole
pool), and the last chunk is padded with points outside the stream. Every chunk therefore
runs the one program compiled for the first; seeds run together under ``jax.vmap``.

Samplers: ``"vessal"`` (the paper's rule, budget ``budget - initial`` over the
``N - initial`` streamed points) and ``"random"``, the paper's streaming baseline (the
authors' ``StreamingRand``: each point is queried with the fixed probability
``(budget - initial) / (N - initial)``, independently, with the same uniforms as VeSSAL;
queries past the budget are dropped).

Shapes: ``N`` pool points, ``L = budget`` labelled slots, ``n = chunk_size``, ``R`` chunks,
``P`` embedding dimension, ``S`` seeds.
"""

from collections.abc import Callable
from functools import partial
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from jaxal import check, progress as progress_bar, select
from jaxal.context import Round
from jaxal.data import Dataset
from jaxal.loop import evaluate
from jaxal.posterior import Posterior
from jaxal.select._vessal import DEFAULT_COV_INV_SCALING, sketched, stream_uniform
from jaxal.typing import Array, Key

Sampler = Literal["vessal", "random"]
SAMPLERS = ("vessal", "random")


class StreamState(NamedTuple):
    """Everything that changes along the stream; a pytree (leading seed axis under ``vmap``).

    Attributes:
      x: ``[L, ...]`` the labelled inputs, in the order they were labelled (rows past
        ``count``: zeros).
      y: ``[L]`` their labels.
      count: int32 scalar, labelled points so far.
      acquired: int32 ``[L]`` their pool indices (``-1``: empty slot).
      params: the posterior fitted on the labelled points.
      sampler: the sampler's :class:`jaxal.select.VessalState`.
      order: int32 ``[N]`` the stream: pool indices in order of arrival.
      position: int32 scalar, the next stream position to read.
      key: raw PRNG key data for the next chunk.
      sketch_key: raw PRNG key data of the stream's embedding sketch (fixed along it).
      chunk: int32 scalar, chunks done.
      labels: int32 ``[R + 1]`` labelled points after the initial fit and after each chunk
        (``-1``: not yet).
      metrics: ``{"accuracy", "nll"}``, each ``[R + 1]`` test metrics at the same times (NaN:
        not yet).
    """

    x: Array
    y: Array
    count: Array
    acquired: Array
    params: Any
    sampler: select.VessalState
    order: Array
    position: Array
    key: Array
    sketch_key: Array
    chunk: Array
    labels: Array
    metrics: dict[str, Array]


def num_chunks(num_points: int, *, initial: int, chunk_size: int) -> int:
    """``R``: chunks of ``chunk_size`` covering the ``N - initial`` streamed points."""
    return -(-(num_points - initial) // chunk_size)


def check_settings(num_points: int, *, budget: int, initial: int, chunk_size: int) -> None:
    """Require ``1 <= initial <= budget <= N``, ``initial < N`` and ``chunk_size >= 1``.

    ``ValueError`` (``TypeError`` for a non-integer) naming the setting otherwise.
    """
    check.integer(initial, "initial")
    check.integer(budget, "budget")
    check.integer(chunk_size, "chunk_size")
    if budget < initial:
        raise ValueError(
            f"budget = {budget} counts the initial labels too, so it must be >= initial = {initial}"
        )
    if budget > num_points:
        raise ValueError(f"budget = {budget} exceeds the pool (N = {num_points})")
    if initial >= num_points:
        raise ValueError(f"initial = {initial} leaves no point to stream (N = {num_points})")


def _gradient_embeddings(
    posterior: Posterior, params, x_n: Array, key: Key, sketch_key: Key
) -> Array:
    """``[n, P]`` BADGE gradient embeddings of the points ``x_n`` under the posterior,
    sketched with the stream's ``sketch_key`` when wider than 512
    (``jaxal.select._vessal.sketched``)."""
    n = x_n.shape[0]
    r = Round.from_posterior(posterior, params, key=key, x_pool=x_n, labelled=jnp.zeros((n,), bool))
    return sketched(r.features("badge"), key=sketch_key)


def _fit_and_evaluate(posterior: Posterior, data: Dataset, x, y, count, key: Key):
    fit_key, predict_key = jax.random.split(key)
    weights = (jnp.arange(x.shape[0]) < count).astype(data.x_pool.dtype)
    params = posterior.fit(x, y, weights, key=fit_key)
    return params, evaluate(posterior.predict(params, data.x_test, key=predict_key), data.y_test)


# Duplicates (reason): _init, init and run (and init's partial(_init, ...)) each list the
# stream's settings: static arguments of the jitted core, keyword-only parameters of the API.
@partial(
    jax.jit, static_argnames=("posterior", "budget", "initial", "chunk_size", "cov_inv_scaling")
)
def _init(
    data: Dataset,
    key: Key,
    *,
    posterior: Posterior,
    budget: int,
    initial: int,
    chunk_size: int,
    cov_inv_scaling: float,
) -> StreamState:
    N = data.x_pool.shape[0]
    R = num_chunks(N, initial=initial, chunk_size=chunk_size)
    order_key, fit_key, stream_key, next_key, sketch_key = jax.random.split(key, 5)
    order_N = jax.random.permutation(order_key, N).astype(jnp.int32)
    first = order_N[:initial]
    x = (
        jnp.zeros((budget, *data.x_pool.shape[1:]), data.x_pool.dtype)
        .at[:initial]
        .set(data.x_pool[first])
    )
    y = jnp.zeros((budget,), data.y_pool.dtype).at[:initial].set(data.y_pool[first])
    count = jnp.asarray(initial, jnp.int32)
    params, metrics = _fit_and_evaluate(posterior, data, x, y, count, fit_key)
    g_shape = jax.eval_shape(
        lambda p, x, k: _gradient_embeddings(posterior, p, x, k, k),
        params,
        data.x_pool[:chunk_size],
        fit_key,
    )
    return StreamState(
        x=x,
        y=y,
        count=count,
        acquired=jnp.full((budget,), -1, jnp.int32).at[:initial].set(first),
        params=params,
        sampler=select.vessal_init(
            g_shape.shape[-1],
            key=stream_key,
            budget=budget - initial,
            length=N - initial,
            cov_inv_scaling=cov_inv_scaling,
            dtype=g_shape.dtype,
        ),
        order=order_N,
        position=count,
        key=jax.random.key_data(next_key),
        sketch_key=jax.random.key_data(sketch_key),
        chunk=jnp.zeros((), jnp.int32),
        labels=jnp.full((R + 1,), -1, jnp.int32).at[0].set(initial),
        metrics={k: jnp.full((R + 1,), jnp.nan).at[0].set(v) for k, v in metrics.items()},
    )


def init(
    data: Dataset,
    *,
    key: Key,
    posterior: Posterior,
    budget: int,
    initial: int,
    chunk_size: int,
    sampler: Sampler = "vessal",
    cov_inv_scaling: float = DEFAULT_COV_INV_SCALING,
    seeds: int | None = None,
) -> StreamState:
    """The state before the first chunk: the stream drawn, ``initial`` labels, fitted.

    Args:
      data: a classification :class:`jaxal.data.Dataset` (the pool is the stream).
      key: PRNG key (the stream order, the initial fit, the sampler's uniforms, each chunk).
      posterior: a posterior with ``embed`` (for the gradient embeddings; the state has
        VeSSAL's ``[P, P]`` matrices whichever the sampler, so both share this program).
      budget: ``L``, labels in all, the ``initial`` ones included (``initial <= L <= N``).
      initial: the stream's first points, labelled to start with (``>= 1``).
      chunk_size: ``n``, points read at once (each chunk is followed by a refit).
      sampler: ``"vessal"`` or ``"random"`` (module docstring).
      cov_inv_scaling: VeSSAL's :math:`A_0^{-1} = \\lambda I` (the authors' 100).
      seeds: with ``S``, ``key`` is split into ``S`` independent streams (leading axis ``S``).

    Raises:
      ValueError: for settings out of range (:func:`check_settings`) or an unknown sampler.
    """
    check.key(key)
    N = data.x_pool.shape[0]
    check_settings(N, budget=budget, initial=initial, chunk_size=chunk_size)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}; got {sampler!r}")
    if posterior.embed is None:
        raise ValueError(
            "the stream needs gradient embeddings, i.e. a posterior with `embed` (e.g. "
            "jaxal.posterior.ensemble)"
        )
    check.scalar(cov_inv_scaling, "cov_inv_scaling")
    make = partial(
        _init,
        posterior=posterior,
        budget=budget,
        initial=initial,
        chunk_size=chunk_size,
        cov_inv_scaling=float(cov_inv_scaling),
    )
    if seeds is None:
        return make(data, key)
    check.integer(seeds, "seeds")
    return jax.vmap(make, in_axes=(None, 0))(data, jax.random.split(key, seeds))


def _random_stream(
    state: select.VessalState, available_n: Array, dtype
) -> tuple[Array, select.VessalState]:
    """The authors' ``StreamingRand``: query each point with probability ``budget / length``."""
    t_n = state.seen + jnp.cumsum(available_n) - 1
    uniform_n = jax.vmap(stream_uniform, in_axes=(None, 0, None))(state.key, t_n, dtype)
    rate = state.budget.astype(dtype) / state.length.astype(dtype)
    query_n = available_n & (uniform_n < rate)
    new = state._replace(
        seen=state.seen + jnp.sum(available_n), queried=state.queried + jnp.sum(query_n)
    )
    return query_n, new


def chunk_step(
    state: StreamState, data: Dataset, *, posterior: Posterior, chunk_size: int, sampler: Sampler
) -> StreamState:
    """One chunk: read ``chunk_size`` stream points, query, label, refit, evaluate.

    Pure and jittable (``posterior``, ``chunk_size``, ``sampler`` static); see
    :data:`step` and :data:`step_seeds`. Past the end of the stream it changes nothing but
    the refit.
    """
    key = jax.random.wrap_key_data(state.key)
    predict_key, fit_key, next_key = jax.random.split(key, 3)
    N, L = data.x_pool.shape[0], state.x.shape[0]
    position_n = state.position + jnp.arange(chunk_size)
    valid_n = position_n < N
    index_n = state.order[jnp.minimum(position_n, N - 1)]
    x_n = data.x_pool[index_n]
    if sampler == "vessal":
        sketch_key = jax.random.wrap_key_data(state.sketch_key)
        g_n_P = _gradient_embeddings(posterior, state.params, x_n, predict_key, sketch_key)
        query_n, sampler_state = select.vessal_stream(state.sampler, g_n_P, available=valid_n)
    else:
        query_n, sampler_state = _random_stream(state.sampler, valid_n, data.x_pool.dtype)
    slot_n = state.count + jnp.cumsum(query_n) - 1
    slot_n = jnp.where(query_n & (slot_n < L), slot_n, L)  # L: dropped
    count = jnp.minimum(state.count + jnp.sum(query_n), L).astype(jnp.int32)
    x = state.x.at[slot_n].set(x_n, mode="drop")
    y = state.y.at[slot_n].set(data.y_pool[index_n], mode="drop")
    params, metrics = _fit_and_evaluate(posterior, data, x, y, count, fit_key)
    done = state.chunk + 1
    return StreamState(
        x=x,
        y=y,
        count=count,
        acquired=state.acquired.at[slot_n].set(index_n, mode="drop"),
        params=params,
        sampler=sampler_state,
        order=state.order,
        position=state.position + chunk_size,
        key=jax.random.key_data(next_key),
        sketch_key=state.sketch_key,
        chunk=done,
        labels=state.labels.at[done].set(count, mode="drop"),
        metrics={k: v.at[done].set(metrics[k], mode="drop") for k, v in state.metrics.items()},
    )


def _chunk_step_seeds(state, data, *, posterior, chunk_size, sampler):
    one = partial(chunk_step, posterior=posterior, chunk_size=chunk_size, sampler=sampler)
    return jax.vmap(one, in_axes=(0, None))(state, data)


_STATIC = ("posterior", "chunk_size", "sampler")
step = jax.jit(chunk_step, static_argnames=_STATIC)
"""One jitted chunk for a single state."""
step_seeds = jax.jit(_chunk_step_seeds, static_argnames=_STATIC)
"""One jitted chunk for a batch of states (leading seed axis): all seeds in one program."""


def run(
    data: Dataset,
    *,
    key: Key,
    posterior: Posterior,
    budget: int,
    initial: int,
    chunk_size: int,
    sampler: Sampler = "vessal",
    cov_inv_scaling: float = DEFAULT_COV_INV_SCALING,
    seeds: int | None = None,
    on_chunk: Callable[[StreamState], None] | None = None,
    progress: bool | str = True,
) -> StreamState:
    """Stream the whole pool once (:func:`init`, then :func:`chunk_step` for every chunk).

    Arguments as for :func:`init`; ``on_chunk`` is called with the state after each chunk;
    ``progress``: a bar of the chunks (:mod:`jaxal.progress`), a string labels it.

    Returns:
      The final :class:`StreamState`: ``labels`` and ``metrics`` hold the curves, ``acquired``
      the labelled points in order.

    Example:
      >>> import jax, optax, jaxal
      >>> data = jaxal.data.load("two-moons", key=jax.random.key(0))  # doctest: +SKIP
      >>> post = jaxal.posterior.ensemble(
      ...     jaxal.posterior.MLP(num_classes=2, hidden=(16,)), 2, optimizer=optax.adam(1e-2),
      ...     num_steps=50, batch_size=16)  # doctest: +SKIP
      >>> state = run(data, key=jax.random.key(1), posterior=post, budget=30, initial=10,
      ...             chunk_size=50)  # doctest: +SKIP
    """
    state = init(
        data,
        key=key,
        posterior=posterior,
        budget=budget,
        initial=initial,
        chunk_size=chunk_size,
        sampler=sampler,
        cov_inv_scaling=cov_inv_scaling,
        seeds=seeds,
    )
    advance = step_seeds if seeds is not None else step
    R = state.labels.shape[-1] - 1
    label = progress if isinstance(progress, str) else "chunks"
    shown = progress_bar.bar(label, R, completed=0, enabled=progress is not False)
    with shown as update:
        for r in range(R):
            state = advance(
                state, data, posterior=posterior, chunk_size=chunk_size, sampler=sampler
            )
            if update is not None:
                accuracy = float(jnp.mean(state.metrics["accuracy"][..., r + 1]))
                update(r + 1, f"chunk {r + 1}: accuracy {accuracy:.3f}")
            if on_chunk is not None:
                on_chunk(state)
    return state
