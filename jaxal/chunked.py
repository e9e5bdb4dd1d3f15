"""Fixed pool shapes: score pools larger than memory chunk by chunk; pad pools to buckets.

The pool is ``log_probs`` ``[K, N, C]`` given either as one array that is sliced along ``N``
(a jax or numpy array, including ``np.memmap`` and ``np.load(path, mmap_mode="r")``, whose
chunks are read from disk only when they are scored) or as an iterable of ``[K, n_i, C]``
chunks (a generator reading from disk, a data loader). Every chunk is padded to
``chunk_size`` points, so the jitted score function is compiled once; the padding is
dropped. Peak memory is a few chunks (``K * chunk_size * C`` numbers each) plus the outputs:
:func:`score` keeps the ``[N]`` scores on the host (4 MB for a million float32 scores) and
:func:`top_k` keeps only the running best ``b``.

The values of ``log_probs`` are not validated (that would be another pass over the pool):
validate chunks with :func:`jaxal.check.log_probs` yourself if they may hold NaN or
unnormalised rows. :func:`top_k` does check the scores it ranks: a NaN or infinite score of
an available point raises ``ValueError``, as in :func:`jaxal.select.top_k`.

A jitted acquisition compiles once per pool shape. When the pool size ``N`` changes from call
to call (pools filtered or grown between rounds), :func:`pad_pool` pads it to a bucket size
(:func:`bucket_size`: the next power of two or multiple of a given size) with uniform,
unavailable points, so one compilation serves every ``N`` of the bucket and the selection is
unchanged.

Example:
  >>> import numpy as np, jaxal
  >>> log_probs = np.log(np.full((4, 10, 3), 1 / 3))
  >>> jaxal.chunked.score(jaxal.scores.predictive_entropy, log_probs, chunk_size=4).shape
  (10,)
"""

import mmap
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from jaxal import check
from jaxal.typing import Available, LogProbs

__all__ = ["bucket_size", "pad_pool", "score", "top_k"]

DEFAULT_CHUNK_SIZE = 65_536
"""Pool points per chunk: ``K = 20``, ``C = 10`` float32 chunks are 50 MiB."""

ScoreFn = Callable[[Array], Float[Array, " N"]]
Chunks = LogProbs | Iterable[LogProbs]


def _mapping(x) -> mmap.mmap | None:
    """The shared memory map under an ``np.memmap`` (not copy-on-write ``mode="c"``), if any."""
    if not isinstance(x, np.memmap) or x.mode == "c":
        return None  # releasing copy-on-write pages would discard the in-memory changes
    while isinstance(x, np.ndarray):
        x = x.base
    return x if isinstance(x, mmap.mmap) else None


def _pad(log_probs_K_n_C, size: int):
    """``[K, n, C]`` padded to ``[K, size, C]`` with uniform predictions ``log(1 / C)``.

    Uniform points have finite scores (BALD 0, entropy ``log C``). A numpy input stays numpy.
    """
    K, n, C = log_probs_K_n_C.shape
    if n == size:
        return log_probs_K_n_C
    xp = jnp if isinstance(log_probs_K_n_C, jax.Array) else np
    padding = xp.full((K, size - n, C), -np.log(C), dtype=log_probs_K_n_C.dtype)
    return xp.concatenate([log_probs_K_n_C, padding], axis=1)


def _split(log_probs, chunk_size: int) -> Iterator:
    """``[K, n, C]`` slices of at most ``chunk_size`` points of one ``[K, N, C]`` array.

    For a memory-mapped array the pages read so far are released after each chunk
    (``MADV_DONTNEED`` on shared maps; the file is unchanged), so resident memory stays at a
    few chunks rather than growing to the whole file.
    """
    if log_probs.ndim != 3:
        raise ValueError(
            f"log_probs chunks must have shape [K, n, C] (samples, pool points, classes); "
            f"got shape {log_probs.shape}"
        )
    release = _mapping(log_probs) if hasattr(mmap, "MADV_DONTNEED") else None
    for start in range(0, log_probs.shape[1], chunk_size):
        yield log_probs[:, start : start + chunk_size]
        if release is not None:
            release.madvise(mmap.MADV_DONTNEED)


