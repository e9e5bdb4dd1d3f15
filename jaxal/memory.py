r"""Memory budgets: run a computation over the pool in chunks so its working memory fits.

Functions that take ``memory_budget=`` (bytes as an int, or a string such as ``"4GB"`` or
``"512 MiB"``) bound their **working memory**: the temporaries they allocate beyond their
inputs and outputs (the inputs are already in memory; :mod:`jaxal.chunked` handles pools that
are not).

**How a budget maps to a chunk size.** The working memory is XLA's own count of the compiled
program's temporaries, ``compiled.memory_analysis().temp_size_in_bytes``
(:func:`temp_bytes`), read for the input shapes and dtypes on the default backend and cached
per (function, shapes, dtypes, static arguments, backend); the lowering is jit's own, so the
run that follows reuses the compiled program. A method with a chunkable axis (pool points of
a score, rows of a distance block) needs ``measure(n)`` bytes, the count of its program in
chunks of ``n`` for ``n`` in ``1 .. upper`` (``upper``: unchunked), and :func:`chunk_size`
picks the chunk: ``upper`` when it fits; otherwise it fits
``fixed + per_point * n`` through the counts at ``n = 1`` and ``n = 16``,
takes the largest ``n`` the fit allows and compiles it to confirm (temporaries are not
exactly linear in ``n``: XLA changes fusions and loop strategies with the size, so the fit is
a guess that the compiler checks, at most a few times). ``ValueError`` names the count for
``n = 1`` when even that does not fit. A method that needs its state throughout (no chunkable
axis) compares the count of its one program with the budget and runs it
(:func:`call_within`). Without a
budget nothing extra is compiled.

Under ``vmap`` the count is that of one example's program. The compiler cannot be asked
about memory outside one XLA program: :mod:`jaxal.chunked` streams host (e.g. memory-mapped)
pools chunk by chunk and documents its peak in chunks instead; that is the one place with
no compiler count.

A chunked run gives the same result as the unchunked one (the points are independent, or,
for selections, the chunked reduction is exact).
"""

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any, overload

import jax
import jax.numpy as jnp
from jaxtyping import Array

__all__ = [
    "Budget",
    "call_within",
    "chunk_size",
    "in_blocks",
    "map_points",
    "map_within",
    "parse",
    "require",
    "temp_bytes",
]

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


def chunk_size(budget: Budget, num_points: int, measure: Callable[[int], int], *, what: str) -> int:
    """The largest chunk ``n <= num_points`` whose working memory fits the budget.

    The working memory of a chunk of ``n`` is ``measure(n)`` bytes, usually XLA's count of
    the chunked program (:func:`temp_bytes`). See the module docstring for the search.

    Args:
      budget: the ``memory_budget`` argument (``None``: no limit, returns ``num_points``).
      num_points: the unchunked size (the chunk never exceeds it).
      measure: working bytes of a chunk of ``n``, nondecreasing in ``n`` up to rounding.
      what: the computation, for the error message.

    Raises:
      ValueError: when not even one point fits, naming the minimum budget.
    """
    budget = parse(budget)
    if budget is None:
        return num_points
    known = {num_points: measure(num_points)}
    if known[num_points] <= budget:
        return num_points
    known[1] = measure(1)
    if known[1] > budget:
        raise ValueError(
            f"memory_budget={budget} bytes is too small for {what}: it needs at least "
            f"{known[1]} bytes (XLA's count for a chunk of one); raise it"
        )
    if num_points > _FIT_SIZE:
        known[_FIT_SIZE] = measure(_FIT_SIZE)
    for step in range(_SEARCH_STEPS):
        low = max(n for n in known if known[n] <= budget)
        high = min(n for n in known if n > low)
        if high - low <= 1:
            break
        # fixed + per_point * n through the two largest sizes that fit, then (once a guess
        # failed) through the largest that fits and the smallest that does not.
        below = sorted(n for n in known if n <= low)[-2:]
        a, b = below if step == 0 and len(below) == 2 else (low, high)
        slope = max((known[b] - known[a]) / (b - a), 1e-9)
        n = min(max(low + int((budget - known[low]) / slope), low + 1), high - 1)
        known[n] = measure(n)
        if known[n] <= budget:
            break
    return max(n for n in known if known[n] <= budget)


_FIT_SIZE = 16
"""With ``1``, the chunk size whose count :func:`chunk_size` fits first."""

_SEARCH_STEPS = 6
"""Most compilations :func:`chunk_size` spends refining the fitted chunk size."""


def _leaf_key(x: Any) -> tuple:
    """A leaf's part of the cache key: ``(shape, dtype)`` of an array or number, else itself
    (a static leaf such as a kernel function, passed to ``fn`` as is)."""
    if hasattr(x, "dtype") and hasattr(x, "shape"):
        return ("array", tuple(x.shape), x.dtype)
    if isinstance(x, bool | int | float | complex):
        return ("array", (), jnp.asarray(x).dtype)
    return ("static", x)


