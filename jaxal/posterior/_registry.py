"""Posteriors by name, for the command line and configuration files.

Each entry builds a :class:`~jaxal.posterior.Posterior` for a classification problem from a
few common settings; a builder ignores settings that do not apply to it, and the numpyro
BNNs (small-problem gold standards) use at most 16 hidden units.
"""

import optax

from jaxal._registry import Registry
from jaxal.posterior._bnn import bnn_nuts, bnn_svi
from jaxal.posterior._dropout import DropoutMLP, mc_dropout
from jaxal.posterior._ensemble import MLP, ensemble
from jaxal.posterior._interface import Posterior

POSTERIORS = Registry("posterior")
register = POSTERIORS.register
names = POSTERIORS.names


def build(
    name: str,
    *,
    num_classes: int,
    num_samples: int = 5,
    hidden: int = 128,
    num_steps: int = 300,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
) -> Posterior:
    """The posterior ``name`` with ``K = num_samples`` samples; ``ValueError`` for unknown names.

    Args:
      name: one of :func:`names`.
      num_classes: ``C``.
      num_samples: ensemble members, dropout masks or posterior draws.
      hidden: hidden-layer width of the network.
      num_steps, batch_size, learning_rate: Adam training settings (SVI uses ``num_steps``).
    """
    return POSTERIORS.get(name)(
        num_classes=num_classes,
        num_samples=num_samples,
        hidden=hidden,
        num_steps=num_steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
    )


@register("ensemble")
def _ensemble(*, num_classes, num_samples, hidden, num_steps, batch_size, learning_rate):
    model = MLP(num_classes=num_classes, hidden=(hidden,))
    return ensemble(
        model,
        num_samples,
        optimizer=optax.adam(learning_rate),
        num_steps=num_steps,
        batch_size=batch_size,
    )


@register("mc-dropout")
def _mc_dropout(*, num_classes, num_samples, hidden, num_steps, batch_size, learning_rate):
    model = DropoutMLP(num_classes=num_classes, hidden=(hidden,))
    return mc_dropout(
        model,
        num_samples,
        optimizer=optax.adam(learning_rate),
        num_steps=num_steps,
        batch_size=batch_size,
    )


@register("bnn-svi")
def _bnn_svi(*, num_classes, num_samples, hidden, num_steps, batch_size, learning_rate):
    del batch_size  # full-batch SVI
    return bnn_svi(
        num_classes,
        num_samples,
        optimizer=optax.adam(10 * learning_rate),
        num_steps=num_steps,
        hidden=min(hidden, 16),
    )


@register("bnn-nuts")
def _bnn_nuts(*, num_classes, num_samples, hidden, num_steps, batch_size, learning_rate):
    del num_steps, batch_size, learning_rate
    return bnn_nuts(num_classes, num_samples, hidden=min(hidden, 16))
