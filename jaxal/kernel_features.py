r"""Kernels as finite feature maps for batch active learning in regression.

The kernel framework of Holzmüller, Zaverkin, Kästner and Steinwart ("A Framework and
Benchmark for Deep Batch Active Learning for Regression", JMLR 2023; reference code
``dholzmueller/bmdal_reg``) builds a kernel from a trained network (a *base kernel*),
transforms it, and hands it to a selection method (:func:`jaxal.select.kernel_batch`).
Here every kernel is given by finite features,

.. math:: k(x, x') = \phi(x) \cdot \phi(x'), \qquad \phi(x) \in \mathbb{R}^P,

held as one plain array ``phi`` ``[N, P]`` over the **whole pool**, labelled points
included. The labelled (training) set is a bool mask ``labelled`` ``[N]`` over the same
rows, so every shape is fixed from one active-learning round to the next and a round
compiles once. Every kernel value the selection methods need is a dot product of rows:
nothing is ever ``[N, N]``, and no shape depends on the number of labelled points ``L``.

**Base kernels.** The last-layer kernel (``ll``) is the network's penultimate activations
themselves: pass them as ``phi`` (for a posterior of :mod:`jaxal.posterior`, the round's
``"last-layer"`` features of :mod:`jaxal.context`); there is no wrapper for it. The others
are :func:`gradient` (``grad``: the gradient of the output with respect to all parameters,
sketched to ``dim`` random directions) and :func:`nngp` (random features of a wide random
ReLU network, a Monte Carlo version of :func:`jaxal.kernels.infinite_width`
``(kind="nngp")``).

**Transforms** (pure ``[N, P] -> [N, P']``, jittable and vmappable with the mask traced):

* :func:`scale`: :math:`k \to k / \bar k`, :math:`\bar k` the mean of :math:`k(x, x)` over
  the labelled rows (over all rows when none is labelled);
* :func:`sketch`: :math:`\phi \to G^\top \phi / \sqrt{m}`, a Gaussian random projection to
  ``m = dim`` features (an unbiased estimate of :math:`k`);
* :func:`posterior`: the GP posterior covariance given the labelled rows :math:`X_T` with
  noise variance :math:`\sigma^2`,

  .. math:: k_{\text{post}}(x, x') = k(x, x') - k(x, X_T)(K_{TT} + \sigma^2 I)^{-1} k(X_T, x')
            = \phi_{\text{post}}(x) \cdot \phi_{\text{post}}(x'), \quad
            \phi_{\text{post}}(x) = \sigma (\Phi_T^\top \Phi_T + \sigma^2 I)^{-1/2} \phi(x)

  (Woodbury), with :math:`\Phi_T^\top \Phi_T = \Phi^\top \operatorname{diag}(\text{labelled})
  \Phi` from the masked rows and the eigendecomposition of that ``[P, P]`` matrix; every
  row is transformed, labelled rows too;
* :func:`ensemble`: the sum of kernels (e.g. of several networks), i.e. concatenated
  features.

The paper's best configuration, LCMD-TP on the sketched gradient kernel, reads::

    phi = kernel_features.gradient(model.apply, params, x_pool, key=key, dim=512)
    batch = jaxal.select.kernel_batch(phi, 100, method="lcmd", labelled=labelled)

and BAIT-FB-P as in the paper (bmdal's ``("train", [sigma, None])`` transform is scale, then
posterior)::

    post = posterior(scale(phi, labelled=labelled), labelled=labelled, noise=1e-6)
    batch = jaxal.select.kernel_batch(post, b, method="bait", labelled=labelled)

**Differences from bmdal_reg.** bmdal's ``nngp`` and ``ntk`` base kernels are evaluated
in closed form (infinite features); here :func:`nngp` is a random-feature estimate
(use :func:`jaxal.kernels.infinite_width` with :func:`jaxal.select.ev_gp` for the closed
form), and there is no ``ntk``, ``laplace`` or ``acs-*`` kernel. The posterior uses a
symmetric eigendecomposition instead of bmdal's (jittered) Cholesky factor; both give the
same kernel. ``noise`` is the variance :math:`\sigma^2` (bmdal passes the standard
deviation); the default ``1e-6`` is the paper's (version 2). Like bmdal, which switches to
float64 for the posterior, use float64 (``jax_enable_x64``) with noise this small.

Shapes: ``N`` pool points (labelled or not), ``P`` features of the kernel, ``D`` input
dimension of the network.
"""

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, ArrayLike, Bool, Float, PyTree

from jaxal import check
from jaxal._numerics import matmul
from jaxal.kernels import jacobian_features, jacobian_options, network_stds
from jaxal.typing import Key

DEFAULT_NOISE = 1e-6
"""The paper's noise variance :math:`\\sigma^2` for the posterior, MaxDet and BAIT."""