@functools.cache
def _jit(fn: Callable) -> Callable:
    return fn if hasattr(fn, "lower") else jax.jit(fn)


@functools.lru_cache(maxsize=4096)
def _count(fn: Callable, treedef, leaves: tuple, static: tuple, backend: str) -> int:
    del backend  # part of the cache key: the count is the default backend's
    specs = [jax.ShapeDtypeStruct(*leaf[1:]) if leaf[0] == "array" else leaf[1] for leaf in leaves]
    args = jax.tree.unflatten(treedef, specs)
    compiled = _jit(fn).lower(*args, **dict(static)).compile()
    analysis = compiled.memory_analysis()
    return int(analysis.temp_size_in_bytes) if analysis is not None else 0


def temp_bytes(fn: Callable, /, *args: Any, **static: Any) -> int:
    """XLA's count of the working memory of ``jit(fn)(*args, **static)``, in bytes.

    ``compiled.memory_analysis().temp_size_in_bytes``: the temporaries beyond the inputs and
    outputs, for the shapes and dtypes of ``args`` (arrays, tracers, ``ShapeDtypeStruct``,
    numbers or ``None``, in any pytree; other leaves, such as a kernel function that ``fn``
    takes as a static argument, are passed as they are) on the default backend. ``static``
    are ``fn``'s static keyword arguments (hashable); a jitted ``fn`` is lowered as is (so a
    later call with the same arguments reuses the compiled program). Cached per (``fn``,
    shapes, dtypes, ``static``, backend); works inside ``jit`` and ``vmap`` (the count is for
    the per-example shapes).
    """
    leaves, treedef = jax.tree.flatten(args)
    keys = tuple(map(_leaf_key, leaves))
    return _count(fn, treedef, keys, tuple(sorted(static.items())), jax.default_backend())


def require(
    budget: Budget, needed: int | Callable[[], int], *, what: str, hint: str = "raise it"
) -> None:
    """Check that a computation whose working memory is ``needed`` bytes fits the budget.

    For state a method cannot chunk (it needs it all at once): a budget that fits changes
    nothing; ``None`` is no limit. The budget is validated either way (:func:`parse`).
    ``needed`` may be a function of no arguments (usually :func:`temp_bytes` of the method's
    program), called only when there is a budget.

    Raises:
      ValueError: when ``needed`` exceeds the budget, naming ``what``, the minimum and ``hint``
        (how to fix it).
    """
    budget = parse(budget)
    if budget is None:
        return
    if callable(needed):
        needed = needed()
    if needed > budget:
        raise ValueError(
            f"memory_budget={budget} bytes is too small for {what}: it needs at least "
            f"{needed} bytes; {hint}"
        )


def call_within(
    budget: Budget,
    program: Callable,
    /,
    *args: Any,
    what: str,
    hint: str = "raise it",
    **static: Any,
) -> Any:
    """``program(*args, **static)`` once its working memory, XLA's count
    (:func:`temp_bytes`), fits the budget (:func:`require`): for a method whose state is
    needed throughout, so nothing can be chunked. ``program`` is a jitted function (the call
    reuses the program the count compiled); ``what`` and ``hint`` go into the error."""
    require(budget, lambda: temp_bytes(program, *args, **static), what=what, hint=hint)
    return program(*args, **static)


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


@functools.partial(jax.jit, static_argnames=("fn", "chunk", "axis"))
def _mapped(arrays: Sequence[Array], *, fn: Callable[..., Array], chunk: int, axis: int) -> Array:
    return map_points(fn, arrays, chunk=chunk, axis=axis)


def map_within(
    budget: Budget, fn: Callable[..., Array], arrays: Sequence[Array], *, axis: int = 1, what: str
) -> Array:
    """:func:`map_points` in the largest chunk whose compiled program fits the budget.

    ``fn`` must be hashable and the same object from call to call (a module-level function),
    as the counts are cached per function; see the module docstring for the chunk size.
    """
    arrays = tuple(arrays)
    chunk = chunk_size(
        budget,
        arrays[0].shape[axis],
        lambda n: temp_bytes(_mapped, arrays, fn=fn, chunk=n, axis=axis),
        what=what,
    )
    return _mapped(arrays, fn=fn, chunk=chunk, axis=axis)


def in_blocks(
    budget: Budget, program: Callable, *args: Any, block_size: int, what: str, **static: Any
) -> Any:
    """``program(*args, **static, block_size=R)`` with the largest ``R <= block_size`` whose
    compiled program fits the budget (:func:`chunk_size` of :func:`temp_bytes`).

    For methods that compute ``[R, N]`` blocks of a pairwise matrix: the result does not
    depend on ``R``. ``program`` is jitted with ``block_size`` and ``static`` static.
    """
    R = chunk_size(
        budget,
        block_size,
        lambda R: temp_bytes(program, *args, **static, block_size=R),
        what=what,
    )
    return program(*args, **static, block_size=R)
