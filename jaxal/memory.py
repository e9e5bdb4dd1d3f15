r"""Memory budgets: run a computation over the pool in chunks so its working memory fits.

Functions that take ``memory_budget=`` (bytes as an int, or a string such as ``"4GB"`` or
``"512 MiB"``) bound their **working memory**: the temporaries they allocate beyond their
inputs and outputs (the inputs are already in memory; :mod:`jaxal.chunked` handles pools that
are not). Each documents a peak-memory model, ``working bytes = fixed + per_point * n`` for a
chunk of ``n`` pool points; the largest chunk whose model fits the budget is used, and
``ValueError`` explains the minimum when even one point does not fit. A chunked run gives the
same result as the unchunked one (the points are independent, or, for selections, the
chunked reduction is exact). The models are checked against XLA's own count of the compiled
program's temporaries (``compiled.memory_analysis().temp_size_in_bytes``) in the tests.
"""

import re
from collections.abc import Callable, Sequence
from typing import overload

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

__all__ = ["Budget", "chunk_size", "map_points", "parse", "require"]

Budget = int | str | None
"""A memory budget: bytes (``int``), a string with a unit (``"4GB"``), or ``None`` (none)."""

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


@overload
def parse(budget: None) -> None: ...
@overload
def parse(budget: int | str) -> int: ...
def parse(budget: Budget) -> int | None:
    """Bytes of a budget: ``4096``, ``"4GB"`` (10^9), ``"1.5 GiB"`` (2^30), ``None`` -> None.

    Raises:
      TypeError / ValueError: for other types, unknown units or a budget below 1 byte.
    """
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, int | float | str):
        raise TypeError(
            f"memory_budget must be bytes (int) or a string like '4GB'; got {type(budget).__name__}"
        )
    if isinstance(budget, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", budget)
        if match is None or match.group(2).lower() not in _UNITS:
            raise ValueError(
                f"memory_budget {budget!r} is not a size: use e.g. '4GB', '512MiB' or bytes"
            )
        size = float(match.group(1)) * _UNITS[match.group(2).lower()]
    else:
        size = budget
    if not size >= 1:
        raise ValueError(f"memory_budget must be at least 1 byte; got {size!r}")
    return int(size)


def chunk_size(
    budget: Budget,
    num_points: int,
    *,
    per_point: int,
    fixed: int = 0,
    what: str,
) -> int:
    """The largest chunk of pool points whose working memory ``fixed + per_point * n`` fits.

    Args:
      budget: the ``memory_budget`` argument (``None``: no limit, returns ``num_points``).
      num_points: pool points ``N`` (the chunk never exceeds it).
      per_point: working bytes per pool point of the chunk.
      fixed: working bytes independent of the chunk size.
      what: the computation, for the error message.

    Raises:
      ValueError: when not even one point fits, naming the minimum budget.
    """
    budget = parse(budget)
    if budget is None:
        return num_points
    n = (budget - fixed) // max(per_point, 1)
    if n < 1:
        raise ValueError(
            f"memory_budget={budget} bytes is too small for {what}: it needs at least "
            f"{fixed + per_point} bytes ({fixed} fixed + {per_point} per point of a chunk); "
            "raise it"
        )
    return int(min(n, num_points))


def require(budget: Budget, needed: int, *, what: str, hint: str = "raise it") -> None:
    """Check that a computation whose working memory is ``needed`` bytes fits the budget.

    For state a method cannot chunk (it needs it all at once): a budget that fits changes
    nothing; ``None`` is no limit. The budget is validated either way (:func:`parse`).

    Raises:
      ValueError: when ``needed`` exceeds the budget, naming ``what``, the minimum and ``hint``
        (how to fix it).
    """
    budget = parse(budget)
    if budget is not None and needed > budget:
        raise ValueError(
            f"memory_budget={budget} bytes is too small for {what}: it needs at least "
            f"{needed} bytes; {hint}"
        )


def map_points(
    fn: Callable[..., Array], arrays: Sequence[Array], *, chunk: int, axis: int = 1
) -> Array:
    """``fn(*arrays)`` computed ``chunk`` points at a time along ``axis``, one compiled body.

    ``fn`` maps arrays with ``n`` points on ``axis`` to a result with ``n`` points on its
    leading axis, independently per point. A ``lax.fori_loop`` slices ``chunk`` points at a
    time (``lax.dynamic_slice``, no copy of the inputs; the last chunk is shifted back to end
    at ``N`` and recomputes a few points) and writes the results into the ``[N, ...]`` output,
    so only one chunk's temporaries are live. With ``chunk >= N`` this is ``fn(*arrays)``.
    """
    N = arrays[0].shape[axis]
    if chunk >= N:
        return fn(*arrays)

    def take(start):
        return [jax.lax.dynamic_slice_in_dim(x, start, chunk, axis) for x in arrays]

    out_chunk = jax.eval_shape(lambda: fn(*take(0)))

    def body(i, out):
        start = jnp.minimum(i * chunk, N - chunk)
        return jax.lax.dynamic_update_slice_in_dim(out, fn(*take(start)), start, 0)

    out = jnp.zeros((N, *out_chunk.shape[1:]), out_chunk.dtype)
    return jax.lax.fori_loop(0, -(-N // chunk), body, out)


def itemsize(x: Array | np.ndarray) -> int:
    """Bytes per element of ``x``'s floating dtype (at least float32, as XLA computes)."""
    return max(np.dtype(x.dtype).itemsize, 4)
