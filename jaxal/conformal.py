r"""Split-conformal candidate sets and the candidate-set query (CSQ) of Gwon et al. (2025).

Instead of asking the annotator for a label among all ``C`` classes, a candidate-set query
shows a small set of classes that contains the true label with high probability; the
annotator picks the label from the set, or answers "none of these" and then searches the
rest. The sets are split-conformal prediction sets:

* **calibration scores** on ``n`` held-out labelled points, :math:`s_i = 1 - \hat p(y_i|x_i)`
  (:func:`scores`);
* **the quantile** :math:`\hat q` = the :math:`\lceil (n+1)(1-\alpha) \rceil`-th smallest score,
  i.e. the empirical quantile at level :math:`\lceil (n+1)(1-\alpha) \rceil / n`, and
  :math:`+\infty` when that level exceeds 1 (:func:`quantile`);
* **prediction sets** :math:`\{c : 1 - \hat p(c|x) \le \hat q\}` (:func:`prediction_sets`).

For a test point exchangeable with the calibration points, :math:`P(y \in \text{set}) \ge
1 - \alpha` (Vovk et al. 2005; Angelopoulos & Bates 2021, Thm. 1).

**Cost model** (the paper's Sec. 3 and the authors' ``compute_cost``): reading ``k``
candidates and the "none of these" option costs :math:`\log_2(k + 1)`; when the true label
is not among them, searching the other :math:`C - k` classes costs :math:`\log_2(C - k)`
more; every :math:`\log_2` argument is clipped to ``[1, C]``, so a full set (``k = C``) costs
:math:`\log_2 C`, the cost of the conventional query (:func:`query_cost`). The expected cost
of a set of size ``k`` at miscoverage :math:`\alpha` is :math:`(1-\alpha) \log_2(k+1) +
\alpha (\log_2(k+1) + \log_2(C-k))` (:func:`expected_cost`).

**Acquisition** (CSQ+Cost(Ent), the authors' ``DynamicTopKStrategyHybridEntropyConf``): the
top-``b`` points by :math:`(1 + H[\bar p(x)])^d / \text{expected cost}(x)` with ``d = 1.2``
(:func:`cost_efficient_scores`); :math:`\alpha` is chosen each round among
``linspace(0, 0.98, 50)`` to minimise the total cost of the calibration points' queries
(:func:`best_alpha`, the authors' adaptive :math:`\alpha`, their default ``--k 0``).

**In the loop** (:class:`CandidateSetQuery`, registered as ``candidate-set``): the
calibration points are the previous round's acquired batch, scored with the predictions the
previous posterior made before their labels were known (held out, as the authors' calibration
subset of the queried batch), which the strategy remembers across rounds
(:attr:`jaxal.context.Round.memory`). The first round has no calibration points: every set is
all classes and the acquisition is entropy's. Deviation: the authors calibrate on 500 of each
round's 6,000 queried points and price those with the new sets; here all of the previous
batch calibrates, and the sets of a round are those computed before its labels are known.

Shapes: ``K`` posterior samples, ``N`` points, ``C`` classes, ``G`` candidate levels
:math:`\alpha`.

Reference: Y. Gwon, S. Hwang, H. Kim, J. Ok, S. Kwak, "Enhancing Cost Efficiency in Active
Learning with Candidate Set Query", 2025 (code: github.com/yehogwon/csq-al).
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from jaxal import check, information, select
from jaxal.context import Round

__all__ = [
    "ALPHAS",
    "CandidateSetQuery",
    "best_alpha",
    "cost_efficient_scores",
    "expected_cost",
    "full_query_cost",
    "prediction_sets",
    "quantile",
    "query_cost",
    "scores",
]

ALPHAS = tuple(np.linspace(0.0, 0.98, 50).tolist())
"""The miscoverage levels :func:`best_alpha` chooses among (the authors' grid)."""

_ROUNDING = 1e-6
"""Relative slack under :math:`(n+1)(1-\\alpha)` before ``ceil``: a product that is an integer
up to float rounding (``21 * 0.9``) counts as that integer."""


def scores(probs_N_C: Float[Array, "N C"], y_N: Int[Array, " N"]) -> Float[Array, " N"]:
    r"""Nonconformity scores :math:`s = 1 - \hat p(y|x)` of labelled points (``y`` in ``[0, C)``;
    a negative ``y``, an unlabelled point, scores :math:`+\infty`)."""
    probs_N_C = check.float_array(probs_N_C, "probs_N_C")
    p_N = jnp.take_along_axis(probs_N_C, jnp.maximum(y_N, 0)[:, None], axis=1)[:, 0]
    return jnp.where(y_N >= 0, 1.0 - p_N, jnp.inf)


def quantile(
    scores_N: Float[Array, " N"], *, alpha: float | Array, valid: Bool[Array, " N"] | None = None
) -> Array:
    r"""The split-conformal quantile :math:`\hat q` of the ``n`` valid calibration scores.

    :math:`\hat q` is the :math:`k`-th smallest score with :math:`k = \lceil (n+1)(1-\alpha)
    \rceil` (the empirical quantile at level :math:`k / n`), :math:`+\infty` when :math:`k > n`
    (too few points for the level; in particular :math:`n = 0` or :math:`\alpha = 0`).
    ``alpha`` may be traced; ``valid`` (default all) masks the calibration points, so ``n``
    may change between calls without recompiling.

    Example:
      >>> float(quantile(jnp.array([0.1, 0.4, 0.2, 0.3]), alpha=0.4))  # k = ceil(5 * 0.6) = 3
      0.3...
    """
    scores_N = check.float_array(scores_N, "scores_N")
    valid_N = jnp.ones(scores_N.shape, bool) if valid is None else jnp.asarray(valid, bool)
    n = jnp.sum(valid_N).astype(scores_N.dtype)
    level = (n + 1) * (1 - jnp.asarray(alpha, scores_N.dtype))
    k = jnp.maximum(jnp.ceil(level * (1 - _ROUNDING)), 1).astype(jnp.int32)
    sorted_N = jnp.sort(jnp.where(valid_N, scores_N, jnp.inf))
    q = sorted_N[jnp.clip(k - 1, 0, scores_N.shape[0] - 1)]
    return jnp.where(k > n, jnp.asarray(jnp.inf, scores_N.dtype), q)


def prediction_sets(probs_N_C: Float[Array, "N C"], q: float | Array) -> Bool[Array, "N C"]:
    r"""Conformal sets :math:`\{c : 1 - \hat p(c|x) \le \hat q\}`; an empty set becomes all ``C``
    classes (the authors' rule: a query must show something)."""
    probs_N_C = check.float_array(probs_N_C, "probs_N_C")
    sets_N_C = 1.0 - probs_N_C <= q
    return sets_N_C | ~jnp.any(sets_N_C, axis=-1, keepdims=True)


def _log2_clipped(x: Array, num_classes: int) -> Array:
    return jnp.log2(jnp.clip(x, 1, num_classes))


def query_cost(sets_N_C: Bool[Array, "N C"], y_N: Int[Array, " N"]) -> Float[Array, " N"]:
    r"""The paper's labelling cost of candidate-set queries whose true labels are ``y_N``.

    :math:`\log_2(k+1)`, plus :math:`\log_2(C-k)` when :math:`y \notin` the set, with ``k`` the
    set size and every :math:`\log_2` argument clipped to ``[1, C]``; a full set costs
    :func:`full_query_cost`. An empty set counts as all classes.
    """
    C = sets_N_C.shape[-1]
    sets_N_C = sets_N_C | ~jnp.any(sets_N_C, axis=-1, keepdims=True)
    k_N = jnp.sum(sets_N_C, axis=-1)
    hit_N = jnp.take_along_axis(sets_N_C, jnp.clip(y_N, 0, C - 1)[:, None], axis=1)[:, 0]
    return _log2_clipped(k_N + 1, C) + jnp.where(hit_N, 0.0, _log2_clipped(C - k_N, C))


def full_query_cost(num_classes: int) -> float:
    r"""The cost of a conventional query among all ``C`` classes, :math:`\log_2 C`."""
    return float(jnp.log2(check.integer(num_classes, "num_classes")))


def expected_cost(
    sizes_N: Int[Array, " N"], *, alpha: float | Array, num_classes: int
) -> Float[Array, " N"]:
    r"""Expected query cost of sets of ``sizes_N`` classes at miscoverage ``alpha``:
    :math:`(1-\alpha) \log_2(k+1) + \alpha (\log_2(k+1) + \log_2(C-k))` (clipped as in
    :func:`query_cost`)."""
    C = check.integer(num_classes, "num_classes")
    hit_N = _log2_clipped(sizes_N + 1, C)
    return hit_N + alpha * _log2_clipped(C - sizes_N, C)


def best_alpha(
    probs_N_C: Float[Array, "N C"],
    y_N: Int[Array, " N"],
    alphas: tuple[float, ...] = ALPHAS,
) -> Array:
    r"""The miscoverage among ``alphas`` whose sets cost the least on the calibration points.

    Each :math:`\alpha` gives :math:`\hat q(\alpha)` (:func:`quantile` of the points' scores)
    and each calibration point its set and :func:`query_cost`; the :math:`\alpha` of least total
    cost wins, the smallest on ties (the authors' adaptive :math:`\alpha`). Unlabelled rows
    (``y < 0``) are ignored; with none labelled every :math:`\alpha` costs 0 and the first wins.
    """
    valid_N = y_N >= 0
    scores_N = scores(probs_N_C, y_N)
    alphas_G = jnp.asarray(alphas, probs_N_C.dtype)

    def total(alpha):
        sets_N_C = prediction_sets(probs_N_C, quantile(scores_N, alpha=alpha, valid=valid_N))
        return jnp.sum(jnp.where(valid_N, query_cost(sets_N_C, y_N), 0.0))

    return alphas_G[jnp.argmin(jax.vmap(total)(alphas_G))]


def cost_efficient_scores(
    log_probs_K_N_C: Float[Array, "K N C"],
    cost_N: Float[Array, " N"],
    *,
    d: float = 1.2,
) -> Float[Array, " N"]:
    r"""The paper's cost-efficient acquisition :math:`(1 + H[\bar p(x)])^d / \text{cost}(x)`
    (predictive entropy in nats; ``d = 1.2``, the authors' CSQ+Cost(Ent) setting)."""
    entropy_N = information.predictive_entropy(log_probs_K_N_C)
    return (1.0 + entropy_N) ** d / cost_N


@dataclasses.dataclass(frozen=True)
class CandidateSetQuery:
    r"""The ``candidate-set`` strategy: cost-efficient acquisition with conformal candidate sets.

    Each round: calibrate :math:`\hat q` on the previous batch (its remembered held-out
    predictions and its now known labels, :attr:`jaxal.context.Round.labels`) at the
    :func:`best_alpha`, form the sets of every pool point under the current posterior, take the
    top ``b`` by :func:`cost_efficient_scores` with :func:`expected_cost`, show the sets to the
    annotator (:meth:`jaxal.context.Round.show_candidates`, which the loop prices) and remember
    the batch's predictions for the next round's calibration. See the module docstring.

    Memory: ``{"probs": [B, C]`` the batch's predictive probabilities, ``"index": [B]`` its
    pool indices (``N``: none)``}``.
    """

    d: float = 1.2

    def init_memory(
        self, *, num_points: int, num_classes: int | None, rounds: int, b: int
    ) -> dict[str, Array]:
        """No calibration points yet."""
        del rounds
        if num_classes is None:
            raise ValueError("candidate-set queries need a classification dataset (num_classes)")
        return {
            "probs": jnp.zeros((b, num_classes), jnp.float32),
            "index": jnp.full((b,), num_points, jnp.int32),
        }

    def __call__(self, r: Round, b: int) -> Array:
        log_probs_K_N_C = r.pool
        N, C = log_probs_K_N_C.shape[1:]
        probs_N_C = jnp.exp(information.mean_log_probs(log_probs_K_N_C))
        memory: Any = r.memory
        if memory is None:
            memory = self.init_memory(num_points=N, num_classes=C, rounds=1, b=b)
            y_B = jnp.full(memory["index"].shape, -1, jnp.int32)
        else:
            y_B = r.labels.at[memory["index"]].get(mode="fill", fill_value=-1)
        calibration_B_C = memory["probs"].astype(probs_N_C.dtype)
        alpha = best_alpha(calibration_B_C, y_B)
        q = quantile(scores(calibration_B_C, y_B), alpha=alpha, valid=y_B >= 0)
        sets_N_C = prediction_sets(probs_N_C, q)
        cost_N = expected_cost(jnp.sum(sets_N_C, axis=-1), alpha=alpha, num_classes=C)
        acquisition_N = cost_efficient_scores(log_probs_K_N_C, cost_N, d=self.d)
        index_B = select.top_k(acquisition_N, b, available=r.available)
        r.show_candidates(sets_N_C)
        r.remember(
            {
                "probs": probs_N_C.at[index_B]
                .get(mode="fill", fill_value=0.0)
                .astype(memory["probs"].dtype),
                "index": index_B.astype(jnp.int32),
            }
        )
        return index_B
