"""Shape aliases used across jaxal.

Letters, fixed across the library:

* ``K`` posterior samples (ensemble members, dropout masks, MCMC draws),
* ``N`` pool points, ``M`` target / test points or sampled configurations,
* ``C`` classes, ``B`` batch size, ``D`` feature dimension.

``log_probs`` is always ``[K, N, C]`` natural-log class probabilities; scores are in nats.
"""

from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

LogProbs = Float[ArrayLike, "K N C"]
"""Per-sample predictive log-probabilities ``log p(y = c | x_n, theta_k)``."""

GaussianMean = Float[ArrayLike, "K N"]
"""Per-sample predictive means ``mu_k(x_n)`` (regression)."""

GaussianVar = Float[ArrayLike, "K N"]
"""Per-sample predictive variances ``s2_k(x_n)`` (regression, aleatoric noise included)."""

Scores = Float[ArrayLike, " N"]
"""Per-point acquisition scores ``[N]`` as a selection takes them (higher = picked first)."""

Available = Bool[ArrayLike, " N"]
Indices = Int[Array, " B"]
Key = PRNGKeyArray

__all__ = [
    "Array",
    "ArrayLike",
    "Available",
    "GaussianMean",
    "GaussianVar",
    "Indices",
    "Key",
    "LogProbs",
    "Scores",
]
