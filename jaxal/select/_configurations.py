r"""Joint label configurations of a batch: the greedy driver of BatchBALD and batch EPIG.

Both methods score a candidate ``x`` against the labels of the batch ``B`` chosen so far,
through its configurations. Writing a configuration as ``s`` with ``P[s, k] = prod_{i in B}
p_k(y_i = s_i)``, each carries a mass :math:`\omega_s` and posterior weights
:math:`w_{sk} = P[s, k] / \sum_{k'} P[s, k'] = p(\theta_k \mid y_B = s)`. Exact: all
``C^|B|`` configurations, :math:`\omega_s = p(s) = \frac1K \sum_k P[s, k]`. Sampled: ``S``
configurations drawn from the joint predictive, stratified over the ``K`` posterior samples
(``S / K`` start from each ``k``) and extended by one sampled label per added point,
:math:`\omega_s = 1/S`.

:func:`greedy_batch` runs the greedy loop once for both: step ``i`` (``i`` points chosen)
enumerates the ``C**i`` configurations exactly while ``C**i <= max_exact_configs``
(:func:`num_exact_steps`, unrolled: the configuration count grows each step), then samples
``num_samples`` configurations (one compiled ``fori_loop``). The method is the plug-in
``step(configs, state) -> (index, gain, state)``.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp
from jaxtyping import Array

from jaxal import check, memory
from jaxal.information import xlogx
from jaxal.typing import Available, Key

DEFAULT_NUM_SAMPLES = 10_000
"""Sampled configurations (BatchBALD's authors' value); also the default exact threshold."""


class Configs(NamedTuple):
    """Configurations of the current batch: ``weights_S_K = w[s, k]``, ``mass_S = omega_s``;
    ``exact`` (a Python bool): all ``C^|B|`` enumerated, else sampled."""

    weights_S_K: Array
    mass_S: Array
    exact: bool


def configs(log_joint_S_K: Array, *, exact: bool) -> Configs:
    """Weights and masses of ``S`` configurations from ``log P[s, k]`` (``-inf``: ``P = 0``).

    A configuration no sample can produce (``p(s) = 0``, possible when probabilities are
    exactly 0) has mass 0 and weights 0 instead of ``0 / 0``: it adds ``0 log 0 = 0``.
    """
    S, K = log_joint_S_K.shape
    log_mass_S = logsumexp(log_joint_S_K, axis=1)
    possible_S = log_mass_S > -jnp.inf
    weights_S_K = jnp.exp(log_joint_S_K - jnp.where(possible_S, log_mass_S, 0.0)[:, None])
    if exact:
        mass_S = jnp.exp(log_mass_S - jnp.log(K))
    else:
        mass_S = jnp.full((S,), 1.0 / S, dtype=log_joint_S_K.dtype)
    return Configs(weights_S_K, mass_S, exact)


def conditional_entropy(configs: Configs, probs_K_L_C: Array) -> Array:
    r"""``[L]``: :math:`H[y_x \mid y_B] = -\sum_s \omega_s \sum_c r_{sc} \log r_{sc}` with
    :math:`r_{sc} = \sum_k w_{sk}\, p_k(y_x = c) = p(y_x = c \mid y_B = s)`, for ``L`` points.

    The ``[S, L C]`` conditionals are one matrix product; the sum over ``s`` runs first, down
    their columns, and the one over the ``C`` classes last: summing each row of ``C`` entries
    first is a short reduction that XLA:CPU does not vectorise (1.6x slower in all,
    ``benchmarks/README.md``, "BatchBALD's sampled steps").
    """
    K, L, C = probs_K_L_C.shape
    conditional_S_LC = jnp.dot(
        configs.weights_S_K,
        probs_K_L_C.reshape(K, L * C),
        precision=jax.lax.Precision.HIGHEST,
    )
    if configs.exact:
        neg_entropy_LC = jnp.sum(configs.mass_S[:, None] * xlogx(conditional_S_LC), axis=0)
    else:  # equal masses 1 / S
        neg_entropy_LC = jnp.mean(xlogx(conditional_S_LC), axis=0)
    return -jnp.sum(neg_entropy_LC.reshape(L, C), axis=-1)


def running_best(
    best_gain: Array, best_index: Array, gain_L: Array, index_L: Array
) -> tuple[Array, Array]:
    """``(gain, index)``: the best of a block of ``L`` candidates if it beats the running best
    (ties keep the running best, so the earliest block wins)."""
    top = jnp.argmax(gain_L)
    better = gain_L[top] > best_gain
    return jnp.where(better, gain_L[top], best_gain), jnp.where(better, index_L[top], best_index)


def num_exact_steps(num_classes: int, b: int, max_exact_configs: int) -> int:
    """Greedy steps ``i`` (batch of ``i`` points so far) with ``C**i <= max_exact_configs``."""
    i = 0
    while i < b and num_classes**i <= max_exact_configs:
        i += 1
    return i


class Settings(NamedTuple):
    """Validated arguments of a configuration greedy (:func:`settings`)."""

    key: Key | None
    available: Array
    b: int
    num_samples: int
    """Sampled configurations, rounded down to a multiple of ``K``."""
    exact_steps: int
    block_elements: int


def settings(
    method: str,
    shape: tuple[int, ...],
    b: int,
    *,
    key: Key | None,
    available: Available | None,
    num_samples: int | None,
    max_exact_configs: int | None,
    block_elements: int,
    exact_cost: int = 1,
) -> Settings:
    """Validate the arguments shared by BatchBALD and batch EPIG for a ``[K, N, C]`` pool.

    ``num_samples = None`` means :data:`DEFAULT_NUM_SAMPLES` (at least ``K``: one per
    posterior sample), ``max_exact_configs = None`` means ``num_samples // exact_cost`` (at
    least 1), where ``exact_cost`` is what an exact configuration costs relative to a sampled
    one; ``key`` is required once some step is sampled.
    """
    K, N, C = shape
    if key is not None:
        key = check.key(key)
    available = check.available(available, N, on_trace="skip")
    b = check.batch_size(b, available, on_trace="skip")
    num_samples = DEFAULT_NUM_SAMPLES if num_samples is None else num_samples
    num_samples = check.integer(num_samples, "num_samples")
    if num_samples < K:
        raise ValueError(
            f"num_samples must be >= K = {K} (one per posterior sample); got {num_samples}"
        )
    threshold = max(1, num_samples // exact_cost)
    if max_exact_configs is not None:
        threshold = check.integer(max_exact_configs, "max_exact_configs")
    block_elements = check.integer(block_elements, "block_elements")
    exact_steps = num_exact_steps(C, b, threshold)
    if exact_steps < b and key is None:
        raise ValueError(
            f"{method} needs key= (a jax.random key) to sample joint configurations: a batch "
            f"of b = {b} with C = {C} classes has C**(b-1) = {C ** (b - 1)} configurations, "
            f"more than max_exact_configs = {threshold}"
        )
    num_samples = (num_samples // K) * K
    return Settings(key, available, b, num_samples, exact_steps, block_elements)


def budgeted_block_elements(
    budget: memory.Budget,
    program: Callable,
    *args: Any,
    block_elements: int,
    unit: int,
    what: str,
    **static: Any,
) -> int:
    """The largest ``block_elements``, at most the given one, whose compiled ``program`` fits.

    ``program(*args, **static, block_elements=e)`` is BatchBALD's or batch EPIG's jitted
    greedy; its working memory is XLA's count (:func:`jaxal.memory.temp_bytes`), searched by
    :func:`jaxal.memory.chunk_size` over multiples of ``unit``, the elements of the smallest
    block the method can form (one candidate at the step with the most configurations). The
    selection does not depend on ``block_elements``.
    """
    units = max(1, block_elements // unit)

    def count(n: int) -> int:
        elements = block_elements if n == units else n * unit
        return memory.temp_bytes(program, *args, **static, block_elements=elements)

    fitted = memory.chunk_size(budget, units, count, what=what)
    return block_elements if fitted == units else fitted * unit


def inverse_cdf(log_probs_K_C: Array, sample_S: Array, uniform_S: Array) -> Array:
    """``[S]`` labels drawn from ``p_{k_s}`` (``k_s = sample_S``) by inverting its CDF at
    ``uniform_S`` in ``[0, 1)``: the ``c`` with ``F(c - 1) <= u F(C) < F(c)``, so a class of
    probability 0 is never drawn.

    One uniform per configuration and point, drawn for the whole batch at once: the greedy
    loop then holds one random-number generator, where ``jax.random.categorical`` at every
    (unrolled) exact step compiled one each (about 1 s of compilation apiece on XLA:CPU).
    """
    cdf_K_C = jnp.cumsum(jnp.exp(log_probs_K_C), axis=-1)
    cdf_S_C = cdf_K_C[sample_S]
    below_S_C = cdf_S_C <= uniform_S[:, None] * cdf_S_C[:, -1:]
    return jnp.minimum(jnp.sum(below_S_C, axis=-1), log_probs_K_C.shape[-1] - 1)


Step = Callable[[Configs, Any], tuple[Array, Array, Any]]
"""``step(configs, state) -> (index, gain, state)``: the best candidate given the batch's
configurations; ``state`` is the method's (a traced pytree of fixed shapes)."""


