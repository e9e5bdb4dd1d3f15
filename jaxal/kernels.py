r"""Neural-network kernels: infinite-width NNGP / NTK in closed form and the empirical NTK.

A kernel is a plain callable ``kernel(x1 [n1, D], x2 [n2, D]) -> [n1, n2]`` (a first-class
value, as in neural-tangents), traceable by ``jit`` and ``vmap``.

**Infinite width** (:func:`infinite_width`), fully connected network of ``depth`` dense
layers (``depth - 1`` hidden layers and the read-out; depth 1 is a linear model), NTK
parametrisation with weight std :math:`\sigma_w` and bias std :math:`\sigma_b`. With
:math:`u, v` jointly Gaussian with covariance given by :math:`K^l` at :math:`(x, x')`:

.. math::
    K^1(x, x') &= \sigma_w^2\, x \cdot x' / D + \sigma_b^2, \qquad \Theta^1 = K^1, \\
    K^{l+1} &= \sigma_w^2\, \mathbb{E}[\phi(u)\phi(v)] + \sigma_b^2, \\
    \Theta^{l+1} &= K^{l+1} + \sigma_w^2\, \mathbb{E}[\phi'(u)\phi'(v)]\, \Theta^l,

and the kernel of the network's (each) output is :math:`K^{\text{depth}}` (NNGP) or
:math:`\Theta^{\text{depth}}` (NTK). These are the neural-tangents ``stax.Dense`` /
``stax.Relu`` / ``stax.Erf`` conventions (``W_std = sigma_w``, ``b_std = sigma_b``,
``parameterization="ntk"``). The Gaussian expectations are closed forms: for ReLU, with
:math:`\cos\theta = K_{12} / \sqrt{K_{11} K_{22}}`, the arc-cosine kernel (Cho & Saul 2009)

.. math:: \mathbb{E}[\phi(u)\phi(v)] = \tfrac{\sqrt{K_{11}K_{22}}}{2\pi}
          (\sin\theta + (\pi - \theta)\cos\theta), \qquad
          \mathbb{E}[\phi'(u)\phi'(v)] = \tfrac{\pi - \theta}{2\pi};

for erf (Williams 1997)

.. math:: \mathbb{E}[\phi(u)\phi(v)] = \tfrac{2}{\pi}
          \arcsin\tfrac{2K_{12}}{\sqrt{(1 + 2K_{11})(1 + 2K_{22})}}, \qquad
          \mathbb{E}[\phi'(u)\phi'(v)] = \tfrac{4}{\pi}
          \big((1 + 2K_{11})(1 + 2K_{22}) - 4K_{12}^2\big)^{-1/2}.

**Empirical NTK** (:func:`empirical_ntk`) of any model ``apply_fn(params, x [n, D]) ->
[n, O]`` (or ``[n]``): :math:`\Theta(x, x') = \sum_o J_o(x) J_o(x')^\top` with
:math:`J_o(x) = \partial f_o(x) / \partial \theta` (the trace of the ``O x O`` NTK), or the
NTK of one chosen output. Optionally sketched by a Gaussian random projection of the
parameter space, an unbiased estimate of the exact kernel.
"""

import math
from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PyTree

from jaxal import check
from jaxal._numerics import matmul
from jaxal.typing import Key

Kernel = Callable[[Float[Array, "N D"], Float[Array, "M D"]], Float[Array, "N M"]]
"""``kernel(x1 [n1, D], x2 [n2, D]) -> [n1, n2]``."""

Activation = Literal["relu", "erf"]

__all__ = ["Kernel", "diagonal", "empirical_ntk", "infinite_width"]


def _relu_expectations(k11: Array, k22: Array, k12: Array) -> tuple[Array, Array]:
    r"""``(E[relu(u) relu(v)], E[relu'(u) relu'(v)])`` for covariance ``[[k11, k12], [., k22]]``.

    The angle is :math:`\theta = \operatorname{arctan2}(n \sin\theta, k_{12})` with
    :math:`n = \sqrt{k_{11} k_{22}}` and :math:`n \sin\theta = \sqrt{\max((n - k_{12})
    (n + k_{12}), 0)}`, accurate at every angle (``arccos`` of the cosine loses half the
    digits near 0 and pi). The factored form is exactly 0 when ``k12 = ±n``, which
    ``k11 k22 - k12**2`` is not once the compiler fuses it into a multiply-add; then
    :math:`\theta` is exactly 0 or pi.
    """
    norm = jnp.sqrt(k11 * k22)
    norm_sin = jnp.sqrt(jnp.maximum((norm - k12) * (norm + k12), 0.0))
    theta = jnp.arctan2(norm_sin, k12)
    value = (norm_sin + (jnp.pi - theta) * k12) / (2 * jnp.pi)
    return value, (jnp.pi - theta) / (2 * jnp.pi)


