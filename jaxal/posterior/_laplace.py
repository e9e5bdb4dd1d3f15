r"""Gaussian posteriors over the last layer of a fixed feature network.

The user supplies ``feature_fn(x [M, D]) -> phi [M, F]``, any jittable function with fixed
weights: a pretrained or self-supervised embedding, or the penultimate activations of a
trained :class:`~jaxal.posterior.MLP` (:func:`mlp_features`). A bias feature of ones is
appended, :math:`\phi(x) \in \mathbb R^P` with :math:`P = F + 1`, and only the last layer
is Bayesian, with prior :math:`\mathcal N(0, \lambda^{-1} I)`:

* classification (:func:`laplace_last_layer`): the MAP softmax weights
  :math:`W \in \mathbb R^{P \times C}` and the Laplace approximation
  :math:`\mathcal N(W_\text{MAP}, H^{-1})` with the full :math:`PC \times PC` Hessian,
  which for a last layer equals the generalised Gauss-Newton matrix (Daxberger et al.,
  "Laplace Redux", NeurIPS 2021);
* regression (:func:`bayesian_last_layer_regression`): Bayesian linear regression, whose
  Gaussian posterior is exact (Bishop, PRML, 2006, §3.3), with the noise variance fixed or
  set by maximising the evidence (§3.5).

Points enter every sum with their weight :math:`w_n` (a 0/1 labelled mask over a fixed
pool), so shapes never change and unlabelled points contribute exactly 0.
"""

from collections.abc import Callable
from typing import NamedTuple, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from einops import rearrange
from jaxtyping import Array, Float, Int, PyTree

from jaxal import check
from jaxal.posterior._ensemble import MLP, from_scratch
from jaxal.posterior._interface import Posterior
from jaxal.posterior._last_layer import dropout_off, last_layer_inputs
from jaxal.posterior._make import posterior_factory
from jaxal.typing import Key

FeatureFn = Callable[[Float[Array, "M D"]], Float[Array, "M F"]]


class GaussianWeights(NamedTuple):
    r"""A Gaussian :math:`\mathcal N(\mu, A^{-1})` over flattened last-layer weights.

    Attributes:
      mean: ``[P']`` the mean :math:`\mu` (``P' = P C`` for classification, ``P`` for
        regression; classification weights are ``W.reshape(-1)`` of a ``[P, C]`` matrix).
      precision_cholesky: ``[P', P']`` lower Cholesky factor :math:`L` of the precision,
        :math:`A = L L^\top`.
    """

    mean: Float[Array, " P"]
    precision_cholesky: Float[Array, "P P"]


class LinearRegressionPosterior(NamedTuple):
    r"""The exact posterior of Bayesian linear regression and its noise variance.

    Attributes:
      weights: the Gaussian posterior over the ``P`` last-layer weights.
      noise_variance: ``[]`` the Gaussian noise variance :math:`\sigma^2`.
    """

    weights: GaussianWeights
    noise_variance: Float[Array, ""]


def _with_bias(features_M_F: Float[Array, "M F"]) -> Float[Array, "M P"]:
    return jnp.concatenate([features_M_F, jnp.ones_like(features_M_F[:, :1])], axis=-1)


def sample_gaussian(
    gaussian: GaussianWeights, num_samples: int, *, key: Key
) -> Float[Array, "K P"]:
    r"""``K`` samples :math:`\mu + L^{-\top} z`, :math:`z \sim \mathcal N(0, I)`.

    Their covariance is :math:`L^{-\top} L^{-1} = (L L^\top)^{-1} = A^{-1}`.
    """
    z_K_P = jax.random.normal(key, (num_samples, *gaussian.mean.shape), gaussian.mean.dtype)
    offsets_P_K = jax.scipy.linalg.solve_triangular(
        gaussian.precision_cholesky, z_K_P.T, trans="T", lower=True
    )
    return gaussian.mean[None] + offsets_P_K.T


def softmax_neg_log_joint(
    weights_P_C: Float[Array, "P C"],
    phi_N_P: Float[Array, "N P"],
    y: Int[Array, " N"],
    weights: Float[Array, " N"],
    prior_precision: float,
) -> Float[Array, ""]:
    r"""Weighted cross-entropy plus the Gaussian prior's penalty, the Laplace objective.

    .. math:: U(W) = -\sum_n w_n \log \operatorname{softmax}(W^\top \phi_n)_{y_n}
              + \tfrac{\lambda}{2} \lVert W \rVert_F^2.
    """
    cross_entropy_N = optax.softmax_cross_entropy_with_integer_labels(phi_N_P @ weights_P_C, y)
    return jnp.sum(weights * cross_entropy_N) + 0.5 * prior_precision * jnp.sum(weights_P_C**2)


