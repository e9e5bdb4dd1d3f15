"""Acquisition strategies by name: plain functions ``strategy(r: Round, b) -> indices [b]``.

A strategy reads what it needs from the round context ``r`` (:class:`jaxal.context.Round`:
pool and target predictions, features, inputs, the labelled mask, ``available``, a key) and
composes scores from :mod:`jaxal.scores` with a selection from :mod:`jaxal.select`. It must
return ``b`` distinct indices among ``r.available`` and be traceable (the loop runs it inside
``jit`` and ``vmap``). A new one is a few lines::

    @jaxal.strategies.register("power-margin", task="classification")
    def power_margin(r, b):
        scores = jaxal.scores.margin(r.pool)
        return jaxal.select.stochastic(scores, b, key=r.key, available=r.available)

``task`` is ``"classification"``, ``"regression"`` or ``"any"``; :func:`names` with
``task=`` lists the strategies a task accepts (its own and ``"any"``), which is what
``jaxal run`` and ``jaxal list`` use. Names are kebab-case. Hyperparameters are the papers'
defaults; for others, register your own function (e.g. with :func:`functools.partial`).

Features the strategies use (:meth:`jaxal.context.Round.features`): BADGE its gradient
embeddings (``"badge"``); Core-Set, TypiClust and ProbCover the posterior's last-layer
features (``"last-layer"``; the papers use self-supervised or penultimate features); the
regression kernel methods the sketched gradient kernel of the trained network
(``"gradient"``, 512 features), the paper's default; EV-GP the infinite-width NTK of a
2-hidden-layer ReLU network on the inputs (training-free, as in the paper).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxal import kernel_features, scores, select, subpool
from jaxal._registry import Registry
from jaxal.context import Round
from jaxal.select._stochastic import Mode
from jaxal.select._vessal import sketched
from jaxal.typing import Array

Strategy = Callable[[Round, int], Array]

STRATEGIES = Registry("strategy")

WRAPPERS = Registry("strategy wrapper")
"""Strategy wrappers ``wrap(inner) -> strategy`` by name (e.g. ``"anchoral"``): :func:`get`
composes ``"wrapper:inner"`` with any registered inner strategy."""


def get(name: str) -> Strategy:
    """The strategy registered as ``name``; ``"wrapper:inner"`` (e.g. ``"anchoral:bald"``) is
    the wrapper of :data:`WRAPPERS` around the registered strategy ``inner``."""
    wrapper, composed, inner = name.partition(":")
    if composed:
        return WRAPPERS.get(wrapper)(STRATEGIES.get(inner))
    return STRATEGIES.get(name)


def register(name: str, *, task: str) -> Callable[[Strategy], Strategy]:
    """Decorator registering ``strategy(r, b)`` under ``name`` for ``task``."""
    if task not in ("classification", "regression", "any"):
        raise ValueError(f"task must be 'classification', 'regression' or 'any'; got {task!r}")
    return STRATEGIES.register(name, task=task)


def names(task: str | None = None) -> list[str]:
    """Sorted strategy names; with ``task``, those that accept it (its own and ``"any"``)."""
    if task is None:
        return STRATEGIES.names()
    return sorted({*STRATEGIES.names(task=task), *STRATEGIES.names(task="any")})


def task_of(name: str) -> str:
    """The task ``name`` was registered for (``ValueError`` for unknown names)."""
    return STRATEGIES.tags(name)["task"]


def _args(predictions) -> tuple:
    return predictions if isinstance(predictions, tuple) else (predictions,)


def top_scores(score: Callable[..., Array]) -> Strategy:
    """The strategy taking the ``b`` highest ``score(*r.pool)`` among available points."""

    def strategy(r: Round, b: int) -> Array:
        return select.top_k(score(*_args(r.pool)), b, available=r.available)

    strategy.__doc__ = f"Top-``b`` points by :func:`jaxal.scores.{score.__name__}`."
    return strategy


def sampled_scores(
    score: Callable[..., Array], mode: Mode = "power", beta: float = 1.0
) -> Strategy:
    """The strategy sampling ``b`` points with :func:`jaxal.select.stochastic` on ``score``."""

    def strategy(r: Round, b: int) -> Array:
        return select.stochastic(
            score(*_args(r.pool)), b, key=r.key, mode=mode, beta=beta, available=r.available
        )

    strategy.__doc__ = (
        f"Stochastic ({mode}, beta = {beta}) batch on :func:`jaxal.scores.{score.__name__}`."
    )
    return strategy


def kernel_noise(dtype) -> float:
    """Noise variance of the kernel strategies (posterior transform, MaxDet, BAIT, EV-GP): the
    papers' ``1e-6`` in float64; ``1e-3`` in float32, where ``1e-6`` falls below the rounding
    of the Gram matrices' factorisations (near-duplicate labelled points give NaN)."""
    return kernel_features.DEFAULT_NOISE if jnp.dtype(dtype) == jnp.float64 else 1e-3


# --- any task -------------------------------------------------------------------------------


@register("random", task="any")
def random(r: Round, b: int) -> Array:
    """Uniformly random available points (the baseline every method must beat)."""
    return select.random(r.num_points, b, key=r.key, available=r.available)


