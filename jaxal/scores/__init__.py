"""Acquisition scores: pure functions of posterior samples, higher = more worth labelling.

Classification scores take ``log_probs`` ``[K, N, C]`` and return ``[N]``; regression scores
take per-sample Gaussian ``mean`` and ``var`` ``[K, N]``. All work under ``jit`` and ``vmap``.
"""

from jaxal.information import entropy as entropy
from jaxal.scores._classification import (
    bald as bald,
    expected_entropy as expected_entropy,
    least_confidence as least_confidence,
    margin as margin,
    mean_std as mean_std,
    predictive_entropy as predictive_entropy,
    variation_ratios as variation_ratios,
)
from jaxal.scores._epig import (
    epig as epig,
    gaussian_epig as gaussian_epig,
    sample_targets as sample_targets,
)
from jaxal.scores._registry import get as get, names as names, register as register
from jaxal.scores._regression import (
    epistemic_variance as epistemic_variance,
    gaussian_bald as gaussian_bald,
    predictive_variance as predictive_variance,
)

__all__ = [
    "bald",
    "entropy",
    "epig",
    "epistemic_variance",
    "expected_entropy",
    "gaussian_bald",
    "gaussian_epig",
    "get",
    "least_confidence",
    "margin",
    "mean_std",
    "names",
    "predictive_entropy",
    "predictive_variance",
    "register",
    "sample_targets",
    "variation_ratios",
]