def softmax_precision(
    weights_P_C: Float[Array, "P C"],
    phi_N_P: Float[Array, "N P"],
    weights: Float[Array, " N"],
    prior_precision: float,
) -> Float[Array, "PC PC"]:
    r"""Hessian of :func:`softmax_neg_log_joint` in ``W.reshape(-1)``, in closed form.

    .. math:: H = \sum_n w_n \,\phi_n \phi_n^\top \otimes
              \big(\operatorname{diag}(p_n) - p_n p_n^\top\big) + \lambda I,
              \qquad p_n = \operatorname{softmax}(W^\top \phi_n).

    Returns:
      ``[P C, P C]``, indexed like the row-major flattening of ``W [P, C]``.
    """
    P, C = weights_P_C.shape
    probs_N_C = jax.nn.softmax(phi_N_P @ weights_P_C, axis=-1)
    curvature_N_C_C = jax.vmap(jnp.diag)(probs_N_C) - probs_N_C[:, :, None] * probs_N_C[:, None]
    hessian_P_C_P_C = jnp.einsum(
        "n,np,nq,ncd->pcqd", weights, phi_N_P, phi_N_P, curvature_N_C_C, optimize=True
    )
    return hessian_P_C_P_C.reshape(P * C, P * C) + prior_precision * jnp.eye(P * C)


def _softmax_map(phi_N_P, y, weights, *, num_classes, prior_precision, num_steps):
    """The MAP ``W [P, C]`` by ``num_steps`` L-BFGS steps (zoom line search) from zeros."""
    P = phi_N_P.shape[1]

    def objective(weights_P_C):
        return softmax_neg_log_joint(weights_P_C, phi_N_P, y, weights, prior_precision)

    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    def step(_, carry):
        params, state = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = solver.update(
            grad, state, params, value=value, grad=grad, value_fn=objective
        )
        return optax.apply_updates(params, updates), state

    init = jnp.zeros((P, num_classes), phi_N_P.dtype)
    return jax.lax.fori_loop(0, num_steps, step, (init, solver.init(init)))[0]


@posterior_factory
def laplace_last_layer(
    feature_fn: FeatureFn,
    num_classes: int,
    num_samples: int,
    *,
    prior_precision: float = 1.0,
    num_steps: int = 100,
) -> Posterior:
    r"""Last-layer Laplace approximation for softmax classification, as a ``Posterior``.

    ``fit`` finds :math:`W_\text{MAP} = \arg\min U` (:func:`softmax_neg_log_joint`, convex,
    by ``num_steps`` L-BFGS steps) on the fixed features and returns the Gaussian
    :math:`\mathcal N(W_\text{MAP}, H^{-1})`, :math:`H` from :func:`softmax_precision`;
    ``key`` is unused (the fit is deterministic). ``predict(params, x, *, key)`` draws
    ``K = num_samples`` weight samples and returns their ``[K, M, C]`` log-softmax;
    ``embed(params, x)`` is the feature map, ``[1, M, F]`` (shared by every sample). No
    ``apply``: the gradient kernel of a linear last layer is the last-layer kernel itself.

    Args:
      feature_fn: fixed features ``[M, D] -> [M, F]`` (a bias feature is appended).
      num_classes: ``C``.
      num_samples: ``K >= 1`` weight samples per prediction.
      prior_precision: :math:`\lambda > 0`; 1 (a unit Gaussian prior, the default of the
        ``laplace`` library) suits features of unit scale.
      num_steps: L-BFGS iterations (static).
    """
    check.integer(num_classes, "num_classes")
    check.integer(num_samples, "num_samples")
    check.integer(num_steps, "num_steps")
    check.scalar(prior_precision, "prior_precision")

    def fit(x, y, weights, *, key):
        del key  # deterministic
        phi_N_P = _with_bias(feature_fn(x))
        map_P_C = _softmax_map(
            phi_N_P,
            y,
            weights,
            num_classes=num_classes,
            prior_precision=prior_precision,
            num_steps=num_steps,
        )
        precision = softmax_precision(map_P_C, phi_N_P, weights, prior_precision)
        return GaussianWeights(map_P_C.reshape(-1), jnp.linalg.cholesky(precision))

    def predict(params, x, *, key):
        phi_M_P = _with_bias(feature_fn(x))
        samples_K_PC = sample_gaussian(params, num_samples, key=key)
        samples_K_P_C = rearrange(samples_K_PC, "k (p c) -> k p c", c=num_classes)
        return jax.nn.log_softmax(jnp.einsum("mp,kpc->kmc", phi_M_P, samples_K_P_C), axis=-1)

    return Posterior(fit, predict, _embedding(feature_fn))