def _erf_expectations(k11: Array, k22: Array, k12: Array) -> tuple[Array, Array]:
    """``(E[erf(u) erf(v)], E[erf'(u) erf'(v)])`` for covariance ``[[k11, k12], [., k22]]``."""
    a, c = 1 + 2 * k11, 1 + 2 * k22
    value = 2 / jnp.pi * jnp.arcsin(jnp.clip(2 * k12 / jnp.sqrt(a * c), -1.0, 1.0))
    return value, 4 / jnp.pi / jnp.sqrt(jnp.maximum(a * c - 4 * k12**2, 0.0))


_EXPECTATIONS = {"relu": _relu_expectations, "erf": _erf_expectations}


def network_stds(weight_std: float, bias_std: float) -> tuple[float, float]:
    """Validate a network's ``(weight_std > 0, bias_std >= 0)``, finite Python numbers.

    ``bias_std = 0`` is a network without biases; ``weight_std = 0`` would be a constant one.
    """
    stds = []
    for name, value, positive in (("weight_std", weight_std, True), ("bias_std", bias_std, False)):
        try:
            std = float(value)
        except TypeError as error:  # a tracer or an array: the kernel closes over a constant
            raise TypeError(
                f"{name} must be a number (a static Python float); got {type(value).__name__}"
            ) from error
        if not math.isfinite(std) or not (std > 0 if positive else std >= 0):
            raise ValueError(f"{name} must be finite and {'>' if positive else '>='} 0; got {std}")
        stds.append(std)
    return stds[0], stds[1]


def infinite_width(
    depth: int | np.integer,
    *,
    activation: Activation = "relu",
    weight_std: float = 1.0,
    bias_std: float = 0.1,
    kind: Literal["ntk", "nngp"] = "ntk",
) -> Kernel:
    r"""The infinite-width NTK or NNGP kernel of a fully connected network (closed form).

    See the module docstring for the recursion. The defaults are the EV-GP authors' MLP
    (Hemachandra et al., ICML 2023) with ``depth=3`` (two hidden layers; the kernel does not
    depend on their width).

    Args:
      depth: number of dense layers ``>= 1`` (hidden layers + the read-out).
      activation: ``"relu"`` (arc-cosine kernel) or ``"erf"``.
      weight_std: :math:`\sigma_w`, finite ``> 0``.
      bias_std: :math:`\sigma_b`, finite ``>= 0`` (0: no biases).
      kind: ``"ntk"`` (:math:`\Theta`) or ``"nngp"`` (:math:`K`).

    Returns:
      ``kernel(x1 [n1, D], x2 [n2, D]) -> [n1, n2]``. For a Gram matrix pass one array
      twice, ``kernel(x, x)``: the input norms are then read off its diagonal, so every
      :math:`k(x, x)` has :math:`\theta = 0` exactly. Two arrays holding the same rows give
      norms and dot products that differ by rounding, which the angle amplifies to its
      square root (in float32 :math:`\theta \approx 3 \cdot 10^{-4}`, the NTK ``1e-4``
      off); :func:`diagonal` passes each row as both arguments.

    >>> k = infinite_width(2, weight_std=1.0, bias_std=0.0, kind="nngp")
    >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    >>> round(float(k(x, x)[0, 1]), 4)  # orthogonal inputs: sqrt(.5 * .5) / (2 pi)
    0.0796
    """
    depth = check.integer(depth, "depth")
    if activation not in _EXPECTATIONS:
        raise ValueError(f"activation must be one of {sorted(_EXPECTATIONS)}; got {activation!r}")
    if kind not in ("ntk", "nngp"):
        raise ValueError(f"kind must be 'ntk' or 'nngp'; got {kind!r}")
    weight_std, bias_std = network_stds(weight_std, bias_std)
    expectations = _EXPECTATIONS[activation]
    w2, b2 = weight_std**2, bias_std**2

    def kernel(x1: Float[Array, "N D"], x2: Float[Array, "M D"]) -> Float[Array, "N M"]:
        D = x1.shape[-1]
        k11_N = w2 * jnp.sum(x1 * x1, axis=-1) / D + b2
        k22_M = w2 * jnp.sum(x2 * x2, axis=-1) / D + b2
        k12_N_M = w2 * matmul(x1, x2.T) / D + b2
        if x2 is x1:  # a Gram matrix: norms from its diagonal, so theta(x, x) = 0 exactly
            k11_N = k22_M = jnp.diagonal(k12_N_M)
        ntk_N_M = k12_N_M
        for _ in range(depth - 1):
            value_N_M, derivative_N_M = expectations(k11_N[:, None], k22_M[None, :], k12_N_M)
            ntk_N_M = w2 * derivative_N_M * ntk_N_M
            k12_N_M = w2 * value_N_M + b2
            ntk_N_M = ntk_N_M + k12_N_M
            k11_N = w2 * expectations(k11_N, k11_N, k11_N)[0] + b2
            k22_M = w2 * expectations(k22_M, k22_M, k22_M)[0] + b2
        return ntk_N_M if kind == "ntk" else k12_N_M

    return kernel


