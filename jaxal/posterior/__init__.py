"""Approximate posteriors that produce ``[K, N, C]`` samples for the acquisition scores.

A deep ensemble of ``K`` small MLPs, stacked along a leading ``K`` axis and trained together
under ``jax.vmap`` in one compiled program.
"""

from jaxal.posterior._ensemble import (
    MLP as MLP,
    ensemble_log_probs as ensemble_log_probs,
    init_ensemble as init_ensemble,
    predictive_log_probs as predictive_log_probs,
    train_ensemble as train_ensemble,
)

__all__ = [
    "MLP",
    "ensemble_log_probs",
    "init_ensemble",
    "predictive_log_probs",
    "train_ensemble",
]
