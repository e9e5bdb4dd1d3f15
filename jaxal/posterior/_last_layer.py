r"""Last-layer features of any flax model: the input of its final ``nn.Dense``.

BADGE, Core-Set, TypiClust, ProbCover and the last-layer kernels work on the features
:math:`h(x)` that a network's output layer maps to its outputs, :math:`f(x) = W^\top h(x)
+ b`. :func:`last_layer_inputs` records them with :func:`flax.linen.intercept_methods`
while the model runs, so any linen model whose head is an ``nn.Dense`` (an MLP, a CNN with a
dense head, ...) offers them without defining an extra method.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import flax.linen as nn
from jaxtyping import Array, Float, PyTree


def module_input(args: tuple, kwargs: dict[str, Any]) -> Any:
    """The first argument (``inputs``) of an intercepted ``Module.__call__``."""
    return args[0] if args else kwargs["inputs"]


def last_layer_inputs(
    model: nn.Module, params: PyTree, x: Float[Array, "M ..."], **apply_kwargs: Any
) -> Float[Array, "M H"]:
    r"""The input :math:`h(x)` of the last ``nn.Dense`` that ``model`` calls: ``[M, H]``.

    Runs ``model.apply(params, x, **apply_kwargs)`` and records the input of every
    ``nn.Dense.__call__`` (subclasses included); the last one is the output layer's, so the
    model's outputs are ``h @ kernel + bias`` of that layer. Under ``jit`` the layers after
    it are never computed. Randomness (e.g. dropout rngs in ``apply_kwargs``) is consumed
    exactly as in a plain ``model.apply``, so the features belong to the same forward pass.

    Args:
      model: a flax linen module whose output layer is an ``nn.Dense``.
      params: its variables (``{"params": ...}``).
      x: inputs ``[M, ...]`` (``[M, D]`` for an MLP, ``[M, H, W, C]`` for a CNN).
      **apply_kwargs: passed to ``model.apply`` (e.g. ``rngs={"dropout": key}``).

    Returns:
      The last ``nn.Dense``'s input: ``[M, H]`` (more axes if that layer sees more).

    Raises:
      ValueError: if ``model`` calls no ``nn.Dense``.

    >>> import jax
    >>> from jaxal.posterior import MLP
    >>> model = MLP(num_classes=3, hidden=(8,))
    >>> params = model.init(jax.random.key(0), jax.numpy.zeros((1, 2)))
    >>> last_layer_inputs(model, params, jax.numpy.zeros((5, 2))).shape
    (5, 8)
    """
    inputs = []

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, nn.Dense) and context.method_name == "__call__":
            inputs.append(module_input(args, kwargs))
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        model.apply(params, x, **apply_kwargs)
    if not inputs:
        raise ValueError(f"model calls no nn.Dense, so it has no last-layer features: {model}")
    return inputs[-1]


def _without_dropout(next_fun, args, kwargs, context):
    """A flax method interceptor that makes every ``nn.Dropout`` the identity."""
    if isinstance(context.module, nn.Dropout) and context.method_name == "__call__":
        return module_input(args, kwargs)
    return next_fun(*args, **kwargs)


@contextmanager
def dropout_off() -> Iterator[None]:
    """Within this context every ``nn.Dropout`` is the identity (and needs no rng): the mean
    network of inverted dropout."""
    with nn.intercept_methods(_without_dropout):
        yield
