r"""MC dropout (Gal & Ghahramani, ICML 2016): dropout kept on at test time as a posterior.

A network trained with dropout is approximate variational inference with a Bernoulli
variational distribution over its weights; each dropout mask :math:`z_k` is a posterior
sample :math:`\theta_k = \theta \odot z_k`, so ``K`` stochastic forward passes give the
``[K, M, C]`` log-probabilities that :mod:`jaxal.scores` consume. The L2 regularisation of
the variational objective is the ``optimizer``'s business, e.g. ``optax.adamw`` (weight
decay) or ``optax.chain(optax.add_decayed_weights(wd), optax.adam(lr))``.

**Consistent masks at prediction.** Joint acquisitions treat row ``k`` of ``[K, N, C]`` as
*one* model :math:`\theta_k` evaluated at every point: BatchBALD's joint predictive
:math:`p(y_1, \dots, y_n) = \frac1K \sum_k \prod_i p_k(y_i)`, EPIG's
:math:`p(y, y_*) = \frac1K \sum_k p_k(y \mid x) p_k(y_* \mid x_*)` and ICAL's kernels over
samples all pair up the same ``k`` across points. Standard dropout draws a fresh mask per
example, so pass ``k`` would be a different network at every point; the labels of two points
would then be independent within a sample and these joint scores would measure mask noise
(as ``K`` grows, BatchBALD's joint information tends to the sum of the points' BALD, i.e.
top-k BALD, and EPIG tends to 0). :func:`dropout_log_probs` therefore uses one mask set per
sample, shared by every point, as batchbald_redux's ``ConsistentMCDropout``: it applies the
model to one point at a time with the key ``jax.random.fold_in(key, k)``, so each layer's
mask has the shape of a single example's activations (``[1, width]``) and depends only on
``(key, k)``, never on how many points are scored or where they sit. Scoring a pool in
chunks or shards, in any order, gives the same samples, and sample ``k`` does not depend on
``K``. Single-point scores (BALD, entropy) are unchanged in distribution: each point's
marginal over masks is the same. Training (:func:`train_dropout`) keeps standard
per-example masks, as Gal & Ghahramani and batchbald_redux do.
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PyTree

from jaxal import check
from jaxal._config import Static
from jaxal.posterior._ensemble import train_weighted
from jaxal.posterior._interface import Posterior
from jaxal.posterior._last_layer import dropout_off, last_layer_inputs
from jaxal.posterior._make import posterior_factory
from jaxal.typing import Key


class DropoutMLP(nn.Module):
    """ReLU MLP with dropout after every hidden layer, always on (it needs a ``"dropout"`` rng).

    Applied to a batch it draws one mask per example and unit (standard dropout, used in
    training); :func:`dropout_log_probs` applies it one point at a time to share the masks.

    Attributes:
      num_classes: ``C``, the width of the output layer.
      hidden: widths of the hidden layers (a tuple, so the module stays hashable).
      rate: probability of dropping a hidden unit; 0.5 as in Gal & Ghahramani (2016).
    """

    num_classes: int
    hidden: Sequence[int] = (128,)
    rate: float = 0.5

    @nn.compact
    def __call__(self, x: Float[Array, "... D"]) -> Float[Array, "... C"]:
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
            x = nn.Dropout(self.rate, deterministic=False)(x)
        return nn.Dense(self.num_classes)(x)


def dropout_log_probs(
    params: PyTree, model: nn.Module, x: Float[Array, "M D"], num_samples: int, *, key: Key
) -> Float[Array, "K M C"]:
    """Log-probabilities of ``K = num_samples`` forward passes, each with one shared mask set.

    Pass ``k`` uses the dropout rng ``jax.random.fold_in(key, k)`` for every point: the
    model is applied to one point (``[1, D]``) at a time under ``jax.vmap`` over ``M`` with
    that key unbatched, so every point sees the same masks (a consistent posterior sample
    ``theta_k``, see the module docstring) and the result for a point depends only on
    ``(params, x_m, key, k)``: scoring ``x`` in chunks and concatenating, or permuting its
    rows, concatenates / permutes the output (up to float rounding of differently sized
    matrix products). Any module whose dropout draws its mask
    from the ``"dropout"`` rng with the shape of its input (flax's ``nn.Dropout``) works.

    Args:
      params: parameters of ``model``.
      model: a flax module mapping ``[..., D]`` to logits ``[..., C]``.
      x: ``[M, D]`` inputs.
      num_samples: ``K``, the number of masks (posterior samples).
      key: PRNG key of the masks; reuse it to get the same ``K`` models on other inputs.

    Returns:
      ``[K, M, C]`` log-probabilities.
    """
    logits_K_M_C = _consistent_passes(model.apply, params, x, num_samples, key=key)
    return jax.nn.log_softmax(logits_K_M_C, axis=-1)


def _consistent_passes(
    forward: Callable[..., Any], params: PyTree, x: Array, num_samples: int, *, key: Key
) -> Array:
    """``forward(params, x, rngs=...)`` of ``K`` mask sets, each shared by every point.

    Pass ``k`` applies ``forward`` to one point (``[1, ...]``) at a time under ``jax.vmap``
    with the dropout rng ``jax.random.fold_in(key, k)`` unbatched (:func:`dropout_log_probs`).

    Returns:
      ``[K, M, ...]``: the outputs of every pass on every point.
    """

    def sample(k):
        rngs = {"dropout": jax.random.fold_in(key, k)}
        return jax.vmap(lambda x_m: forward(params, x_m[None], rngs=rngs)[0])(x)

    return jax.vmap(sample)(jnp.arange(num_samples))


def train_dropout(
    params: PyTree,
    x: Float[Array, "N D"],
    y: Int[Array, " N"],
    weights: Float[Array, " N"],
    *,
    key: Key,
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    batch_size: int,
) -> PyTree:
    r"""Train one dropout network for ``num_steps`` minibatch steps of cross-entropy, in one scan.

    :func:`~jaxal.posterior.train_ensemble`'s training (the same trainer, the same
    arguments and jit caching) for the unstacked ``params`` of one network whose ``model``
    draws fresh dropout masks from the ``"dropout"`` rng at every step (e.g.
    :class:`DropoutMLP`), with softmax cross-entropy on integer labels ``y``; ``key`` drives
    the minibatches and the masks. Weight decay, if wanted, is the ``optimizer``'s (e.g.
    ``optax.adamw(1e-3, weight_decay=1e-4)``).

    Returns:
      The trained parameters.
    """
    # train_ensemble's call but for loss and members: one trainer, two public entry points.
    return train_weighted(
        params,
        x,
        y,
        weights,
        key=key,
        model=Static(model),
        optimizer=Static(optimizer),
        num_steps=num_steps,
        batch_size=batch_size,
        loss="cross-entropy",
        members=False,
    )


@posterior_factory
def mc_dropout(
    model: nn.Module,
    num_samples: int,
    *,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    batch_size: int,
) -> Posterior:
    """MC dropout as a :class:`~jaxal.posterior.Posterior`.

    ``fit`` initialises ``model`` from ``key`` and trains it (:func:`train_dropout`);
    ``predict(params, x, *, key)`` returns ``K = num_samples`` stochastic forward passes
    (:func:`dropout_log_probs`), each with one mask set shared by every point, so sample ``k``
    is the same network across the pool, as BatchBALD, EPIG and ICAL require. The key picks
    the masks: reuse one key to score a pool and its targets, or a pool in chunks or shards,
    with the same posterior samples. ``embed(params, x, *, key)`` returns the ``[K, M, H]``
    last-layer features (:func:`last_layer_inputs`) of the same ``K`` passes as ``predict``
    with that key; ``apply(params, x)`` the ``[1, M, C]`` logits of the network with dropout
    off (every ``nn.Dropout`` the identity: the mean network of inverted dropout).

    Args:
      model: a flax module mapping ``[..., D]`` to logits ``[..., C]`` that uses a
        ``"dropout"`` rng, e.g. ``DropoutMLP(num_classes=10, hidden=(128,), rate=0.5)``.
      num_samples: ``K >= 1`` forward passes per prediction.
      optimizer: an optax transformation (include weight decay for Gal's L2 term).
      num_steps: training steps per fit (static).
      batch_size: minibatch size (static).

    Example:
      >>> import jax, optax
      >>> post = mc_dropout(DropoutMLP(2, (16,)), 8, optimizer=optax.adam(1e-2),
      ...                   num_steps=10, batch_size=4)
      >>> x, y, w = jax.numpy.zeros((6, 2)), jax.numpy.zeros(6, int), jax.numpy.ones(6)
      >>> params = jax.jit(post.fit)(x, y, w, key=jax.random.key(0))
      >>> post.predict(params, x, key=jax.random.key(1)).shape
      (8, 6, 2)
    """
    check.integer(num_samples, "num_samples")

    def fit(x, y, weights, *, key):
        params_key, dropout_key, train_key = jax.random.split(key, 3)
        params = model.init({"params": params_key, "dropout": dropout_key}, x[:1])
        return train_dropout(
            params,
            x,
            y,
            weights,
            key=train_key,
            model=model,
            optimizer=optimizer,
            num_steps=num_steps,
            batch_size=batch_size,
        )

    def predict(params, x, *, key):
        return dropout_log_probs(params, model, x, num_samples, key=key)

    def embed(params, x, *, key):
        features = partial(last_layer_inputs, model)
        return _consistent_passes(features, params, x, num_samples, key=key)

    def apply(params, x):
        with dropout_off():
            return cast(Array, model.apply(params, x))[None]  # no mutable collections

    return Posterior(fit, predict, embed, apply)
