r"""Embeddings for geometric selection (:mod:`jaxal.select`): features the distances live on.

Penultimate activations come from :func:`jaxal.posterior.mlp_features`; this module builds
embeddings from them.
"""

import jax.numpy as jnp
from einops import rearrange
from jaxtyping import Array, ArrayLike, Float

from jaxal import check
from jaxal.information import mean_log_probs

__all__ = ["badge"]


def badge(
    features: Float[ArrayLike, "N H"],
    log_probs: Float[ArrayLike, "K N C"] | Float[ArrayLike, "N C"],
) -> Float[Array, "N CH"]:
    r"""BADGE gradient embeddings (Ash et al., ICLR 2020).

    The gradient of the cross-entropy at the predicted label
    :math:`\hat y = \arg\max_c \bar p_c` with respect to the last layer's weights,

    .. math:: g(x) = \big(\bar p(x) - e_{\hat y}\big) \otimes h(x),
              \qquad g_{c H + j} = (\bar p_c - [c = \hat y])\, h_j,

    flattened class-major (``C`` blocks of ``H`` features). This is the *negative* of the
    authors' embedding (``JordanAsh/badge``, ``query_strategies/strategy.py``,
    ``get_grad_embedding``, lines 338-343: block ``c`` is ``h (1 - p_c)`` for ``c = y_hat``
    and ``h (-p_c)`` otherwise, i.e. :math:`([c = \hat y] - p_c)\, h`), which they compute
    from a single network's softmax. The whole vector flips, so norms and pairwise
    distances, hence BADGE's selection, are the same.
    Its norm is small for confident points and large for uncertain ones.

    Args:
      features: ``[N, H]`` penultimate activations :math:`h(x)`.
      log_probs: ``[K, N, C]`` log-probabilities of a ``K``-sample posterior (the mean
        predictive :math:`\bar p = \frac1K \sum_k p_k` is used), or ``[N, C]`` probabilities
        :math:`\bar p` of a single predictive (rank 2 means probabilities, not logs).

    Returns:
      ``[N, C * H]`` embeddings.

    >>> badge(jnp.array([[1.0, 2.0]]), jnp.array([[0.75, 0.25]])).tolist()
    [[-0.25, -0.5, 0.25, 0.5]]
    """
    h_N_H = jnp.asarray(features)
    if not jnp.issubdtype(h_N_H.dtype, jnp.floating) or h_N_H.ndim != 2:
        raise ValueError(
            f"features must be a floating [N, H] array; got {h_N_H.dtype} {h_N_H.shape}"
        )
    x = jnp.asarray(log_probs)
    if x.ndim == 3:
        pbar_N_C = jnp.exp(mean_log_probs(check.log_probs(x, on_trace="skip")))
    elif x.ndim == 2:
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"probs must have a floating dtype; got {x.dtype}")
        if check.is_concrete(x) and bool(jnp.any(x < 0)):
            raise ValueError(
                "a rank-2 second argument is read as probabilities [N, C] and must be >= 0; "
                "for log-probabilities pass [K, N, C] (add a leading axis: log_probs[None])"
            )
        pbar_N_C = x
    else:
        raise ValueError(f"log_probs must be [K, N, C] or probs [N, C]; got shape {x.shape}")
    N, H = h_N_H.shape
    if pbar_N_C.shape[0] != N:
        raise ValueError(f"features has N = {N} rows but the predictive has {pbar_N_C.shape}")
    C = pbar_N_C.shape[1]
    onehot_N_C = jnp.arange(C)[None, :] == jnp.argmax(pbar_N_C, axis=1)[:, None]
    residual_N_C = pbar_N_C - onehot_N_C.astype(pbar_N_C.dtype)
    return rearrange(residual_N_C[:, :, None] * h_N_H[:, None, :], "n c h -> n (c h)")
