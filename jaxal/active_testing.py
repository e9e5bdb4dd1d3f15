r"""Active testing: estimate a model's risk on a test pool from a few actively chosen labels.

Kossen, Farquhar, Gal & Rainforth, "Active Testing: Sample-Efficient Model Evaluation",
ICML 2021; the estimators are from Farquhar, Gal & Rainforth, "On Statistical Bias in Active
Learning: How and When to Fix It", ICLR 2021.

A pool of ``N`` unlabelled test points has the true risk

.. math:: R = \frac1N \sum_{n=1}^N L_n, \qquad L_n = \ell(f(x_n), y_n).

Instead of labelling ``M`` points uniformly at random, :func:`sample` draws them one at a time
without replacement from a *proposal* ``q`` that favours points with a high expected loss
(:func:`expected_loss` under a surrogate of the labels). The mean of the drawn losses is then
biased towards high losses; :func:`lure_risk` (LURE) and :func:`pure_risk` (PURE) reweight
them into unbiased estimates of ``R`` that, for a good proposal, have a much smaller variance
than the uniform-sampling estimate. :func:`repeat` runs the whole procedure many times under
``vmap`` to measure bias and variance in simulation.

Shapes: ``N`` pool points, ``M`` drawn test points, ``K`` surrogate samples, ``C`` classes,
``R`` repeats. ``q[m]`` is always the probability with which the ``m``-th draw was chosen
among the points still remaining at that step.

Validation: shapes and dtypes are checked always; values (``q`` in ``(0, 1]``, finite losses,
non-negative scores, ``m`` and ``pool_size`` bounds) raise ``ValueError`` on concrete inputs
and are skipped under ``jit``/``vmap``, where invalid input gives undefined results.
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from jaxtyping import Array, ArrayLike, Float, Int

from jaxal import check, information
from jaxal.scores import predictive_variance
from jaxal.typing import Available, Key, LogProbs

__all__ = [
    "Estimates",
    "confidence_interval",
    "expected_loss",
    "lure_risk",
    "lure_terms",
    "lure_weights",
    "pure_risk",
    "pure_terms",
    "repeat",
    "sample",
    "standard_error",
]


# ---------------------------------------------------------------------------------------------
# Validation at the boundary


def _vector(x: ArrayLike, name: str, letter: str) -> Array:
    """``x`` as a floating jax array of shape ``[letter]`` with at least one entry."""
    x = check.float_array(x, name)
    if x.ndim != 1 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape [{letter}] with {letter} >= 1; got {x.shape}")
    return x


def _check_m(m: int, num_available: int | Array, N: int) -> int:
    m = check.integer(m, "m")
    if m > N:
        raise ValueError(f"m = {m} is larger than the pool (N = {N})")
    if check.is_concrete(num_available) and int(num_available) < m:
        raise ValueError(
            f"m = {m} is larger than the number of available points ({int(num_available)})"
        )
    return m


def _check_pool_size(pool_size: int | Array, M: int) -> None:
    if isinstance(pool_size, bool) or not (
        isinstance(pool_size, int | np.integer)
        or (hasattr(pool_size, "dtype") and jnp.issubdtype(pool_size.dtype, jnp.integer))
    ):
        raise TypeError(f"pool_size must be an integer; got {type(pool_size).__name__}")
    if np.ndim(pool_size) != 0:
        raise ValueError(f"pool_size must be a scalar; got shape {np.shape(pool_size)}")
    if check.is_concrete(pool_size) and int(pool_size) < M:
        raise ValueError(
            f"pool_size = {int(pool_size)} is smaller than the number of draws M = {M}; "
            "pool_size is N, the size of the pool the M points were drawn from"
        )


def _validated(losses: ArrayLike, q: ArrayLike, pool_size: int | Array) -> tuple[Array, Array]:
    """Check ``losses [M]``, ``q [M]`` in ``(0, 1]`` and ``pool_size >= M``."""
    q = _vector(q, "q", "M")
    losses = check.float_array(losses, "losses")
    if losses.shape != q.shape:
        raise ValueError(
            f"losses and q must have the same shape [M] (one entry per draw); "
            f"got {losses.shape} and {q.shape}"
        )
    _check_q(q)
    check.require(
        jnp.isfinite(losses).all(), "losses contains NaN or inf; losses must be finite", "skip"
    )
    _check_pool_size(pool_size, q.shape[0])
    return losses, q


def _check_q(q: Array) -> None:
    check.require(
        ((q > 0) & (q <= 1)).all(),
        "q must lie in (0, 1]: q[m] is the probability with which the m-th point was drawn "
        "among the remaining points (use mix_uniform > 0 in sample() to keep it positive)",
        "skip",
    )


# ---------------------------------------------------------------------------------------------
# Sampling test points


def _draw_probabilities(weights_N: Array, remaining_N: Array, mix_uniform: Array) -> Array:
    """Probabilities ``[N]`` of the next draw: renormalised weights mixed with the uniform.

    The weights are normalised in log space, ``exp(log s_n - logsumexp(log s))``, so that
    neither their sum nor its reciprocal can overflow or flush to 0 (weights near the
    largest float). Falls back to the uniform over the remaining points when their weights
    sum to 0.
    """
    dtype = weights_N.dtype
    num_remaining = jnp.sum(remaining_N).astype(dtype)
    log_weights_N = jnp.where(remaining_N & (weights_N > 0), jnp.log(weights_N), -jnp.inf)
    log_total = logsumexp(log_weights_N)
    has_mass = log_total > -jnp.inf
    uniform_N = jnp.where(remaining_N, 1.0 / num_remaining, 0.0).astype(dtype)
    proportional_N = jnp.exp(log_weights_N - jnp.where(has_mass, log_total, 0.0))
    mixed_N = (1.0 - mix_uniform) * proportional_N + mix_uniform * uniform_N
    return jnp.minimum(jnp.where(has_mass, mixed_N, uniform_N), 1.0)


def _sample_by_inversion(
    u_M: Array, scores_N: Array, mix_uniform: Array, available_N: Array
) -> tuple[Array, Array]:
    """Sequential draws, the ``m``-th by inverting the cumulative probabilities at ``u_M[m]``."""
    N = scores_N.shape[0]
    mix_uniform = jnp.asarray(mix_uniform, scores_N.dtype)

    def step(remaining_N, u):
        p_N = _draw_probabilities(scores_N, remaining_N, mix_uniform)
        cumulative_N = jnp.cumsum(p_N)
        # The first n with cumulative_n > u * total is never a point of probability 0; the
        # clip guards against u * total rounding up to the total.
        index = jnp.sum(cumulative_N <= u * cumulative_N[-1])
        last_positive = N - 1 - jnp.argmax(p_N[::-1] > 0)
        index = jnp.minimum(index, last_positive)
        return remaining_N.at[index].set(False), (index, p_N[index])

    _, (indices_M, q_M) = jax.lax.scan(step, available_N, u_M)
    return indices_M, q_M


@partial(jax.jit, static_argnames="m")
def _sample(
    key: Key, scores_N: Array, m: int, mix_uniform: Array, available_N: Array
) -> tuple[Array, Array]:
    u_M = jax.random.uniform(key, (m,), scores_N.dtype)
    return _sample_by_inversion(u_M, scores_N, mix_uniform, available_N)


def sample(
    proposal_scores: Float[ArrayLike, " N"],
    m: int,
    *,
    key: Key,
    available: Available | None = None,
    mix_uniform: float | Array = 0.0,
) -> tuple[Int[Array, " M"], Float[Array, " M"]]:
    r"""Draw ``m`` test points one at a time without replacement, with their probabilities.

    At step ``m`` (1-based) the remaining points :math:`\mathcal{R}_m` (available, not yet
    drawn) are drawn from

    .. math:: q_m(n) = (1 - \lambda) \frac{s_n}{\sum_{n' \in \mathcal{R}_m} s_{n'}}
              + \frac{\lambda}{|\mathcal{R}_m|}, \qquad n \in \mathcal{R}_m,

    with :math:`s` the ``proposal_scores`` (e.g. :func:`expected_loss`) and
    :math:`\lambda` = ``mix_uniform``. Mixing with the uniform (Kossen et al., 2021, recommend
    it for safety) keeps every remaining point's probability positive, which the unbiasedness
    of :func:`lure_risk` and :func:`pure_risk` needs wherever a loss is non-zero, and bounds
    the importance weights. When the remaining scores sum to 0 the draw is uniform.

    A ``lax.scan`` over the ``m`` draws with fixed shapes (one uniform variate per draw,
    inverted through the cumulative probabilities): ``O(m N)``, jit- and vmap-safe.

    Args:
      proposal_scores: ``[N]`` finite, non-negative, unnormalised proposal weights.
      m: number of draws, a static Python int with ``1 <= m <= #available``.
      key: PRNG key.
      available: optional bool ``[N]``; only these points are drawn, and then ``N`` in the
        estimators is ``available.sum()``.
      mix_uniform: :math:`\lambda \in [0, 1]` (may be traced).

    Returns:
      ``(indices [m], q [m])``: distinct pool indices in order of drawing, and
      ``q[i]`` = :math:`q_{i+1}(\text{indices}[i])`, in the dtype of the scores.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> indices, q = sample(jnp.array([1.0, 1.0, 2.0]), 3, key=jax.random.key(0))
      >>> float(q[-1])  # the last remaining point is drawn with probability 1
      1.0
    """
    scores_N = check.float_array(proposal_scores, "proposal_scores")
    if scores_N.ndim != 1 or scores_N.shape[0] < 1:
        raise ValueError(
            f"proposal_scores must have shape [N] with N >= 1 (one score per pool point); "
            f"got {scores_N.shape}"
        )
    N = scores_N.shape[0]
    key = check.key(key)
    check.require(jnp.isfinite(scores_N).all(), "proposal_scores contains NaN or inf", "skip")
    check.require(
        (scores_N >= 0).all(),
        "proposal_scores must be >= 0 (they are unnormalised sampling weights)",
        "skip",
    )
    available_N = check.available(available, N, on_trace="skip")
    m = _check_m(m, jnp.sum(available_N), N)
    check.fraction(mix_uniform, "mix_uniform", closed=True)
    return _sample(key, scores_N, m, mix_uniform, available_N)


# ---------------------------------------------------------------------------------------------
# Unbiased risk estimators


def _lure_weights(q_M: Array, pool_size: int | Array) -> Array:
    M = q_M.shape[0]
    N = jnp.asarray(pool_size).astype(q_M.dtype)
    i_M = jnp.arange(1, M + 1, dtype=q_M.dtype)
    # (N - M) / (N - i) is 0 / 0 only at i = M = N, where the factor is 0 (the whole pool).
    factor_M = (N - M) / jnp.maximum(N - i_M, 1.0)
    return 1.0 + factor_M * (1.0 / ((N - i_M + 1.0) * q_M) - 1.0)


def _pure_terms(losses_M: Array, q_M: Array, pool_size: int | Array) -> Array:
    N = jnp.asarray(pool_size).astype(q_M.dtype)
    earlier_M = jnp.concatenate([jnp.zeros((1,), losses_M.dtype), jnp.cumsum(losses_M)[:-1]])
    return (earlier_M + losses_M / q_M) / N


def _standard_error(terms_M: Array) -> Array:
    return jnp.std(terms_M, ddof=1) / jnp.sqrt(jnp.asarray(terms_M.shape[0], terms_M.dtype))


def lure_weights(q: Float[ArrayLike, " M"], pool_size: int | Array) -> Float[Array, " M"]:
    r"""LURE importance weights of ``M`` sequential draws (Farquhar et al., 2021, Eq. 4).

    .. math:: v_m = 1 + \frac{N - M}{N - m}
              \left(\frac{1}{(N - m + 1)\, q_m} - 1\right), \qquad m = 1, \dots, M.

    Uniform sampling (:math:`q_m = 1/(N - m + 1)`) gives :math:`v_m = 1`; at ``M = N`` every
    weight is 1 (the whole pool is labelled).

    Args:
      q: ``[M]`` probabilities in ``(0, 1]`` of the draws, as returned by :func:`sample`.
      pool_size: ``N >= M``, the number of points the draws were made from (may be traced).

    Returns:
      ``[M]`` weights, in the dtype of ``q``.
    """
    q = _vector(q, "q", "M")
    _check_q(q)
    _check_pool_size(pool_size, q.shape[0])
    return _lure_weights(q, pool_size)


def lure_terms(
    losses: Float[ArrayLike, " M"], q: Float[ArrayLike, " M"], pool_size: int | Array
) -> Float[Array, " M"]:
    """Per-draw LURE terms :math:`v_m L_{i_m}`; their mean is :func:`lure_risk` (``[M]``)."""
    losses, q = _validated(losses, q, pool_size)
    return _lure_weights(q, pool_size) * losses


def lure_risk(
    losses: Float[ArrayLike, " M"], q: Float[ArrayLike, " M"], pool_size: int | Array
) -> Float[Array, ""]:
    r"""LURE, the levelled unbiased risk estimator (Farquhar, Gal & Rainforth, ICLR 2021).

    .. math:: \hat R_\text{LURE} = \frac1M \sum_{m=1}^M v_m L_{i_m}

    with :math:`v_m` from :func:`lure_weights`. Unbiased for :math:`R = \frac1N \sum_n L_n`
    whenever every point with :math:`L_n \ne 0` has positive probability at every step.

    Args:
      losses: ``[M]`` losses :math:`L_{i_m}` of the drawn points, in order of drawing.
      q: ``[M]`` their draw probabilities from :func:`sample`.
      pool_size: ``N >= M``.

    Returns:
      Scalar estimate of the pool's mean loss.
    """
    return jnp.mean(lure_terms(losses, q, pool_size))


def pure_terms(
    losses: Float[ArrayLike, " M"], q: Float[ArrayLike, " M"], pool_size: int | Array
) -> Float[Array, " M"]:
    r"""Per-draw PURE terms, each an unbiased estimate of ``R`` given the earlier draws.

    .. math:: T_m = \frac1N \Big(\sum_{t < m} L_{i_t} + \frac{L_{i_m}}{q_m}\Big).

    :math:`\mathbb{E}[T_m \mid i_1, \dots, i_{m-1}] = R`, so :math:`T_m - R` are martingale
    differences (uncorrelated). Returns ``[M]``; their mean is :func:`pure_risk`.
    """
    losses, q = _validated(losses, q, pool_size)
    return _pure_terms(losses, q, pool_size)


def pure_risk(
    losses: Float[ArrayLike, " M"], q: Float[ArrayLike, " M"], pool_size: int | Array
) -> Float[Array, ""]:
    r"""PURE, the plain unbiased risk estimator (Farquhar, Gal & Rainforth, ICLR 2021).

    .. math:: \hat R_\text{PURE} = \frac1M \sum_{m=1}^M \frac1N
              \Big(\sum_{t < m} L_{i_t} + \frac{L_{i_m}}{q_m}\Big).

    Args:
      losses: ``[M]`` losses of the drawn points, in order of drawing.
      q: ``[M]`` their draw probabilities from :func:`sample`.
      pool_size: ``N >= M``.

    Returns:
      Scalar estimate of the pool's mean loss; with :math:`q \propto L` over the remaining
      points every term equals ``R`` exactly (zero variance).
    """
    return jnp.mean(pure_terms(losses, q, pool_size))


def standard_error(terms: Float[ArrayLike, " M"]) -> Float[Array, ""]:
    r"""Standard error of the mean of per-draw terms, :math:`\mathrm{sd}(T) / \sqrt{M}`.

    For :func:`pure_terms` (martingale differences around ``R``) this is the usual
    plug-in estimate of :math:`\operatorname{sd}(\hat R_\text{PURE})`; for :func:`lure_terms`,
    whose terms are not individually unbiased, it is an approximation. Needs ``M >= 2``
    (``ddof = 1``); gives NaN under ``jit`` for ``M = 1``.
    """
    terms = _vector(terms, "terms", "M")
    if terms.shape[0] < 2:
        raise ValueError(f"terms needs M >= 2 entries for a standard error; got {terms.shape}")
    return _standard_error(terms)


def confidence_interval(
    terms: Float[ArrayLike, " M"], *, level: float = 0.95
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    r"""Normal-approximation interval :math:`\bar T \pm z_{(1+\text{level})/2}\, \mathrm{SE}`.

    Args:
      terms: ``[M]`` per-draw terms (:func:`pure_terms` or :func:`lure_terms`), ``M >= 2``.
      level: coverage in ``(0, 1)``.

    Returns:
      ``(low, high)`` scalars.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    se = standard_error(terms)
    terms = jnp.asarray(terms)
    z = jax.scipy.special.ndtri(jnp.asarray((1.0 + level) / 2.0, terms.dtype))
    centre = jnp.mean(terms)
    return centre - z * se, centre + z * se


