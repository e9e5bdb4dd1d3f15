r"""LDM-S: the least disagree metric and its diversity seeding (Cho et al., ICLR 2024).

The *disagree metric* of a perturbed hypothesis :math:`g'` is the probability that it
disagrees with the trained :math:`g` on the input distribution,
:math:`\rho(g') = P_x[g'(x) \ne g(x)]`; the **least disagree metric** of a point is the
smallest disagree metric of a hypothesis that flips it,

.. math:: L(x) = \inf \{\rho(g') : g'(x) \ne g(x)\},

small for points close to the decision boundary ("easily flip-flopped"). It is estimated by
sampling perturbed parameters :math:`w' \sim \mathcal N(w, \sigma^2 I)` over a grid of
:math:`\sigma` (:func:`perturbed_labels`), estimating each :math:`\rho` on a set of points
and taking, for each point, the smallest :math:`\rho` among the samples that flip it
(:func:`least_disagree_metric`; 1 where none does). LDM-S then queries a batch by k-means++
seeding on the cosine distances of the features, each distance weighted by
:math:`\gamma(x) = \exp(-\max(L(x) - L_q, 0) / L_q)` (:func:`ldm_seeding`).

Transcribed from the authors' code (``ipcng00/LDM-S``, ``utils.py`` ``get_ldm_gpu`` and
``strategies.py`` ``query_by_LDMS``, commit ``bd3334f``), with two fixed-shape changes: a fixed
number of samples per :math:`\sigma` (the authors' minimum, 10) instead of sampling until 10
in a row bring no improvement, and every network parameter perturbed (the authors perturb the
last layer only, which a generic ``apply(params, x)`` does not expose).

Shapes: ``P`` perturbed hypotheses, ``N`` points, ``K`` posterior samples, ``C`` classes,
``D`` feature dimension, ``B`` batch size.
"""

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from jaxal import check
from jaxal.select._greedy import greedy as _greedy
from jaxal.select._gumbel import draw
from jaxal.typing import Available, Key

SIGMAS = 10.0 ** np.arange(-5.0, 0.1, 0.1)
"""The authors' grid of perturbation scales: :math:`10^{-5}, 10^{-4.9}, \\dots, 10^0`."""

SAMPLES_PER_SIGMA = 10
"""Perturbed hypotheses drawn per scale (the authors' ``stop_cond``)."""

COSINE_ZERO = 1e-5
"""Cosine distances below this count as 0 in the seeding (the authors')."""


def least_disagree_metric(
    labels: Int[ArrayLike, "P N"],
    base_labels: Int[ArrayLike, " N"],
    *,
    disagreement: Float[ArrayLike, " P"] | None = None,
) -> Float[Array, " N"]:
    r"""LDM estimate of each point from the predicted labels of ``P`` perturbed hypotheses.

    .. math:: \hat L(x_n) = \min\big(\{1\} \cup \{\rho_p : y_{pn} \ne \hat y_n\}\big),
       \qquad \rho_p = \frac1N \sum_n [y_{pn} \ne \hat y_n],

    the smallest estimated disagree metric among the hypotheses that flip ``x_n``. By default
    :math:`\rho_p` is estimated on the ``N`` points themselves (a pool drawn from the input
    distribution); ``disagreement`` gives it from another sample (the authors' ``X_S``).

    Args:
      labels: ``[P, N]`` labels the perturbed hypotheses predict.
      base_labels: ``[N]`` labels the trained hypothesis predicts.
      disagreement: optional ``[P]`` disagree metrics :math:`\rho_p` of the hypotheses.

    Returns:
      ``[N]`` LDM estimates in ``(0, 1]``; smaller = closer to the decision boundary.

    Example:
      >>> import jax.numpy as jnp
      >>> labels = jnp.array([[0, 1, 1, 1], [1, 1, 1, 1]])  # flips 1 point, then 2
      >>> least_disagree_metric(labels, jnp.array([0, 0, 1, 1])).tolist()
      [0.5, 0.25, 1.0, 1.0]
    """
    labels_P_N = jnp.asarray(labels)
    base_N = jnp.asarray(base_labels)
    if labels_P_N.ndim != 2 or base_N.shape != labels_P_N.shape[1:]:
        raise ValueError(
            f"labels must be [P, N] and base_labels [N]; got {labels_P_N.shape} and {base_N.shape}"
        )
    flipped_P_N = labels_P_N != base_N[None]
    if disagreement is None:
        rho_P = jnp.mean(flipped_P_N, axis=1)
    else:
        rho_P = check.float_array(disagreement, "disagreement")
        if rho_P.shape != labels_P_N.shape[:1]:
            raise ValueError(
                f"disagreement must have shape [P] = {labels_P_N.shape[:1]}; got {rho_P.shape}"
            )
    ldm_P_N = jnp.where(flipped_P_N, rho_P[:, None], 1.0)
    return jnp.min(ldm_P_N, axis=0, initial=1.0)