DEFAULT_SKETCH_DIM = 512
"""The paper's number of random-projection features (``rp-512``)."""

_ACTIVATIONS = {"relu": jax.nn.relu, "erf": jax.scipy.special.erf}

Labelled = Bool[ArrayLike, " N"]

__all__ = [
    "DEFAULT_NOISE",
    "DEFAULT_SKETCH_DIM",
    "ensemble",
    "gradient",
    "nngp",
    "posterior",
    "scale",
    "sketch",
]


def _labelled(labelled: Labelled | None, N: int) -> Array:
    """Validate a bool ``[N]`` labelled mask; ``None`` is none labelled."""
    return check.boolean_mask(labelled, N, "labelled", default=False)


def gradient(
    apply_fn: Callable[[PyTree, Float[Array, "n D"]], Array],
    params: PyTree,
    x: Float[ArrayLike, "N D"],
    *,
    key: Key | None,
    dim: int | None = DEFAULT_SKETCH_DIM,
    batch_size: int = 256,
) -> Float[Array, "N P"]:
    r"""The gradient (``grad``) kernel, sketched: :math:`\phi(x) = J(x) G / \sqrt{m}`.

    :math:`J(x) = \partial f(x) / \partial \theta` is the gradient of the network output
    ``apply_fn(params, x)`` with respect to all parameters (flattened, ``[num_params]``), so
    :math:`J(x) J(x')^\top` is the empirical NTK. :math:`G` is one ``[num_params, m]``
    standard Gaussian matrix (``m = dim``) shared by all rows, so
    :math:`\phi(x) \cdot \phi(x')` is an unbiased estimate of the empirical NTK. Computed as
    ``m`` Jacobian-vector products (``jax.jvp`` along Gaussian directions drawn from ``key``,
    a few at a time under ``vmap``; ``G`` is never stored) over blocks of ``batch_size``
    points (``lax.map``); the same code as the sketch of :func:`jaxal.kernels.empirical_ntk`
    (same ``key``, same ``G``). Time ``O(N m)`` network linearisations. Compiled with
    ``apply_fn`` static: pass the same callable (e.g. ``model.apply``) to reuse the program.

    A network with ``O > 1`` outputs gets ``O m`` features, whose kernel is the sum over
    outputs (the trace of the NTK). ``dim=None`` gives the exact Jacobian
    (``P = O num_params``; small networks only).

    Args:
      apply_fn: ``apply_fn(params, x [n, D]) -> [n]`` or ``[n, O]`` (e.g. ``model.apply``).
      params: the trained parameters (any pytree).
      x: ``[N, D]`` inputs of the whole pool, labelled points included.
      key: PRNG key of the sketch, ``jax.random.key(seed)`` (required unless ``dim=None``).
      dim: number of random projections ``m`` (paper: 512), or ``None`` for exact gradients.
      batch_size: points per Jacobian evaluation (a memory knob).

    Returns:
      ``[N, P]`` features with ``P = O dim``.
    """
    dim, key, batch_size = jacobian_options(dim, key, batch_size, "gradient", "dim")
    x = check.points(x, "x")
    phi = _gradient(apply_fn, params, x, key, dim=dim, batch_size=batch_size)
    return check.points(phi, "gradient features")


@partial(jax.jit, static_argnames=("apply_fn", "dim", "batch_size"))
def _gradient(
    apply_fn: Callable,
    params: PyTree,
    x_N_D: Array,
    key: Key | None,
    *,
    dim: int | None,
    batch_size: int,
) -> Array:
    flat_params, unravel = ravel_pytree(params)

    def outputs(flat: Array, x_R_D: Array) -> Array:
        out = apply_fn(unravel(flat), x_R_D)
        return out.reshape(out.shape[0], -1)

    phi = jacobian_features(
        outputs, flat_params, x_N_D, projection_dim=dim, key=key, batch_size=batch_size
    )
    return phi.reshape(phi.shape[0], -1)


