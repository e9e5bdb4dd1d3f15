r"""Deep ensembles (Lakshminarayanan, Pritzel & Blundell, NeurIPS 2017) of any flax network.

The ``K`` members' parameters are one pytree whose leaves carry a leading ``K`` axis, so a
whole ensemble is initialised, trained and evaluated by ``jax.vmap`` over one member.
Each member is a posterior sample :math:`\theta_k`; :func:`ensemble_log_probs` returns the
``[K, N, C]`` array that :mod:`jaxal.scores` and :mod:`jaxal.select` consume.

Active-learning protocol: training takes per-example ``weights`` over the whole pool (a 0/1
mask of the labelled points), so shapes never change between rounds and nothing recompiles.
Members are not warm-started: each round calls :func:`init_ensemble` with a fresh key and
trains from scratch, the standard protocol of the BatchBALD paper.

Members may contain dropout (e.g. :class:`~jaxal.posterior.ConvNet`): training draws
its masks from the ``"dropout"`` rng, a key derived from each member's minibatch key, and
every prediction runs with dropout off (the mean network of inverted dropout). Training runs
2-D convolutions as patch matrix products (:mod:`jaxal.posterior._patches`), which XLA:CPU
executes about 10x faster than its own convolution gradients inside the training loop.
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Literal, NamedTuple, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PyTree

from jaxal import check, information
from jaxal._config import Static
from jaxal.posterior._interface import Posterior
from jaxal.posterior._last_layer import dropout_off, last_layer_inputs
from jaxal.posterior._make import posterior_factory
from jaxal.posterior._patches import convolutions_as_matmuls
from jaxal.typing import Key

Params = PyTree
"""Stacked ensemble parameters: every leaf has a leading ``K`` axis."""

Loss = Literal["cross-entropy", "squared-error"]
"""Training objective: softmax cross-entropy on integer labels ``[N]``, or the squared error
of the model's single output (``num_classes=1``) on real targets ``[N]``."""


def _member_loss(loss: Loss, model: nn.Module) -> Callable[[Params, Array, Array, Key], Array]:
    """``loss(params, x_B_D, y_B, dropout_key)``: one member's mean objective on a batch.

    ``dropout_key`` feeds the ``"dropout"`` rng of models with dropout (unused otherwise);
    convolutions run as patch matrix products (:func:`convolutions_as_matmuls`).
    """

    def outputs(member_params, x_B_D, dropout_key):
        with convolutions_as_matmuls():
            return cast(Array, model.apply(member_params, x_B_D, rngs={"dropout": dropout_key}))

    if loss == "cross-entropy":

        def objective(member_params, x_B_D, y_B, dropout_key):
            logits_B_C = outputs(member_params, x_B_D, dropout_key)
            return optax.softmax_cross_entropy_with_integer_labels(logits_B_C, y_B).mean()

    elif loss == "squared-error":

        def objective(member_params, x_B_D, y_B, dropout_key):
            outputs_B_O = outputs(member_params, x_B_D, dropout_key)
            return jnp.mean((outputs_B_O[:, 0] - y_B) ** 2)

    else:
        raise ValueError(f"loss must be 'cross-entropy' or 'squared-error'; got {loss!r}")
    return objective


class MLP(nn.Module):
    """ReLU multilayer perceptron returning class logits ``[..., C]`` for inputs ``[..., D]``.

    Attributes:
      num_classes: ``C``, the width of the output layer.
      hidden: widths of the hidden layers (a tuple, so the module stays hashable and can be
        a static argument of ``jax.jit``).
    """

    num_classes: int
    hidden: Sequence[int] = (128,)

    @nn.compact
    def __call__(self, x: Float[Array, "... D"]) -> Float[Array, "... C"]:
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.num_classes)(x)


def init_ensemble(
    model: nn.Module, x_example: Float[Array, "... D"], num_members: int, *, key: Key
) -> Params:
    """Independently initialised parameters of ``K = num_members`` copies of ``model``.

    Args:
      model: a flax linen module mapping ``[..., D]`` to logits ``[..., C]``; its dropout
        layers, if any, draw from the ``"dropout"`` rng (``fold_in(member key, 1)``).
      x_example: an input with the right feature dimension ``D`` (only its shape is used).
      num_members: ``K >= 1``.
      key: PRNG key, split into one key per member.

    Returns:
      Parameters whose leaves have a leading ``K`` axis.
    """
    check.integer(num_members, "num_members")
    keys_K = jax.random.split(key, num_members)

    def init(member_key):
        rngs = {"params": member_key, "dropout": jax.random.fold_in(member_key, 1)}
        return model.init(rngs, x_example)

    return jax.vmap(init)(keys_K)


