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

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from jaxal import check, information, memory
from jaxal.select._configurations import (
    Configs,
    conditional_entropy,
    greedy_batch,
    num_exact_steps as num_exact_steps,
    settings,
)
from jaxal.typing import Available, Key, LogProbs

DEFAULT_BLOCK_ELEMENTS = 2**22
"""Size of the ``[S, L, C]`` block of conditional predictives evaluated at once."""


def _best_candidate(
    configs: Configs,
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
        probs_K_L_C = jnp.take(probs_K_N_C, index_L, axis=1, mode="clip")
        gain_L = conditional_entropy(configs, probs_K_L_C) - jnp.take(
            expected_entropy_N, index_L, mode="clip"
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
    budget: int | str,
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
    N, C = log_probs_K_N_C.shape[1:]
    probs_K_N_C = jnp.exp(log_probs_K_N_C)
    predictive_entropy_N, expected_entropy_N = information.entropy_terms(log_probs_K_N_C)
    bald_N = jnp.maximum(predictive_entropy_N - expected_entropy_N, 0.0)

    def first_step(bound_N):
        """The joint MI of one point is its BALD score; BALD bounds every later gain."""
        first = jnp.argmax(bound_N)
        return first, bound_N[first], bound_N.at[first].set(-jnp.inf)

    def step(configs, bound_N):
        S = configs.mass_S.shape[0]
        block_size = _block_size(N, C, S, block_elements)
        return _best_candidate(
            configs, bound_N, probs_K_N_C, expected_entropy_N, block_size=block_size, lazy=lazy
        )

    return greedy_batch(
        step,
        jnp.where(available_N, bald_N, -jnp.inf),
        log_probs_K_N_C,
        available_N,
        key,
        b=b,
        num_samples=num_samples,
        exact_steps=exact_steps,
        first_step=first_step,
    )


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
    log_probs = check.log_probs(log_probs, on_trace="skip")
    K, N, C = log_probs.shape
    key, available, b, num_samples, exact_steps, block_elements = settings(
        "batchbald",
        log_probs.shape,
        b,
        key=key,
        available=available,
        num_samples=num_samples,
        max_exact_configs=max_exact_configs,
        block_elements=block_elements,
    )
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