def _chunks(log_probs: Chunks, chunk_size: int) -> Iterator[tuple[Array, int]]:
    """``(chunk [K, chunk_size, C], n)`` pairs: each chunk padded to ``chunk_size`` points.

    Chunks of an iterable longer than ``chunk_size`` are split; all must share ``K``, ``C``
    and the dtype of the first, else ``ValueError`` / ``TypeError``.
    """
    pieces = [log_probs] if hasattr(log_probs, "shape") else cast(Iterable[LogProbs], log_probs)
    first = None
    for piece in pieces:
        if not hasattr(piece, "shape"):
            piece = np.asarray(piece)
        for chunk in _split(piece, chunk_size):
            K, n, C = chunk.shape
            if first is None:
                first = (K, C, chunk.dtype)
                if not jnp.issubdtype(chunk.dtype, jnp.floating):
                    raise TypeError(f"log_probs must have a floating dtype; got {chunk.dtype}")
            elif (K, C) != first[:2]:
                raise ValueError(
                    f"every chunk must have shape [K, n, C] = [{first[0]}, n, {first[1]}]; "
                    f"got {chunk.shape}"
                )
            elif chunk.dtype != first[2]:
                raise TypeError(f"every chunk must have dtype {first[2]}; got {chunk.dtype}")
            if n == 0:
                continue
            yield jnp.asarray(_pad(chunk, chunk_size)), n  # the padding's scores are dropped
    if first is None:
        raise ValueError("log_probs has an empty pool (N = 0); there is nothing to score")


def _check_scores_shape(scores_shape: tuple, chunk_size: int) -> None:
    if scores_shape != (chunk_size,):
        raise ValueError(
            f"score_fn must map [K, n, C] to [n] = ({chunk_size},); got shape {scores_shape}"
        )


