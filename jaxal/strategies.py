"""Acquisition strategies: plain functions ``(key, samples, available, b) -> indices [b]``.

``samples`` is what a posterior predicts for the pool: ``log_probs [K, N, C]`` for
classification or ``(mean, var)`` each ``[K, N]`` for regression. A strategy composes a score
from :mod:`jaxal.scores` with a selection from :mod:`jaxal.select`; a new one is a few lines::

    @jaxal.strategies.register("power-margin", task="classification")
    def power_margin(key, log_probs, available, b):
        return jaxal.select.stochastic(key, jaxal.scores.margin(log_probs), b, available=available)

The loop and the CLI look strategies up by name with :func:`get`.
"""

from collections.abc import Callable

from jaxal import scores, select
from jaxal._registry import Registry
from jaxal.typing import Array, Key

Strategy = Callable[[Key, object, Array, int], Array]

STRATEGIES = Registry("strategy")
register = STRATEGIES.register
get = STRATEGIES.get
names = STRATEGIES.names


def _num_points(samples) -> int:
    return samples[0].shape[1] if isinstance(samples, tuple) else samples.shape[1]


def top_scores(score: Callable[..., Array]) -> Strategy:
    """The strategy taking the ``b`` highest ``score(*samples)`` among available points."""

    def strategy(key, samples, available, b):
        del key
        args = samples if isinstance(samples, tuple) else (samples,)
        return select.top_k(score(*args), b, available)

    return strategy


def sampled_scores(score: Callable[..., Array], mode: str = "power", beta: float = 1.0) -> Strategy:
    """The strategy sampling ``b`` points with :func:`jaxal.select.stochastic` on ``score``."""

    def strategy(key, samples, available, b):
        args = samples if isinstance(samples, tuple) else (samples,)
        return select.stochastic(key, score(*args), b, mode=mode, beta=beta, available=available)

    return strategy


@register("random", task="any")
def random(key: Key, samples, available: Array, b: int) -> Array:
    """Uniformly random available points (the baseline every method must beat)."""
    return select.random(key, _num_points(samples), b, available)


@register("batchbald", task="classification")
def batchbald(key: Key, log_probs: Array, available: Array, b: int) -> Array:
    """Greedy BatchBALD with the authors' defaults (10,000 sampled configurations)."""
    return select.batchbald(log_probs, b, key=key, available=available)[0]


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
    register(f"{_mode}bald", task="classification")(sampled_scores(scores.bald, _mode))
    register(f"{_mode}entropy", task="classification")(
        sampled_scores(scores.predictive_entropy, _mode)
    )

_REGRESSION_TOP_K = {
    "predictive-variance": scores.predictive_variance,
    "epistemic-variance": scores.epistemic_variance,
    "gaussian-bald": scores.gaussian_bald,
}
for _name, _score in _REGRESSION_TOP_K.items():
    register(_name, task="regression")(top_scores(_score))
register("powergaussian-bald", task="regression")(sampled_scores(scores.gaussian_bald))
