"""Squared Euclidean distances between feature rows, shared by the geometric and kernel methods.

Two forms: :func:`sq_dist_to` (one point, by direct differences: exact, ``O(N D)``) and
:func:`sq_dists` (a block of rows against all points, by ``|a|^2 + |b|^2 - 2 a.b``: one
matrix product at full precision, clamped at 0 against cancellation).
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array


def sq_dist_to(x_N_D: Array, centre_D: Array) -> Array:
    """Squared distances ``[N]`` from every row to one point, by direct differences."""
    return jnp.sum((x_N_D - centre_D[None, :]) ** 2, axis=1)


def sq_dists(a_R_D: Array, b_N_D: Array) -> Array:
    """Squared distances ``[R, N]`` by ``|a|^2 + |b|^2 - 2 a.b`` (clamped at 0)."""
    cross_R_N = jnp.matmul(a_R_D, b_N_D.T, precision=jax.lax.Precision.HIGHEST)
    sq_a_R = jnp.sum(a_R_D**2, axis=1)
    sq_b_N = jnp.sum(b_N_D**2, axis=1)
    return jnp.maximum(sq_a_R[:, None] + sq_b_N[None, :] - 2.0 * cross_R_N, 0.0)
