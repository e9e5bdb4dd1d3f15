r"""Kernels as finite feature maps for batch active learning in regression.

The kernel framework of Holzmüller, Zaverkin, Kästner and Steinwart ("A Framework and
Benchmark for Deep Batch Active Learning for Regression", JMLR 2023; reference code
``dholzmueller/bmdal_reg``) builds a kernel from a trained network (a *base kernel*),
transforms it, and hands it to a selection method (:func:`jaxal.select.kernel_batch`).
Here every kernel is given by finite features,

.. math:: k(x, x') = \phi(x) \cdot \phi(x'), \qquad \phi(x) \in \mathbb{R}^P,

held as a :class:`Features` pair: ``pool`` ``[N, P]`` and ``train`` ``[L, P]`` (``L`` may be
0), the rows of :math:`\phi` on the pool and on the training (labelled) set. A ``Features``
is a pytree, so it passes through ``jit`` and ``vmap``, and every kernel value the
selection methods need is a dot product of rows: nothing is ever ``[N, N]``.

**Base kernels.** :func:`last_layer` (``ll``: the network's penultimate activations),
:func:`gradient` (``grad``: the gradient of the output with respect to all parameters,
sketched to ``dim`` random directions) and :func:`nngp` (random features of a wide random
ReLU network, a Monte Carlo version of :func:`jaxal.kernels.infinite_width` ``(kind="nngp")``).

**Transforms** (pure, ``Features -> Features``):

* :func:`scale`: :math:`k \to k / \bar k`, :math:`\bar k` the mean of :math:`k(x, x)` over
  the training set (over the pool when ``L = 0``);
* :func:`sketch`: :math:`\phi \to G^\top \phi / \sqrt{m}`, a Gaussian random projection to
  ``m = dim`` features (an unbiased estimate of :math:`k`);
* :func:`posterior`: the GP posterior covariance given the training set with noise
  variance :math:`\sigma^2`,

  .. math:: k_{\text{post}}(x, x') = k(x, x') - k(x, X_T)(K_{TT} + \sigma^2 I)^{-1} k(X_T, x')
            = \phi_{\text{post}}(x) \cdot \phi_{\text{post}}(x'), \quad
            \phi_{\text{post}}(x) = \sigma (\Phi_T^\top \Phi_T + \sigma^2 I)^{-1/2} \phi(x)

  (Woodbury), from the eigendecomposition of the ``[P, P]`` matrix
  :math:`\Phi_T^\top \Phi_T`; training rows are transformed too;
* :func:`ensemble`: the sum of kernels (e.g. of several networks), i.e. concatenated
  features.

The paper's best configuration, LCMD-TP on the sketched gradient kernel, reads::

    f = kernel_features.gradient(model.apply, params, x_pool, x_train, key=key, dim=512)
    batch = jaxal.select.kernel_batch(f, 100, method="lcmd")

and BAIT-FB-P as in the paper (bmdal's ``("train", [sigma, None])`` transform is scale, then
posterior): ``kernel_batch(posterior(scale(f), noise=1e-6), b, method="bait")``.

**Differences from bmdal_reg.** bmdal's ``nngp`` and ``ntk`` base kernels are evaluated
in closed form (infinite features); here :func:`nngp` is a random-feature estimate
(use :func:`jaxal.kernels.infinite_width` with :func:`jaxal.select.ev_gp` for the closed
form), and there is no ``ntk``, ``laplace`` or ``acs-*`` kernel. The posterior uses a
symmetric eigendecomposition instead of bmdal's (jittered) Cholesky factor; both give the
same kernel. ``noise`` is the variance :math:`\sigma^2` (bmdal passes the standard
deviation); the default ``1e-6`` is the paper's (version 2). Like bmdal, which switches to
float64 for the posterior, use float64 (``jax_enable_x64``) with noise this small.

Shapes: ``N`` pool points, ``L`` training points, ``P`` features of the kernel, ``D`` input
dimension of the network.
"""

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, ArrayLike, Float, PyTree

from jaxal import check
from jaxal.kernels import _check_jacobian_options, _jacobian_features
from jaxal.typing import Key

DEFAULT_NOISE = 1e-6
"""The paper's noise variance :math:`\\sigma^2` for the posterior, MaxDet and BAIT."""

DEFAULT_SKETCH_DIM = 512
"""The paper's number of random-projection features (``rp-512``)."""

_ACTIVATIONS = {"relu": jax.nn.relu, "erf": jax.scipy.special.erf}

__all__ = [
    "DEFAULT_NOISE",
    "DEFAULT_SKETCH_DIM",
    "Features",
    "ensemble",
    "gradient",
    "last_layer",
    "nngp",
    "posterior",
    "scale",
    "sketch",
]


