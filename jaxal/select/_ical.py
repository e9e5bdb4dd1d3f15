r"""ICAL: information condensing active learning (Jain, Liu, Gifford, 2020).

ICAL picks the batch whose labels are most dependent, as measured by HSIC, on the labels of
the rest of the pool. Dependence is measured across the ``K`` posterior samples, which play
the role of the ``n = K`` paired observations:

1. for every pool point ``x`` draw one label per posterior sample, :math:`y_k \sim p_k(y
   \mid x)`, and one-hot it as :math:`e_{y_k}`;
2. the point's ``K x K`` kernel is :math:`K_x[k, k'] = \kappa(\|e_{y_k} - e_{y_{k'}}\|^2)`
   with the mixture of rational-quadratic kernels

   .. math:: \kappa(d) = \frac15 \sum_{\alpha \in \{0.2, 0.5, 1, 2, 5\}}
             \Big(1 + \frac{d}{2\alpha}\Big)^{-\alpha},

   so :math:`K_x[k, k'] = 1` for equal labels and :math:`\kappa(2) \approx 0.524` otherwise
   (the authors' code, ``tmfs10/ical``: ``compute_ical`` in ``src/multi_bald.py`` with the
   default ``--hsic_kernel_name mixrq`` of ``src/run_experiment.py``, i.e. ``mixrq_kernels``
   of ``src/hsic.py`` on ``sqdist`` of the one-hot labels; a fixed kernel with no bandwidth,
   so no median heuristic: :func:`jaxal.hsic.median_heuristic` serves :func:`jaxal.hsic.hsic`
   only);
3. a set's kernel is the mean of its points' kernels;
4. greedy step: draw a random "condense" set ``R`` of ``num_pool_samples`` available pool
   points (redrawn every step), subsample the batch so far ``B`` to at most
   ``max_batch_samples`` points, and add

   .. math:: \arg\max_x \; \mathrm{HSIC}_b\big(\bar K_R,\; \mathrm{mean}(K_{B'} \cup \{K_x\})\big).

The biased estimator :math:`\frac{1}{K^2}\operatorname{tr}(\bar K_R H L H) = \frac{1}{K^2}
\langle H \bar K_R H, L \rangle` is linear in ``L``, so with :math:`S = \sum_{b \in B'} K_b`

.. math:: \mathrm{HSIC}_b(\bar K_R, (S + K_x) / (|B'| + 1))
          = \frac{\langle H \bar K_R H, S\rangle + \langle H \bar K_R H, K_x\rangle}
                 {K^2 (|B'| + 1)},

which every step evaluates for all ``N`` candidates at once from the precomputed ``[N, K, K]``
kernels: ``O(N K^2)`` per step, ``O(b N K^2)`` in all, with no ``[N, K, K]`` temporaries.
A consequence of this linearity: within one step the batch term is the same for every
candidate, so the choice depends on the batch only through exclusion of chosen points; the
steps differ through the redrawn condense set. A point whose sampled labels all agree has a
constant kernel, which centring annihilates: its HSIC is 0.
"""

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int

from jaxal import check, memory
from jaxal._numerics import centred
from jaxal.typing import Available, Key, LogProbs

RQ_ALPHAS = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Shape parameters of the authors' mixture of rational-quadratic kernels."""


def rational_quadratic_mixture(d2: Array, alphas: tuple[float, ...] = RQ_ALPHAS) -> Array:
    r"""Mixture of rational-quadratic kernels of squared distances ``d2``.

    .. math:: \kappa(d) = \mathrm{mean}_\alpha (1 + d / (2\alpha))^{-\alpha}.
    """
    terms = [(1.0 + d2 / (2.0 * alpha)) ** (-alpha) for alpha in alphas]
    return sum(terms[1:], start=terms[0]) / len(alphas)


def label_kernels(labels_K_N: Array, dtype) -> Array:
    """Per-point ``[N, K, K]`` kernels of sampled labels (one-hot distances are 0 or 2)."""
    equal_N_K_K = labels_K_N.T[:, :, None] == labels_K_N.T[:, None, :]
    d2_N_K_K = jnp.where(equal_N_K_K, 0.0, 2.0).astype(dtype)
    return rational_quadratic_mixture(d2_N_K_K)


def _random_subset(key: Key, mask: Array, size: int) -> tuple[Array, Array]:
    """``size`` random positions, those in ``mask`` first: ``(positions, in_mask weights)``."""
    gumbel = jax.random.gumbel(key, mask.shape)
    _, positions = jax.lax.top_k(jnp.where(mask, gumbel, -jnp.inf), size)
    return positions, mask[positions]


