"""Approximate posteriors that produce posterior predictive samples for the acquisitions.

Every posterior is a :class:`Posterior` (``fit``, ``predict``): classification predictions are
``log_probs [K, N, C]``, regression predictions ``(mean, var)`` each ``[K, N]``. Log-probs
computed elsewhere enter through :func:`as_log_probs`. Factories: :func:`ensemble`,
:func:`ensemble_regression`, :func:`mc_dropout`, :func:`bnn_svi`, :func:`bnn_nuts`,
:func:`laplace_last_layer` and :func:`bayesian_last_layer_regression`.
"""

from jaxal.posterior._bnn import (
    bnn_log_probs as bnn_log_probs,
    bnn_model as bnn_model,
    bnn_nuts as bnn_nuts,
    bnn_svi as bnn_svi,
)
from jaxal.posterior._dropout import (
    DropoutMLP as DropoutMLP,
    dropout_log_probs as dropout_log_probs,
    mc_dropout as mc_dropout,
    train_dropout as train_dropout,
)
from jaxal.posterior._ensemble import (
    MLP as MLP,
    RegressionEnsembleParams as RegressionEnsembleParams,
    ensemble as ensemble,
    ensemble_log_probs as ensemble_log_probs,
    ensemble_regression as ensemble_regression,
    init_ensemble as init_ensemble,
    predictive_log_probs as predictive_log_probs,
    train_ensemble as train_ensemble,
)
from jaxal.posterior._interface import Posterior as Posterior, as_log_probs as as_log_probs
from jaxal.posterior._laplace import (
    GaussianWeights as GaussianWeights,
    LinearRegressionPosterior as LinearRegressionPosterior,
    bayesian_last_layer_regression as bayesian_last_layer_regression,
    laplace_last_layer as laplace_last_layer,
    linear_regression_posterior as linear_regression_posterior,
    mlp_features as mlp_features,
    sample_gaussian as sample_gaussian,
    softmax_precision as softmax_precision,
)
from jaxal.posterior._registry import build as build, names as names, register as register

__all__ = [
    "build",
    "names",
    "register",
    "DropoutMLP",
    "GaussianWeights",
    "LinearRegressionPosterior",
    "MLP",
    "Posterior",
    "RegressionEnsembleParams",
    "as_log_probs",
    "bayesian_last_layer_regression",
    "bnn_log_probs",
    "bnn_model",
    "bnn_nuts",
    "bnn_svi",
    "dropout_log_probs",
    "ensemble",
    "ensemble_log_probs",
    "ensemble_regression",
    "init_ensemble",
    "laplace_last_layer",
    "linear_regression_posterior",
    "mc_dropout",
    "mlp_features",
    "predictive_log_probs",
    "sample_gaussian",
    "softmax_precision",
    "train_dropout",
    "train_ensemble",
]