def perturbed_labels(
    apply: Callable[[object, Array], Array],
    params,
    x: Float[ArrayLike, "N ..."],
    *,
    key: Key,
    sigmas: Float[ArrayLike, " G"] = SIGMAS,
    samples_per_sigma: int = SAMPLES_PER_SIGMA,
    chunk: int = 16,
) -> tuple[Int[Array, "P N"], Int[Array, " N"]]:
    r"""Labels of ``P = G samples_per_sigma`` perturbed networks, and the unperturbed labels.

    Hypothesis ``p`` adds :math:`\mathcal N(0, \sigma_p^2)` noise to every parameter leaf;
    its label is the argmax of the mean over the ``K`` samples of the softmax of
    ``apply(params, x) [K, N, C]`` (the argmax of the logits for ``K = 1``). The hypotheses
    run ``chunk`` at a time under ``vmap``.

    Args:
      apply: ``apply(params, x [N, ...]) -> [K, N, C]`` logits.
      params: the trained parameters (a pytree).
      x: ``[N, ...]`` inputs.
      key: PRNG key.
      sigmas: ``[G]`` perturbation scales (default the authors' :data:`SIGMAS`).
      samples_per_sigma: hypotheses per scale.
      chunk: hypotheses evaluated together.

    Returns:
      ``(labels [P, N], base_labels [N])``, scales in the order of ``sigmas``.
    """
    key = check.key(key)
    samples_per_sigma = check.integer(samples_per_sigma, "samples_per_sigma")
    chunk = check.integer(chunk, "chunk")
    sigma_G = check.float_array(sigmas, "sigmas")
    sigma_P = jnp.repeat(sigma_G, samples_per_sigma)
    x_N = jnp.asarray(x)
    leaves, tree = jax.tree.flatten(params)

    def label(params):
        log_probs_K_N_C = jax.nn.log_softmax(apply(params, x_N), axis=-1)
        return jnp.argmax(jax.nn.logsumexp(log_probs_K_N_C, axis=0), axis=-1)

    def perturbed(args):
        key, sigma = args
        keys = jax.random.split(key, len(leaves))
        noisy = [
            leaf + (sigma * jax.random.normal(k, leaf.shape)).astype(leaf.dtype)
            for k, leaf in zip(keys, leaves, strict=True)
        ]
        return label(jax.tree.unflatten(tree, noisy))

    keys_P = jax.random.split(key, sigma_P.shape[0])
    labels_P_N = jax.lax.map(perturbed, (keys_P, sigma_P), batch_size=chunk)
    return labels_P_N, label(params)


def _seeding_weights(ldm_N: Array, available_N: Array, b: int) -> Array:
    """The authors' ``gamma``: 1 for the ``b`` smallest LDMs, ``exp(-(L - L_q) / L_q)``
    rescaled to sum ``b`` (capped at 1) for the rest, ``L_q`` the ``b``-th smallest (0-based)
    LDM among the available points (the smallest positive one if that is 0)."""
    N = ldm_N.shape[0]
    masked_N = jnp.where(available_N, ldm_N, jnp.inf)
    order_N = jnp.argsort(masked_N, stable=True)
    rank_N = jnp.zeros((N,), jnp.int32).at[order_N].set(jnp.arange(N, dtype=jnp.int32))
    q = jnp.minimum(b, jnp.sum(available_N) - 1)
    ldm_q = masked_N[order_N[q]]
    smallest_positive = jnp.min(jnp.where(masked_N > 0, masked_N, jnp.inf))
    ldm_q = jnp.where(
        ldm_q > 0, ldm_q, jnp.where(jnp.isfinite(smallest_positive), smallest_positive, 1.0)
    )
    gamma_N = jnp.exp(-jnp.maximum(ldm_N - ldm_q, 0.0) / ldm_q)
    tail_N = available_N & (rank_N >= b)
    tail_sum = jnp.sum(jnp.where(tail_N, gamma_N, 0.0))
    scale = jnp.where(tail_sum > 0, b / jnp.where(tail_sum > 0, tail_sum, 1.0), 1.0)
    return jnp.minimum(jnp.where(tail_N, gamma_N * scale, gamma_N), 1.0)


