"""Greedy selection over a pool with fixed shapes: the selectable mask and the compiled loop.

Shared by the geometric (:mod:`jaxal.select._coreset` and its neighbours), kernel
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
    labelled = check.boolean_mask(labelled, N, "labelled", default=False)
    available = check.available(available, N, on_trace="skip") & ~labelled
    return labelled, check.available(available, N, on_trace="skip")


def selection_inputs(
    x: ArrayLike, b: int, labelled: ArrayLike | None, available: ArrayLike | None, name: str
) -> tuple[Array, Array, Array, int]:
    """Validate ``[N, D]`` points (:func:`jaxal.check.points`), the masks
    (:func:`selection_masks`) and the batch size: ``(x, labelled, selectable, b)``."""
    x = check.points(x, name)
    labelled, selectable_N = selection_masks(labelled, available, x.shape[0])
    b = check.batch_size(b, selectable_N, on_trace="skip")
    return x, labelled, selectable_N, b


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
