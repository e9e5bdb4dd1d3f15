"""Single-point acquisition scores for classification: ``log_probs [K, N, C] -> scores [N]``.

``log_probs[k, n, c] = log p(y_n = c | x_n, theta_k)`` for posterior samples ``theta_k``;
``pbar = (1/K) sum_k p_k`` is the posterior predictive. Scores are in nats where they are
information measures; higher always means more worth labelling.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxal import check, information
from jaxal.scores._budget import budgeted
from jaxal.scores._registry import register
from jaxal.typing import LogProbs


def _validated(log_probs: LogProbs) -> Array:
    return check.log_probs(log_probs, on_trace="skip")


@register("entropy", task="classification")
@budgeted(task="classification")
def predictive_entropy(log_probs: LogProbs) -> Float[Array, " N"]:
    r"""Entropy of the posterior predictive (max-entropy acquisition).

    .. math:: H[\bar p(y \mid x)], \quad \bar p = \tfrac{1}{K} \textstyle\sum_k p_k.

    Args:
      log_probs: ``[K, N, C]`` log-probabilities.

    Returns:
      ``[N]`` entropies in nats, in ``[0, log C]``.
    """
    return information.predictive_entropy(_validated(log_probs))


@register("expected-entropy", task="classification")
@budgeted(task="classification")
def expected_entropy(log_probs: LogProbs) -> Float[Array, " N"]:
    r"""Mean entropy of the per-sample predictives (aleatoric part of the predictive entropy).

    .. math:: \mathbb{E}_k H[p_k(y \mid x)].

    Returns:
      ``[N]`` in nats.
    """
    return information.expected_entropy(_validated(log_probs))


@register("bald", task="classification")
@budgeted(task="classification")
def bald(log_probs: LogProbs) -> Float[Array, " N"]:
    r"""BALD: mutual information between the label and the parameters (Houlsby et al., 2011).

    .. math:: I(y; \theta \mid x) = H[\bar p(y \mid x)] - \mathbb{E}_k H[p_k(y \mid x)].

    ``0 <= BALD <= min(H[pbar], log K)``; it is 0 when all samples agree. Negative values
    that arise from floating-point rounding are clipped to 0.

    Returns:
      ``[N]`` in nats.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> lp = jnp.log(jnp.array([[[1.0, 0.0]], [[0.0, 1.0]]]))  # 2 samples disagree
      >>> round(float(bald(lp)[0]), 4)  # log 2
      0.6931
    """
    return information.bald(_validated(log_probs))


def _mean_probs(log_probs: Array) -> Array:
    return information.sample_moments(log_probs)[0]


@register("margin", task="classification")
@budgeted(task="classification")
def margin(log_probs: LogProbs) -> Float[Array, " N"]:
    r"""One minus the margin between the two most probable classes of the predictive.

    .. math:: 1 - (\bar p_{(1)} - \bar p_{(2)}), \quad \bar p_{(1)} \ge \bar p_{(2)}.

    Needs ``C >= 2``. Returns ``[N]`` in ``[0, 1]``.
    """
    log_probs = _validated(log_probs)
    if log_probs.shape[-1] < 2:
        raise ValueError(f"margin needs at least 2 classes; got C = {log_probs.shape[-1]}")
    top2, _ = jax.lax.top_k(_mean_probs(log_probs), 2)
    return 1.0 - (top2[:, 0] - top2[:, 1])


@register("least-confidence", task="classification")
@budgeted(task="classification")
def least_confidence(log_probs: LogProbs) -> Float[Array, " N"]:
    r"""One minus the largest predictive probability: :math:`1 - \max_c \bar p_c`.

    Returns ``[N]`` in ``[0, 1 - 1/C]``.
    """
    return 1.0 - jnp.max(_mean_probs(_validated(log_probs)), axis=-1)


@register("variation-ratios", task="classification")
@budgeted(task="classification")
def variation_ratios(log_probs: LogProbs) -> Float[Array, " N"]:
    r"""Variation ratios (Freeman, 1965): disagreement of the samples' hard predictions.

    .. math:: 1 - \frac{1}{K} \#\{k : \arg\max_c p_k(c) = \text{mode}\}

    where the mode is the most frequent per-sample argmax. Returns ``[N]`` in ``[0, 1 - 1/C]``.
    """
    log_probs = _validated(log_probs)
    K, _, C = log_probs.shape
    votes_N_C = jnp.sum(jax.nn.one_hot(jnp.argmax(log_probs, axis=-1), C, dtype=log_probs.dtype), 0)
    return 1.0 - jnp.max(votes_N_C, axis=-1) / K


@register("mean-std", task="classification")
@budgeted(task="classification")
def mean_std(log_probs: LogProbs) -> Float[Array, " N"]:
    r"""Mean over classes of the standard deviation over samples of the probabilities.

    .. math:: \frac{1}{C} \sum_c \sqrt{\mathbb{E}_k[p_k(c)^2] - \mathbb{E}_k[p_k(c)]^2}

    (population standard deviation, ``ddof = 0``; Kampffmeyer et al., 2016). Returns ``[N]``.
    """
    probs_K_N_C = jnp.exp(_validated(log_probs))
    return jnp.mean(jnp.std(probs_K_N_C, axis=0), axis=-1)
