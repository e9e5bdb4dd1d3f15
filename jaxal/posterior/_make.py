"""How the factories build a :class:`Posterior`: identified by configuration, built once.

A factory's ``config`` is its name and the :func:`~jaxal._config.fingerprint` of each
setting, so two calls with equal settings (a fresh ``MLP(...)`` and a fresh
``optax.adam(1e-3)``) give equal posteriors, and ``jax.jit`` programs that take the posterior
as a static argument are reused. Functions are traced programs' cache keys too (``jax.jit(
post.fit)`` is looked up by the function object), so the second call returns the very
posterior the first built, as long as that one is alive: its ``fit``, ``predict``, ...
are the same function objects and every program compiled for them is reused. The table
holds posteriors weakly, so nothing is kept alive by it.
"""

import weakref
from collections.abc import Callable
from typing import Any

from jaxal._config import fingerprint
from jaxal.posterior._interface import Posterior


class _Key:
    """A table key: the config with its hash computed once (removing an entry hashes nothing,
    so a posterior that dies at interpreter exit does not call into half torn-down modules)."""

    __slots__ = ("config", "hash")

    def __init__(self, config: Any):
        self.config = config
        self.hash = hash(config)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and other.config == self.config

    def __hash__(self) -> int:
        return self.hash


_BUILT: "weakref.WeakValueDictionary[_Key, Posterior]" = weakref.WeakValueDictionary()


def make_posterior(
    name: str,
    settings: dict[str, Any],
    *,
    fit: Callable[..., Any],
    predict: Callable[..., Any],
    embed: Callable[..., Any] | None = None,
    apply: Callable[..., Any] | None = None,
) -> Posterior:
    """The posterior of factory ``name`` with ``settings``: a live equal one if there is one.

    Args:
      name: the factory's name, the first entry of ``config``.
      settings: every argument that changes what the functions compute; ``config`` is
        ``(name, (setting, fingerprint(value)), ...)``.
      fit, predict, embed, apply: the :class:`Posterior`'s functions, used unless an equal
        posterior is still alive.
    """
    config = (name, *((setting, fingerprint(value)) for setting, value in settings.items()))
    posterior = Posterior(fit, predict, embed, apply, config=config)
    return _BUILT.setdefault(_Key(config), posterior)