def train_ensemble(
    params: Params,
    x: Float[Array, "N D"],
    y: Int[Array, " N"] | Float[Array, " N"],
    weights: Float[Array, " N"],
    *,
    key: Key,
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    batch_size: int,
    loss: Loss = "cross-entropy",
) -> Params:
    r"""Train all ``K`` members for ``num_steps`` minibatch steps, in one scan.

    At every step each member draws its own minibatch of ``batch_size`` indices with
    replacement, with :math:`P(n) = w_n / \sum_m w_m`, and takes one ``optimizer`` step on the
    mean ``loss`` of that batch (softmax cross-entropy, or the squared error of a regression
    network's single output). With 0/1 ``weights`` this is uniform sampling
    from the labelled points; points of weight 0 are never drawn, so their ``x`` and ``y``
    (e.g. the hidden labels of the unlabelled pool) cannot affect the result. Independent
    minibatches per member add to the ensemble's diversity.

    Jitted with ``model``, ``optimizer``, ``num_steps``, ``batch_size`` and ``loss`` static:
    new ``weights`` of the same shape reuse the compiled program, and so do an equal model
    and an equal rebuilt optimizer (a second ``optax.adam(1e-3)``; equality is
    :func:`jaxal._config.fingerprint`'s).

    Args:
      params: stacked ``[K, ...]`` initial parameters (from :func:`init_ensemble`).
      x: ``[N, D]`` features of the whole pool.
      y: ``[N]`` integer labels in ``[0, C)`` (or real targets for ``"squared-error"``);
        only read where ``weights > 0``.
      weights: ``[N]`` non-negative sampling weights with a positive sum (a labelled mask).
      key: PRNG key for the minibatches.
      model: the flax module the parameters belong to.
      optimizer: an optax transformation, e.g. ``optax.adam(1e-3)``.
      num_steps: number of optimisation steps (static).
      batch_size: minibatch size per member and step (static).
      loss: ``"cross-entropy"`` (default) or ``"squared-error"`` (static).

    Returns:
      The trained stacked parameters.
    """
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
        loss=loss,
        members=True,
    )