# ---------------------------------------------------------------------------------------------
# Proposals from a surrogate


def _expected_cross_entropy(surrogate: ArrayLike, model: ArrayLike) -> Array:
    surrogate_K_N_C = check.log_probs(surrogate, name="surrogate", on_trace="skip")
    model = check.float_array(model, "model")
    if model.ndim not in (2, 3):
        raise ValueError(
            f"model must be log-probabilities [N, C] or [K', N, C] for a log_probs surrogate; "
            f"got shape {model.shape}"
        )
    model_K_N_C = check.log_probs(
        model if model.ndim == 3 else model[None], name="model", on_trace="skip"
    )
    if model_K_N_C.shape[1:] != surrogate_K_N_C.shape[1:]:
        raise ValueError(
            f"model and surrogate must share N and C; got model {model.shape} and surrogate "
            f"{surrogate_K_N_C.shape}"
        )
    pi_N_C = jnp.exp(information.mean_log_probs(surrogate_K_N_C))
    log_f_N_C = information.mean_log_probs(model_K_N_C)
    # 0 log 0 = 0: classes the surrogate rules out contribute nothing, even where f_c = 0.
    safe_log_f_N_C = jnp.where(pi_N_C > 0, log_f_N_C, 0.0)
    return -jnp.sum(pi_N_C * safe_log_f_N_C, axis=-1)


