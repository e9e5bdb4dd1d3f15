r"""Joint EPIG for batches: greedy expected predictive information gain of a set of labels.

EPIG (Bickford Smith et al., AISTATS 2023) extended to batches the way BatchBALD (Kirsch,
van Amersfoort, Gal, NeurIPS 2019) extends BALD: a batch ``B`` is scored by the information
its labels jointly carry about the labels of target inputs ``x*_1 .. x*_M ~ p*``,

.. math:: \mathrm{EPIG}(B) = \frac1M \sum_m I(y_B; y^*_m)
          = \frac1M \sum_m \big( H[y^*_m] - \mathbb{E}_{y_B} H[y^*_m \mid y_B] \big),

under the posterior-sample mixture :math:`p(y_B, y^*) = \frac1K \sum_k \prod_{i \in B}
p_k(y_i)\, p_k(y^*)` (sample ``k`` is the same model at every pool and target point).

**Configurations.** As in :mod:`jaxal.select._configurations`, a configuration ``s`` of the
current batch carries a mass :math:`\omega_s` and posterior weights :math:`w_{sk} =
p(\theta_k \mid y_B = s)`.

**Exact steps** enumerate all ``C^|B|`` configurations (:math:`\omega_s = p(s)`) and every
target and target label. For a candidate ``x`` with labels ``c`` and a target with labels
``d``,

.. math:: X_{s,c,d} = \sum_k w_{sk}\, p_k(y_x = c)\, p_k(y^* = d) = p(c, d \mid s), \qquad
          -H[y^* \mid y_B, y_x] = \sum_s \omega_s \sum_c \Big( \sum_d X_{scd} \log X_{scd}
          - X_{sc\cdot} \log X_{sc\cdot} \Big),

one ``[S C, K] x [K, M C]`` matrix product per candidate and ``S C^2 M`` logarithms.
Candidates are evaluated in blocks of ``L`` and targets in blocks of ``M_b`` with
``S L C M_b C <= block_elements``. A step is exact while ``C^|B| <= max_exact_configs``,
whose default ``num_samples // (M C)`` keeps the ``C^|B| M C`` (configuration, target,
target label) triples a candidate is scored on within the sampled steps' ``num_samples``
configurations, so an exact step costs no more than a sampled one.

**Sampled steps** draw ``S`` configurations of the batch *and of one target*: configuration
``s`` starts from posterior sample ``k_s`` (stratified, ``S / K`` each), takes a target
``m_s`` (stratified within each ``k``: a run of consecutive targets from a random offset, so
every ``(k, m)`` pair is equally likely) and labels ``y_B ~ p_{k_s}`` (one per added point),
``d_s ~ p_{k_s}(y^*_{m_s})``, all drawn once per batch. The pair ``(y_B, y^*_{m_s})`` is then a
draw from the joint :math:`\frac1K \sum_k p_k(y_B)\, p_k(y^*_m)` at a uniform target, and

.. math:: \widehat{\Delta}(x) = \frac1S \sum_s \Big( H[y_x \mid y_B = s]
          - H[y_x \mid y_B = s, y^*_{m_s} = d_s] \Big), \qquad
          H[y_x \mid \cdot] = -\sum_c r_c \log r_c, \quad r_c = \sum_k w'_{k}\, p_k(y_x = c),

with :math:`w'` the posterior weights given the conditioning labels (``w`` reweighted by
:math:`p_k(y^*_{m_s} = d_s)`), is an unbiased estimate of the gain
:math:`\frac1M \sum_m I(y_x; y^*_m \mid y_B)`: each term is an exact conditional entropy given
a draw of what it conditions on, and :math:`E_{y^*}[H[y_x \mid y_B] - H[y_x \mid y_B, y^*]]
= I(y_x; y^* \mid y_B)` (tested against enumeration, averaged over keys). It costs two
BatchBALD conditional entropies per candidate, ``2 S C K`` flops and ``2 S C`` logarithms,
where enumerating the targets cost ``S C^2 M K`` and ``S C^2 M``: ``C M / 2`` times less (500x
at ``C = 10``, ``M = 100``), at the price of the targets' sampling variance (a single term can
be negative; their mean is the non-negative gain).

**Gains, not values.** A step picks the largest gain
:math:`\mathrm{EPIG}(B + x) - \mathrm{EPIG}(B) = \frac1M \sum_m (H[y^*_m \mid y_B] -
H[y^*_m \mid y_B, y_x])`, both terms on the same configurations, and the reported scores
are the running sums of the gains (as in BatchBALD). On the exact path this is the same
number as :math:`\mathrm{EPIG}(B + x)`; on the sampled path both entropies of a term are on
the same draw, so their difference varies far less than either (EPIG gains are often ``1e-3``
nats while the entropies are ``~1``).

**No lazy greedy.** BatchBALD's lazy evaluation rests on the submodularity of
``I(y_B; theta)``; ``I(y_B; y*)`` is *not* submodular: with ``theta = (theta_1, theta_2)``
two fair bits, ``y_1 = theta_1``, ``y_2 = theta_2`` and ``y* = theta_1 XOR theta_2``, each
label alone carries 0 nats about ``y*`` but both together ``log 2`` (tested), so a gain can
grow with the batch and a candidate's old gain bounds nothing (the joint EPIG can also exceed
the sum of the single-point EPIGs). A valid bound does exist: given ``y_B``,
``y_x - theta - y*`` is a Markov chain, so :math:`I(y_x; y^*_m \mid y_B) \le
\min(I(y_x; \theta \mid y_B), I(y^*_m; \theta \mid y_B))`, cheap BatchBALD gains. We tried
it: EPIG gains are typically ~100x smaller than BALD gains, and on deep ensembles trained on
(repeated) digits the bound ruled out only 0.5-2% of the pool, so it cost more than it saved.
Every selectable candidate is therefore evaluated at every step.
"""

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from jaxal import check, memory
from jaxal._numerics import point_blocks as _blocks
from jaxal.information import xlogx
from jaxal.select._configurations import (
    Configs,
    budgeted_block_elements,
    conditional_entropy,
    greedy_batch,
    inverse_cdf,
    running_best,
    settings,
)
from jaxal.typing import Available, Key, LogProbs