def score(
    score_fn: ScoreFn, log_probs: Chunks, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> np.ndarray:
    """Scores ``[N]`` of a pool scored ``chunk_size`` points at a time, as a host numpy array.

    Equal to ``score_fn(log_probs)`` for any per-point score (one whose value at a point
    depends only on that point's ``[K, C]`` slice, e.g. every ``jaxal.scores`` for
    classification). ``score_fn`` is jitted once and compiled once: the last chunk is padded.
    Chunk ``i + 1`` is dispatched before the scores of chunk ``i`` are copied to the host, so
    reading and scoring overlap.

    Args:
      score_fn: ``[K, n, C] -> [n]`` per-point acquisition score, e.g. ``jaxal.scores.bald``.
      log_probs: ``[K, N, C]`` array (sliced along ``N``; memory-mapped arrays are read chunk
        by chunk) or an iterable of ``[K, n_i, C]`` chunks with common ``K``, ``C``, dtype.
      chunk_size: points per chunk (static); peak memory is about two chunks.

    Returns:
      ``[N]`` numpy array of scores, in pool order.
    """
    chunk_size = check.integer(chunk_size, "chunk_size")
    jitted = jax.jit(score_fn)
    scores = []
    pending = None
    for chunk, n in _chunks(log_probs, chunk_size):
        scores_n = jitted(chunk)
        _check_scores_shape(scores_n.shape, chunk_size)
        if pending is not None:
            scores.append(np.asarray(pending[0])[: pending[1]])
        pending = (scores_n, n)
    assert pending is not None  # _chunks raises on an empty pool
    scores.append(np.asarray(pending[0])[: pending[1]])
    return np.concatenate(scores)


class _Best(NamedTuple):
    """The running best ``b``: ranking ``keys``, ``scores`` and pool ``indices``, each ``[b]``,
    and ``finite``, whether every available point's score so far was finite."""

    keys: Array
    scores: Array
    indices: Array
    finite: Array


def _merge_step(score_fn: ScoreFn) -> Callable:
    """Jitted ``(best, chunk, offset, available) -> best``: running top-``b`` and a new chunk.

    Points are ranked by their score, available points always before unavailable ones (and
    before the initial placeholders): an available point's key is its score, or the lowest
    finite number where the score is NaN or ``-inf``; every other key is ``-inf``.
    """

    @jax.jit
    def step(best, chunk, offset, available_n):
        (b,) = best.keys.shape
        scores_n = score_fn(chunk)
        _check_scores_shape(scores_n.shape, chunk.shape[1])
        scores_n = scores_n.astype(best.scores.dtype)
        indices_n = offset + jnp.arange(chunk.shape[1], dtype=jnp.int32)
        lowest = jnp.finfo(scores_n.dtype).min
        usable_n = jnp.where(jnp.isnan(scores_n), lowest, jnp.maximum(scores_n, lowest))
        keys_n = jnp.where(available_n, usable_n, -jnp.inf)
        # Earlier chunks first: lax.top_k breaks ties towards the lower position, hence the
        # lower pool index, as jaxal.select.top_k does.
        keys_B, position_B = jax.lax.top_k(jnp.concatenate([best.keys, keys_n]), b)
        return _Best(
            keys_B,
            jnp.concatenate([best.scores, scores_n])[position_B],
            jnp.concatenate([best.indices, indices_n])[position_B],
            best.finite & jnp.all(jnp.isfinite(scores_n) | ~available_n),
        )

    return step


def _available_chunk(available, start: int, n: int, size: int):
    """Flags ``[size]`` of the chunk's ``n`` points from ``start``; the padding is unavailable."""
    if available is None:
        return np.arange(size) < n
    if available.shape[0] < start + n:
        raise ValueError(f"available has {available.shape[0]} flags; the pool has more")
    xp = np if isinstance(available, np.ndarray) else jnp
    return xp.pad(available[start : start + n], (0, size - n))


def top_k(
    score_fn: ScoreFn,
    log_probs: Chunks,
    b: int,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    available: Available | None = None,
) -> tuple[Int[Array, " B"], Float[Array, " B"]]:
    """The ``b`` best-scoring available points of a pool scored chunk by chunk, best first.

    Streaming top-``b``: each chunk's scores are merged with the running best ``b`` on the
    device, so no more than ``b + chunk_size`` scores are held. The indices equal
    ``jaxal.select.top_k(score_fn(log_probs), b, available=available)`` (ties towards the
    lower index).

    Args:
      score_fn: ``[K, n, C] -> [n]`` per-point acquisition score.
      log_probs: ``[K, N, C]`` array or iterable of ``[K, n_i, C]`` chunks (see :func:`score`).
      b: batch size, a Python int with ``1 <= b <= #available``.
      chunk_size: points per chunk (static).
      available: optional bool ``[N]``; ``False`` marks labelled or excluded points (a traced
        mask works under ``jit``/``vmap``).

    Returns:
      ``(indices [b] int32, scores [b])``: pool indices and their scores, best first. Under
      ``jit``/``vmap`` (with a traced ``available``) the positions past the available count
      hold the sentinel ``N`` (:func:`jaxal.check.picks`) and the score ``-inf``.

    Raises:
      ValueError: when ``b`` exceeds the available points, or ``score_fn`` gives an available
        point a NaN or infinite score (checked on concrete values only, as
        :func:`jaxal.select.top_k` does).
    """
    chunk_size = check.integer(chunk_size, "chunk_size")
    b = check.integer(b, "b")
    if available is not None:
        # host flags (sliced without device work), or a traced mask
        available = (
            np.asarray(available) if check.is_concrete(available) else jnp.asarray(available)
        )
        check.available(available, available.shape[0], on_trace="skip")
    step = _merge_step(score_fn)
    best = None
    N = 0
    for chunk, n in _chunks(log_probs, chunk_size):
        if best is None:
            dtype = jax.eval_shape(score_fn, chunk).dtype
            placeholder_B = jnp.full((b,), -jnp.inf, dtype)
            best = _Best(
                placeholder_B, placeholder_B, jnp.zeros((b,), jnp.int32), jnp.asarray(True)
            )
        best = step(best, chunk, np.int32(N), _available_chunk(available, N, n, chunk_size))
        N += n
    assert best is not None  # _chunks raises on an empty pool
    if available is None:
        available = np.ones(N, bool)
    elif available.shape[0] != N:
        raise ValueError(f"available must have shape [N] = ({N},); got {available.shape}")
    num_available = jnp.sum(available)
    if check.is_concrete(num_available) and b > int(num_available):
        raise ValueError(
            f"b = {b} is larger than the number of available points ({int(num_available)})"
        )
    check.require(
        best.finite,
        "score_fn gave an available point a NaN or infinite score; scores must be finite "
        "(give unselectable points available=False instead)",
        "skip",
    )
    return check.picks(best.indices, jnp.asarray(available)), best.scores


def bucket_size(n: int, *, multiple: int | None = None) -> int:
    """The bucket a pool of ``n`` points is padded to: the smallest power of two ``>= n``, or
    with ``multiple`` the smallest multiple of ``multiple`` that is ``>= n``.

    Powers of two bound the padding by ``n`` (at most 2x the work) and the number of buckets by
    ``log2`` of the largest pool; a fixed ``multiple`` bounds the padding by ``multiple - 1``.

    Example:
      >>> bucket_size(1000), bucket_size(1024), bucket_size(1000, multiple=256)
      (1024, 1024, 1024)
    """
    n = check.integer(n, "n")
    if multiple is None:
        return 1 << (n - 1).bit_length()
    multiple = check.integer(multiple, "multiple")
    return -(-n // multiple) * multiple


def pad_pool(
    log_probs: LogProbs, available: Available | None = None, *, multiple: int | None = None
) -> tuple[Float[Array | np.ndarray, "K P C"], Bool[Array | np.ndarray, " P"]]:
    """Pad the pool ``[K, N, C]`` to ``[K, P, C]``, ``P = bucket_size(N, multiple=multiple)``.

    The ``P - N`` added points have uniform predictions ``log(1 / C)`` (finite scores: BALD 0,
    entropy ``log C``) and ``available = False``, and come after the real points, so indices
    are unchanged. Every ``jaxal.select`` method given the padded pool and mask selects what it
    selects on the unpadded pool (for a keyed method with the same key: its random draws for
    the first ``N`` points do not depend on ``P``), while a jitted acquisition is compiled once
    per bucket instead of once per ``N``. Per-point scores of the padded pool are those of the
    pool followed by the padding's; drop them with ``scores[:N]``.

    Numpy inputs are padded on the host and stay numpy (no compilation); jax arrays are padded
    on their device by one small jitted concatenation, itself compiled once per ``N``
    (~0.02 s on a 2-core CPU, against ~0.12 s for BALD + top-k and ~0.8 s for BatchBALD;
    see ``benchmarks/compile.py``).

    Args:
      log_probs: ``[K, N, C]`` log-probabilities.
      available: optional bool ``[N]``; ``None`` means every point is available.
      multiple: pad to a multiple of this size instead of the next power of two.

    Returns:
      ``(log_probs [K, P, C], available [P])``, padded; ``available[N:]`` is ``False``.

    Example:
      >>> import numpy as np
      >>> log_probs, available = pad_pool(np.log(np.full((4, 1000, 3), 1 / 3)))
      >>> log_probs.shape, int(available.sum())
      ((4, 1024, 3), 1000)
    """
    if getattr(log_probs, "ndim", None) != 3:
        raise ValueError(
            "log_probs must be an array of shape [K, N, C] (samples, pool points, classes); "
            f"got shape {getattr(log_probs, 'shape', type(log_probs).__name__)}"
        )
    log_probs = cast(np.ndarray | Array, log_probs)  # it has ndim 3: an array
    N = log_probs.shape[1]
    if not jnp.issubdtype(log_probs.dtype, jnp.floating):
        raise TypeError(f"log_probs must have a floating dtype; got {log_probs.dtype}")
    if available is not None:
        if not isinstance(available, jax.Array):
            available = np.asarray(available)
        if not jnp.issubdtype(available.dtype, jnp.bool_):
            raise TypeError(f"available must be a boolean mask; got dtype {available.dtype}")
        if available.shape != (N,):
            raise ValueError(f"available must have shape [N] = ({N},); got {available.shape}")
    P = bucket_size(N, multiple=multiple)
    if isinstance(log_probs, jax.Array):
        return _pad_pool_on_device(log_probs, available, P)
    return _pad_pool(log_probs, available, P)


def _pad_pool(log_probs_K_N_C, available_N, size: int):
    """:func:`pad_pool` on validated input, in numpy for numpy input and jax under ``jit``."""
    N = log_probs_K_N_C.shape[1]
    xp = jnp if isinstance(log_probs_K_N_C, jax.Array) else np
    available_N = xp.ones((N,), bool) if available_N is None else xp.asarray(available_N)
    padding = xp.zeros((size - N,), bool)
    return _pad(log_probs_K_N_C, size), xp.concatenate([available_N, padding])


_pad_pool_on_device = jax.jit(_pad_pool, static_argnums=2)
"""One small compilation per ``N`` (not one per eager operation) for jax arrays."""