@partial(jax.jit, static_argnames=("b", "num_pool_samples", "max_batch_samples"))
def _ical(key, log_probs_K_N_C, available_N, *, b, num_pool_samples, max_batch_samples):
    K, N, C = log_probs_K_N_C.shape
    dtype = log_probs_K_N_C.dtype
    label_key, loop_key = jax.random.split(key)
    labels_K_N = jax.random.categorical(label_key, log_probs_K_N_C, axis=-1)
    kernels_N_K_K = label_kernels(labels_K_N, dtype)
    R = min(num_pool_samples, N)
    S = min(max_batch_samples, b)
    step_keys = jax.random.split(loop_key, b)

    def step(i, carry):
        indices_B, chosen_N = carry
        condense_key, batch_key = jax.random.split(step_keys[i])
        condense_R, weight_R = _random_subset(condense_key, available_N, R)
        weight_R = weight_R.astype(dtype)
        condense_K_K = jnp.einsum("r,rij->ij", weight_R, kernels_N_K_K[condense_R])
        centred_K_K = centred(condense_K_K / jnp.sum(weight_R))
        position_S, in_batch_S = _random_subset(batch_key, jnp.arange(b) < i, S)
        batch_sum_K_K = jnp.einsum(
            "s,sij->ij", in_batch_S.astype(dtype), kernels_N_K_K[indices_B[position_S]]
        )
        batch_term = jnp.sum(centred_K_K * batch_sum_K_K)
        candidate_N = jnp.einsum("ij,nij->n", centred_K_K, kernels_N_K_K)
        hsic_N = (batch_term + candidate_N) / (K**2 * (jnp.sum(in_batch_S) + 1))
        best = jnp.argmax(jnp.where(available_N & ~chosen_N, hsic_N, -jnp.inf))
        return indices_B.at[i].set(best.astype(jnp.int32)), chosen_N.at[best].set(True)

    init = (jnp.zeros((b,), jnp.int32), jnp.zeros((N,), bool))
    indices_B, _ = jax.lax.fori_loop(0, b, step, init)
    return check.picks(indices_B, available_N)


def ical(
    log_probs: LogProbs,
    b: int,
    *,
    key: Key,
    available: Available | None = None,
    num_pool_samples: int = 200,
    max_batch_samples: int = 20,
    memory_budget: memory.Budget = None,
) -> Int[Array, " B"]:
    r"""Greedy ICAL batch: maximise the HSIC between the batch's and the pool's sampled labels.

    See the module docstring for the kernels and the greedy step. Each step draws a fresh
    condense set and batch subsample from ``key``; with ``num_pool_samples >= N`` and
    ``b <= max_batch_samples`` the only randomness left is the sampled labels.

    Args:
      log_probs: ``[K, N, C]`` log-probabilities; HSIC is computed over the ``K`` samples.
      b: batch size, static Python int with ``1 <= b <= #available``.
      key: PRNG key (labels, condense sets, batch subsamples).
      available: optional bool ``[N]`` mask of selectable points; the condense set is drawn
        from it too.
      num_pool_samples: size of the random condense set ``R`` drawn from the available
        points at every step (authors: 200); all available points when it is ``>= N``.
      max_batch_samples: the batch so far is subsampled to at most this many points when
        forming its kernel (authors: 20).
      memory_budget: optional bound on the working memory (bytes or e.g. ``"1GB"``;
        :mod:`jaxal.memory`), checked against XLA's count of the compiled program (about
        ``3 N K^2 + K N C`` numbers). Every step scores all candidates against the
        ``[N, K, K]`` kernels, so nothing is chunked: a smaller budget raises ``ValueError``.

    Returns:
      ``[b]`` int32 pool indices, distinct and available, in order of selection (under
      ``jit``/``vmap``, positions past the available count hold the sentinel ``N``:
      :func:`jaxal.check.picks`).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> p = jnp.array([[[1.0, 0.0], [0.5, 0.5]], [[1.0, 0.0], [0.5, 0.5]]])  # [K=2, N=2, C]
      >>> ical(jnp.log(p), 1, key=jax.random.key(0)).shape
      (1,)
    """
    log_probs = check.log_probs(log_probs, on_trace="skip")
    key = check.key(key)
    K, N, C = log_probs.shape
    available = check.available(available, N, on_trace="skip")
    b = check.batch_size(b, available, on_trace="skip")
    num_pool_samples = check.integer(num_pool_samples, "num_pool_samples")
    max_batch_samples = check.integer(max_batch_samples, "max_batch_samples")
    static = {"b": b, "num_pool_samples": num_pool_samples, "max_batch_samples": max_batch_samples}
    return memory.call_within(
        memory_budget,
        _ical,
        key,
        log_probs,
        available,
        what=f"ical with K = {K}, N = {N}",
        hint="raise it, or use fewer posterior samples K (the [N, K, K] kernels are needed "
        "throughout)",
        **static,
    )