class Features(NamedTuple):
    """A kernel :math:`k(x, x') = \\phi(x) \\cdot \\phi(x')` on the pool and the training set.

    Attributes:
      pool: ``[N, P]`` features of the pool points (the candidates).
      train: ``[L, P]`` features of the training (labelled) points; ``L`` may be 0.
    """

    pool: Float[Array, "N P"]
    train: Float[Array, "L P"]


def _matmul(a: Array, b: Array) -> Array:
    """``a @ b`` at full float precision (no TF32 / bf16 passes on accelerators)."""
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def _float_matrix(x: ArrayLike, name: str) -> Array:
    if not isinstance(x, jax.Array):
        x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating dtype; got {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must have rank 2 ([points, features]); got shape {x.shape}")
    return x


def _validate(features: Features, name: str = "features") -> Features:
    """Check a :class:`Features`: floating, rank 2, same ``P`` and dtype, ``N >= 1``, finite.

    Shapes and dtypes are checked always; finiteness when the arrays are concrete.
    """
    if not (isinstance(features, tuple) and len(features) == 2):
        raise TypeError(
            f"{name} must be a jaxal.kernel_features.Features(pool, train); "
            f"got {type(features).__name__}"
        )
    pool = _float_matrix(features[0], f"{name}.pool")
    train = _float_matrix(features[1], f"{name}.train")
    if pool.shape[0] < 1:
        raise ValueError(f"{name}.pool is empty (N = 0): there is nothing to select from")
    if train.shape[1] != pool.shape[1]:
        raise ValueError(
            f"{name}.train must have P = {pool.shape[1]} features like {name}.pool; "
            f"got shape {train.shape}"
        )
    if train.dtype != pool.dtype:
        raise TypeError(
            f"{name}.pool and {name}.train must share a dtype; got {pool.dtype} and {train.dtype}"
        )
    for part, x in (("pool", pool), ("train", train)):
        check._require(jnp.isfinite(x).all(), f"{name}.{part} contains NaN or inf", "skip")
    return Features(pool, train)


def _empty_train(train: ArrayLike | None, like: Array) -> ArrayLike:
    return jnp.zeros((0, like.shape[1]), like.dtype) if train is None else train


def last_layer(
    pool_features: Float[ArrayLike, "N P"], train_features: Float[ArrayLike, "L P"] | None = None
) -> Features:
    """The last-layer (``ll``) kernel: given penultimate activations, validated and wrapped.

    Args:
      pool_features: ``[N, P]`` penultimate-layer activations of the pool points.
      train_features: ``[L, P]`` those of the training points; ``None`` for ``L = 0``.

    Returns:
      ``Features(pool, train)``.
    """
    pool = _float_matrix(pool_features, "pool_features")
    return _validate(Features(pool, _empty_train(train_features, pool)))


def gradient(
    apply_fn: Callable[[PyTree, Float[Array, "n D"]], Array],
    params: PyTree,
    x_pool: Float[ArrayLike, "N D"],
    x_train: Float[ArrayLike, "L D"] | None = None,
    *,
    key: Key | None,
    dim: int | None = DEFAULT_SKETCH_DIM,
    batch_size: int = 256,
) -> Features:
    r"""The gradient (``grad``) kernel, sketched: :math:`\phi(x) = J(x) G / \sqrt{m}`.

    :math:`J(x) = \partial f(x) / \partial \theta` is the gradient of the network output
    ``apply_fn(params, x)`` with respect to all parameters (flattened, ``[num_params]``), so
    :math:`J(x) J(x')^\top` is the empirical NTK. :math:`G` is one ``[num_params, m]``
    standard Gaussian matrix (``m = dim``) shared by pool and training points, so
    :math:`\phi(x) \cdot \phi(x')` is an unbiased estimate of the empirical NTK. Computed as
    ``m`` Jacobian-vector products (``jax.jvp`` along Gaussian directions drawn from ``key``,
    a few at a time under ``vmap``; ``G`` is never stored) over blocks of ``batch_size``
    points (``lax.map``); the same code as the sketch of :func:`jaxal.kernels.empirical_ntk`
    (same ``key``, same ``G``). Time ``O((N + L) m)`` network linearisations. Compiled with
    ``apply_fn`` static: pass the same callable (e.g. ``model.apply``) to reuse the program.

    A network with ``O > 1`` outputs gets ``O m`` features, whose kernel is the sum over
    outputs (the trace of the NTK). ``dim=None`` gives the exact Jacobian
    (``P = O num_params``; small networks only).

    Args:
      apply_fn: ``apply_fn(params, x [n, D]) -> [n]`` or ``[n, O]`` (e.g. ``model.apply``).
      params: the trained parameters (any pytree).
      x_pool: ``[N, D]`` pool inputs.
      x_train: ``[L, D]`` training inputs, or ``None``.
      key: PRNG key of the sketch (required unless ``dim=None``).
      dim: number of random projections ``m`` (paper: 512), or ``None`` for exact gradients.
      batch_size: points per Jacobian evaluation (a memory knob).

    Returns:
      ``Features`` with ``P = O dim``.
    """
    _check_jacobian_options(dim, key, batch_size, "gradient")
    x_pool = _float_matrix(x_pool, "x_pool")
    x_train = _float_matrix(_empty_train(x_train, x_pool), "x_train")
    if x_train.shape[1] != x_pool.shape[1]:
        raise ValueError(f"x_train must have D = {x_pool.shape[1]} columns; got {x_train.shape}")
    N = x_pool.shape[0]
    x_all = jnp.concatenate([x_pool, x_train.astype(x_pool.dtype)])
    phi_NL_P = _gradient(apply_fn, params, x_all, key, dim=dim, batch_size=batch_size)
    return _validate(Features(phi_NL_P[:N], phi_NL_P[N:]))


@partial(jax.jit, static_argnames=("apply_fn", "dim", "batch_size"))
def _gradient(
    apply_fn: Callable,
    params: PyTree,
    x_n_D: Array,
    key: Key | None,
    *,
    dim: int | None,
    batch_size: int,
) -> Array:
    flat_params, unravel = ravel_pytree(params)

    def outputs(flat: Array, x_R_D: Array) -> Array:
        out = apply_fn(unravel(flat), x_R_D)
        return out.reshape(out.shape[0], -1)

    phi = _jacobian_features(
        outputs, flat_params, x_n_D, projection_dim=dim, key=key, batch_size=batch_size
    )
    return phi.reshape(phi.shape[0], -1)


def nngp(
    x_pool: Float[ArrayLike, "N D"],
    x_train: Float[ArrayLike, "L D"] | None = None,
    *,
    key: Key,
    depth: int,
    width: int = DEFAULT_SKETCH_DIM,
    activation: str = "relu",
    weight_std: float = 1.0,
    bias_std: float = 0.1,
) -> Features:
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
      x_pool: ``[N, D]`` pool inputs.
      x_train: ``[L, D]`` training inputs, or ``None``.
      key: PRNG key of the random network (pool and training points share it).
      depth: number of dense layers ``>= 1`` (hidden layers + the read-out).
      width: hidden units per layer (the number of features, plus one).
      activation: ``"relu"`` or ``"erf"``.
      weight_std: :math:`\sigma_w`.
      bias_std: :math:`\sigma_b`.

    Returns:
      ``Features`` with ``P = width + 1`` (``D + 1`` for ``depth = 1``).
    """
    if not (isinstance(depth, int) and depth >= 1):
        raise ValueError(f"depth must be an int >= 1; got {depth!r}")
    if not (isinstance(width, int) and width >= 1):
        raise ValueError(f"width must be an int >= 1; got {width!r}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}; got {activation!r}")
    if not weight_std > 0 or not bias_std >= 0:
        raise ValueError(f"need weight_std > 0 and bias_std >= 0; got {weight_std}, {bias_std}")
    x_pool = _float_matrix(x_pool, "x_pool")
    x_train = _float_matrix(_empty_train(x_train, x_pool), "x_train")
    if x_train.shape[1] != x_pool.shape[1]:
        raise ValueError(f"x_train must have D = {x_pool.shape[1]} columns; got {x_train.shape}")
    x_all = jnp.concatenate([x_pool, x_train.astype(x_pool.dtype)])
    phi = _nngp(
        key,
        x_all,
        depth=depth,
        width=width,
        activation=activation,
        weight_std=float(weight_std),
        bias_std=float(bias_std),
    )
    N = x_pool.shape[0]
    return _validate(Features(phi[:N], phi[N:]))


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
        pre_n_H = weight_std * _matmul(post_n_H, w_kernel) / jnp.sqrt(jnp.asarray(fan_in, dtype))
        post_n_H = act(pre_n_H + bias_std * b_kernel[None, :])
    fan_in = post_n_H.shape[1]
    readout_n_H = weight_std * post_n_H / jnp.sqrt(jnp.asarray(fan_in, dtype))
    return jnp.concatenate([readout_n_H, jnp.full((n, 1), bias_std, dtype)], axis=1)


@jax.jit
def _scale(features: Features) -> Features:
    reference_n_P = features.train if features.train.shape[0] > 0 else features.pool
    mean_diag = jnp.mean(jnp.sum(reference_n_P**2, axis=1))
    factor = jnp.where(mean_diag > 0, jax.lax.rsqrt(jnp.where(mean_diag > 0, mean_diag, 1.0)), 1.0)
    return Features(features.pool * factor, features.train * factor)


def scale(features: Features) -> Features:
    r"""Normalise the kernel: :math:`k \to k / \operatorname{mean}_{x \in X_T} k(x, x)`.

    The mean of the diagonal over the training set (bmdal's ``scale``), over the pool when
    ``L = 0``; features are divided by its square root. A zero kernel is left unchanged.
    """
    return _scale(_validate(features))


@partial(jax.jit, static_argnames=("dim",))
def _sketch(features: Features, key: Key, *, dim: int) -> Features:
    P = features.pool.shape[1]
    dtype = features.pool.dtype
    projection_P_m = jax.random.normal(key, (P, dim), dtype) / jnp.sqrt(jnp.asarray(dim, dtype))
    return Features(_matmul(features.pool, projection_P_m), _matmul(features.train, projection_P_m))


def sketch(features: Features, *, key: Key, dim: int = DEFAULT_SKETCH_DIM) -> Features:
    r"""Gaussian random projection: :math:`\phi \to G^\top \phi / \sqrt{m}`, ``G`` ``[P, m]``.

    :math:`\mathbb{E}[G G^\top] = m I`, so the sketched kernel is an unbiased estimate of
    the original one, with relative error ``O(1 / sqrt(m))``. Pool and training rows share
    ``G``.

    Args:
      features: the kernel to sketch.
      key: PRNG key of ``G``.
      dim: number of features ``m`` after the projection (paper: 512).
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an int >= 1; got {dim!r}")
    return _sketch(_validate(features), key, dim=dim)


@jax.jit
def _posterior(features: Features, noise: Array) -> Features:
    dtype = features.pool.dtype
    noise = jnp.asarray(noise, dtype)
    cov_P_P = _matmul(features.train.T, features.train)
    eigenvalues_P, eigenvectors_P_P = jnp.linalg.eigh(cov_P_P)
    factor_P = jnp.sqrt(noise) * jax.lax.rsqrt(jnp.maximum(eigenvalues_P, 0.0) + noise)
    transform_P_P = eigenvectors_P_P * factor_P[None, :]
    return Features(_matmul(features.pool, transform_P_P), _matmul(features.train, transform_P_P))


def posterior(features: Features, *, noise: float = DEFAULT_NOISE) -> Features:
    r"""Condition the kernel on the training set: the GP posterior covariance (Woodbury).

    .. math:: \phi_{\text{post}}(x) = \sigma (\Phi_T^\top \Phi_T + \sigma^2 I)^{-1/2} \phi(x),
              \qquad \phi_{\text{post}}(x) \cdot \phi_{\text{post}}(x')
              = k(x, x') - k(x, X_T) (K_{TT} + \sigma^2 I)^{-1} k(X_T, x').

    The inverse square root comes from ``eigh`` of the ``[P, P]`` matrix
    :math:`\Phi_T^\top \Phi_T` (negative rounding errors clipped to 0); the features are
    returned in its eigenbasis (a rotation, so the kernel is unchanged). Cost
    ``O((N + L) P^2 + P^3)``. Training rows are transformed too (their posterior variance is
    below :math:`\sigma^2`). With ``L = 0`` the kernel is unchanged.

    Args:
      features: the prior kernel and the training set to condition on.
      noise: observation-noise variance :math:`\sigma^2 > 0` (paper: ``1e-6``, in float64).
    """
    features = _validate(features)
    if check.is_concrete(noise) and not float(noise) > 0:
        raise ValueError(f"noise must be > 0; got {noise}")
    return _posterior(features, noise)


def ensemble(*features: Features) -> Features:
    r"""The sum of kernels :math:`\sum_j k_j` (e.g. of an ensemble of networks).

    :math:`\sum_j \phi_j(x) \cdot \phi_j(x')` is the dot product of the concatenated features,
    so the result has ``P = sum_j P_j``. All arguments must share ``N``, ``L`` and dtype.
    """
    if not features:
        raise ValueError("ensemble needs at least one Features")
    checked = [_validate(f, f"features[{j}]") for j, f in enumerate(features)]
    first = checked[0]
    for j, f in enumerate(checked[1:], start=1):
        if f.pool.shape[0] != first.pool.shape[0] or f.train.shape[0] != first.train.shape[0]:
            raise ValueError(
                f"features[{j}] has N, L = {f.pool.shape[0]}, {f.train.shape[0]}; "
                f"features[0] has {first.pool.shape[0]}, {first.train.shape[0]}"
            )
        if f.pool.dtype != first.pool.dtype:
            raise TypeError(
                f"features[{j}] has dtype {f.pool.dtype}; features[0] {first.pool.dtype}"
            )
    return Features(
        jnp.concatenate([f.pool for f in checked], axis=1),
        jnp.concatenate([f.train for f in checked], axis=1),
    )