def _cosine_distance_to(unit_N_D: Array, centre: Array) -> Array:
    distance_N = jnp.clip(1.0 - unit_N_D @ unit_N_D[centre], 0.0, 2.0)
    return jnp.where(distance_N < COSINE_ZERO, 0.0, distance_N)


@partial(jax.jit, static_argnames=("b",))
def _ldm_seeding(key: Key, ldm_N: Array, x_N_D: Array, available_N: Array, *, b: int) -> Array:
    gamma_N = _seeding_weights(ldm_N, available_N, b)
    unit_N_D = x_N_D / jnp.maximum(
        jnp.linalg.norm(x_N_D, axis=1, keepdims=True), jnp.finfo(x_N_D.dtype).tiny
    )
    first = jnp.argmin(jnp.where(available_N, ldm_N, jnp.inf))
    indices_B = jnp.zeros((b,), jnp.int32).at[0].set(first.astype(jnp.int32))
    keys_B = jax.random.split(key, b)

    def choose(i, min_distance_N, available_N):
        return draw(keys_B[i], 2.0 * jnp.log(gamma_N * min_distance_N), 1, available_N)[0]

    def update(min_distance_N, new):
        return jnp.minimum(min_distance_N, _cosine_distance_to(unit_N_D, new))

    min_distance_N = _cosine_distance_to(unit_N_D, first)
    indices_B = _greedy(
        choose, update, min_distance_N, available_N.at[first].set(False), indices_B, 1
    )
    return check.picks(indices_B, available_N)


def ldm_seeding(
    ldm: Float[ArrayLike, " N"],
    features: Float[ArrayLike, "N D"],
    b: int,
    *,
    key: Key,
    available: Available | None = None,
) -> Int[Array, " B"]:
    r"""LDM-S batch: k-means++ seeding on cosine distances weighted by small LDM.

    The first point is the available one of smallest LDM; each further point is drawn from
    the available points not chosen yet with probability

    .. math:: P(x) \propto \big(\gamma(x) \min_{c \in \text{chosen}} d_{\cos}(x, c)\big)^2,

    with :math:`\gamma = 1` for the ``b`` smallest LDMs and, for the others,
    :math:`\exp(-(L(x) - L_q) / L_q)` rescaled to sum ``b`` and capped at 1, :math:`L_q`
    the ``b``-th smallest LDM (0-based; the smallest positive one when it is 0). Cosine
    distances below :data:`COSINE_ZERO` count as 0; when every remaining weight is 0 it draws
    uniformly. As the authors' ``query_by_LDMS``.

    Args:
      ldm: ``[N]`` LDM estimates (:func:`least_disagree_metric`).
      features: ``[N, D]`` features (the authors': the penultimate layer's).
      b: batch size, static Python int with ``1 <= b <= #available``.
      key: PRNG key.
      available: optional bool ``[N]`` mask of selectable points.

    Returns:
      ``[b]`` distinct available indices in the order chosen (the sentinel ``N`` past the
      available count under tracing, :func:`jaxal.check.picks`).
    """
    ldm_N = check.float_array(ldm, "ldm")
    x_N_D = check.float_array(features, "features")
    if ldm_N.ndim != 1 or x_N_D.ndim != 2 or x_N_D.shape[0] != ldm_N.shape[0]:
        raise ValueError(
            f"ldm must be [N] and features [N, D] with the same N; got {ldm_N.shape} and "
            f"{x_N_D.shape}"
        )
    key = check.key(key)
    N = ldm_N.shape[0]
    available = check.available(available, N, on_trace="skip")
    b = check.batch_size(b, available, on_trace="skip")
    return _ldm_seeding(key, ldm_N, x_N_D.astype(jnp.result_type(ldm_N, x_N_D)), available, b=b)
