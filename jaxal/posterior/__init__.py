"""Approximate posteriors that produce posterior predictive samples for the acquisitions.

Every posterior is a :class:`Posterior` (``fit``, ``predict``, optional ``embed`` and
``apply``, and a ``config``): classification predictions are ``log_probs [K, N, C]``,
regression predictions ``(mean, var)`` each ``[K, N]``; ``embed`` gives each sample's
last-layer features ``[K, N, H]`` (:func:`last_layer_inputs` of any flax model with a dense
head), ``apply`` its raw outputs ``[K, N, O]``. Factories: :func:`ensemble`,
:func:`ensemble_regression`, :func:`mc_dropout`, :func:`bnn_svi`, :func:`bnn_nuts`,
:func:`laplace_last_layer`, :func:`bayesian_last_layer_regression` and
:func:`neural_linear_regression`; equal settings build equal posteriors, which reuse the
programs compiled for the first. By name and task: :func:`build`, :func:`names`. Log-probs
computed elsewhere enter through :func:`as_log_probs`.

Networks: :class:`MLP`, :class:`DropoutMLP`, and the papers' image models :class:`ConvNet`
(the BatchBALD and EPIG MNIST CNN with MC dropout) and :class:`ResNet` (EPIG's CIFAR-10
ResNet-18, any depth and width); every posterior built on a flax module takes any of them.
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
    neural_linear_regression as neural_linear_regression,
    sample_gaussian as sample_gaussian,
    softmax_precision as softmax_precision,
)
from jaxal.posterior._last_layer import last_layer_inputs as last_layer_inputs
from jaxal.posterior._models import ConvNet as ConvNet, ResNet as ResNet
from jaxal.posterior._registry import build as build, names as names, register as register

__all__ = [
    "build",
    "names",
    "register",
    "ConvNet",
    "DropoutMLP",
    "GaussianWeights",
    "LinearRegressionPosterior",
    "MLP",
    "Posterior",
    "RegressionEnsembleParams",
    "ResNet",
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
    "last_layer_inputs",
    "linear_regression_posterior",
    "mc_dropout",
    "mlp_features",
    "neural_linear_regression",
    "predictive_log_probs",
    "sample_gaussian",
    "softmax_precision",
    "train_dropout",
    "train_ensemble",
]
