r"""EPIG: expected predictive information gain (Bickford Smith, Kirsch, Farquhar, Gal, Rainforth,
AISTATS 2023).

EPIG scores a pool point ``x`` by how much its label ``y`` tells about the labels ``y*`` of
target inputs ``x* ~ p*(x*)``, the inputs the model will be tested on:

.. math:: \mathrm{EPIG}(x) = \mathbb{E}_{x^* \sim p^*} I(y; y^* \mid x, x^*).

With ``K`` posterior samples the joint predictive of a pair is the ``C x C`` matrix
:math:`P(y, y^*) = \frac1K \sum_k p_k(y \mid x)\, p_k(y^* \mid x^*)` whose marginals are the
predictives :math:`\bar p(y \mid x)` and :math:`\bar q(y^* \mid x^*)`. Hence

.. math::
    I(y; y^*) = \sum_{y, y^*} P \log \frac{P}{\bar p\, \bar q}
              = \sum_{y, y^*} P \log P + H[\bar p] + H[\bar q],

because :math:`\sum P \log \bar p = \sum_y \bar p \log \bar p` (and likewise for
:math:`\bar q`). Only the first term needs the joint; the marginal entropies cost
``O((N + M) K C)``. Averaged over ``M`` targets:

.. math::
    \mathrm{EPIG}(x) = H[\bar p(y \mid x)] + \frac1M \sum_m H[\bar q(y^* \mid x^*_m)]
                       - \frac1M \sum_m H[P_{x, x^*_m}].

The joint for a block of ``n`` pool points and ``m`` targets is one matrix product with
contraction over ``K``, ``[n C, K] x [K, m C] -> [n C, m C]``, followed by ``n m C^2``
``p log p`` evaluations: ``O(N M K C^2)`` in all, computed in blocks so that at most
``pool_block_size * target_block_size * C^2`` joint entries exist at once (``[N, M, C, C]``
is never formed).

Since ``y`` and ``y*`` are independent given ``theta``, ``0 <= EPIG(x) <= BALD(x)`` for the
``K``-sample posterior (data processing inequality); values below 0 from rounding are
clipped.
"""

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from jaxal import check, information, memory
from jaxal._numerics import point_blocks
from jaxal.scores import _regression
from jaxal.typing import Available, GaussianMean, GaussianVar, Key, LogProbs

DEFAULT_POOL_BLOCK_SIZE = 128
"""Pool points per block (``lax.map`` over pool blocks)."""

DEFAULT_TARGET_BLOCK_SIZE = 512
"""Target points per block (``lax.scan`` over target blocks inside a pool block)."""


def _sum_joint_plogp(probs_K_N_C: Array, probs_K_M_C: Array, pool_block: int, target_block: int):
    r"""``sum_m sum_{y, y*} P log P`` per pool point, ``[N]``, in blocks.

    Padded points have probability 0 everywhere, so their joint entries are 0 and add
    ``0 log 0 = 0``: no masking is needed.
    """
    K, N, C = probs_K_N_C.shape
    pool_blocks = point_blocks(probs_K_N_C / K, pool_block)  # 1/K folded in once
    target_blocks = point_blocks(probs_K_M_C, target_block)

    def pool_block_fn(pool_K_n_C):
        def add_target_block(total_n, target_K_m_C):
            joint_n_C_m_D = jnp.einsum(
                "knc,kmd->ncmd", pool_K_n_C, target_K_m_C, precision=jax.lax.Precision.HIGHEST
            )
            return total_n + jnp.sum(information.xlogx(joint_n_C_m_D), axis=(1, 2, 3)), None

        zeros_n = jnp.zeros(pool_K_n_C.shape[1], pool_K_n_C.dtype)
        total_n, _ = jax.lax.scan(add_target_block, zeros_n, target_blocks)
        return total_n

    return jax.lax.map(pool_block_fn, pool_blocks).reshape(-1)[:N]


