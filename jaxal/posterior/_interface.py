"""The uniform posterior interface: a pair of pure functions, as optax pairs ``init``/``update``.

Any posterior (deep ensemble, MC dropout, numpyro BNN, last-layer Laplace, ...) is a
:class:`Posterior`; the active-learning loop and every acquisition function only see its
predictions, so any acquisition takes any posterior.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxal import check
from jaxal.typing import Array, ArrayLike


class Posterior(NamedTuple):
    """An approximate posterior over a model's parameters, as two pure, jittable functions.

    Attributes:
      fit: ``fit(x [N, D], y [N], weights [N], *, key) -> params``. Fits the posterior to the
        points with ``weights > 0`` (0/1 weights are a labelled mask over a fixed pool, so the
        shapes, and the compiled program, never change between active-learning rounds).
        ``params`` is any pytree (stacked ensemble members, MCMC samples, variational
        parameters, ...), with fixed shapes.
      predict: ``predict(params, x [M, D], *, key) -> log_probs [K, M, C]`` posterior
        predictive samples (classification), or ``(mean, var)`` each ``[K, M]`` (regression).
        The key drives stochastic predictions (dropout masks, weight samples); deterministic
        posteriors ignore it.
    """

    fit: Callable[..., Any]
    predict: Callable[..., Any]


def as_log_probs(x: ArrayLike, *, name: str = "log_probs") -> Array:
    """Bring ``[K, N, C]`` log-probabilities computed elsewhere into jaxal, validated.

    Accepts a jax array, a numpy array, anything with ``__array__`` (e.g. a CPU torch tensor)
    or with ``__dlpack__`` (e.g. a GPU tensor, zero-copy where the devices allow).
    """
    if not isinstance(x, jax.Array) and hasattr(x, "__dlpack__"):
        try:
            x = jnp.from_dlpack(x)
        except (TypeError, RuntimeError, BufferError):
            x = jnp.asarray(x)
    return check.log_probs(x, name=name, on_trace="skip")