def _expected_squared_error(surrogate: tuple[ArrayLike, ArrayLike], model: ArrayLike) -> Array:
    mean_K_N, var_K_N = check.gaussian(*surrogate, on_trace="skip")
    model = check.float_array(model, "model")
    if model.ndim not in (1, 2) or model.shape[-1] != mean_K_N.shape[1]:
        raise ValueError(
            f"model must be predictive means [N] or [K', N] with N = {mean_K_N.shape[1]} "
            f"for a (mean, var) surrogate; got shape {model.shape}"
        )
    check.require(jnp.isfinite(model).all(), "model contains NaN or inf", "skip")
    model_N = model if model.ndim == 1 else jnp.mean(model, axis=0)
    return (jnp.mean(mean_K_N, axis=0) - model_N) ** 2 + predictive_variance(mean_K_N, var_K_N)


def expected_loss(
    surrogate: LogProbs | tuple[Float[ArrayLike, "K N"], Float[ArrayLike, "K N"]],
    model: Float[ArrayLike, "N C"] | Float[ArrayLike, "K_model N C"] | Float[ArrayLike, "... N"],
) -> Float[Array, " N"]:
    r"""The model's expected loss at each pool point under a surrogate's predictive.

    The proposal of Kossen et al. (2021): :math:`q(n) \propto \mathbb{E}_{y \sim \pi(y \mid
    x_n)}[\ell(f(x_n), y)]`, with :math:`\pi` the surrogate, which can be the model itself,
    an ensemble or any :class:`~jaxal.posterior.Posterior` prediction. The loss follows from
    the surrogate's form:

    * **cross-entropy** (``surrogate`` = ``log_probs [K, N, C]``, ``model`` = log-probs
      ``[N, C]`` or samples ``[K', N, C]``, whose mixture predictive is the model's
      prediction :math:`f`):

      .. math:: -\sum_c \bar\pi_c(x_n) \log f_c(x_n), \qquad
                \bar\pi = \tfrac1K \textstyle\sum_k \pi_k,

      with :math:`0 \log 0 = 0`; it is ``+inf`` where the surrogate gives mass to a class
      the model rules out.
    * **squared error** (``surrogate`` = ``(mean, var)`` each ``[K, N]``, ``var`` the
      predictive variance of each sample, noise included; ``model`` = predictive means
      ``[N]`` or ``[K', N]``, averaged over ``K'``):

      .. math:: (\bar\mu_\pi(x_n) - \mu_f(x_n))^2 + \operatorname{Var}_k \mu_k(x_n)
                + \mathbb{E}_k s^2_k(x_n),

      i.e. :math:`(\mu_\pi - \mu_f)^2 + s^2_\pi` for a single Gaussian surrogate (``K = 1``).

    Args:
      surrogate: ``log_probs [K, N, C]`` or a ``(mean, var)`` tuple of ``[K, N]`` arrays.
      model: the evaluated model's prediction, as above.

    Returns:
      ``[N]`` non-negative expected losses, usable as ``proposal_scores`` of :func:`sample`.
    """
    if isinstance(surrogate, tuple):
        if len(surrogate) != 2:
            raise ValueError(
                f"a tuple surrogate must be (mean, var); got a tuple of {len(surrogate)}"
            )
        return _expected_squared_error(surrogate, model)
    return _expected_cross_entropy(surrogate, model)