@partial(jax.jit, static_argnames=("pool_block_size", "target_block_size"))
def _epig(log_probs_pool, log_probs_target, *, pool_block_size, target_block_size):
    M = log_probs_target.shape[1]
    predictive_entropy_N = information.predictive_entropy(log_probs_pool)
    mean_target_entropy = jnp.mean(information.predictive_entropy(log_probs_target))
    sum_plogp_N = _sum_joint_plogp(
        jnp.exp(log_probs_pool), jnp.exp(log_probs_target), pool_block_size, target_block_size
    )
    epig_N = predictive_entropy_N + mean_target_entropy + sum_plogp_N / M
    return jnp.maximum(epig_N, 0.0)


def epig(
    log_probs_pool: LogProbs,
    log_probs_target: Float[ArrayLike, "K M C"],
    *,
    pool_block_size: int = DEFAULT_POOL_BLOCK_SIZE,
    target_block_size: int = DEFAULT_TARGET_BLOCK_SIZE,
    memory_budget: memory.Budget = None,
) -> Float[Array, " N"]:
    r"""Expected predictive information gain about target labels (Bickford Smith et al., 2023).

    .. math::
        \mathrm{EPIG}(x) = \frac1M \sum_{m} I(y; y^*_m)
        = H[\bar p(y \mid x)] + \frac1M \sum_m \big(H[\bar q(y^* \mid x^*_m)]
          - H[P_{x, x^*_m}(y, y^*)]\big),

    with the joint predictive :math:`P(y, y^*) = \frac1K \sum_k p_k(y \mid x)\,
    p_k(y^* \mid x^*_m)`. Computed in blocks of ``pool_block_size x target_block_size``
    pairs (memory ``O(pool_block_size * target_block_size * C^2)``); the block sizes change
    the result only by rounding.

    Args:
      log_probs_pool: ``[K, N, C]`` log-probabilities of the pool points.
      log_probs_target: ``[K, M, C]`` log-probabilities of ``M`` target inputs sampled from
        the target distribution, under the same ``K`` posterior samples (same order).
      pool_block_size: pool points per block (static).
      target_block_size: targets per block (static).
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``;
        :mod:`jaxal.memory`, XLA's count of the compiled program): the blocks shrink (below
        the sizes given; the result changes only by rounding) until it fits, or
        ``ValueError`` names the minimum.

    Returns:
      ``[N]`` EPIG in nats, ``0 <= EPIG <= BALD``.

    Example:
      >>> import jax.numpy as jnp
      >>> lp = jnp.log(jnp.array([[[1.0, 0.0]], [[0.0, 1.0]]]))  # the samples disagree
      >>> round(float(epig(lp, lp)[0]), 4)  # x* = x: EPIG = BALD = log 2
      0.6931
    """
    pool = check.log_probs(log_probs_pool, name="log_probs_pool", on_trace="skip")
    target = check.log_probs(log_probs_target, name="log_probs_target", on_trace="skip")
    if pool.shape[0] != target.shape[0]:
        raise ValueError(
            "log_probs_pool and log_probs_target must come from the same K posterior samples; "
            f"got K = {pool.shape[0]} and K = {target.shape[0]}"
        )
    if pool.shape[2] != target.shape[2]:
        raise ValueError(
            "log_probs_pool and log_probs_target must have the same number of classes; "
            f"got C = {pool.shape[2]} and C = {target.shape[2]}"
        )
    dtype = jnp.result_type(pool.dtype, target.dtype)
    pool_block_size = check.integer(pool_block_size, "pool_block_size")
    target_block_size = check.integer(target_block_size, "target_block_size")
    pool, target = pool.astype(dtype), target.astype(dtype)
    if memory_budget is not None:
        pool_block_size, target_block_size = _budgeted_blocks(
            memory_budget,
            pool,
            target,
            pool_block_size=min(pool_block_size, pool.shape[1]),
            target_block_size=min(target_block_size, target.shape[1]),
        )
    return _epig(
        pool,
        target,
        pool_block_size=pool_block_size,
        target_block_size=target_block_size,
    )


