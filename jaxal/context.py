r"""The round context: everything an acquisition strategy may ask of the current round.

A strategy is one small function ``strategy(r: Round, b: int) -> indices [b]``. The
:class:`Round` ``r`` offers the current posterior's predictions on the pool and on a set of
target inputs, the pool's features (inputs, last-layer features, BADGE gradient embeddings,
sketched-gradient / empirical-NTK features, random NNGP features), the inputs themselves,
the labelled mask, the selectable points and a PRNG key. Every quantity is computed the
first time a strategy asks for it and cached for the rest of the round, so a BALD round
computes the pool predictions and nothing else; inside ``jit`` what is never asked for is
never traced. A strategy written once runs in :func:`jaxal.loop.run` (all seeds under one
``vmap``), on the command line (``jaxal run --strategy NAME``) and in the cached-posterior
benchmark (``jaxal bench``, where the round is built from recorded arrays instead of a
posterior). Example, a new method in four lines::

    @jaxal.strategies.register("power-margin", task="classification")
    def power_margin(r: jaxal.context.Round, b: int):
        scores = jaxal.scores.margin(r.pool)                           # [N]
        return jaxal.select.stochastic(scores, b, key=r.key, available=r.available)

**Fixed shapes.** Every array a round offers has the same shape in every round: labelled
points are a bool mask over the fixed pool (never a growing ``[L, ...]`` array), targets are
``M`` rows drawn afresh each round (:class:`Targets`), features cover the whole pool. Rounds
2..R therefore reuse round 1's compiled program.

**Randomness.** The round's key is split by purpose with ``jax.random.fold_in``: the
strategy's own key (:attr:`Round.key`), the posterior's predictions (one key for pool,
targets and last-layer features alike, so an MC-dropout mask is the same sample
:math:`\theta_k` everywhere, as EPIG's joint predictive needs), the target draw and the
feature sketches. What a strategy asks for, and in which order, never changes the values.

**Memory across rounds.** A strategy that learns across rounds (TAILOR's bandit posterior,
the candidate-set query's calibration) keeps the single calling convention and states what
it remembers as a fixed-shape pytree: it has an attribute ``init_memory(*, num_points,
num_classes, rounds, b) -> pytree`` (the memory before the first round). The loop keeps that
pytree in :attr:`jaxal.loop.LoopState.memory` (checkpointed with the rest of the state, a
leading seed axis under ``vmap``; ``()`` for stateless strategies), hands it to the round as
:attr:`Round.memory` and, after the call, stores what the strategy passed to
:meth:`Round.remember` (same structure, shapes and dtypes; the old memory if it passed
nothing). A round built without memory (a single round, the benchmark's replay) has
``r.memory is None``: a stateful strategy then starts from its ``init_memory``. What a
strategy learns from labels it reads from :attr:`Round.labels` in the next round, when the
points it remembered acquiring are labelled. A strategy that asks the annotator a
candidate-set query rather than for the label (:mod:`jaxal.conformal`) tells the loop the
sets it shows with :meth:`Round.show_candidates`; the loop prices each acquired label with
them (``metrics["cost"]``).

Shapes: ``K`` posterior samples, ``N`` pool points, ``M`` targets, ``C`` classes, ``D``
input dimension, ``H`` last-layer width, ``P`` feature dimension.
"""

import copy
import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
from einops import rearrange
from jaxtyping import Array, Bool, Float, Int

from jaxal import embeddings, kernel_features
from jaxal._registry import Registry
from jaxal.scores import sample_targets
from jaxal.typing import Key

__all__ = [
    "FEATURES",
    "MissingSource",
    "Round",
    "Targets",
    "default_targets",
    "masked_labels",
    "register_features",
]

_STRATEGY, _PREDICT, _TARGETS, _FEATURES = range(4)
"""``fold_in`` tags of the round key's purposes."""