def diagonal(kernel: Kernel, x: Float[Array, "N D"]) -> Float[Array, " N"]:
    """``kernel(x_n, x_n)`` for every row, without forming the ``[N, N]`` matrix.

    Each row is passed as both arguments (one array), so :func:`infinite_width` kernels
    take their exact coincident-input form.
    """

    def one(x_D: Array) -> Array:
        row_1_D = x_D[None]
        return kernel(row_1_D, row_1_D)[0, 0]

    return jax.vmap(one)(x)


def jacobian_options(
    projection_dim: int | None, key: Key | None, batch_size: int, caller: str, dim_name: str
) -> tuple[int | None, Key | None, int]:
    """Validate the Jacobian options; return ``(projection_dim, key, batch_size)``.

    ``key`` is required with a projection (``projection_dim`` not ``None``; ``dim_name`` is
    the caller's name for it) and checked whenever given.
    """
    if projection_dim is not None:
        projection_dim = check.integer(projection_dim, dim_name)
        if key is None:
            raise ValueError(
                f"{caller} needs key=jax.random.key(seed) with {dim_name} (the random "
                "projection's directions)"
            )
    if key is not None:
        key = check.key(key)
    return projection_dim, key, check.integer(batch_size, "batch_size")


def jacobian_features(
    outputs: Callable[[Array, Array], Array],
    flat_params: Array,
    x_N_D: Array,
    *,
    projection_dim: int | None,
    key: Key | None,
    batch_size: int,
    directions_at_once: int = 32,
) -> Array:
    r"""Per-example Jacobians ``[N, O, P]`` of ``outputs(flat_params, x [n, D]) -> [n, O]``.

    Exact (``projection_dim=None``): ``jax.jacrev``, ``batch_size`` examples at a time.
    Sketched: ``[N, O, k]`` features :math:`J_o(x) G / \sqrt{k}`, ``k = projection_dim``,
    with column ``j`` of the ``[P, k]`` Gaussian :math:`G` drawn as
    ``normal(split(key, k)[j], [P])``, so the same ``key`` gives the same :math:`G` in every
    call. Computed as Jacobian-vector products, ``directions_at_once`` tangents under
    ``vmap`` (each drawn once) times blocks of ``batch_size`` examples under ``lax.map``:
    memory ``O(directions_at_once * (P + batch_size * width))``; ``G`` is never stored.
    """
    N = x_N_D.shape[0]
    if projection_dim is None:

        def jacobian(x_D: Array) -> Array:
            return jax.jacrev(lambda flat: outputs(flat, x_D[None])[0])(flat_params)

        return jax.lax.map(jacobian, x_N_D, batch_size=batch_size)  # [N, O, P]

    assert key is not None  # jacobian_options requires a key with projection_dim
    k = projection_dim
    per_chunk = min(directions_at_once, k)
    num_chunks = -(-k // per_chunk)
    keys_K = jax.random.split(key, k)
    keys_K = keys_K[jnp.minimum(jnp.arange(num_chunks * per_chunk), k - 1)]
    keys_chunks = keys_K.reshape((num_chunks, per_chunk) + keys_K.shape[1:])
    R = min(batch_size, N)
    num_blocks = -(-N // R)
    rows = jnp.minimum(jnp.arange(num_blocks * R), N - 1)
    blocks_R_D = x_N_D[rows].reshape(num_blocks, R, x_N_D.shape[1])

    def chunk(keys_c: Array) -> Array:
        tangents_c_P = jax.vmap(
            lambda k_: jax.random.normal(k_, flat_params.shape, flat_params.dtype)
        )(keys_c)

        def block(x_R_D: Array) -> Array:
            def along(tangent_P: Array) -> Array:
                return jax.jvp(lambda f: outputs(f, x_R_D), (flat_params,), (tangent_P,))[1]

            return jax.vmap(along)(tangents_c_P)  # [c, R, O]

        return jax.lax.map(block, blocks_R_D)  # [blocks, c, R, O]

    sketch = jax.lax.map(chunk, keys_chunks)  # [chunks, blocks, c, R, O]
    sketch_N_O_k = sketch.transpose(1, 3, 4, 0, 2).reshape(num_blocks * R, sketch.shape[-1], -1)
    return sketch_N_O_k[:N, :, :k] / jnp.sqrt(jnp.asarray(k, sketch.dtype))


def empirical_ntk(
    apply_fn: Callable[[PyTree, Float[Array, "N D"]], Array],
    params: PyTree,
    *,
    output: int | None = None,
    projection_dim: int | None = None,
    key: Key | None = None,
    batch_size: int = 64,
) -> Kernel:
    r"""The empirical NTK :math:`\Theta(x, x') = \sum_o J_o(x) J_o(x')^\top` of a model.

    ``J_o(x)`` is the gradient of output ``o`` of ``apply_fn(params, x)`` with respect to all
    parameters (flattened). ``output=None`` sums over the outputs (the trace of the
    ``[O, O]`` NTK block); an int uses that output only. Models returning ``[n]`` have one
    output.

    Exact (``projection_dim=None``): per-example Jacobians by ``jax.jacrev``, ``batch_size``
    examples at a time (memory ``batch_size * O * P`` for ``P`` parameters), contracted over
    outputs and parameters.

    Sketched: features :math:`J_o(x) G / \sqrt{k}` with :math:`G` a ``[P, k]`` standard
    Gaussian matrix (``k = projection_dim``), computed as ``k`` Jacobian-vector products
    (``jax.jvp`` along Gaussian tangents drawn from ``key``; ``G`` is never stored). Since
    :math:`\mathbb{E}[G G^\top] = k I`, the sketched kernel is an unbiased estimate of the
    exact one; the same ``key`` gives the same ``G`` for every call, so Gram matrices are
    consistent and PSD.

    Args:
      apply_fn: ``apply_fn(params, x [n, D]) -> [n, O]`` or ``[n]`` (e.g. ``model.apply``).
      params: the parameter pytree at which the Jacobian is taken.
      output: ``None`` (sum over outputs) or the index of one output.
      projection_dim: ``k`` for the random-projection sketch; ``None`` for the exact kernel.
      key: PRNG key of the projection (``jax.random.key(seed)``); required with
        ``projection_dim``.
      batch_size: examples per Jacobian evaluation (a memory knob).

    Returns:
      ``kernel(x1 [n1, D], x2 [n2, D]) -> [n1, n2]``.
    """
    projection_dim, key, batch_size = jacobian_options(
        projection_dim, key, batch_size, "empirical_ntk", "projection_dim"
    )
    flat_params, unravel = ravel_pytree(params)

    def outputs(flat: Array, x_N_D: Array) -> Array:
        out = apply_fn(unravel(flat), x_N_D)
        out_N_O = out.reshape(out.shape[0], -1)
        return out_N_O if output is None else out_N_O[:, output : output + 1]

    def features(x_N_D: Array) -> Array:
        return jacobian_features(
            outputs,
            flat_params,
            x_N_D,
            projection_dim=projection_dim,
            key=key,
            batch_size=batch_size,
        )

    def kernel(x1: Float[Array, "N D"], x2: Float[Array, "M D"]) -> Float[Array, "N M"]:
        return jnp.einsum(
            "nop,mop->nm", features(x1), features(x2), precision=jax.lax.Precision.HIGHEST
        )

    return kernel