def nngp(
    x: Float[ArrayLike, "N D"],
    *,
    key: Key,
    depth: int | np.integer,
    width: int | np.integer = DEFAULT_SKETCH_DIM,
    activation: str = "relu",
    weight_std: float = 1.0,
    bias_std: float = 0.1,
) -> Float[Array, "N P"]:
    r"""Random features of the NNGP kernel: the last hidden layer of a random wide network.

    Draws one network of ``depth`` dense layers, ``width`` units per hidden layer, standard
    Gaussian weights and biases in the NTK parametrisation of
    :func:`jaxal.kernels.infinite_width` (``h^1 = \sigma_w W^1 x / \sqrt{D} + \sigma_b b^1``,
    ``h^{l+1} = \sigma_w W^{l+1} a(h^l) / \sqrt{width} + \sigma_b b^{l+1}``), and returns

    .. math:: \phi(x) = \big(\sigma_w\, a(h^{\text{depth}-1}(x)) / \sqrt{\text{width}},\
              \sigma_b\big) \in \mathbb{R}^{\text{width} + 1},

    so :math:`\phi(x) \cdot \phi(x')` is the covariance of one read-out unit given the
    hidden layers. It converges to ``infinite_width(depth, kind="nngp", ...)`` as
    ``width`` grows: unbiased for ``depth <= 2``, with an ``O(1 / width)`` bias deeper.
    ``depth = 1`` gives the exact linear kernel :math:`(\sigma_w x / \sqrt{D}, \sigma_b)`.

    Args:
      x: ``[N, D]`` inputs of the whole pool, labelled points included.
      key: PRNG key of the random network (every row shares it).
      depth: number of dense layers ``>= 1`` (hidden layers + the read-out).
      width: hidden units per layer (the number of features, plus one).
      activation: ``"relu"`` or ``"erf"``.
      weight_std: :math:`\sigma_w`, finite ``> 0``.
      bias_std: :math:`\sigma_b`, finite ``>= 0`` (0: no biases).

    Returns:
      ``[N, P]`` features with ``P = width + 1`` (``D + 1`` for ``depth = 1``).
    """
    depth = check.integer(depth, "depth")
    width = check.integer(width, "width")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}; got {activation!r}")
    weight_std, bias_std = network_stds(weight_std, bias_std)
    phi = _nngp(
        check.key(key),
        check.points(x, "x"),
        depth=depth,
        width=width,
        activation=activation,
        weight_std=weight_std,
        bias_std=bias_std,
    )
    return check.points(phi, "nngp features")


@partial(jax.jit, static_argnames=("depth", "width", "activation", "weight_std", "bias_std"))
def _nngp(
    key: Key,
    x_n_D: Array,
    *,
    depth: int,
    width: int,
    activation: str,
    weight_std: float,
    bias_std: float,
) -> Array:
    act = _ACTIVATIONS[activation]
    dtype = x_n_D.dtype
    n = x_n_D.shape[0]
    post_n_H = x_n_D
    keys = jax.random.split(key, 2 * max(depth - 1, 1))
    for layer in range(depth - 1):
        fan_in = post_n_H.shape[1]
        w_kernel = jax.random.normal(keys[2 * layer], (fan_in, width), dtype)
        b_kernel = jax.random.normal(keys[2 * layer + 1], (width,), dtype)
        pre_n_H = weight_std * matmul(post_n_H, w_kernel) / jnp.sqrt(jnp.asarray(fan_in, dtype))
        post_n_H = act(pre_n_H + bias_std * b_kernel[None, :])
    fan_in = post_n_H.shape[1]
    readout_n_H = weight_std * post_n_H / jnp.sqrt(jnp.asarray(fan_in, dtype))
    return jnp.concatenate([readout_n_H, jnp.full((n, 1), bias_std, dtype)], axis=1)


@jax.jit
def _scale(phi_N_P: Array, labelled_N: Array) -> Array:
    reference_N = jnp.where(jnp.any(labelled_N), labelled_N, True)
    diag_N = jnp.sum(phi_N_P**2, axis=1)
    mean_diag = jnp.sum(jnp.where(reference_N, diag_N, 0.0)) / jnp.sum(reference_N)
    factor = jnp.where(mean_diag > 0, jax.lax.rsqrt(jnp.where(mean_diag > 0, mean_diag, 1.0)), 1.0)
    return phi_N_P * factor


def scale(phi: Float[ArrayLike, "N P"], *, labelled: Labelled | None = None) -> Float[Array, "N P"]:
    r"""Normalise the kernel: :math:`k \to k / \operatorname{mean}_{x \in X_T} k(x, x)`.

    The mean of the diagonal over the labelled rows :math:`X_T` (bmdal's ``scale``), over
    all rows when none is labelled (``labelled=None`` or all ``False``); features are divided
    by its square root. A zero kernel is left unchanged. ``O(N P)``.

    Args:
      phi: ``[N, P]`` features.
      labelled: optional bool ``[N]`` mask of the labelled rows (may be traced).

    Returns:
      ``[N, P]`` scaled features.

    >>> phi = jnp.array([[2.0, 0.0], [0.0, 4.0]])
    >>> scale(phi, labelled=jnp.array([True, False])).tolist()
    [[1.0, 0.0], [0.0, 2.0]]
    """
    phi = check.points(phi)
    return _scale(phi, _labelled(labelled, phi.shape[0]))