@partial(
    jax.jit, static_argnames=("model", "optimizer", "num_steps", "batch_size", "loss", "members")
)
def train_weighted(
    params, x, y, weights, *, key, model, optimizer, num_steps, batch_size, loss, members
):
    r"""The one trainer of :func:`train_ensemble` and :func:`~jaxal.posterior.train_dropout`.

    The arguments are :func:`train_ensemble`'s, with ``model`` and ``optimizer`` wrapped in
    :class:`~jaxal._config.Static`. ``num_steps`` steps in one scan, each drawing
    ``batch_size`` indices with replacement with :math:`P(n) = w_n / \sum_m w_m` and taking
    one ``optimizer`` step on the mean ``loss`` (:func:`_member_loss`) of that batch.
    ``members=True``: ``params`` are stacked ``[K, ...]`` and every member steps under
    ``vmap`` with its own key ``split(step_key, K)[k]`` for the batch and ``fold_in`` of it
    with 1 for the dropout masks; ``members=False``: one network, batch and dropout keys
    ``split(step_key)``. Jitted with every argument after ``key`` static.
    """
    tx = optimizer.value
    p_N = weights / jnp.sum(weights)
    objective = _member_loss(loss, model.value)

    def network_step(params, opt_state, batch_key, dropout_key):
        index_B = jax.random.choice(batch_key, x.shape[0], (batch_size,), p=p_N)
        grads = jax.grad(objective)(params, x[index_B], y[index_B], dropout_key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    if members:
        K = jax.tree.leaves(params)[0].shape[0]

        def member_step(params, opt_state, member_key):
            return network_step(params, opt_state, member_key, jax.random.fold_in(member_key, 1))

        def step(carry: tuple[Params, optax.OptState], step_key):
            return jax.vmap(member_step)(*carry, jax.random.split(step_key, K)), None

        carry = (params, jax.vmap(tx.init)(params))
    else:

        def step(carry: tuple[Params, optax.OptState], step_key):
            return network_step(*carry, *jax.random.split(step_key)), None

        carry = (params, tx.init(params))
    (params, _), _ = jax.lax.scan(step, carry, jax.random.split(key, num_steps))
    return params


def _outputs(params: Params, model: nn.Module, x: Float[Array, "N D"]) -> Float[Array, "K N O"]:
    """Every member's raw outputs (logits, or regression outputs), dropout off: ``[K, N, O]``."""
    with dropout_off():
        return jax.vmap(lambda p: cast(Array, model.apply(p, x)))(params)  # no mutable state


def _features(params: Params, model: nn.Module, x: Float[Array, "N D"]) -> Float[Array, "K N H"]:
    """Every member's last-layer features (:func:`last_layer_inputs`), no dropout: ``[K, N, H]``."""
    with dropout_off():
        return jax.vmap(lambda p: last_layer_inputs(model, p, x))(params)


def ensemble_log_probs(
    params: Params, model: nn.Module, x: Float[Array, "N D"]
) -> Float[Array, "K N C"]:
    """Per-member predictive log-probabilities ``log p(y = c | x_n, theta_k)``: ``[K, N, C]``."""
    return jax.nn.log_softmax(_outputs(params, model, x), axis=-1)


def predictive_log_probs(
    params: Params, model: nn.Module, x: Float[Array, "N D"]
) -> Float[Array, "N C"]:
    r"""Log of the ensemble's mean predictive :math:`\frac1K \sum_k p(y \mid x_n, \theta_k)`."""
    return information.mean_log_probs(ensemble_log_probs(params, model, x))


def from_scratch(
    model: nn.Module,
    num_members: int,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    batch_size: int,
    loss: Loss,
) -> Callable[..., Params]:
    """``fit(x, y, weights, *, key)``: initialise ``num_members`` members of ``model`` from
    ``key`` and train them (:func:`train_ensemble` with these settings)."""

    def fit(x, y, weights, *, key):
        init_key, train_key = jax.random.split(key)
        params = init_ensemble(model, x[:1], num_members, key=init_key)
        return train_ensemble(
            params,
            x,
            y,
            weights,
            key=train_key,
            model=model,
            optimizer=optimizer,
            num_steps=num_steps,
            batch_size=batch_size,
            loss=loss,
        )

    return fit


@posterior_factory
def ensemble(
    model: nn.Module,
    num_members: int,
    *,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    batch_size: int,
) -> Posterior:
    """A deep ensemble as a :class:`~jaxal.posterior.Posterior`.

    ``fit`` re-initialises the ``K = num_members`` members from ``key`` and trains them
    together (:func:`train_ensemble`); ``predict`` returns their ``[K, M, C]`` log-probs,
    ``embed`` their ``[K, M, H]`` last-layer features (:func:`last_layer_inputs`) and
    ``apply`` their ``[K, M, C]`` logits. Equal settings (an equal ``model``, an equal
    rebuilt ``optimizer``) give an equal posterior, which reuses the compiled programs.
    """
    check.integer(num_members, "num_members")
    fit = from_scratch(model, num_members, optimizer, num_steps, batch_size, "cross-entropy")

    def predict(params, x, *, key=None):
        del key  # deterministic given the members
        return ensemble_log_probs(params, model, x)

    def embed(params, x, *, key=None):
        del key
        return _features(params, model, x)

    def apply(params, x):
        return _outputs(params, model, x)

    return Posterior(fit, predict, embed, apply)


class RegressionEnsembleParams(NamedTuple):
    """A fitted regression ensemble: stacked ``params`` and each member's noise ``[K]``."""

    params: Params
    noise_variance: Float[Array, " K"]


# ensemble's signature on purpose (the same members, trained by squared error); not merged,
# since the two posteriors' fit, predict and params differ.
@posterior_factory
def ensemble_regression(
    model: nn.Module,
    num_members: int,
    *,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    batch_size: int,
) -> Posterior:
    r"""A deep ensemble of regression networks (squared error) as a :class:`Posterior`.

    ``model`` has one output (``num_classes=1``). ``fit(x, y [N] float, weights, *, key)``
    trains the ``K = num_members`` members from scratch (:func:`train_ensemble` with
    ``loss="squared-error"``) and sets each member's noise variance to its weighted mean
    squared training residual, :math:`\sigma_k^2 = \sum_n w_n (f_k(x_n) - y_n)^2 / \sum_n
    w_n`. ``predict`` returns ``(mean, var)``, each ``[K, M]``: the members' outputs and their
    :math:`\sigma_k^2` (the Gaussian mixture the regression scores consume); ``embed`` the
    members' ``[K, M, H]`` last-layer features, ``apply`` their ``[K, M, 1]`` outputs. With
    ``num_members=1`` this is the single network of the regression kernel framework
    (Holzmüller et al., 2023), whose features :mod:`jaxal.kernel_features` reads.
    """
    check.integer(num_members, "num_members")
    fit_members = from_scratch(
        model, num_members, optimizer, num_steps, batch_size, "squared-error"
    )

    def fit(x, y, weights, *, key):
        params = fit_members(x, y, weights, key=key)
        residual_K_N = (_outputs(params, model, x)[..., 0] - y[None]) ** 2
        noise_K = jnp.sum(residual_K_N * weights[None], axis=1) / jnp.sum(weights)
        return RegressionEnsembleParams(params, noise_K)

    def predict(fitted, x, *, key=None):
        del key  # deterministic given the members
        mean_K_M = _outputs(fitted.params, model, x)[..., 0]
        return mean_K_M, jnp.broadcast_to(fitted.noise_variance[:, None], mean_K_M.shape)

    def embed(fitted, x, *, key=None):
        del key
        return _features(fitted.params, model, x)

    def apply(fitted, x):
        return _outputs(fitted.params, model, x)

    return Posterior(fit, predict, embed, apply)
