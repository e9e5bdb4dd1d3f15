"""Posteriors by name and task, for the command line and configuration files.

Each entry builds a :class:`~jaxal.posterior.Posterior` from a few common settings; a
builder ignores settings that do not apply to it, and the numpyro BNNs (small-problem gold
standards) use at most 16 hidden units. A name belongs to one task or to both
(``"ensemble"`` is a classification and a regression ensemble). The task of a registered
dataset is :func:`jaxal.data.task_of`::

    post = jaxal.posterior.build(name, task=jaxal.data.task_of(dataset_name),
                                 num_classes=getattr(dataset, "num_classes", None))
"""

from collections.abc import Callable

import flax.linen as nn
import optax

from jaxal import check
from jaxal._registry import Registry
from jaxal.posterior._bnn import bnn_nuts, bnn_svi
from jaxal.posterior._dropout import DropoutMLP, mc_dropout
from jaxal.posterior._ensemble import MLP, ensemble, ensemble_regression
from jaxal.posterior._interface import Posterior
from jaxal.posterior._laplace import neural_linear_regression
from jaxal.posterior._models import ConvNet

TASKS = ("classification", "regression")

_POSTERIORS = {task: Registry(f"{task} posterior") for task in TASKS}


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}; got {task!r}")


def register(name: str, *, task: str) -> Callable[[Callable], Callable]:
    """Decorator registering a builder under ``name`` for ``task``; duplicates are refused.

    The builder takes the keyword arguments of :func:`build` (``num_classes`` is ``None``
    for regression) and returns a :class:`~jaxal.posterior.Posterior`.
    """
    _check_task(task)
    return _POSTERIORS[task].register(name)


def names(task: str | None = None) -> list[str]:
    """Sorted posterior names; with ``task``, those registered for that task."""
    if task is None:
        return sorted({name for registry in _POSTERIORS.values() for name in registry.names()})
    _check_task(task)
    return _POSTERIORS[task].names()


def build(
    name: str,
    *,
    task: str = "classification",
    num_classes: int | None = None,
    num_samples: int = 5,
    hidden: int = 128,
    num_steps: int = 300,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
) -> Posterior:
    """The posterior ``name`` for ``task`` with ``K = num_samples`` samples.

    Equal arguments give equal posteriors (the same object while the first is alive), so a
    rebuilt posterior reuses every program compiled for it.

    Args:
      name: one of ``names(task=task)``; ``ValueError`` listing them otherwise.
      task: ``"classification"`` (predictions ``[K, M, C]``) or ``"regression"``
        (``(mean, var)`` ``[K, M]``).
      num_classes: ``C``, required for classification; ignored for regression.
      num_samples: ensemble members, dropout masks or posterior draws.
      hidden: hidden-layer width of the network.
      num_steps, batch_size, learning_rate: Adam training settings (SVI uses ``num_steps``).

    >>> build("ensemble", task="regression").config[0]
    'ensemble_regression'
    """
    _check_task(task)
    if name not in _POSTERIORS[task].names():
        raise ValueError(f"unknown {task} posterior {name!r}; choose one of {names(task=task)}")
    if task == "classification":
        check.integer(num_classes, "num_classes")
    return _POSTERIORS[task].get(name)(
        num_classes=num_classes if task == "classification" else None,
        num_samples=num_samples,
        hidden=hidden,
        num_steps=num_steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
    )


def _trained(
    factory: Callable[..., Posterior],
    model: nn.Module,
    *,
    num_samples: int,
    num_steps: int,
    batch_size: int,
    learning_rate: float,
) -> Posterior:
    """``factory(model, num_samples, ...)`` of a network trained by Adam (:func:`build`)."""
    optimizer = optax.adam(learning_rate)
    return factory(
        model, num_samples, optimizer=optimizer, num_steps=num_steps, batch_size=batch_size
    )


@register("ensemble", task="classification")
def _ensemble(*, num_classes, hidden, **training):
    return _trained(ensemble, MLP(num_classes=num_classes, hidden=(hidden,)), **training)


@register("mc-dropout", task="classification")
def _mc_dropout(*, num_classes, hidden, **training):
    return _trained(mc_dropout, DropoutMLP(num_classes=num_classes, hidden=(hidden,)), **training)


@register("mc-dropout-cnn", task="classification")
def _mc_dropout_cnn(*, num_classes, hidden, **training):
    """The BatchBALD paper's MNIST CNN (:class:`~jaxal.posterior.ConvNet`, 28x28x1 rows) with
    MC dropout; ``hidden`` is its dense layer (the paper's 128)."""
    return _trained(mc_dropout, ConvNet(num_classes=num_classes, hidden=hidden), **training)


@register("bnn-svi", task="classification")
def _bnn_svi(*, num_classes, num_samples, hidden, num_steps, batch_size, learning_rate):
    del batch_size  # full-batch SVI
    return bnn_svi(
        num_classes,
        num_samples,
        optimizer=optax.adam(10 * learning_rate),
        num_steps=num_steps,
        hidden=min(hidden, 16),
    )


@register("bnn-nuts", task="classification")
def _bnn_nuts(*, num_classes, num_samples, hidden, num_steps, batch_size, learning_rate):
    del num_steps, batch_size, learning_rate
    return bnn_nuts(num_classes, num_samples, hidden=min(hidden, 16))


@register("ensemble", task="regression")
def _ensemble_regression(*, num_classes, hidden, **training):
    del num_classes
    return _trained(ensemble_regression, MLP(num_classes=1, hidden=(hidden,)), **training)


@register("bayesian-last-layer", task="regression")
def _bayesian_last_layer(*, num_classes, hidden, **training):
    """An MLP's trained features with an exact Bayesian last layer (neural linear)."""
    del num_classes
    return _trained(neural_linear_regression, MLP(num_classes=1, hidden=(hidden,)), **training)
