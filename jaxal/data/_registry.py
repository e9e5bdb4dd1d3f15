"""The dataset types, the registry of datasets by name and :func:`load`."""

from typing import NamedTuple

from jaxtyping import Array, Float, Int

from jaxal import check
from jaxal._registry import Registry
from jaxal.typing import Key

_DATASETS = Registry("dataset")
register = _DATASETS.register
names = _DATASETS.names


def task_of(name: str) -> str:
    """``"classification"`` or ``"regression"``: the task of the registered dataset ``name``."""
    return _DATASETS.tags(name)["task"]


class Dataset(NamedTuple):
    """A pool / test split: ``x_pool [N, D]``, ``y_pool [N]``, ``x_test [M, D]``, ``y_test [M]``."""

    x_pool: Float[Array, "N D"]
    y_pool: Int[Array, " N"]
    x_test: Float[Array, "M D"]
    y_test: Int[Array, " M"]
    num_classes: int


class RegressionDataset(NamedTuple):
    """A pool / test split with real targets: ``x [N, D]`` / ``[M, D]``, ``y [N]`` / ``[M]``."""

    x_pool: Float[Array, "N D"]
    y_pool: Float[Array, " N"]
    x_test: Float[Array, "M D"]
    y_test: Float[Array, " M"]


def load(name: str, *, key: Key, **kwargs) -> Dataset | RegressionDataset:
    """The registered dataset ``name`` built with ``key`` and ``kwargs``.

    Args:
      name: one of :func:`names`; ``ValueError`` listing them otherwise.
      key: PRNG key passed on to the dataset function.
      **kwargs: its keyword arguments (sizes, noise levels, ``test_fraction``).

    Returns:
      A :class:`Dataset` (``task="classification"``) or :class:`RegressionDataset`.
    """
    check.key(key)
    return _DATASETS.get(name)(key=key, **kwargs)
