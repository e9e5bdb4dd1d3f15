"""jaxal: Bayesian active learning in JAX.

Acquisition functions are pure, ``jit``- and ``vmap``-compatible functions over posterior
samples. ``log_probs`` is ``[K, N, C]`` (samples, pool points, classes) in natural logs.
"""

from jaxal import (
    check as check,
    data as data,
    posterior as posterior,
    scores as scores,
    select as select,
)

__version__ = "0.1.0"

__all__ = ["__version__", "check", "data", "posterior", "scores", "select"]