def _budgeted_blocks(
    budget: memory.Budget,
    pool: Array,
    target: Array,
    *,
    pool_block_size: int,
    target_block_size: int,
) -> tuple[int, int]:
    """The largest ``(pool, target)`` blocks, at most the given ones, whose compiled
    :func:`epig` program fits the budget (:func:`jaxal.memory.chunk_size` of XLA's count):
    first the target block with one pool point per block, then the pool block."""
    K, _, C = pool.shape
    what = f"EPIG with K = {K}, C = {C}"

    def count(pool_block: int, target_block: int) -> int:
        return memory.temp_bytes(
            _epig, pool, target, pool_block_size=pool_block, target_block_size=target_block
        )

    target_block = memory.chunk_size(budget, target_block_size, lambda m: count(1, m), what=what)
    pool_block = memory.chunk_size(
        budget, pool_block_size, lambda n: count(n, target_block), what=what
    )
    return pool_block, target_block


def gaussian_epig(
    mean_pool: GaussianMean,
    var_pool: GaussianVar,
    mean_target: Float[ArrayLike, "K M"],
    var_target: Float[ArrayLike, "K M"],
    *,
    pool_block_size: int = 1024,
    memory_budget: memory.Budget = None,
) -> Float[Array, " N"]:
    r"""Gaussian approximation of EPIG for regression.

    The joint predictive of ``(y, y*)`` under the mixture of the ``K`` Gaussian samples has

    .. math::
        \operatorname{Cov}(y, y^*) = \operatorname{Cov}_k(\mu_k(x), \mu_k(x^*)), \qquad
        \operatorname{Var}(y) = \operatorname{Var}_k \mu_k(x) + \mathbb{E}_k s^2_k(x)

    (noise independent given the sample; population moments, ``ddof = 0``). Replacing the
    joint by the Gaussian with these moments gives

    .. math::
        I(y; y^*) \approx -\tfrac12 \log(1 - \rho^2), \qquad
        \rho^2 = \frac{\operatorname{Cov}(y, y^*)^2}{\operatorname{Var}(y)\operatorname{Var}(y^*)},

    averaged over the ``M`` targets. A point with zero predictive variance has ``rho = 0``.
    The means are standardised with the scaled moments of :mod:`jaxal.scores._regression`
    (nothing is squared before it is scaled), so means of ``1e30`` or variances of ``1e38``
    in float32 give the same correlations as moderate ones.

    Args:
      mean_pool, var_pool: ``[K, N]`` per-sample means and (aleatoric) variances at the pool.
      mean_target, var_target: ``[K, M]`` the same at ``M`` sampled target inputs.
      pool_block_size: pool points per block of the ``[N, M]`` correlation matrix (static).
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``;
        :mod:`jaxal.memory`, XLA's count of the compiled program): ``pool_block_size``
        shrinks until it fits (same result), or ``ValueError`` names the minimum.

    Returns:
      ``[N]`` approximate EPIG in nats, ``>= 0``.
    """
    mean_pool, var_pool = check.gaussian(mean_pool, var_pool, on_trace="skip")
    mean_target, var_target = check.gaussian(mean_target, var_target, on_trace="skip")
    if mean_pool.shape[0] != mean_target.shape[0]:
        raise ValueError(
            "pool and target predictions must come from the same K posterior samples; "
            f"got K = {mean_pool.shape[0]} and K = {mean_target.shape[0]}"
        )
    pool_block_size = check.integer(pool_block_size, "pool_block_size")
    dtype = jnp.result_type(mean_pool, var_pool, mean_target, var_target)
    stacked_pool = jnp.stack([mean_pool, var_pool]).astype(dtype)
    stacked_target = jnp.stack([mean_target, var_target]).astype(dtype)
    if memory_budget is not None:
        (K, N), M = mean_pool.shape, mean_target.shape[1]
        pool_block_size = memory.chunk_size(
            memory_budget,
            min(pool_block_size, N),
            lambda n: memory.temp_bytes(
                _gaussian_epig, stacked_pool, stacked_target, pool_block_size=n
            ),
            what=f"gaussian_epig with K = {K}, M = {M} targets",
        )
    return _gaussian_epig(stacked_pool, stacked_target, pool_block_size=pool_block_size)


