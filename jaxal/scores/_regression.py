"""Scores for regression with Gaussian posterior samples ``N(mu_k(x), s2_k(x))``.

``mean`` and ``var`` are ``[K, N]``: the predictive mean and (aleatoric) variance of each
posterior sample at each pool point. The posterior predictive is the mixture
``(1/K) sum_k N(mu_k, s2_k)``.

**Stable moments.** Means and variances may be huge (``var = 1e38`` or ``mean = 1e30`` in
float32): nothing is squared or summed before it is scaled. Each mean of squares is held as
a pair ``(c, r)`` with ``mean_k x_k^2 = c^2 r``, ``c = max_k |x_k|`` and ``r in [0, 1]``
(:func:`scaled_mean_square`), for ``x`` the centred means and the standard deviations
``s_k = sqrt(s2_k)``; a variance is formed as ``c (c r)`` only at the end, and
:func:`gaussian_bald` never forms it (it needs ``log r / 2`` and ``log(s_k / c)``).
"""

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxal import check
from jaxal.scores._budget import budgeted
from jaxal.scores._registry import register
from jaxal.typing import GaussianMean, GaussianVar


class Scaled(NamedTuple):
    """A non-negative ``[N]`` quantity ``scale**2 * ratio`` kept unsquared."""

    scale: Array
    ratio: Array

    def value(self) -> Array:
        """``scale**2 * ratio``, overflowing only where the value itself does."""
        return self.scale * (self.scale * self.ratio)


def scaled_mean_square(x_K_N: Array) -> Scaled:
    """``mean_k x_k^2`` per point as ``c^2 r``: ``c = max_k |x_k|`` (0 where ``x = 0``)."""
    c_N = jnp.max(jnp.abs(x_K_N), axis=0)
    safe_N = jnp.where(c_N > 0, c_N, 1.0)
    return Scaled(c_N, jnp.mean((x_K_N / safe_N[None]) ** 2, axis=0))


def centred(mean_K_N: Array) -> Array:
    """``mu_k - mean_k mu_k``; the mean sums ``mu_k / K``, which cannot overflow."""
    K = mean_K_N.shape[0]
    return mean_K_N - jnp.sum(mean_K_N / K, axis=0, keepdims=True)


def predictive_moments(mean_K_N: Array, var_K_N: Array) -> tuple[Scaled, Scaled]:
    """``(Var_k mu_k, Var_k mu_k + E_k s2_k)``, each :class:`Scaled` (``ddof = 0``)."""
    epistemic = scaled_mean_square(centred(mean_K_N))
    aleatoric = scaled_mean_square(jnp.sqrt(var_K_N))
    c_N = jnp.maximum(epistemic.scale, aleatoric.scale)
    safe_N = jnp.where(c_N > 0, c_N, 1.0)
    total_N = (epistemic.scale / safe_N) ** 2 * epistemic.ratio + (
        aleatoric.scale / safe_N
    ) ** 2 * aleatoric.ratio
    return epistemic, Scaled(c_N, total_N)


@register("predictive-variance", task="regression")
@budgeted(task="regression")
def predictive_variance(mean: GaussianMean, var: GaussianVar) -> Float[Array, " N"]:
    r"""Variance of the mixture predictive (law of total variance).

    .. math:: \operatorname{Var}_k \mu_k + \mathbb{E}_k s^2_k.

    Returns ``[N]``.
    """
    mean, var = check.gaussian(mean, var, on_trace="skip")
    return predictive_moments(mean, var)[1].value()


@register("epistemic-variance", task="regression")
@budgeted(task="regression")
def epistemic_variance(mean: GaussianMean, var: GaussianVar) -> Float[Array, " N"]:
    r"""Variance of the per-sample means, :math:`\operatorname{Var}_k \mu_k` (``ddof = 0``).

    ``var`` is validated but does not enter. Returns ``[N]``.
    """
    mean, _ = check.gaussian(mean, var, on_trace="skip")
    return scaled_mean_square(centred(mean)).value()


@register("gaussian-bald", task="regression")
@budgeted(task="regression")
def gaussian_bald(mean: GaussianMean, var: GaussianVar) -> Float[Array, " N"]:
    r"""Gaussian (moment-matched) approximation of BALD for regression.

    The entropy of the mixture predictive has no closed form; it is replaced by the entropy
    of the Gaussian with the same variance, which upper-bounds it:

    .. math:: \tfrac12 \log \big(\operatorname{Var}_k \mu_k + \mathbb{E}_k s^2_k\big)
              - \mathbb{E}_k \tfrac12 \log s^2_k.

    (The ``log 2 pi e`` terms cancel.) This is an approximation of ``I(y; theta | x)``, not
    the exact mutual information; it is >= 0 by Jensen's inequality (values below 0 from
    rounding are clipped; ``K = 1`` gives exactly 0). ``var`` must be > 0. Computed as
    ``log(r) / 2 - E_k log(s_k / c)`` from the scaled predictive variance ``c^2 r`` and
    ``s_k = sqrt(s2_k)``, so it is finite for any finite input.

    Returns ``[N]`` in nats.
    """
    mean, var = check.gaussian(mean, var, positive=True, on_trace="skip")
    _, total = predictive_moments(mean, var)
    # log(s_k / c) <= 0, from the ratio (exactly 0 for K = 1) unless the ratio underflows.
    std_K_N = jnp.sqrt(var)
    ratio_K_N = std_K_N / total.scale[None]
    log_ratio_K_N = jnp.where(
        ratio_K_N > 0, jnp.log(ratio_K_N), jnp.log(std_K_N) - jnp.log(total.scale)[None]
    )
    return jnp.maximum(0.5 * jnp.log(total.ratio) - jnp.mean(log_ratio_K_N, axis=0), 0.0)