def _embedding(feature_fn: FeatureFn) -> Callable[..., Array]:
    """``embed(params, x, *, key) -> [1, M, F]``: fixed features, the same for every sample."""

    def embed(params, x, *, key=None):
        del params, key
        return feature_fn(x)[None]

    return embed


def linear_regression_posterior(
    phi_N_P: Float[Array, "N P"],
    y: Float[Array, " N"],
    weights: Float[Array, " N"],
    *,
    prior_precision: float,
    noise_variance: float | None,
    num_evidence_steps: int,
) -> LinearRegressionPosterior:
    r"""Exact weighted Bayesian linear regression, with an evidence-maximising noise variance.

    With :math:`S = \Phi^\top \operatorname{diag}(w) \Phi` and
    :math:`b = \Phi^\top \operatorname{diag}(w)\, y`, the posterior over the weights is

    .. math:: A = \lambda I + S / \sigma^2, \qquad \mu = A^{-1} b / \sigma^2.

    If ``noise_variance`` is None, :math:`\sigma^2` starts at the weighted variance of ``y``
    and takes ``num_evidence_steps`` of MacKay's fixed-point update (Bishop, PRML, eq. 3.95)

    .. math:: \sigma^2 \leftarrow \frac{\sum_n w_n (y_n - \mu^\top \phi_n)^2}
              {\max(\sum_n w_n - \gamma,\ 1)}, \qquad
              \gamma = \sum_i \frac{s_i}{s_i + \lambda \sigma^2},

    with :math:`s_i` the eigenvalues of :math:`S` (``gamma`` counts the well-determined
    weights; the floor at 1 keeps the update finite when there are fewer labels than
    features), whose fixed points are stationary points of the evidence
    :math:`p(y \mid \sigma^2)`.
    """
    s_P, eigenvectors_P_P = jnp.linalg.eigh(phi_N_P.T @ (weights[:, None] * phi_N_P))
    b_eig_P = eigenvectors_P_P.T @ (phi_N_P.T @ (weights * y))
    total_weight = jnp.sum(weights)

    def posterior_mean(sigma2):
        return eigenvectors_P_P @ (b_eig_P / (s_P + prior_precision * sigma2))

    def evidence_step(_, sigma2):
        residual_N = y - phi_N_P @ posterior_mean(sigma2)
        gamma = jnp.sum(s_P / (s_P + prior_precision * sigma2))
        return jnp.sum(weights * residual_N**2) / jnp.maximum(total_weight - gamma, 1.0)

    if noise_variance is None:
        y_mean = jnp.sum(weights * y) / total_weight
        sigma2 = jnp.sum(weights * (y - y_mean) ** 2) / total_weight
        sigma2 = jax.lax.fori_loop(0, num_evidence_steps, evidence_step, sigma2)
    else:
        sigma2 = jnp.asarray(noise_variance, phi_N_P.dtype)
    precision_P_P = (
        prior_precision * jnp.eye(phi_N_P.shape[1])
        + (eigenvectors_P_P * (s_P / sigma2)[None]) @ eigenvectors_P_P.T
    )
    gaussian = GaussianWeights(posterior_mean(sigma2), jnp.linalg.cholesky(precision_P_P))
    return LinearRegressionPosterior(gaussian, sigma2)


@posterior_factory
def bayesian_last_layer_regression(
    feature_fn: FeatureFn,
    num_samples: int,
    *,
    prior_precision: float = 1.0,
    noise_variance: float | None = None,
    num_evidence_steps: int = 50,
) -> Posterior:
    r"""Bayesian linear regression on fixed features (an exact Gaussian), as a ``Posterior``.

    ``fit(x, y [N] float, weights, *, key)`` returns :func:`linear_regression_posterior`
    (``key`` unused); ``predict(params, x, *, key)`` draws ``K = num_samples`` weight
    vectors :math:`\theta_k` and returns ``(mean, var)``, each ``[K, M]``:
    :math:`\mu_k(x) = \theta_k^\top \phi(x)` and the noise variance :math:`\sigma^2`.
    ``embed(params, x)`` is the feature map, ``[1, M, F]``; no ``apply`` (as for
    :func:`laplace_last_layer`).

    Args:
      feature_fn: fixed features ``[M, D] -> [M, F]`` (a bias feature is appended).
      num_samples: ``K >= 1`` weight samples per prediction.
      prior_precision: :math:`\lambda > 0`, the prior precision of every weight; 1 suits
        standardised targets and unit-scale features.
      noise_variance: a fixed :math:`\sigma^2 > 0`, or None (default) to maximise the
        evidence over it by ``num_evidence_steps`` fixed-point steps.
      num_evidence_steps: static number of evidence updates.
    """
    check.integer(num_samples, "num_samples")
    check.integer(num_evidence_steps, "num_evidence_steps")
    check.scalar(prior_precision, "prior_precision")
    if noise_variance is not None:
        check.scalar(noise_variance, "noise_variance")

    def fit(x, y, weights, *, key):
        del key  # deterministic
        return linear_regression_posterior(
            _with_bias(feature_fn(x)),
            y,
            weights,
            prior_precision=prior_precision,
            noise_variance=noise_variance,
            num_evidence_steps=num_evidence_steps,
        )

    def predict(params, x, *, key):
        return _regression_samples(params, feature_fn(x), num_samples, key=key)

    return Posterior(fit, predict, _embedding(feature_fn))