@partial(jax.jit, static_argnames=("dim",))
def _sketch(phi_N_P: Array, key: Key, *, dim: int) -> Array:
    P = phi_N_P.shape[1]
    dtype = phi_N_P.dtype
    projection_P_m = jax.random.normal(key, (P, dim), dtype) / jnp.sqrt(jnp.asarray(dim, dtype))
    return matmul(phi_N_P, projection_P_m)


def sketch(
    phi: Float[ArrayLike, "N P"], *, key: Key, dim: int | np.integer = DEFAULT_SKETCH_DIM
) -> Float[Array, "N m"]:
    r"""Gaussian random projection: :math:`\phi \to G^\top \phi / \sqrt{m}`, ``G`` ``[P, m]``.

    :math:`\mathbb{E}[G G^\top] = m I`, so the sketched kernel is an unbiased estimate of
    the original one, with relative error ``O(1 / sqrt(m))``. Every row shares ``G``.

    Args:
      phi: ``[N, P]`` features.
      key: PRNG key of ``G``.
      dim: number of features ``m`` after the projection (paper: 512).

    Returns:
      ``[N, m]`` features.
    """
    dim = check.integer(dim, "dim")
    return _sketch(check.points(phi), check.key(key), dim=dim)


@jax.jit
def _posterior(phi_N_P: Array, labelled_N: Array, noise: Array) -> Array:
    dtype = phi_N_P.dtype
    noise = jnp.asarray(noise, dtype)
    cov_P_P = matmul(phi_N_P.T * labelled_N.astype(dtype)[None, :], phi_N_P)
    eigenvalues_P, eigenvectors_P_P = jnp.linalg.eigh(cov_P_P)
    factor_P = jnp.sqrt(noise) * jax.lax.rsqrt(jnp.maximum(eigenvalues_P, 0.0) + noise)
    return matmul(phi_N_P, eigenvectors_P_P * factor_P[None, :])


def posterior(
    phi: Float[ArrayLike, "N P"], *, labelled: Labelled, noise: float = DEFAULT_NOISE
) -> Float[Array, "N P"]:
    r"""Condition the kernel on the labelled rows: the GP posterior covariance (Woodbury).

    .. math:: \phi_{\text{post}}(x) = \sigma (\Phi_T^\top \Phi_T + \sigma^2 I)^{-1/2} \phi(x),
              \qquad \phi_{\text{post}}(x) \cdot \phi_{\text{post}}(x')
              = k(x, x') - k(x, X_T) (K_{TT} + \sigma^2 I)^{-1} k(X_T, x'),

    with :math:`\Phi_T^\top \Phi_T = \Phi^\top \operatorname{diag}(\text{labelled}) \Phi`
    (the mask may be traced: no shape depends on the number of labelled rows). The inverse
    square root comes from ``eigh`` of that ``[P, P]`` matrix (negative rounding errors
    clipped to 0); the features are returned in its eigenbasis (a rotation, so the kernel is
    unchanged). Cost ``O(N P^2 + P^3)``. Every row is transformed, labelled rows too (their
    posterior variance is below :math:`\sigma^2`). With no labelled row the kernel is
    unchanged.

    Args:
      phi: ``[N, P]`` prior features of every row.
      labelled: bool ``[N]`` mask of the rows to condition on.
      noise: finite observation-noise variance :math:`\sigma^2 > 0` (paper: ``1e-6``, in
        float64).

    Returns:
      ``[N, P]`` posterior features.
    """
    phi = check.points(phi)
    labelled = _labelled(labelled, phi.shape[0])
    check.scalar(noise, "noise", what=" (a noise variance)")
    return _posterior(phi, labelled, noise)


def ensemble(*phis: Float[ArrayLike, "N _"]) -> Float[Array, "N P"]:
    r"""The sum of kernels :math:`\sum_j k_j` (e.g. of an ensemble of networks).

    :math:`\sum_j \phi_j(x) \cdot \phi_j(x')` is the dot product of the concatenated features,
    so the result has ``P = sum_j P_j``. All arguments must share ``N`` and dtype.

    >>> ensemble(jnp.ones((3, 2)), jnp.zeros((3, 1))).shape
    (3, 3)
    """
    if not phis:
        raise ValueError("ensemble needs at least one feature array")
    checked = [check.points(phi, f"phis[{j}]") for j, phi in enumerate(phis)]
    first = checked[0]
    for j, phi in enumerate(checked[1:], start=1):
        if phi.shape[0] != first.shape[0]:
            raise ValueError(f"phis[{j}] has N = {phi.shape[0]} rows; phis[0] has {first.shape[0]}")
        if phi.dtype != first.dtype:
            raise TypeError(f"phis[{j}] has dtype {phi.dtype}; phis[0] {first.dtype}")
    return jnp.concatenate(checked, axis=1)