Source = Literal["pool", "test", "given"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Targets:
    """Where a round's ``M`` target inputs come from (EPIG's :math:`x^* \\sim p^*`, EV-GP's
    reference points).

    Each round draws ``size`` rows uniformly without replacement (with replacement when the
    source has fewer rows) from the source, with the round's key: ``"pool"`` (all pool
    inputs, labelled or not: the pool stands for the input distribution), ``"test"`` (the
    test inputs: use when the test distribution differs from the pool's) or ``"given"``
    (``inputs``, a user array ``[P, D]``, e.g. unlabelled inputs of the classes of
    interest). ``size`` and ``source`` are static; ``inputs`` is data (a pytree leaf), so a
    new array of the same shape reuses the compiled round.
    """

    source: Source = dataclasses.field(default="pool", metadata=dict(static=True))
    size: int = dataclasses.field(default=100, metadata=dict(static=True))
    inputs: Float[Array, "P D"] | None = None

    def __post_init__(self):
        if self.source not in ("pool", "test", "given"):
            raise ValueError(f"source must be 'pool', 'test' or 'given'; got {self.source!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size must be an int >= 1; got {self.size!r}")
        if (self.source == "given") != (self.inputs is not None):
            raise ValueError("inputs must be given exactly when source='given'")

    def draw(self, key: Key, x_pool: Array, x_test: Array | None = None) -> Float[Array, "M D"]:
        """The ``[size, D]`` target inputs of one round."""
        x = {"pool": x_pool, "test": x_test, "given": self.inputs}[self.source]
        if x is None:
            raise ValueError(f"targets from {self.source!r} need those inputs; none were given")
        return sample_targets(x, self.size, key=key, replace=self.size > x.shape[0])


class MissingSource(ValueError):
    """A strategy asked a round for something it does not offer (e.g. last-layer features of
    a posterior without ``embed``, or of a recorded cache without them)."""


def masked_labels(y_pool: Array, labelled: Bool[Array, " N"]) -> Array:
    """``y_pool`` where ``labelled``; ``-1`` (integer labels) or NaN (real targets) elsewhere."""
    y_pool = jnp.asarray(y_pool)
    hidden = -1 if jnp.issubdtype(y_pool.dtype, jnp.integer) else jnp.nan
    return jnp.where(labelled, y_pool, jnp.asarray(hidden, y_pool.dtype))


def default_targets(num_points: int) -> Targets:
    """The targets when none are given: ``M = min(100, N)`` pool inputs drawn each round."""
    return Targets("pool", min(100, num_points))


_MISSING_HINT = {
    "pool": "the posterior's predictions on the pool",
    "target": "the posterior's predictions on the targets",
    "x_pool": "the pool inputs",
    "x_target": "target inputs (jaxal.context.Targets)",
    "embeddings": "last-layer features (a posterior with `embed`, e.g. jaxal.posterior.ensemble)",
    "network": "the network's outputs (a posterior with `apply`, e.g. jaxal.posterior.ensemble)",
    "labels": "the labelled points' labels (Round.from_posterior(..., y_pool=...))",
    "memory": "the strategy's memory across rounds (see the module docstring)",
}


class Round:
    """What a strategy sees of one round of one seed (see the module docstring).

    Build it from a posterior with :meth:`from_posterior` (the loop does), or directly from
    arrays (the benchmark replays recorded rounds this way): each keyword is a value, or a
    zero-argument callable evaluated on first use.

    Args:
      key: the round's PRNG key (split by purpose; :attr:`key` is the strategy's share).
      labelled: bool ``[N]`` labelled pool points.
      available: bool ``[N]`` selectable points; default ``~labelled``. Labelled points are
        never selectable.
      pool: predictions on the pool: ``log_probs [K, N, C]`` or ``(mean, var)`` ``[K, N]``.
      target: the same on the targets, ``[K, M, C]`` or ``(mean, var)`` ``[K, M]``.
      x_pool: ``[N, D]`` pool inputs.
      x_target: ``[M, D]`` target inputs.
      embeddings: ``[K, N, H]`` each posterior sample's last-layer features on the pool.
      labels: ``[N]`` the labels of the labelled points: the pool labels where ``labelled``,
        ``-1`` (integer labels) or NaN (real targets) elsewhere, so a strategy can never read
        an unlabelled point's label.
      network: ``(apply, params)``: ``apply(params, x [n, D]) -> [K, n, O]`` network outputs,
        differentiable in ``params`` (for the gradient features).
      features: precomputed ``{kind: [N, P]}`` (as recorded by the benchmark).
    """

    def __init__(
        self,
        *,
        key: Key,
        labelled: Bool[Array, " N"],
        available: Bool[Array, " N"] | None = None,
        features: dict[str, Array] | None = None,
        **sources: Any,
    ):
        unknown = sorted(set(sources) - set(_MISSING_HINT))
        if unknown:
            raise TypeError(f"unknown round sources {unknown}; choose from {sorted(_MISSING_HINT)}")
        self._key = key
        self.labelled = jnp.asarray(labelled, bool)
        self.available = ~self.labelled if available is None else available & ~self.labelled
        self._sources = {k: v for k, v in sources.items() if v is not None}
        self._cache: dict[Any, Any] = {(kind,): v for kind, v in (features or {}).items()}
        self._given_features = dict(features or {})
        self._subpool_sources: dict[str, Callable[[Array], Callable[[], Any]]] = {}

    @classmethod
    def from_posterior(
        cls,
        posterior,
        params,
        *,
        key: Key,
        x_pool: Float[Array, "N D"],
        labelled: Bool[Array, " N"],
        targets: Targets | None = None,
        x_test: Float[Array, "M D"] | None = None,
        available: Bool[Array, " N"] | None = None,
        y_pool: Array | None = None,
        memory: Any = None,
    ) -> "Round":
        """The round of a fitted :class:`~jaxal.posterior.Posterior` (``params``) on a pool.

        ``targets`` (default :func:`default_targets`) says where the target inputs
        come from; ``x_test`` is needed for ``Targets("test", ...)``; ``y_pool`` ``[N]``, when
        given, offers the labelled points' labels as :attr:`labels` (masked, see the class);
        ``memory``, a stateful strategy's memory from the previous round (:attr:`memory`).
        """
        predict_key = jax.random.fold_in(key, _PREDICT)
        if targets is None:
            targets = default_targets(x_pool.shape[0])

        def x_target():
            return targets.draw(jax.random.fold_in(key, _TARGETS), x_pool, x_test)

        sources: dict[str, Any] = dict(
            pool=lambda: posterior.predict(params, x_pool, key=predict_key),
            x_pool=x_pool,
            x_target=x_target,
        )
        if y_pool is not None:
            sources["labels"] = lambda: masked_labels(y_pool, labelled)
        if memory is not None:
            sources["memory"] = lambda: memory
        r = cls(key=key, labelled=labelled, available=available, **sources)
        r._sources["target"] = lambda: posterior.predict(params, r.x_target, key=predict_key)
        if posterior.embed is not None:
            r._sources["embeddings"] = lambda: posterior.embed(params, x_pool, key=predict_key)
        if posterior.apply is not None:
            r._sources["network"] = (posterior.apply, params)
        r._subpool_sources["pool"] = lambda idx: (
            lambda: posterior.predict(params, x_pool[idx], key=predict_key)
        )
        if posterior.embed is not None:
            r._subpool_sources["embeddings"] = lambda idx: (
                lambda: posterior.embed(params, x_pool[idx], key=predict_key)
            )
        return r

    def _get(self, name: str) -> Any:
        if name not in self._cache:
            if name not in self._sources:
                raise MissingSource(
                    f"this round offers no {name!r} ({_MISSING_HINT[name]}), which the strategy "
                    "asked for; use a posterior or a recorded cache that provides it"
                )
            value = self._sources[name]
            self._cache[name] = value() if callable(value) else value
        return self._cache[name]

    @property
    def key(self) -> Key:
        """The strategy's own PRNG key for this round."""
        return jax.random.fold_in(self._key, _STRATEGY)

    @property
    def num_points(self) -> int:
        """``N``, the pool size."""
        return self.labelled.shape[0]

    @property
    def pool(self):
        """Predictions on the pool: ``log_probs [K, N, C]``, or ``(mean, var)`` ``[K, N]``."""
        return self._get("pool")

    @property
    def target(self):
        """Predictions on the targets (same samples as :attr:`pool`): ``[K, M, C]`` or
        ``(mean, var)`` ``[K, M]``."""
        return self._get("target")

    @property
    def x_pool(self) -> Float[Array, "N D"]:
        """The pool inputs."""
        return self._get("x_pool")

    @property
    def x_target(self) -> Float[Array, "M D"]:
        """This round's target inputs."""
        return self._get("x_target")

    @property
    def labels(self) -> Array:
        """``[N]`` labels of the labelled points; ``-1`` (integers) or NaN (reals) elsewhere."""
        return self._get("labels")

    @property
    def embeddings(self) -> Float[Array, "K N H"]:
        """Each posterior sample's last-layer features on the pool."""
        return self._get("embeddings")

    @property
    def network(self) -> tuple[Callable, Any]:
        """``(apply, params)``: ``apply(params, x [n, D]) -> [K, n, O]``, the posterior samples'
        network outputs, differentiable in ``params``."""
        return self._get("network")

    remembered: Any = None
    """What the strategy passed to :meth:`remember` this round (``None``: nothing)."""

    shown_candidates: Array | None = None
    """``[N, C]`` the candidate sets passed to :meth:`show_candidates` (``None``: all classes)."""

    @property
    def memory(self) -> Any:
        """The strategy's memory from the previous round (a pytree), or ``None`` when this round
        carries none (then a stateful strategy starts from its ``init_memory``)."""
        return self._get("memory") if "memory" in self._sources else None

    def remember(self, memory: Any) -> None:
        """Record the strategy's memory for the next round (the structure, shapes and dtypes
        of its ``init_memory``); the loop stores it after the call."""
        self.remembered = memory

    def show_candidates(self, sets_N_C: Bool[Array, "N C"]) -> None:
        """Record the candidate label sets the annotator is shown (``[N, C]``, per pool point):
        the loop prices each acquired label with :func:`jaxal.conformal.query_cost`. A
        strategy that never calls it asks for the label among all ``C`` classes."""
        self.shown_candidates = sets_N_C

    def fork(self) -> "Round":
        """A copy of this round whose later computations are cached apart from it: for a
        strategy run inside a ``lax.switch`` / ``lax.cond`` branch, whose traced values must not
        leak into the other branches (what this round has computed so far is shared)."""
        branch = copy.copy(self)
        branch._cache = dict(self._cache)
        return branch

    def features(self, kind: str, **options: Any) -> Float[Array, "N P"]:
        """Pool features of ``kind`` (one of :data:`FEATURES`' names), computed once a round.

        ``options`` go to the feature builder (e.g. ``dim=512`` for ``"gradient"``).
        """
        cache_key = (kind, *sorted(options.items()))
        if cache_key not in self._cache:
            build = FEATURES.get(kind)
            self._cache[cache_key] = build(
                self, jax.random.fold_in(self._key, _FEATURES), **options
            )
        return self._cache[cache_key]

    def subpool(self, indices: Int[Array, " S"]) -> "Round":
        r"""This round restricted to the ``S`` pool points ``indices`` (a sub-pool, as AnchorAL's).

        The sub-round's pool is ``indices``: its pool-sized sources (:attr:`pool`,
        :attr:`x_pool`, :attr:`labelled`, :attr:`available`, :attr:`labels`,
        :attr:`embeddings`, precomputed features) are those of the ``S`` points, in the order
        of ``indices``, so a strategy run on it returns sub-pool indices in ``[0, S]`` (``S`` the
        sentinel) and ``indices[...]`` maps them back. The targets (:attr:`x_target`,
        :attr:`target`), the network and the key are this round's. Nothing is computed on the
        whole pool: a round built :meth:`from_posterior` predicts (and embeds) on
        ``x_pool[indices]`` only, unless this round has already computed those, which are then
        indexed. Features that builders compute on the sub-round (:meth:`features`) are
        computed on the sub-pool alone, so pool-relative features (e.g. a kernel scaled on the
        pool) refer to the sub-pool. ``S`` is static: a fixed ``S`` compiles once.

        Args:
          indices: ``[S]`` distinct pool indices in ``[0, N)``.

        Returns:
          The :class:`Round` of the sub-pool.
        """
        indices = jnp.asarray(indices)
        if indices.ndim != 1 or not jnp.issubdtype(indices.dtype, jnp.integer):
            raise ValueError(
                f"indices must be a [S] integer array of pool indices; got {indices.dtype} "
                f"{indices.shape}"
            )
        axes = {"pool": 1, "x_pool": 0, "labels": 0, "embeddings": 1}  # the pool axis

        def rows(name: str) -> Callable[[], Any]:
            if name not in self._cache and name in self._subpool_sources:
                return self._subpool_sources[name](indices)
            axis = axes[name]
            return lambda: jax.tree.map(lambda a: jnp.take(a, indices, axis=axis), self._get(name))

        sources = {
            name: rows(name) if name in axes else (lambda name=name: self._get(name))
            for name in self._sources
        }
        sub = Round(
            key=self._key,
            labelled=self.labelled[indices],
            available=self.available[indices],
            features={kind: v[indices] for kind, v in self._given_features.items()},
            **sources,
        )
        sub._subpool_sources = {
            name: lambda idx, make=make: make(indices[idx])
            for name, make in self._subpool_sources.items()
        }
        return sub


FEATURES = Registry("feature kind")
"""Feature builders ``build(r: Round, key, **options) -> [N, P]`` by name."""


def register_features(name: str) -> Callable[[Callable], Callable]:
    """Decorator registering a feature builder ``build(r, key, **options) -> [N, P]``."""
    return FEATURES.register(name)


def _samples_as_features(x_K_N_P: Array) -> Array:
    """``[K, N, P] -> [N, K P]`` scaled by ``1/sqrt(K)``: the mean of the samples' kernels."""
    K = x_K_N_P.shape[0]
    return rearrange(x_K_N_P, "k n p -> n (k p)") / jnp.sqrt(jnp.asarray(K, x_K_N_P.dtype))


@register_features("inputs")
def _inputs(r: Round, key: Key) -> Array:
    """The pool inputs, flattened to ``[N, D]``."""
    del key
    return r.x_pool.reshape(r.num_points, -1)


@register_features("last-layer")
def _last_layer(r: Round, key: Key) -> Array:
    r"""Last-layer features :math:`h_k(x)` of the ``K`` samples, ``[N, K H] / \sqrt K``:
    :math:`\phi(x) \cdot \phi(x') = \frac1K \sum_k h_k(x) \cdot h_k(x')`."""
    del key
    return _samples_as_features(r.embeddings)


@register_features("badge")
def _badge(r: Round, key: Key) -> Array:
    r"""BADGE gradient embeddings of each sample, ``[N, K C H] / \sqrt K``.

    Sample ``k``'s embedding is BADGE's :math:`(p_k(x) - e_{\hat y_k}) \otimes h_k(x)` with its
    own prediction :math:`\hat y_k` (:func:`jaxal.embeddings.badge`); with ``K = 1`` this is
    the paper's embedding (the negative of the authors' sign, which leaves every distance
    unchanged), and for ``K > 1`` the kernel is the mean of the samples' kernels.
    """
    del key
    log_probs_K_N_C = r.pool
    g_K_N_P = jax.vmap(lambda h, lp: embeddings.badge(h, jnp.exp(lp)))(
        r.embeddings, log_probs_K_N_C
    )
    return _samples_as_features(g_K_N_P)


@register_features("gradient")
def _gradient(r: Round, key: Key, *, dim: int = kernel_features.DEFAULT_SKETCH_DIM) -> Array:
    r"""Sketched gradient (empirical NTK) features of the network outputs, about ``dim`` in all.

    :func:`jaxal.kernel_features.gradient` of the ``K`` samples' ``O`` outputs, each sketched
    to ``max(1, dim // (K O))`` random directions, so ``P = K O max(1, dim // (K O))``: the
    kernel is (an unbiased estimate of) the sum of the samples' and outputs' empirical NTKs,
    at the cost of about ``dim / O`` network linearisations of one sample.
    """
    apply, params = r.network
    num_samples, _, num_outputs = jax.eval_shape(lambda: apply(params, r.x_pool[:1])).shape

    def outputs(p, x):
        return rearrange(apply(p, x), "k n o -> n (k o)")

    per_output = max(1, dim // (num_samples * num_outputs))
    return kernel_features.gradient(outputs, params, r.x_pool, key=key, dim=per_output)


@register_features("nngp")
def _nngp(r: Round, key: Key, *, depth: int = 3, width: int = 512) -> Array:
    """Random features of a wide random ReLU network on the inputs
    (:func:`jaxal.kernel_features.nngp`)."""
    return kernel_features.nngp(_inputs(r, key), key=key, depth=depth, width=width)
