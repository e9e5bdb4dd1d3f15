r"""A small Bayesian MLP in numpyro, fitted by SVI or NUTS inside ``jit``.

The model is a one-hidden-layer tanh network with i.i.d. Normal priors on every weight and
bias, and a categorical likelihood whose per-point log-likelihoods are multiplied by the
``weights`` (a 0/1 labelled mask over a fixed pool):

.. math::
    \theta \sim \mathcal N(0, \sigma_p^2 I), \qquad
    \log p(\theta, y) = \log p(\theta)
      + \sum_n w_n \log \operatorname{softmax}(f_\theta(x_n))_{y_n},
    \qquad f_\theta(x) = W_2^\top \tanh(W_1^\top x + b_1) + b_2.

Points of weight 0 contribute exactly 0 to the log density and its gradient, and shapes
never change, so one compiled ``fit`` serves every active-learning round. With NUTS this is
the small-problem "gold standard" posterior to compare cheaper approximations against.

Both posteriors' ``params`` are ``K`` posterior samples: a dict of the sites ``w1 [K, D, H]``,
``b1 [K, H]``, ``w2 [K, H, C]``, ``b2 [K, C]``; ``predict`` (``[K, M, C]`` log-probs),
``embed`` (the ``[K, M, H]`` hidden activations :math:`\tanh(W_1^\top x + b_1)`, the output
layer's input) and ``apply`` (the ``[K, M, C]`` logits) are deterministic given them.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
import optax
from jaxtyping import Array, Float, Int
from numpyro.infer import SVI, Trace_ELBO, autoguide
from numpyro.infer.hmc import hmc
from numpyro.infer.util import initialize_model
from numpyro.optim import optax_to_numpyro

from jaxal import check
from jaxal.posterior._interface import Posterior
from jaxal.posterior._make import posterior_factory

Samples = dict[str, Array]
"""Posterior samples of the BNN's sites, each with a leading ``K`` axis."""


def _allow_rank_promotion(fn: Callable) -> Callable:
    """Run ``fn`` with implicit rank promotion, which numpyro's internals rely on.

    Lets ``fit`` work for callers (and tests) that set ``jax_numpy_rank_promotion="raise"``.
    """

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with jax.numpy_rank_promotion("allow"):
            return fn(*args, **kwargs)

    return wrapped


def _hidden(theta: Samples, x: Float[Array, "M D"]) -> Float[Array, "M H"]:
    return jnp.tanh(x @ theta["w1"] + theta["b1"][None])


def _logits(theta: Samples, x: Float[Array, "M D"]) -> Float[Array, "M C"]:
    return _hidden(theta, x) @ theta["w2"] + theta["b2"][None]


def bnn_model(
    x: Float[Array, "N D"],
    y: Int[Array, " N"],
    weights: Float[Array, " N"],
    *,
    num_classes: int,
    hidden: int,
    prior_scale: float,
) -> None:
    r"""The numpyro model: Normal priors, weighted categorical likelihood (module docstring).

    Args:
      x: ``[N, D]`` pool features.
      y: ``[N]`` labels in ``[0, C)``; where ``weights == 0`` any valid class (multiplied by 0).
      weights: ``[N]`` non-negative likelihood weights (a 0/1 labelled mask).
      num_classes: ``C``.
      hidden: ``H``, the width of the hidden layer.
      prior_scale: :math:`\sigma_p`, the prior standard deviation of every weight and bias.
    """
    D = x.shape[-1]
    shapes = {"w1": (D, hidden), "b1": (hidden,), "w2": (hidden, num_classes), "b2": (num_classes,)}
    theta = {
        name: jnp.asarray(
            numpyro.sample(
                name, dist.Normal(jnp.zeros(shape, x.dtype), prior_scale).to_event(len(shape))
            )
        )
        for name, shape in shapes.items()
    }
    log_lik_N = dist.CategoricalLogits(logits=_logits(theta, x)).log_prob(y)
    numpyro.factor("log_likelihood", jnp.sum(weights * log_lik_N))


def bnn_log_probs(samples: Samples, x: Float[Array, "M D"]) -> Float[Array, "K M C"]:
    """Per-sample predictive log-probabilities ``log p(y = c | x_m, theta_k)``: ``[K, M, C]``."""
    return jax.vmap(lambda theta: jax.nn.log_softmax(_logits(theta, x), axis=-1))(samples)


def _model(num_classes: int, hidden: int, prior_scale: float) -> Callable[..., None]:
    check.integer(num_classes, "num_classes")
    check.integer(hidden, "hidden")
    check.scalar(prior_scale, "prior_scale")

    def model(x, y, weights):
        bnn_model(x, y, weights, num_classes=num_classes, hidden=hidden, prior_scale=prior_scale)

    return model


def _predict(samples, x, *, key=None):
    del key  # deterministic given the samples
    return bnn_log_probs(samples, x)


def _embed(samples, x, *, key=None):
    del key
    return jax.vmap(_hidden, in_axes=(0, None))(samples, x)


