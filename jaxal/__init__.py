"""jaxal: Bayesian active learning in JAX.

Acquisition functions are pure, ``jit``- and ``vmap``-compatible functions over posterior
samples. ``log_probs`` is ``[K, N, C]`` (samples, pool points, classes) in natural logs.
"""

import importlib.metadata

from jaxal import (
    active_testing as active_testing,
    bench as bench,
    check as check,
    chunked as chunked,
    conformal as conformal,
    context as context,
    data as data,
    embeddings as embeddings,
    hsic as hsic,
    information as information,
    kernel_features as kernel_features,
    kernels as kernels,
    loop as loop,
    memory as memory,
    posterior as posterior,
    scores as scores,
    select as select,
    stats as stats,
    strategies as strategies,
    streaming as streaming,
    subpool as subpool,
    tailor as tailor,
)

try:  # one source: pyproject.toml's version, as installed
    __version__ = importlib.metadata.version("jaxal")
except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "active_testing",
    "bench",
    "check",
    "chunked",
    "conformal",
    "context",
    "data",
    "embeddings",
    "hsic",
    "information",
    "kernel_features",
    "kernels",
    "loop",
    "memory",
    "posterior",
    "scores",
    "select",
    "stats",
    "strategies",
    "streaming",
    "subpool",
    "tailor",
]
