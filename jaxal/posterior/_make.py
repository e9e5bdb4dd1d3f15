"""How the factories build a :class:`Posterior`: identified by configuration, built once.

A factory decorated with :func:`posterior_factory` gets as ``config`` its name and the
:func:`~jaxal._config.fingerprint` of each of its arguments, so two calls with equal
arguments (a fresh ``MLP(...)`` and a fresh ``optax.adam(1e-3)``) give equal posteriors, and
``jax.jit`` programs that take the posterior as a static argument are reused. Functions are
traced programs' cache keys too (``jax.jit(post.fit)`` is looked up by the function object),
so the second call returns the very posterior the first built, as long as that one is alive:
its ``fit``, ``predict``, ... are the same function objects and every program compiled for
them is reused. The table holds posteriors weakly, so nothing is kept alive by it.
"""

import dataclasses
import functools
import inspect
import weakref
from collections.abc import Callable, Hashable
from typing import Any, ParamSpec

from jaxal._config import fingerprint
from jaxal.posterior._interface import Posterior


class _Key:
    """A table key: the config with its hash computed once (removing an entry hashes nothing,
    so a posterior that dies at interpreter exit does not call into half torn-down modules).

    Not a :class:`jaxal._config.Static`: the config is fingerprinted already, and ``Static``
    hashes on every call."""

    __slots__ = ("config", "hash")

    def __init__(self, config: Any):
        self.config = config
        self.hash = hash(config)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and other.config == self.config

    def __hash__(self) -> int:
        return self.hash


_BUILT: "weakref.WeakValueDictionary[_Key, Posterior]" = weakref.WeakValueDictionary()


Settings = ParamSpec("Settings")


def posterior_factory(
    factory: Callable[Settings, Posterior],
) -> Callable[Settings, Posterior]:
    """Decorate a factory so that equal arguments give one :class:`Posterior` (module doc).

    The decorated factory returns ``factory``'s posterior with ``config = (name,
    (argument, fingerprint(value)), ...)`` over every argument of the call in signature order,
    defaults included (every argument changes what the functions compute), ``name`` the
    factory's ``__name__``; or the live posterior of an equal ``config``, if there is one.
    """
    signature = inspect.signature(factory)

    @functools.wraps(factory)
    def build(*args: Settings.args, **kwargs: Settings.kwargs) -> Posterior:
        posterior = factory(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        settings = ((name, fingerprint(value)) for name, value in bound.arguments.items())
        config: Hashable = (factory.__name__, *settings)
        return _BUILT.setdefault(_Key(config), dataclasses.replace(posterior, config=config))

    return build
