r"""BatchBALD (Kirsch, van Amersfoort, Gal, NeurIPS 2019): greedy joint mutual information.

The acquisition of a batch is

.. math:: a(x_{1:n}) = I(y_{1:n}; \theta) = H[y_{1:n}] - \sum_i \mathbb{E}_k H[p_k(y_i)],

with joint predictive :math:`p(y_{1:n}) = \frac1K \sum_k \prod_i p_k(y_i)`. Points are added
greedily. Writing a configuration of the current batch as ``s`` with ``P[s, k] = prod_i
p_k(y_i = s_i)``, ``p(s) = mean_k P[s, k]`` and ``w[s, k] = P[s, k] / sum_k' P[s, k']``, the
marginal gain of a candidate ``x`` is

.. math:: a(B + x) - a(B) = -\sum_s \omega_s \sum_c r_{sc} \log r_{sc} - \mathbb{E}_k H[p_k(y_x)],
          \qquad r_{sc} = \sum_k w_{sk}\, p_k(y_x = c),

where :math:`r_{s\cdot} = p(y_x \mid y_B = s)`. The weights are :math:`\omega_s = p(s)` when
all ``C^|B|`` configurations are enumerated (exact) and :math:`\omega_m = 1/M` for ``M``
configurations sampled from the joint (the paper's importance-sampling estimator, written in
a numerically stable form: the batch's own entropy cancels from the gain).

Speed: the objective is submodular, so a candidate's last computed gain bounds its next one.
Each greedy step evaluates candidates in blocks, in order of their bounds, and stops once
the best fresh gain beats every remaining bound ("lazy greedy", Minoux 1978). With exact
joint entropies this selects exactly what evaluating every candidate would (up to ties and
rounding); with sampled ones the bounds are themselves estimates.
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp
from jaxtyping import Array, Float, Int

from jaxal import check, memory
from jaxal.scores import _entropy
from jaxal.typing import Available, Key, LogProbs

DEFAULT_NUM_SAMPLES = 10_000
"""Sampled configurations ``M`` (the authors' value); also the default exact threshold."""

DEFAULT_BLOCK_ELEMENTS = 2**22
"""Size of the ``[S, L, C]`` block of conditional predictives evaluated at once."""


class _Configs(NamedTuple):
    """Configurations of the current batch: ``weights_S_K = w[s, k]``, ``mass_S = omega_s``."""

    weights_S_K: Array
    mass_S: Array


def _configs(log_joint_S_K: Array, *, exact: bool) -> _Configs:
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
    return _Configs(weights_S_K, mass_S)


def _gains(configs: _Configs, probs_K_L_C: Array, expected_entropy_L: Array) -> Array:
    """Marginal joint-MI gains ``[L]`` of ``L`` candidates given the batch's configurations."""
    conditional_S_L_C = jnp.einsum(
        "sk,klc->slc", configs.weights_S_K, probs_K_L_C, precision=jax.lax.Precision.HIGHEST
    )
    neg_entropy_S_L = jnp.sum(_entropy.xlogx(conditional_S_L_C), axis=-1)
    return -(configs.mass_S @ neg_entropy_S_L) - expected_entropy_L


def _best_candidate(
    configs: _Configs,
    bound_N: Array,
    probs_K_N_C: Array,
    expected_entropy_N: Array,
    *,
    block_size: int,
    lazy: bool,
) -> tuple[Array, Array, Array]:
    """One greedy step: ``(index, gain, bounds)``, bounds tightened by the fresh gains.

    ``bound_N`` holds upper bounds on the gains; ``-inf`` marks points that cannot be chosen.
    """
    N = bound_N.shape[0]
    L = block_size
    num_blocks = -(-N // L)
    pad = num_blocks * L - N
    order_N = jnp.argsort(bound_N, descending=True)
    sorted_bound = jnp.concatenate([bound_N[order_N], jnp.full((pad,), -jnp.inf, bound_N.dtype)])
    order = jnp.concatenate([order_N, jnp.full((pad,), N, order_N.dtype)])

    def evaluate_block(carry):
        j, best_gain, best_index, bound_N = carry
        index_L = jax.lax.dynamic_slice(order, (j * L,), (L,))
        valid_L = jax.lax.dynamic_slice(sorted_bound, (j * L,), (L,)) > -jnp.inf
        gain_L = _gains(
            configs,
            jnp.take(probs_K_N_C, index_L, axis=1, mode="clip"),
            jnp.take(expected_entropy_N, index_L, mode="clip"),
        )
        gain_L = jnp.where(valid_L, gain_L, -jnp.inf)
        bound_N = bound_N.at[index_L].set(gain_L, mode="drop")
        top = jnp.argmax(gain_L)
        better = gain_L[top] > best_gain
        best_gain = jnp.where(better, gain_L[top], best_gain)
        best_index = jnp.where(better, index_L[top], best_index)
        return j + 1, best_gain, best_index, bound_N

    def more_blocks(carry):
        j, best_gain, _, _ = carry
        remaining = j < num_blocks
        if not lazy:
            return remaining
        next_bound = sorted_bound[jnp.minimum(j * L, sorted_bound.shape[0] - 1)]
        return remaining & (next_bound > best_gain)

    init = (0, jnp.array(-jnp.inf, bound_N.dtype), order_N[0], bound_N)
    _, gain, index, bound_N = jax.lax.while_loop(more_blocks, evaluate_block, init)
    return index, gain, bound_N.at[index].set(-jnp.inf)


def sampling_settings(
    num_samples: int | None, max_exact_configs: int | None, K: int
) -> tuple[int, int]:
    """Validated ``(num_samples, max_exact_configs)``; ``None`` means the defaults."""
    num_samples = DEFAULT_NUM_SAMPLES if num_samples is None else num_samples
    num_samples = check.integer(num_samples, "num_samples")
    if num_samples < K:
        raise ValueError(
            f"num_samples must be >= K = {K} (one per posterior sample); got {num_samples}"
        )
    if max_exact_configs is None:
        return num_samples, num_samples
    return num_samples, check.integer(max_exact_configs, "max_exact_configs")


def num_exact_steps(num_classes: int, b: int, max_exact_configs: int) -> int:
    """Greedy steps ``i`` (batch of ``i`` points so far) with ``C**i <= max_exact_configs``."""
    i = 0
    while i < b and num_classes**i <= max_exact_configs:
        i += 1
    return i


def _config_counts(C: int, b: int, exact_steps: int, num_samples: int) -> list[int]:
    """Configurations ``S`` of the batch at each greedy step after the first."""
    return [C**i if i < exact_steps else num_samples for i in range(1, b)]


def _block_size(N: int, C: int, num_configs: int, block_elements: int) -> int:
    """Candidates per block: ``[S, L, C]`` holds at most ``block_elements`` entries."""
    return max(1, min(N, block_elements // (num_configs * C)))


def _fixed_words(K: int, N: int, C: int, configs: list[int], sampling: bool) -> int:
    """Numbers held across the greedy steps: probabilities and entropy terms (``2 K N C``),
    ``[N]`` bounds, sort orders and scores (``16 N``) and the batch's configurations
    (``4 S K`` for the largest ``S``, and ``3 M C`` for sampling ``M`` labels)."""
    largest = max(configs, default=0)
    return 2 * K * N * C + 16 * N + 4 * largest * K + (3 * largest * C if sampling else 0) + 256


def _block_words(K: int, C: int, num_configs: int, block_size: int) -> int:
    """Numbers of one block of ``L`` candidates given ``S`` configurations: the conditional
    predictives and their ``p log p`` (``2 S L C``) and the candidates' probabilities
    (``K L C``)."""
    return (2 * num_configs * C + K * C + 8) * block_size


def batchbald_words(
    K: int, N: int, C: int, b: int, *, exact_steps: int, num_samples: int, block_elements: int
) -> int:
    """Working memory of :func:`batchbald` in numbers: the fixed part (:func:`_fixed_words`)
    plus the largest block (:func:`_block_words`) over the greedy steps."""
    configs = _config_counts(C, b, exact_steps, num_samples)
    blocks = [_block_words(K, C, S, _block_size(N, C, S, block_elements)) for S in configs]
    return _fixed_words(K, N, C, configs, exact_steps < b) + max(blocks, default=0)


def _budgeted_block_elements(
    budget: memory.Budget,
    shape: tuple[int, int, int],
    b: int,
    itemsize: int,
    *,
    exact_steps: int,
    num_samples: int,
    block_elements: int,
) -> int:
    """The largest ``block_elements``, at most the given one, whose model fits the budget.

    A block of ``L = block_elements // (S C)`` candidates holds at most
    ``block_elements (2 + (K C + 8) / (S C))`` numbers, the most for the fewest
    configurations ``S``; one candidate at the most configurations must fit.
    """
    K, N, C = shape
    words = batchbald_words(
        K, N, C, b, exact_steps=exact_steps, num_samples=num_samples, block_elements=block_elements
    )
    if words * itemsize <= memory.parse(budget):
        return block_elements
    configs = _config_counts(C, b, exact_steps, num_samples)
    fixed = _fixed_words(K, N, C, configs, exact_steps < b) * itemsize
    what = f"batchbald with K = {K}, N = {N}, C = {C}, b = {b}"
    hint = "raise it, or lower num_samples / max_exact_configs (fewer configurations)"
    if not configs:  # b = 1: no candidate blocks
        memory.require(budget, fixed, what=what, hint=hint)
        return block_elements
    one_candidate = fixed + _block_words(K, C, max(configs), 1) * itemsize
    memory.require(budget, one_candidate, what=what, hint=hint)
    per_element = 2 + (K * C + 8) / (min(configs) * C)
    return max(1, min(block_elements, int((memory.parse(budget) - fixed) / itemsize / per_element)))


@partial(jax.jit, static_argnames=("b", "num_samples", "exact_steps", "block_elements", "lazy"))
def _batchbald(
    log_probs_K_N_C: Array,
    available_N: Array,
    key: Key | None,
    *,
    b: int,
    num_samples: int,
    exact_steps: int,
    block_elements: int,
    lazy: bool,
) -> tuple[Array, Array]:
    K, N, C = log_probs_K_N_C.shape
    dtype = log_probs_K_N_C.dtype
    probs_K_N_C = jnp.exp(log_probs_K_N_C)
    predictive_entropy_N, expected_entropy_N = _entropy.entropy_terms(log_probs_K_N_C)
    bald_N = jnp.maximum(predictive_entropy_N - expected_entropy_N, 0.0)

    def block_size(num_configs: int) -> int:
        return max(1, min(N, block_elements // (num_configs * C)))

    def greedy_step(configs, bound_N):
        return _best_candidate(
            configs,
            bound_N,
            probs_K_N_C,
            expected_entropy_N,
            block_size=block_size(configs.mass_S.shape[0]),
            lazy=lazy,
        )

    # Step 0: the joint MI of one point is its BALD score; BALD bounds every later gain.
    bound_N = jnp.where(available_N, bald_N, -jnp.inf)
    first = jnp.argmax(bound_N)
    indices_B = jnp.zeros((b,), jnp.int32).at[0].set(first.astype(jnp.int32))
    gains_B = jnp.zeros((b,), dtype).at[0].set(bound_N[first])
    bound_N = bound_N.at[first].set(-jnp.inf)

    sampling = exact_steps < b
    if sampling:
        keys = jax.random.split(key, b)
        # Stratified: num_samples / K configurations start from each posterior sample k.
        sample_of_config_M = jnp.arange(num_samples) // (num_samples // K)

        def add_sampled(log_joint_M_K, index, key):
            log_probs_K_C = log_probs_K_N_C[:, index, :]
            label_M = jax.random.categorical(key, log_probs_K_C[sample_of_config_M])
            return log_joint_M_K + log_probs_K_C[:, label_M].T

        log_joint_sampled = add_sampled(jnp.zeros((num_samples, K), dtype), first, keys[0])

    log_joint_exact = log_probs_K_N_C[:, first, :].T  # [C, K]: configurations of the batch
    for i in range(1, exact_steps):
        index, gain, bound_N = greedy_step(_configs(log_joint_exact, exact=True), bound_N)
        indices_B = indices_B.at[i].set(index.astype(jnp.int32))
        gains_B = gains_B.at[i].set(gain)
        if i + 1 < exact_steps:
            new_K_C = log_probs_K_N_C[:, index, :]
            log_joint_exact = (log_joint_exact[:, None, :] + new_K_C.T[None]).reshape(-1, K)
        if sampling:
            log_joint_sampled = add_sampled(log_joint_sampled, index, keys[i])

    if sampling:

        def sampled_step(i, carry):
            indices_B, gains_B, bound_N, log_joint_M_K = carry
            index, gain, bound_N = greedy_step(_configs(log_joint_M_K, exact=False), bound_N)
            log_joint_M_K = add_sampled(log_joint_M_K, index, keys[i])
            return (
                indices_B.at[i].set(index.astype(jnp.int32)),
                gains_B.at[i].set(gain),
                bound_N,
                log_joint_M_K,
            )

        carry = (indices_B, gains_B, bound_N, log_joint_sampled)
        indices_B, gains_B, _, _ = jax.lax.fori_loop(exact_steps, b, sampled_step, carry)

    # Positions past the available count (possible only under tracing) add nothing.
    filled_B = jnp.arange(b) < jnp.sum(available_N)
    return check.picks(indices_B, available_N), jnp.cumsum(jnp.where(filled_B, gains_B, 0.0))


def batchbald(
    log_probs: LogProbs,
    b: int,
    *,
    key: Key | None = None,
    num_samples: int | None = None,
    available: Available | None = None,
    max_exact_configs: int | None = None,
    lazy: bool = True,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
    memory_budget: memory.Budget = None,
) -> tuple[Int[Array, " B"], Float[Array, " B"]]:
    r"""Greedy BatchBALD batch: maximise the joint mutual information :math:`I(y_{1:b}; \theta)`.

    Step ``i`` (``i`` points chosen so far) enumerates the ``C**i`` joint configurations of the
    batch exactly while ``C**i <= max_exact_configs``; beyond that it uses ``num_samples``
    configurations sampled from the joint predictive (stratified over the ``K`` posterior
    samples, extended by one sampled label per added point), which needs ``key``.

    Args:
      log_probs: ``[K, N, C]`` log-probabilities.
      b: batch size, static Python int with ``1 <= b <= #available``.
      key: PRNG key; required only when some step is sampled.
      num_samples: sampled configurations ``M``; ``None`` means 10,000 (the authors' value).
        Rounded down to a multiple of ``K``.
      available: optional bool ``[N]`` mask of selectable points.
      max_exact_configs: largest configuration count enumerated exactly; ``None`` means
        ``num_samples`` (the authors' switch rule).
      lazy: evaluate candidates lazily (same selection on the exact path, much faster);
        ``False`` evaluates every candidate at every step.
      block_elements: memory knob: at most this many ``[configs, candidates, C]`` entries are
        held at once.
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``;
        :mod:`jaxal.memory`), modelled (:func:`batchbald_words`) in numbers as
        ``2 K N C + 16 N + 4 S K (+ 3 M C when sampling) + 256`` (probabilities, entropy
        terms, ``[N]`` bounds and orders, the configurations, ``S`` the most of any step)
        plus the largest candidate block, ``(2 S C + K C + 8) L`` for ``L`` candidates at
        ``S`` configurations. Over the budget, ``block_elements`` shrinks until the largest
        block fits (same selection); ``ValueError`` when one candidate at the most
        configurations does not.

    Returns:
      ``(indices [b], scores [b])``: ``scores[i]`` is the joint mutual information of the first
      ``i + 1`` selected points (exact on the exact path; the sum of the sampled estimates of
      each step's gain beyond it), in nats, non-decreasing up to sampling error. Probabilities
      of exactly 0 are valid: impossible configurations add ``0 log 0 = 0``. Under
      ``jit``/``vmap`` the positions past the available count hold the sentinel ``N``
      (:func:`jaxal.check.picks`) and repeat the last score.
    """
    if key is not None:
        key = check.key(key)
    log_probs = check.log_probs(log_probs, on_trace="skip")
    K, N, C = log_probs.shape
    available = check.available(available, N, on_trace="skip")
    b = check.batch_size(b, available, on_trace="skip")
    num_samples, threshold = sampling_settings(num_samples, max_exact_configs, K)
    block_elements = check.integer(block_elements, "block_elements")
    exact_steps = num_exact_steps(C, b, threshold)
    num_samples = (num_samples // K) * K
    if memory_budget is not None:
        block_elements = _budgeted_block_elements(
            memory_budget,
            (K, N, C),
            b,
            memory.itemsize(log_probs),
            exact_steps=exact_steps,
            num_samples=num_samples,
            block_elements=block_elements,
        )
    if exact_steps < b and key is None:
        raise ValueError(
            f"batchbald needs key= (a jax.random key) to sample joint configurations: a batch of "
            f"b = {b} with C = {C} classes has C**(b-1) = {C ** (b - 1)} configurations, more "
            f"than max_exact_configs = {threshold}"
        )
    return _batchbald(
        log_probs,
        available,
        key,
        b=b,
        num_samples=num_samples,
        exact_steps=exact_steps,
        block_elements=block_elements,
        lazy=bool(lazy),
    )
