"""Squared Euclidean distances between feature rows, shared by the geometric and kernel methods.

Two forms: :func:`sq_dist_to` (one point, by direct differences: exact, ``O(N D)``; with it
:func:`add_centre`, the greedy methods' nearest-centre update, and :func:`largest_norm`,
their first centre when there is none) and
:func:`sq_dists` (a block of rows against all points, by ``|a|^2 + |b|^2 - 2 a.b``: one
matrix product at full precision, clamped at 0 against cancellation). :func:`row_blocks`
maps over ``[R, N]`` blocks of rows of the pairwise matrix, so no ``[N, N]`` float matrix is
ever held.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array

from jaxal import check
from jaxal._numerics import matmul
from jaxal.select._top_k import masked

DEFAULT_BLOCK_SIZE = 1024
"""Rows of the pairwise squared-distance matrix computed at once (``[block_size, N]``)."""


def block_rows(block_size: int, N: int) -> int:
    """A method's ``block_size`` argument, validated (a positive int) and capped at ``N``."""
    return min(check.integer(block_size, "block_size"), N)


def sq_dist_to(x_N_D: Array, centre_D: Array) -> Array:
    """Squared distances ``[N]`` from every row to one point, by direct differences."""
    return jnp.sum((x_N_D - centre_D[None, :]) ** 2, axis=1)


def add_centre(x_N_D: Array, min_sq_N: Array, new: Array) -> Array:
    r"""``[N]`` squared distance to the nearest centre once row ``new`` is a centre too:
    :math:`\min(d, \|x - x_{\text{new}}\|^2)` (the k-center and ``D^2``-seeding update)."""
    return jnp.minimum(min_sq_N, sq_dist_to(x_N_D, x_N_D[new]))


def largest_norm(x_N_D: Array, available_N: Array) -> Array:
    """The available row of largest norm (the lowest index on ties): a first centre."""
    return jnp.argmax(masked(jnp.sum(x_N_D**2, axis=1), available_N))


def sq_dists(a_R_D: Array, b_N_D: Array) -> Array:
    """Squared distances ``[R, N]`` by ``|a|^2 + |b|^2 - 2 a.b`` (clamped at 0)."""
    cross_R_N = matmul(a_R_D, b_N_D.T)
    sq_a_R = jnp.sum(a_R_D**2, axis=1)
    sq_b_N = jnp.sum(b_N_D**2, axis=1)
    return jnp.maximum(sq_a_R[:, None] + sq_b_N[None, :] - 2.0 * cross_R_N, 0.0)


def row_blocks(fn: Callable, x_N_D: Array, block_size: int):
    """``fn(rows_R, sq_dist_R_N)`` over blocks of rows of the pairwise distance matrix.

    ``rows_R`` are the row indices of the block; results (leading axis ``R``) are
    concatenated to ``[N, ...]``.
    """
    N = x_N_D.shape[0]
    R = max(1, min(block_size, N))
    num_blocks = -(-N // R)
    rows = jnp.minimum(jnp.arange(num_blocks * R), N - 1).reshape(num_blocks, R)

    def block(rows_R):
        return fn(rows_R, sq_dists(x_N_D[rows_R], x_N_D))

    out = jax.lax.map(block, rows)
    return jax.tree.map(lambda o: o.reshape(num_blocks * R, *o.shape[2:])[:N], out)