# Duplicates (reason): the jitted cores _batchbald and _batch_epig take the same static
# settings as this driver on purpose (each is a jit boundary with its own static arguments).
def greedy_batch(
    step: Step,
    state,
    log_probs_K_N_C: Array,
    available_N: Array,
    key: Key | None,
    *,
    b: int,
    num_samples: int,
    exact_steps: int,
    first_step: Callable[[Any], tuple[Array, Array, Any]] | None = None,
) -> tuple[Array, Array]:
    """``(indices [b], scores [b])`` of the greedy batch: ``scores`` are the running sums of
    the steps' gains.

    Step ``i < exact_steps`` calls ``step`` on the ``C**i`` exact configurations, the later
    ones on ``num_samples`` (a multiple of ``K``) sampled configurations, which need ``key``.
    ``first_step(state)``, when given, replaces ``step`` on the empty batch (its one
    configuration). Positions past the available count (possible only under tracing) hold
    the sentinel ``N`` (:func:`jaxal.check.picks`) and add nothing to the scores.
    """
    K = log_probs_K_N_C.shape[0]
    dtype = log_probs_K_N_C.dtype
    indices_B = jnp.zeros((b,), jnp.int32)
    gains_B = jnp.zeros((b,), dtype)

    sampling = exact_steps < b
    if sampling:
        assert key is not None  # settings() requires one when sampling
        uniform_B_S = jax.random.uniform(key, (b, num_samples), dtype)
        sample_of_config_S = jnp.arange(num_samples) // (num_samples // K)

        def add_sampled(log_joint_S_K, index, uniform_S):
            log_probs_K_C = log_probs_K_N_C[:, index, :]
            label_S = inverse_cdf(log_probs_K_C, sample_of_config_S, uniform_S)
            return log_joint_S_K + log_probs_K_C[:, label_S].T

        log_joint_sampled = jnp.zeros((num_samples, K), dtype)

    log_joint_exact = jnp.zeros((1, K), dtype)  # the empty batch: one configuration
    for i in range(exact_steps):
        if i == 0 and first_step is not None:
            index, gain, state = first_step(state)
        else:
            index, gain, state = step(configs(log_joint_exact, exact=True), state)
        indices_B = indices_B.at[i].set(index.astype(jnp.int32))
        gains_B = gains_B.at[i].set(gain)
        if i + 1 < exact_steps:
            new_C_K = log_probs_K_N_C[:, index, :].T
            if i == 0:  # the empty batch's one configuration has log P = 0
                log_joint_exact = new_C_K
            else:  # [S C, K]: every configuration extended by every label of the new point
                log_joint_exact = (log_joint_exact[:, None, :] + new_C_K[None]).reshape(-1, K)
        if sampling:
            log_joint_sampled = add_sampled(log_joint_sampled, index, uniform_B_S[i])

    if sampling:

        def sampled_step(i, carry):
            indices_B, gains_B, state, log_joint_S_K = carry
            index, gain, state = step(configs(log_joint_S_K, exact=False), state)
            return (
                indices_B.at[i].set(index.astype(jnp.int32)),
                gains_B.at[i].set(gain),
                state,
                add_sampled(log_joint_S_K, index, uniform_B_S[i]),
            )

        carry = (indices_B, gains_B, state, log_joint_sampled)
        indices_B, gains_B, _, _ = jax.lax.fori_loop(exact_steps, b, sampled_step, carry)

    filled_B = jnp.arange(b) < jnp.sum(available_N)
    return check.picks(indices_B, available_N), jnp.cumsum(jnp.where(filled_B, gains_B, 0.0))
