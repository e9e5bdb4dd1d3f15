"""Package-internal numerical helpers shared by several jaxal modules.

**Where a shared helper lives.** A name that starts with ``_`` is private to its module: no
other module imports it. A private *module* (``jaxal/select/_top_k.py``) is private to its
package: the modules of that package may import it and its public names (``from
jaxal.select._gumbel import draw``; ``from jaxal.scores import _regression``), the rest of
jaxal imports the package's re-exports. A helper that modules of different families share
gets a public name in a package-internal home: here for numerics (no validation, no
dependence on the rest of jaxal), :mod:`jaxal.check` for input validation,
:mod:`jaxal.select._distances` for distances between feature rows. Package-internal names
are not re-exported by :mod:`jaxal` and carry no compatibility promise.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array

__all__ = ["centred", "matmul", "point_blocks"]


def matmul(a: Array, b: Array) -> Array:
    """``a @ b`` at full float precision (no TF32 / bf16 passes on accelerators)."""
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def centred(K_n_n: Array) -> Array:
    """``H K H``: subtract row and column means, add back the grand mean.

    ``HSIC_b(K, L) = sum(HKH * L) / n^2``: ICAL centres one kernel once and scores many.
    """
    return (
        K_n_n
        - jnp.mean(K_n_n, axis=0, keepdims=True)
        - jnp.mean(K_n_n, axis=1, keepdims=True)
        + jnp.mean(K_n_n)
    )


def point_blocks(x_K_N_C: Array, block_size: int) -> Array:
    """Zero-pad the point axis to a multiple of ``block_size``: ``[num_blocks, K, L, C]``."""
    K, N, C = x_K_N_C.shape
    L = min(block_size, N)
    num_blocks = -(-N // L)
    padded = jnp.pad(x_K_N_C, ((0, 0), (0, num_blocks * L - N), (0, 0)))
    return padded.reshape(K, num_blocks, L, C).transpose(1, 0, 2, 3)
