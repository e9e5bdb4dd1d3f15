"""The uniform posterior interface: a pair of pure functions, as optax pairs ``init``/``update``.

Any posterior (deep ensemble, MC dropout, numpyro BNN, last-layer Laplace, ...) is a
:class:`Posterior`; the active-learning loop and every acquisition function only see what it
offers (predictions, and optionally last-layer features and the network's outputs), so any
acquisition takes any posterior that offers what the acquisition needs.
"""

import dataclasses
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp

from jaxal import check
from jaxal.typing import Array, ArrayLike


@dataclasses.dataclass(frozen=True, eq=False)
class Posterior:
    """An approximate posterior over a model's parameters, as pure, jittable functions.

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
      embed: optional ``embed(params, x [M, D], *, key) -> [K, M, H]``: each posterior
        sample's last-layer features (the input of the network's output layer), with the same
        randomness as ``predict`` for the same key. Needed by BADGE, Core-Set, TypiClust,
        ProbCover and the last-layer kernels; ``None`` when the posterior has no network.
      apply: optional ``apply(params, x [M, D]) -> [K, M, O]``: each sample's raw network
        outputs (logits, or regression means), differentiable in ``params``; the sketched
        gradient (empirical NTK) features are its Jacobian. ``None`` when not offered.
      config: what makes two posteriors the same (hashable), e.g. the factory's name and
        settings: posteriors with equal ``config`` compare and hash equal, so a rebuilt
        posterior reuses the programs compiled for the first (``jax.jit`` static
        arguments are looked up by hash and equality). ``None``: equal only to itself. A
        posterior changed with ``dataclasses.replace`` keeps its ``config``: pass
        ``config=None`` (or a new one) when the functions change.
    """

    fit: Callable[..., Any]
    predict: Callable[..., Any]
    embed: Callable[..., Array] | None = None
    apply: Callable[..., Array] | None = None
    config: Hashable | None = None

    def _offers(self) -> tuple[bool, bool]:
        return self.embed is not None, self.apply is not None

    def _identity(self) -> Hashable:
        if self.config is None:
            return (id(self.fit), id(self.predict), id(self.embed), id(self.apply))
        return (self.config, self._offers())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Posterior):
            return NotImplemented
        if self.config is None or other.config is None:
            return self is other
        return self.config == other.config and self._offers() == other._offers()

    def __hash__(self) -> int:
        return hash(self._identity())


def as_log_probs(x: ArrayLike | Any, *, name: str = "log_probs") -> Array:
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