def _standardised(mean_K_N: Array, var_K_N: Array) -> Array:
    """``(mu_k - mean_k mu_k) / sqrt(Var(y))`` per point, 0 where ``Var(y) = 0``.

    With ``Var(y) = c^2 r`` (:func:`~jaxal.scores._regression.predictive_moments`) this is
    ``((mu_k - mean mu) / c) / sqrt(r)``: no square of a mean is formed.
    """
    _, total = _regression.predictive_moments(mean_K_N, var_K_N)
    positive_N = total.scale > 0
    scale_N = jnp.where(positive_N, total.scale, 1.0)
    inv_sqrt_ratio_N = jnp.where(
        positive_N, jax.lax.rsqrt(jnp.where(positive_N, total.ratio, 1.0)), 0.0
    )
    return _regression.centred(mean_K_N) * (inv_sqrt_ratio_N / scale_N)[None]


@partial(jax.jit, static_argnames=("pool_block_size",))
def _gaussian_epig(pool_2_K_N, target_2_K_M, *, pool_block_size):
    K, N = pool_2_K_N.shape[1:]
    # Standardised means: rho[n, m] = sum_k a[k, n] b[k, m] / K.
    a_K_N = _standardised(pool_2_K_N[0], pool_2_K_N[1]) / K
    b_K_M = _standardised(target_2_K_M[0], target_2_K_M[1])

    def block_fn(a_K_n):
        rho_n_M = jnp.einsum("kn,km->nm", a_K_n, b_K_M, precision=jax.lax.Precision.HIGHEST)
        rho2_n_M = jnp.clip(rho_n_M**2, 0.0, 1.0)
        return jnp.mean(-0.5 * jnp.log1p(-rho2_n_M), axis=1)

    blocks = point_blocks(a_K_N[:, :, None], pool_block_size)[..., 0]
    return jax.lax.map(block_fn, blocks).reshape(-1)[:N]


def sample_targets(
    x: Float[ArrayLike, "P ..."],
    m: int,
    *,
    key: Key,
    available: Available | None = None,
    replace: bool = False,
) -> Float[Array, "M ..."]:
    """Draw ``m`` target inputs uniformly from a set representing the target distribution.

    EPIG needs samples ``x* ~ p*(x*)``; when ``p*`` is only known through unlabelled inputs
    (a held-out set, the test inputs or the pool itself), draw them from those.

    Args:
      x: ``[P, ...]`` candidate target inputs.
      m: number of targets, a static int ``>= 1``; without ``replace`` at most the number of
        available rows (``ValueError`` otherwise, checked on a concrete ``available``).
      key: PRNG key.
      available: optional bool ``[P]``; ``False`` excludes a row (e.g. pool points already
        labelled, when the pool doubles as the target set).
      replace: sample with replacement (needed when ``m`` exceeds the available rows).

    Returns:
      ``[m, ...]`` the sampled rows of ``x``.
    """
    key = check.key(key)
    x = jnp.asarray(x)
    if x.ndim < 1:
        raise ValueError(f"x must have a leading point axis; got shape {x.shape}")
    P = x.shape[0]
    mask = check.available(available, P, on_trace="skip")
    m = check.integer(m, "m")
    num_available = jnp.sum(mask)
    if not replace and check.is_concrete(num_available) and m > int(num_available):
        raise ValueError(
            f"m = {m} is larger than the number of available rows of x ({int(num_available)}); "
            "pass replace=True to draw with replacement"
        )
    p = mask / num_available
    index_M = jax.random.choice(key, P, (m,), replace=replace, p=p)
    return x[index_M]
