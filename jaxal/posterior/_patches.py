r"""Convolutions as patch matrix products while the posteriors train: fast on XLA:CPU.

The posteriors train by ``jax.lax.scan`` over optimisation steps. Inside that while loop
XLA:CPU gives the gradient convolutions (with respect to the kernel and to the input) the
dimension orders of JAX's transpose rules (``f01b_i01o->01bf``, ``b01f_01oi->b01f``), which
its Eigen fast path does not take: they run as naive loops, and a step of the BatchBALD MNIST
CNN (batch 64) costs 2.3-2.9 s in the loop against 0.23 s unrolled (``benchmarks/fit.py``).
:func:`convolutions_as_matmuls` replaces every 2-D ``nn.Conv`` call by the same convolution
written as a product of an image-patch matrix with the kernel,

.. math:: y_{b,i,j,o} = \sum_{u,v,c} x_{b, s i + u, s j + v, c}\, W_{u,v,c,o} + b_o
          = [\,\mathrm{patches}(x)\,W_{(uvc),o}\,]_{b,i,j,o} + b_o,

with the patches gathered by ``k_h k_w`` strided slices of the padded input, so the forward
pass and both gradients are matrix products, slices and pads, which XLA:CPU runs at the same
speed inside and outside loops. Same parameters, same outputs (up to float rounding of a
different summation order). Convolutions it does not cover (dilation, groups, masks, shared
weights, circular, reflect or causal padding, other than two spatial axes) run unchanged.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype
from flax.linen.linear import canonicalize_padding
from jaxtyping import Array, Float

from jaxal.posterior._last_layer import module_input


def _pairs(value, n: int) -> tuple[int, int]:
    return (value,) * n if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def _covered(conv: nn.Conv) -> bool:
    """Whether :func:`patch_conv` computes ``conv``: 2-D, plain strides and padding."""
    if (
        isinstance(conv.kernel_size, int)  # flax reads an int as a 1-D kernel
        or len(conv.kernel_size) != 2
        or conv.feature_group_count != 1
        or conv.mask is not None
    ):
        return False
    if getattr(conv, "shared_weights", True) is not True:
        return False
    dilations = (conv.input_dilation, conv.kernel_dilation)
    if any(d is not None and set(_pairs(d, 2)) != {1} for d in dilations):
        return False
    padding = canonicalize_padding(conv.padding, 2)
    return padding in ("SAME", "VALID") or not isinstance(padding, str)


def patch_conv(
    x: Float[Array, "B H W Ci"],
    kernel: Float[Array, "kh kw Ci Co"],
    *,
    strides: tuple[int, int],
    padding,
) -> Float[Array, "B Ho Wo Co"]:
    """A 2-D cross-correlation (``lax.conv_general_dilated``'s) as a patch matrix product.

    Args:
      x: ``[B, H, W, C_in]`` inputs (NHWC).
      kernel: ``[k_h, k_w, C_in, C_out]`` (HWIO), as ``nn.Conv`` stores it.
      strides: ``(s_h, s_w)``.
      padding: ``"SAME"``, ``"VALID"`` or ``((low_h, high_h), (low_w, high_w))``.

    Returns:
      ``[B, H_out, W_out, C_out]``, equal to ``lax.conv_general_dilated`` with NHWC/HWIO.
    """
    kh, kw, _, C_out = kernel.shape
    if isinstance(padding, str):
        padding = jax.lax.padtype_to_pads(x.shape[1:3], (kh, kw), strides, padding)
    x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    B, H, W, _ = x.shape
    sh, sw = strides
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    columns = [
        x[:, u : u + sh * (Ho - 1) + 1 : sh, v : v + sw * (Wo - 1) + 1 : sw]
        for u in range(kh)
        for v in range(kw)
    ]
    patches_B_Ho_Wo_P = jnp.concatenate(columns, axis=-1)  # P = (u, v, c) row-major
    return patches_B_Ho_Wo_P @ kernel.reshape(-1, C_out)


def _as_matmuls(next_fun, args, kwargs, context):
    """A flax method interceptor computing covered ``nn.Conv`` calls by :func:`patch_conv`."""
    conv = context.module
    if not (isinstance(conv, nn.Conv) and context.method_name == "__call__" and _covered(conv)):
        return next_fun(*args, **kwargs)
    if not conv.has_variable("params", "kernel"):  # initialisation: let flax create them
        return next_fun(*args, **kwargs)
    inputs = module_input(args, kwargs)
    batch_shape = inputs.shape[:-3]
    x = inputs.reshape(-1, *inputs.shape[-3:])
    kernel = conv.get_variable("params", "kernel")
    x, kernel = promote_dtype(x, kernel, dtype=conv.dtype)
    padding = canonicalize_padding(conv.padding, 2)
    y = patch_conv(x, kernel, strides=_pairs(conv.strides or 1, 2), padding=padding)
    if conv.use_bias:
        bias = conv.get_variable("params", "bias").astype(y.dtype)
        y = y + bias.reshape((1,) * (y.ndim - 1) + bias.shape)
    return y.reshape(*batch_shape, *y.shape[1:])


@contextmanager
def convolutions_as_matmuls() -> Iterator[None]:
    """Within this context every covered 2-D ``nn.Conv`` runs as :func:`patch_conv`."""
    with nn.intercept_methods(_as_matmuls):
        yield
