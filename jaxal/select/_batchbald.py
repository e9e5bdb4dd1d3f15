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
    budgeted_block_elements,
    conditional_entropy,
    greedy_batch,
    running_best,
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
        best_gain, best_index = running_best(best_gain, best_index, gain_L, index_L)
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


def _block_size(N: int, C: int, num_configs: int, block_elements: int) -> int:
    """Candidates per block: ``[S, L, C]`` holds at most ``block_elements`` entries."""
    return max(1, min(N, block_elements // (num_configs * C)))


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
        :mod:`jaxal.memory`, XLA's count of the compiled program). Over the budget,
        ``block_elements`` shrinks until the program fits (same selection); ``ValueError``
        when one candidate at the most configurations does not (lower ``num_samples`` or
        ``max_exact_configs``).

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
        block_elements = budgeted_block_elements(
            memory_budget,
            _batchbald,
            log_probs,
            available,
            key,
            block_elements=block_elements,
            unit=max(num_samples if exact_steps < b else 1, C ** (exact_steps - 1)) * C,
            what=f"batchbald with K = {K}, N = {N}, C = {C}, b = {b}",
            b=b,
            num_samples=num_samples,
            exact_steps=exact_steps,
            lazy=bool(lazy),
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