# ---------------------------------------------------------------------------------------------
# Simulation: bias and variance over repeats


class Estimates(NamedTuple):
    """Per-repeat risk estimates, each ``[R]`` (from :func:`repeat`).

    Attributes:
      uniform: mean loss of ``M`` points drawn uniformly without replacement.
      naive: unweighted mean loss of the ``M`` actively drawn points (biased).
      lure: :func:`lure_risk` of the active draws.
      pure: :func:`pure_risk` of the active draws.
      lure_se: :func:`standard_error` of the active draws' :func:`lure_terms`.
      pure_se: :func:`standard_error` of their :func:`pure_terms`.
    """

    uniform: Float[Array, " R"]
    naive: Float[Array, " R"]
    lure: Float[Array, " R"]
    pure: Float[Array, " R"]
    lure_se: Float[Array, " R"]
    pure_se: Float[Array, " R"]


@partial(jax.jit, static_argnames=("m", "num_repeats"))
def _repeat(
    key: Key, losses_N: Array, scores_N: Array, m: int, num_repeats: int, mix_uniform: Array
) -> Estimates:
    N = losses_N.shape[0]
    everything_N = jnp.ones((N,), dtype=bool)
    uniform_key, active_key = jax.random.split(key)
    # Drawn as flat vectors and reshaped: XLA:CPU compiles multi-dimensional random bits
    # (which a vmap over keys would produce) several times more slowly.
    noise_R_N = jax.random.uniform(uniform_key, (num_repeats * N,)).reshape(num_repeats, N)
    u_R_M = jax.random.uniform(active_key, (num_repeats * m,), scores_N.dtype)

    def once(noise_N, u_M):
        _, uniform_M = jax.lax.top_k(noise_N, m)
        active_M, q_M = _sample_by_inversion(u_M, scores_N, mix_uniform, everything_N)
        chosen_M = losses_N[active_M]
        lure_M = _lure_weights(q_M, N) * chosen_M
        pure_M = _pure_terms(chosen_M, q_M, N)
        return Estimates(
            uniform=jnp.mean(losses_N[uniform_M]),
            naive=jnp.mean(chosen_M),
            lure=jnp.mean(lure_M),
            pure=jnp.mean(pure_M),
            lure_se=_standard_error(lure_M),
            pure_se=_standard_error(pure_M),
        )

    return jax.vmap(once)(noise_R_N, u_R_M.reshape(num_repeats, m))