@register("epig", task="any")
def epig(r: Round, b: int) -> Array:
    """Top-``b`` EPIG on the round's targets: :func:`jaxal.scores.epig` (classification) or
    :func:`jaxal.scores.gaussian_epig` (regression)."""
    if isinstance(r.pool, tuple):
        epig_N = scores.gaussian_epig(*r.pool, *r.target)
    else:
        epig_N = scores.epig(r.pool, r.target)
    return select.top_k(epig_N, b, available=r.available)


@register("ev-gp", task="any")
def ev_gp(r: Round, b: int) -> Array:
    """Training-free EV-GP (:func:`jaxal.select.ev_gp`): the infinite-width NTK on the inputs,
    conditioned on the labelled points, reducing the posterior variance at the targets; noise
    variance :func:`kernel_noise` (the authors' ``1e-6`` in float64)."""
    N = r.num_points
    x_pool = r.x_pool.reshape(N, -1)
    x_target = r.x_target.reshape(r.x_target.shape[0], -1)
    noise = kernel_noise(x_pool.dtype)
    return select.ev_gp(
        x_pool, x_target, b, noise=noise, labelled=r.labelled, available=r.available
    )


@register("coreset", task="any")
def coreset(r: Round, b: int) -> Array:
    """Core-Set greedy k-center on the last-layer features, labelled points as centres."""
    features = r.features("last-layer")
    return select.coreset(features, b, labelled=r.labelled, available=r.available)


@register("typiclust", task="any")
def typiclust(r: Round, b: int) -> Array:
    """TypiClust on the last-layer features: the most typical point of the largest uncovered
    clusters (authors' settings)."""
    features = r.features("last-layer")
    return select.typiclust(features, b, key=r.key, labelled=r.labelled, available=r.available)


# --- classification -------------------------------------------------------------------------

_CLASSIFICATION_TOP_K = {
    "bald": scores.bald,
    "entropy": scores.predictive_entropy,
    "margin": scores.margin,
    "least-confidence": scores.least_confidence,
    "variation-ratios": scores.variation_ratios,
    "mean-std": scores.mean_std,
}
for _name, _score in _CLASSIFICATION_TOP_K.items():
    register(_name, task="classification")(top_scores(_score))

for _mode in ("power", "softmax", "softrank"):
    register(f"{_mode}-bald", task="classification")(sampled_scores(scores.bald, _mode))
    register(f"{_mode}-entropy", task="classification")(
        sampled_scores(scores.predictive_entropy, _mode)
    )


@register("batchbald", task="classification")
def batchbald(r: Round, b: int) -> Array:
    """Greedy BatchBALD with the authors' defaults (10,000 sampled configurations)."""
    return select.batchbald(r.pool, b, key=r.key, available=r.available)[0]


BATCH_EPIG_SAMPLES = 1_000
"""Sampled configurations of batch EPIG beyond the exact steps (each with one sampled target
and label: a step costs about two BatchBALD steps on as many configurations, for every
available candidate)."""


@register("batch-epig", task="classification")
def batch_epig(r: Round, b: int) -> Array:
    """Greedy joint EPIG (:func:`jaxal.select.batch_epig`) over the available pool with
    :data:`BATCH_EPIG_SAMPLES` configurations."""
    return select.batch_epig(
        r.pool, r.target, b, key=r.key, num_samples=BATCH_EPIG_SAMPLES, available=r.available
    )[0]


@register("ical", task="classification")
def ical(r: Round, b: int) -> Array:
    """ICAL (HSIC between the batch's and the pool's sampled labels), authors' defaults."""
    return select.ical(r.pool, b, key=r.key, available=r.available)


@register("badge", task="classification")
def badge(r: Round, b: int) -> Array:
    """BADGE: k-means++ seeding on the gradient embeddings of the last layer."""
    return select.badge(r.features("badge"), b, key=r.key, available=r.available)


@register("vessal", task="classification")
def vessal(r: Round, b: int) -> Array:
    """VeSSAL (:func:`jaxal.select.vessal`) on the BADGE gradient embeddings, the pool streamed
    once in a random order (a permutation from ``r.key``); random fillers complete the batch
    when the stream queries fewer than ``b`` points (the authors' ``fill_random``). Embeddings
    wider than 512 are sketched to 512 first (``jaxal.select._vessal.sketched``).
    """
    order_key, select_key, sketch_key = jax.random.split(r.key, 3)
    order_N = jax.random.permutation(order_key, r.num_points)
    g_N_P = sketched(r.features("badge"), key=sketch_key)
    index_B = select.vessal(g_N_P[order_N], b, key=select_key, available=r.available[order_N])
    return jnp.where(index_B < r.num_points, order_N[index_B % r.num_points], r.num_points)


@register("probcover", task="classification")
def probcover(r: Round, b: int) -> Array:
    """ProbCover on the last-layer features; the radius is the largest whose balls keep 95%
    purity w.r.t. ``C`` k-means clusters of the features (the paper's rule)."""
    features = r.features("last-layer")
    num_classes = r.pool.shape[-1]
    clusters = select.kmeans(features, num_clusters=num_classes, key=r.key)
    radius = select.probcover_radius(features, clusters)
    return select.probcover(features, b, radius=radius, labelled=r.labelled, available=r.available)