DEFAULT_BLOCK_ELEMENTS = 2**22
"""Size of the ``[S, L, C, M_b, C]`` block of conditional joints evaluated at once."""


def _neg_conditional_entropy(
    configs: Configs, probs_K_L_C: Array, target_blocks_T_K_Mb_D: Array
) -> Array:
    """``[L]``: ``-sum_m H[y*_m | y_B, y_x]`` for ``L`` candidates ``x``, over target blocks.

    Rows ``(x, s, c)`` of ``w[s, k] p_k(y_x = c)`` times columns ``(m, d)`` of
    ``p_k(y*_m = d)`` give ``X[s, c, d] = p(c, d | s)`` per target; each row is reduced
    whole (``sum_{m,d} X log X``), and the marginals ``X[s, c, .]`` come from a second,
    ``C`` times smaller product. Padded targets have probability 0 and add nothing.
    """
    K, L, C = probs_K_L_C.shape
    S = configs.mass_S.shape[0]
    left_LSC_K = (
        probs_K_L_C.transpose(1, 2, 0)[:, None, :, :] * configs.weights_S_K[None, :, None, :]
    ).reshape(L * S * C, K)

    def add_target_block(total_L, target_K_Mb_D):
        joint_LSC_MbD = jnp.dot(
            left_LSC_K, target_K_Mb_D.reshape(K, -1), precision=jax.lax.Precision.HIGHEST
        )
        marginal_LSC_Mb = jnp.dot(
            left_LSC_K, jnp.sum(target_K_Mb_D, axis=-1), precision=jax.lax.Precision.HIGHEST
        )
        neg_LSC = jnp.sum(xlogx(joint_LSC_MbD), axis=1) - jnp.sum(xlogx(marginal_LSC_Mb), axis=1)
        return total_L + jnp.sum(neg_LSC.reshape(L, S, C), axis=-1) @ configs.mass_S, None

    zeros_L = jnp.zeros(L, probs_K_L_C.dtype)
    total_L, _ = jax.lax.scan(add_target_block, zeros_L, target_blocks_T_K_Mb_D)
    return total_L