def repeat(
    key: Key,
    losses: Float[ArrayLike, " N"],
    proposal_scores: Float[ArrayLike, " N"],
    m: int,
    num_repeats: int,
    *,
    mix_uniform: float | Array = 0.0,
) -> Estimates:
    r"""Run active testing ``num_repeats`` times under ``vmap`` to measure bias and variance.

    For a simulation where every loss of the pool is known: each repeat draws ``m`` points
    uniformly (the baseline) and ``m`` points with :func:`sample` from ``proposal_scores``,
    and estimates :math:`R = \frac1N \sum_n L_n` from the losses of the drawn points only.
    ``estimates.lure - R`` has mean 0; compare ``mean((estimates.x - R)**2)`` across
    estimators for their MSE.

    Args:
      key: PRNG key, split into one key per repeat.
      losses: ``[N]`` finite losses of every pool point.
      proposal_scores: ``[N]`` non-negative proposal weights (e.g. :func:`expected_loss`).
      m: test points labelled per repeat, a static int, ``1 <= m <= N``.
      num_repeats: ``R >= 1`` (static).
      mix_uniform: :math:`\lambda \in [0, 1]` of :func:`sample`.

    Returns:
      :class:`Estimates` of ``[R]`` arrays (standard errors are NaN for ``m = 1``).
    """
    key = check.key(key)
    losses_N = _vector(losses, "losses", "N")
    scores_N = _vector(proposal_scores, "proposal_scores", "N")
    if scores_N.shape != losses_N.shape:
        raise ValueError(
            f"losses and proposal_scores must both be [N]; got {losses_N.shape} and "
            f"{scores_N.shape}"
        )
    check.require(jnp.isfinite(losses_N).all(), "losses contains NaN or inf", "skip")
    check.require(jnp.isfinite(scores_N).all(), "proposal_scores contains NaN or inf", "skip")
    check.require((scores_N >= 0).all(), "proposal_scores must be >= 0", "skip")
    N = losses_N.shape[0]
    m = _check_m(m, N, N)
    num_repeats = check.integer(num_repeats, "num_repeats")
    check.fraction(mix_uniform, "mix_uniform", closed=True)
    scores_N = scores_N.astype(losses_N.dtype)
    return _repeat(key, losses_N, scores_N, m, num_repeats, mix_uniform)