@register("ldm", task="classification")
def ldm(r: Round, b: int) -> Array:
    """LDM-S with the authors' defaults: the least disagree metric from 10 perturbed networks
    at each of 51 scales :math:`10^{-5} \\dots 10^0` (:func:`jaxal.select.perturbed_labels`,
    disagreement estimated on the pool), then LDM-weighted k-means++ seeding on the
    last-layer features (:func:`jaxal.select.ldm_seeding`)."""
    apply, params = r.network
    labels_P_N, base_N = select.perturbed_labels(
        apply, params, r.x_pool, key=jax.random.fold_in(r.key, 1)
    )
    ldm_N = select.least_disagree_metric(labels_P_N, base_N)
    return select.ldm_seeding(ldm_N, r.features("last-layer"), b, key=r.key, available=r.available)


# --- regression -----------------------------------------------------------------------------

_REGRESSION_TOP_K = {
    "predictive-variance": scores.predictive_variance,
    "epistemic-variance": scores.epistemic_variance,
    "gaussian-bald": scores.gaussian_bald,
}
for _name, _score in _REGRESSION_TOP_K.items():
    register(_name, task="regression")(top_scores(_score))
register("power-gaussian-bald", task="regression")(sampled_scores(scores.gaussian_bald))


def kernel_strategy(method: str, *, condition: bool) -> Strategy:
    """The regression kernel framework's ``method`` on the sketched gradient kernel.

    The kernel is the paper's default: 512 sketched gradient features of the trained
    network(s), scaled to a mean ``k(x, x)`` of 1 on the labelled points. ``condition=True``
    (P mode: MaxDiag, MaxDet, BAIT, Frank-Wolfe) conditions it on the labelled points first
    (the posterior transform); otherwise (TP mode: MaxDist, k-means++, LCMD) the labelled
    points are the initial centres.
    """

    def strategy(r: Round, b: int) -> Array:
        phi = kernel_features.scale(r.features("gradient"), labelled=r.labelled)
        noise = kernel_noise(phi.dtype)
        options = {}
        if condition:
            phi = kernel_features.posterior(phi, labelled=r.labelled, noise=noise)
        if method in ("maxdet", "bait"):
            options["noise"] = noise
        if method == "kmeanspp":
            options["key"] = r.key
        return select.kernel_batch(
            phi, b, method=method, labelled=r.labelled, available=r.available, **options
        )

    mode = "P mode, conditioned on the labelled points" if condition else "TP mode"
    strategy.__doc__ = f"{method} on the scaled, sketched gradient kernel ({mode})."
    return strategy


for _method, _condition in (
    ("maxdiag", True),
    ("maxdet", True),
    ("bait", True),
    ("frankwolfe", True),
    ("maxdist", False),
    ("kmeanspp", False),
    ("lcmd", False),
):
    register(_method, task="regression")(kernel_strategy(_method, condition=_condition))


# --- sub-pool wrappers ----------------------------------------------------------------------

WRAPPERS.register("anchoral")(subpool.anchoral)
register("anchoral", task="classification")(subpool.anchoral(STRATEGIES.get("entropy")))
"""``anchoral``: AnchorAL around entropy, the paper's main inner strategy; ``anchoral:NAME``
(:func:`get`) around any other."""


# --- strategies with memory across rounds ---------------------------------------------------

from jaxal import conformal, tailor as _tailor  # noqa: E402  (they import the round context)

TAILOR_CANDIDATES = ("least-confidence", "margin", "badge")
"""TAILOR's default candidates: the authors' multi-class set (``uncertain_algs``: confidence,
BADGE and GALAXY, a margin-based graph method with one arm per class) as this registry has it,
with top-``b`` margin standing in for GALAXY."""


def tailor(candidates: tuple[str, ...] | list[str] = TAILOR_CANDIDATES) -> Strategy:
    """TAILOR (:mod:`jaxal.tailor`) choosing each round among the registered ``candidates``.

    ``ValueError`` for fewer than two or repeated names, an unknown name, a regression-only
    strategy, or a strategy with memory of its own (``init_memory``) as a candidate.
    """
    names_ = tuple(candidates)
    if len(names_) < 2 or len(set(names_)) != len(names_):
        raise ValueError(
            f"candidates must name at least two distinct strategies; got {list(names_)}"
        )
    for name in names_:
        strategy = get(name)  # ValueError naming the options for an unknown name
        if ":" not in name and task_of(name) == "regression":
            raise ValueError(f"candidate {name!r} is a regression strategy; TAILOR classifies")
        if hasattr(strategy, "init_memory"):
            raise ValueError(f"candidate {name!r} has memory of its own; choose stateless ones")
    return _tailor.Tailor(tuple((name, get(name)) for name in names_))


register("tailor", task="classification")(tailor())
register("candidate-set", task="classification")(conformal.CandidateSetQuery())