def _conditional_entropy(configs: Configs, probs_K_N_C: Array, block_size: int) -> Array:
    """``[N]``: ``H[y_n | y_B]`` of every point, in blocks of ``block_size`` points."""
    N = probs_K_N_C.shape[1]
    blocks = _blocks(probs_K_N_C, block_size)
    return jax.lax.map(partial(conditional_entropy, configs), blocks).reshape(-1)[:N]


def _best_candidate(
    gain_fn, selectable_N: Array, *, block_size: int, dtype: jnp.dtype
) -> tuple[Array, Array]:
    """``(index, gain)`` of the largest ``gain_fn`` over the selectable points.

    ``gain_fn(index_L) -> [L]``. Selectable points are evaluated in blocks of ``block_size``,
    in index order (ties go to the lowest index); blocks of unselectable points are skipped.
    """
    N = selectable_N.shape[0]
    L = block_size
    num_blocks = -(-N // L)
    order_N = jnp.argsort(~selectable_N, stable=True)  # selectable points first
    order = jnp.concatenate([order_N, jnp.full((num_blocks * L - N,), N - 1, order_N.dtype)])
    num_selectable = jnp.sum(selectable_N)

    def evaluate_block(carry):
        j, best_gain, best_index = carry
        index_L = jax.lax.dynamic_slice(order, (j * L,), (L,))
        valid_L = j * L + jnp.arange(L) < num_selectable
        gain_L = jnp.where(valid_L, gain_fn(index_L), -jnp.inf)
        best_gain, best_index = running_best(best_gain, best_index, gain_L, index_L)
        return j + 1, best_gain, best_index

    def more_blocks(carry):
        return carry[0] * L < num_selectable

    init = (0, jnp.array(-jnp.inf, dtype), order_N[0])
    _, gain, index = jax.lax.while_loop(more_blocks, evaluate_block, init)
    return index, gain


def target_draws(log_probs_K_M_C: Array, num_samples: int, key: Key) -> Array:
    """``[S, K]``: ``p_k(y*_{m_s} = d_s)`` for the sampled configurations' targets and labels.

    Configuration ``s`` belongs to posterior sample ``k_s = s // (S / K)`` (as in
    :func:`~jaxal.select._configurations.greedy_batch`); its target is ``m_s = (j + o_k) mod
    M`` for its position ``j`` within ``k``'s run and a uniform offset ``o_k`` (stratified, and
    every target equally likely for every ``k``); its label ``d_s ~ p_{k_s}(y*_{m_s})``
    (:func:`~jaxal.select._configurations.inverse_cdf`).
    """
    K, M, C = log_probs_K_M_C.shape
    per_sample = num_samples // K
    offset_key, label_key = jax.random.split(key)
    sample_S = jnp.arange(num_samples) // per_sample
    offset_K = jax.random.randint(offset_key, (K,), 0, M)
    target_S = (jnp.arange(num_samples) % per_sample + offset_K[sample_S]) % M
    uniform_S = jax.random.uniform(label_key, (num_samples,), log_probs_K_M_C.dtype)
    label_S = inverse_cdf(log_probs_K_M_C.reshape(K * M, C), sample_S * M + target_S, uniform_S)
    return jnp.exp(log_probs_K_M_C[:, target_S, label_S]).T


def given_targets(configs: Configs, target_S_K: Array) -> Configs:
    """The configurations conditioned also on their sampled target labels: ``w'[s, k] ∝
    w[s, k] p_k(y*_{m_s} = d_s)`` (left as ``w`` in the measure-zero case where every term is
    0, e.g. a target label drawn from a sample whose weight underflowed)."""
    joint_S_K = configs.weights_S_K * target_S_K
    total_S = jnp.sum(joint_S_K, axis=1, keepdims=True)
    weights_S_K = jnp.where(
        total_S > 0, joint_S_K / jnp.where(total_S > 0, total_S, 1.0), configs.weights_S_K
    )
    return configs._replace(weights_S_K=weights_S_K)


@partial(jax.jit, static_argnames=("b", "num_samples", "exact_steps", "block_elements"))
def _batch_epig(
    log_probs_K_N_C: Array,
    log_probs_K_M_C: Array,
    available_N: Array,
    key: Key | None,
    *,
    b: int,
    num_samples: int,
    exact_steps: int,
    block_elements: int,
) -> tuple[Array, Array]:
    N, C = log_probs_K_N_C.shape[1:]
    M = log_probs_K_M_C.shape[1]
    probs_K_N_C = jnp.exp(log_probs_K_N_C)
    probs_K_M_C = jnp.exp(log_probs_K_M_C)
    if exact_steps < b:
        assert key is not None  # settings() requires one when sampling
        key, target_key = jax.random.split(key)
        target_S_K = target_draws(log_probs_K_M_C, num_samples, target_key)

    def exact_gains(configs: Configs):
        """``gains(index_L)``: ``EPIG(B + x) - EPIG(B)`` over every target and label."""
        S = configs.mass_S.shape[0]
        per_target = S * C * C
        num_target_blocks = -(-M // max(1, block_elements // per_target))
        target_block = -(-M // num_target_blocks)  # even blocks: little padding
        candidate_block = min(N, max(1, block_elements // (per_target * target_block)))
        target_blocks = _blocks(probs_K_M_C, target_block)
        point_block = max(1, block_elements // (S * C))
        target_h_M = _conditional_entropy(configs, probs_K_M_C, point_block)  # H[y*_m | y_B]

        def gains(index_L):
            probs_K_L_C = jnp.take(probs_K_N_C, index_L, axis=1)
            neg_L = _neg_conditional_entropy(configs, probs_K_L_C, target_blocks)
            return neg_L / M + jnp.mean(target_h_M)

        return gains, candidate_block

    def sampled_gains(configs: Configs):
        """``gains(index_L)``: the estimate of the module docstring on sampled targets."""
        with_targets = given_targets(configs, target_S_K)

        def gains(index_L):
            probs_K_L_C = jnp.take(probs_K_N_C, index_L, axis=1)
            return conditional_entropy(configs, probs_K_L_C) - conditional_entropy(
                with_targets, probs_K_L_C
            )

        S = configs.mass_S.shape[0]
        return gains, min(N, max(1, block_elements // (2 * S * C)))

    def step(configs: Configs, selectable_N: Array):
        """``(index, gain, selectable)``: the candidate maximising ``EPIG(B + n) - EPIG(B)``."""
        gains, block_size = (exact_gains if configs.exact else sampled_gains)(configs)
        index, gain = _best_candidate(
            gains, selectable_N, block_size=block_size, dtype=log_probs_K_N_C.dtype
        )
        return index, gain, selectable_N.at[index].set(False)

    indices_B, scores_B = greedy_batch(
        step,
        available_N,
        log_probs_K_N_C,
        available_N,
        key,
        b=b,
        num_samples=num_samples,
        exact_steps=exact_steps,
    )
    return indices_B, jnp.maximum(scores_B, 0.0)


def batch_epig(
    log_probs_pool: LogProbs,
    log_probs_target: Float[ArrayLike, "K M C"],
    b: int,
    *,
    key: Key | None = None,
    num_samples: int | None = None,
    available: Available | None = None,
    max_exact_configs: int | None = None,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
    memory_budget: memory.Budget = None,
) -> tuple[Int[Array, " B"], Float[Array, " B"]]:
    r"""Greedy joint-EPIG batch: maximise :math:`\frac1M \sum_m I(y_{1:b}; y^*_m)`.

    Each greedy step adds the candidate ``x`` with the largest :math:`\mathrm{EPIG}(B + x)`.
    Step ``i`` (``i`` points chosen so far) enumerates the ``C**i`` joint configurations of the
    batch, and every target and target label, exactly while ``C**i <= max_exact_configs``;
    beyond that it uses ``num_samples`` configurations sampled from the joint predictive, each
    with one sampled target and target label (module docstring), which needs ``key``.

    Cost: an exact step with ``S = C**i`` configurations costs ``O(N S C^2 M K)``, a sampled
    one ``O(N S C K)``, about twice a BatchBALD step on the same configurations (but batch
    EPIG evaluates every candidate; BatchBALD's lazy greedy skips most).

    Every candidate is evaluated at every step: EPIG is not submodular, so BatchBALD's lazy
    greedy does not apply (see the module docstring).

    Args:
      log_probs_pool: ``[K, N, C]`` log-probabilities of the pool points.
      log_probs_target: ``[K, M, C]`` log-probabilities of ``M`` target inputs ``x* ~ p*``
        under the same ``K`` posterior samples (same order).
      b: batch size, static Python int with ``1 <= b <= #available``.
      key: PRNG key; required only when some step is sampled.
      num_samples: sampled configurations ``S``; ``None`` means 10,000 (BatchBALD's value).
        Rounded down to a multiple of ``K``.
      available: optional bool ``[N]`` mask of selectable pool points.
      max_exact_configs: largest configuration count enumerated exactly; ``None`` means
        ``num_samples // (M C)`` (at least 1), so that an exact step, which scores each
        candidate on ``C**i M C`` (configuration, target, target label) triples, costs about
        as much as a sampled step on ``num_samples`` configurations.
      block_elements: memory knob: at most this many ``[configs, candidates, C, targets, C]``
        conditional joint entries (exact steps) or ``2 [configs, candidates, C]`` conditional
        predictives (sampled steps) are held at once (but always at least one candidate and
        one target).
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``;
        :mod:`jaxal.memory`, XLA's count of the compiled program). Over the budget,
        ``block_elements`` shrinks (same result); ``ValueError`` when not even one candidate
        (and one target, on the exact path) fits.

    Returns:
      ``(indices [b], scores [b])``: ``scores[i]`` is the EPIG of the first ``i + 1`` selected
      points in nats (``scores[0]`` is :func:`jaxal.scores.epig` of the first pick); exact on
      the exact path, plus the sampled estimates of each later step's gain beyond it.
      Non-decreasing on the exact path (up to sampling error beyond it). Probabilities of
      exactly 0 are valid: impossible configurations add ``0 log 0 = 0``. Under
      ``jit``/``vmap`` the positions past the available count hold the sentinel ``N``
      (:func:`jaxal.check.picks`) and repeat the last score.

    Example:
      >>> import jax.numpy as jnp
      >>> lp = jnp.log(jnp.array([[[0.9, 0.1], [0.5, 0.5]], [[0.1, 0.9], [0.5, 0.5]]]))
      >>> indices, scores = batch_epig(lp, lp[:, :1], 1)  # the target is point 0
      >>> int(indices[0]), round(float(scores[0]), 4)
      (0, 0.2218)
    """
    pool = check.log_probs(log_probs_pool, name="log_probs_pool", on_trace="skip")
    target = check.log_probs(log_probs_target, name="log_probs_target", on_trace="skip")
    K, N, C = pool.shape
    if target.shape[0] != K:
        raise ValueError(
            "log_probs_pool and log_probs_target must come from the same K posterior samples; "
            f"got K = {K} and K = {target.shape[0]}"
        )
    if target.shape[2] != C:
        raise ValueError(
            "log_probs_pool and log_probs_target must have the same number of classes; "
            f"got C = {C} and C = {target.shape[2]}"
        )
    M = target.shape[1]
    key, available, b, num_samples, exact_steps, block_elements = settings(
        "batch_epig",
        pool.shape,
        b,
        key=key,
        available=available,
        num_samples=num_samples,
        max_exact_configs=max_exact_configs,
        block_elements=block_elements,
        exact_cost=M * C,
    )
    dtype = jnp.result_type(pool.dtype, target.dtype)
    pool, target = pool.astype(dtype), target.astype(dtype)
    if memory_budget is not None:
        exact_unit = C ** (exact_steps - 1) * C * C  # one candidate against one target
        sampled_unit = 2 * num_samples * C if exact_steps < b else 1
        block_elements = budgeted_block_elements(
            memory_budget,
            _batch_epig,
            pool,
            target,
            available,
            key,
            block_elements=block_elements,
            unit=max(exact_unit, sampled_unit),
            what=f"batch_epig with K = {K}, N = {N}, M = {M}, C = {C}",
            b=b,
            num_samples=num_samples,
            exact_steps=exact_steps,
        )
    return _batch_epig(
        pool,
        target,
        available,
        key,
        b=b,
        num_samples=num_samples,
        exact_steps=exact_steps,
        block_elements=block_elements,
    )
