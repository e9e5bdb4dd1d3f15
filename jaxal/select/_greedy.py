"""Greedy selection over a pool with fixed shapes: the selectable mask and the compiled loop.

Shared by the geometric (:mod:`jaxal.select._geometry`), kernel
(:mod:`jaxal.select._kernel_batch`) and EV-GP selections: :func:`selection_masks`
validates the ``labelled`` / ``available`` masks the same way for all, and :func:`greedy`
runs a method's ``choose`` / ``update`` pair ``b`` times in one ``lax.fori_loop``.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from jaxal import check


def selection_masks(
    labelled: ArrayLike | None, available: ArrayLike | None, N: int
) -> tuple[Array, Array]:
    """Validate the masks; return ``(labelled, available & ~labelled)`` (selectable: non-empty).

    ``labelled = None`` means no labelled point; ``available = None`` means ``~labelled``
    (the rule of :mod:`jaxal.select`).
    """
    if labelled is None:
        labelled = jnp.zeros((N,), bool)
    labelled = jnp.asarray(labelled)
    if labelled.dtype != jnp.bool_:
        raise TypeError(f"labelled must be a boolean mask; got dtype {labelled.dtype}")
    if labelled.shape != (N,):
        raise ValueError(f"labelled must have shape [N] = ({N},); got {labelled.shape}")
    available = check.available(available, N, on_trace="skip") & ~labelled
    return labelled, check.available(available, N, on_trace="skip")


def greedy(
    choose: Callable, update: Callable, state, available_N: Array, indices_B: Array, start: int
) -> Array:
    """Fill ``indices_B[start:]`` greedily in a compiled ``fori_loop``.

    Step ``i`` picks ``new = choose(i, state, available_N)``, records it, sets
    ``state = update(state, new)`` and makes ``new`` unavailable. With ``start >= B`` nothing
    is traced (``choose`` may index ``[B - start]`` per-step arrays, which are then empty).
    """
    if start >= indices_B.shape[0]:
        return indices_B

    def step(i, carry):
        indices_B, state, available_N = carry
        new = choose(i, state, available_N)
        return (
            indices_B.at[i].set(new.astype(jnp.int32)),
            update(state, new),
            available_N.at[new].set(False),
        )

    carry = (indices_B, state, available_N)
    return jax.lax.fori_loop(start, indices_B.shape[0], step, carry)[0]