def _features(model: nn.Module, params: PyTree, x: Float[Array, "M D"]) -> Float[Array, "M H"]:
    """The trained network's last-layer features with every dropout layer off."""
    with dropout_off():
        return last_layer_inputs(model, params, x)


def _regression_samples(
    posterior: LinearRegressionPosterior, features_M_F: Array, num_samples: int, *, key: Key
) -> tuple[Float[Array, "K M"], Float[Array, "K M"]]:
    """``(mean, var)`` of ``K`` weight samples on the features (a bias feature is appended)."""
    phi_M_P = _with_bias(features_M_F)
    mean_K_M = sample_gaussian(posterior.weights, num_samples, key=key) @ phi_M_P.T
    return mean_K_M, jnp.full_like(mean_K_M, posterior.noise_variance)


@posterior_factory
def neural_linear_regression(
    model: nn.Module,
    num_samples: int,
    *,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    batch_size: int,
    prior_precision: float = 1.0,
    num_evidence_steps: int = 50,
) -> Posterior:
    r"""A trained network's Bayesian last layer for regression ("neural linear"): a Posterior.

    ``fit`` trains ``model`` (one output) by squared error from ``key``
    (:func:`~jaxal.posterior.train_ensemble`, one member), then fits exact Bayesian linear
    regression with an evidence-maximising noise variance (:func:`linear_regression_posterior`)
    on its last-layer features :math:`h(x)` (:func:`~jaxal.posterior.last_layer_inputs`), as
    Snoek et al. (ICML 2015) and Riquelme et al. (ICLR 2018); ``params`` is ``(network,
    LinearRegressionPosterior)``. ``predict`` and ``embed`` are those of
    :func:`bayesian_last_layer_regression` on the features :math:`h`; no ``apply``.

    Args:
      model: a flax module with one output whose output layer is an ``nn.Dense``, e.g.
        ``MLP(num_classes=1, hidden=(128,))``.
      num_samples: ``K >= 1`` weight samples per prediction.
      optimizer: an optax transformation for the network, e.g. ``optax.adam(1e-3)``.
      num_steps, batch_size: network training steps and minibatch size (static).
      prior_precision: :math:`\lambda > 0`, the last layer's prior precision.
      num_evidence_steps: static number of evidence updates of the noise variance.
    """
    check.integer(num_samples, "num_samples")
    check.integer(num_evidence_steps, "num_evidence_steps")
    check.scalar(prior_precision, "prior_precision")
    fit_network = from_scratch(model, 1, optimizer, num_steps, batch_size, "squared-error")

    def fit(x, y, weights, *, key):
        stacked = fit_network(x, y, weights, key=key)
        network = jax.tree.map(lambda p: p[0], stacked)
        last_layer = linear_regression_posterior(
            _with_bias(_features(model, network, x)),
            y,
            weights,
            prior_precision=prior_precision,
            noise_variance=None,
            num_evidence_steps=num_evidence_steps,
        )
        return network, last_layer

    def predict(params, x, *, key):
        network, last_layer = params
        features_M_H = _features(model, network, x)
        return _regression_samples(last_layer, features_M_H, num_samples, key=key)

    def embed(params, x, *, key=None):
        del key
        return _features(model, params[0], x)[None]

    return Posterior(fit, predict, embed)


def mlp_features(model: MLP, params: PyTree) -> FeatureFn:
    """The penultimate ReLU activations ``[M, H]`` of a trained :class:`MLP` as ``feature_fn``.

    Args:
      model: the :class:`MLP`, with at least one hidden layer.
      params: one member's parameters (for a trained ensemble, ``jax.tree.map(lambda p:
        p[k], params)``).
    """
    if not model.hidden:
        raise ValueError(f"model must have a hidden layer; got hidden={model.hidden!r}")
    L = len(model.hidden)
    body = MLP(num_classes=model.hidden[-1], hidden=tuple(model.hidden[:-1]))
    body_params = {"params": {f"Dense_{i}": params["params"][f"Dense_{i}"] for i in range(L)}}

    def feature_fn(x):
        return nn.relu(cast(Array, body.apply(body_params, x)))  # no mutable collections

    return feature_fn