def _apply(samples, x):
    return jax.vmap(_logits, in_axes=(0, None))(samples, x)


def _posterior(fit: Callable) -> Posterior:
    """A BNN posterior: ``fit`` draws the ``K`` samples (with implicit rank promotion, which
    numpyro's internals rely on), the rest reads them (module doc)."""
    return Posterior(_allow_rank_promotion(fit), _predict, _embed, _apply)


@posterior_factory
def bnn_svi(
    num_classes: int,
    num_samples: int,
    *,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    hidden: int = 16,
    prior_scale: float = 1.0,
    guide: Callable[[Callable[..., None]], autoguide.AutoGuide] = autoguide.AutoDiagonalNormal,
) -> Posterior:
    r"""The Bayesian MLP with a Gaussian autoguide fitted by SVI, as a ``Posterior``.

    ``fit`` maximises the ELBO :math:`\mathbb E_q[\log p(\theta, y) - \log q(\theta)]` with
    ``num_steps`` single-particle :class:`~numpyro.infer.Trace_ELBO` steps of ``optimizer``
    in one ``lax.scan`` over ``SVI.update`` (``SVI.run`` cannot be traced), then draws the
    ``K = num_samples`` samples that ``predict`` turns into ``[K, M, C]`` log-probs.

    Args:
      num_classes: ``C``.
      num_samples: ``K >= 1`` guide samples returned by ``fit``.
      optimizer: an optax transformation, e.g. ``optax.adam(1e-2)``.
      num_steps: SVI steps per fit (static).
      hidden: ``H``, the hidden width.
      prior_scale: prior standard deviation of every weight and bias.
      guide: a numpyro autoguide class; ``AutoDiagonalNormal`` (default) or ``AutoNormal``
        are mean-field, ``AutoLowRankMultivariateNormal`` adds correlations.
    """
    check.integer(num_samples, "num_samples")
    check.integer(num_steps, "num_steps")
    model = _model(num_classes, hidden, prior_scale)

    def fit(x, y, weights, *, key):
        init_key, sample_key = jax.random.split(key)
        q = guide(model)  # a fresh guide per trace: autoguides cache their prototype trace
        svi = SVI(model, q, optax_to_numpyro(optimizer), Trace_ELBO())

        def step(state, _):
            return svi.update(state, x, y, weights)[0], None

        state, _ = jax.lax.scan(step, svi.init(init_key, x, y, weights), length=num_steps)
        return q.sample_posterior(sample_key, svi.get_params(state), sample_shape=(num_samples,))

    return _posterior(fit)


@posterior_factory
def bnn_nuts(
    num_classes: int,
    num_samples: int,
    *,
    num_warmup: int = 200,
    thinning: int = 1,
    hidden: int = 16,
    prior_scale: float = 1.0,
) -> Posterior:
    r"""The Bayesian MLP sampled by NUTS (Hoffman & Gelman, 2014), as a ``Posterior``.

    The small-problem gold standard: asymptotically exact samples from the posterior, at
    a cost (every step is up to :math:`2^{10}` gradient evaluations over the whole pool) that
    limits it to small pools and networks. ``fit`` runs one chain with numpyro's functional
    kernels (``initialize_model`` and ``hmc(potential_fn, algo="NUTS")``, whose ``MCMC``
    driver cannot be traced): ``num_warmup`` steps adapting the step size and a diagonal
    mass matrix, then ``num_samples * thinning`` steps keeping every ``thinning``-th, all in
    ``lax.scan`` so ``fit`` compiles once. A single chain explores one of the posterior's
    (permutation-symmetric) modes, which leaves the predictive unchanged.

    Args:
      num_classes: ``C``.
      num_samples: ``K >= 1`` retained samples (static).
      num_warmup: adaptation steps, discarded (static).
      thinning: keep every ``thinning``-th sample after warm-up (static).
      hidden: ``H``, the hidden width.
      prior_scale: prior standard deviation of every weight and bias.
    """
    check.integer(num_samples, "num_samples")
    check.integer(num_warmup, "num_warmup")
    check.integer(thinning, "thinning")
    model = _model(num_classes, hidden, prior_scale)

    def fit(x, y, weights, *, key):
        init_key, chain_key = jax.random.split(key)
        init, potential_fn, postprocess_fn, _ = initialize_model(
            init_key, model, model_args=(x, y, weights), dynamic_args=False
        )
        init_kernel, sample_kernel = hmc(potential_fn, algo="NUTS")

        def run(state, length):
            return jax.lax.scan(lambda s, _: (sample_kernel(s), None), state, length=length)[0]

        def keep(state, _):
            state = run(state, thinning)
            return state, state.z

        state = run(init_kernel(init, num_warmup=num_warmup, rng_key=chain_key), num_warmup)
        _, z_K = jax.lax.scan(keep, state, length=num_samples)
        return jax.vmap(postprocess_fn)(z_K)

    return _posterior(fit)
