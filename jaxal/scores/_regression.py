"""Scores for regression with Gaussian posterior samples ``N(mu_k(x), s2_k(x))``.

``mean`` and ``var`` are ``[K, N]``: the predictive mean and (aleatoric) variance of each
posterior sample at each pool point. The posterior predictive is the mixture
``(1/K) sum_k N(mu_k, s2_k)``.
"""

import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxal import check
from jaxal.scores._budget import budgeted, gaussian_words
from jaxal.scores._registry import register
from jaxal.typing import GaussianMean, GaussianVar


def _total_variance(mean: Array, var: Array) -> Array:
    return jnp.var(mean, axis=0) + jnp.mean(var, axis=0)


@register("predictive-variance", task="regression")
@budgeted(gaussian_words, task="regression")
def predictive_variance(mean: GaussianMean, var: GaussianVar) -> Float[Array, " N"]:
    r"""Variance of the mixture predictive (law of total variance).

    .. math:: \operatorname{Var}_k \mu_k + \mathbb{E}_k s^2_k.

    Returns ``[N]``.
    """
    mean, var = check.gaussian(mean, var, on_trace="skip")
    return _total_variance(mean, var)


@register("epistemic-variance", task="regression")
@budgeted(gaussian_words, task="regression")
def epistemic_variance(mean: GaussianMean, var: GaussianVar) -> Float[Array, " N"]:
    r"""Variance of the per-sample means, :math:`\operatorname{Var}_k \mu_k` (``ddof = 0``).

    ``var`` is validated but does not enter. Returns ``[N]``.
    """
    mean, _ = check.gaussian(mean, var, on_trace="skip")
    return jnp.var(mean, axis=0)


@register("gaussian-bald", task="regression")
@budgeted(gaussian_words, task="regression")
def gaussian_bald(mean: GaussianMean, var: GaussianVar) -> Float[Array, " N"]:
    r"""Gaussian (moment-matched) approximation of BALD for regression.

    The entropy of the mixture predictive has no closed form; it is replaced by the entropy
    of the Gaussian with the same variance, which upper-bounds it:

    .. math:: \tfrac12 \log \big(\operatorname{Var}_k \mu_k + \mathbb{E}_k s^2_k\big)
              - \mathbb{E}_k \tfrac12 \log s^2_k.

    (The ``log 2 pi e`` terms cancel.) This is an approximation of ``I(y; theta | x)``, not
    the exact mutual information; it is >= 0 by Jensen's inequality. ``var`` must be > 0.

    Returns ``[N]`` in nats.
    """
    mean, var = check.gaussian(mean, var, positive=True, on_trace="skip")
    return 0.5 * jnp.log(_total_variance(mean, var)) - 0.5 * jnp.mean(jnp.log(var), axis=0)
