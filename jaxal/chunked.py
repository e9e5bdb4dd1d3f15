"""Score pools larger than memory, one fixed-size chunk of pool points at a time.

The pool is ``log_probs`` ``[K, N, C]`` given either as one array that is sliced along ``N``
(a jax or numpy array, including ``np.memmap`` and ``np.load(path, mmap_mode="r")``, whose
chunks are read from disk only when they are scored) or as an iterable of ``[K, n_i, C]``
chunks (a generator reading from disk, a data loader). Every chunk is padded to
``chunk_size`` points, so the jitted score function is compiled once; the padding is
dropped. Peak memory is a few chunks (``K * chunk_size * C`` numbers each) plus the outputs:
:func:`score` keeps the ``[N]`` scores on the host (4 MB for a million float32 scores) and
:func:`top_k` keeps only the running best ``b``.

Values are not validated (that would be another pass over the pool): validate chunks with
:func:`jaxal.check.log_probs` yourself if they may hold NaN or unnormalised rows.

Example:
  >>> import numpy as np, jaxal
  >>> log_probs = np.log(np.full((4, 10, 3), 1 / 3))
  >>> jaxal.chunked.score(jaxal.scores.predictive_entropy, log_probs, chunk_size=4).shape
  (10,)
"""

import mmap
from collections.abc import Callable, Iterable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from jaxal import check
from jaxal.typing import Available, LogProbs

__all__ = ["score", "top_k"]

DEFAULT_CHUNK_SIZE = 65_536
"""Pool points per chunk: ``K = 20``, ``C = 10`` float32 chunks are 50 MiB."""

ScoreFn = Callable[[Array], Float[Array, " N"]]
Chunks = LogProbs | Iterable[LogProbs]


def _check_chunk_size(chunk_size: int) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer):
        raise TypeError(f"chunk_size must be a Python int; got {type(chunk_size).__name__}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    return int(chunk_size)


def _mapping(x) -> mmap.mmap | None:
    """The shared memory map under an ``np.memmap`` (not copy-on-write ``mode="c"``), if any."""
    if not isinstance(x, np.memmap) or x.mode == "c":
        return None  # releasing copy-on-write pages would discard the in-memory changes
    while isinstance(x, np.ndarray):
        x = x.base
    return x if isinstance(x, mmap.mmap) else None


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
    mapping = _mapping(log_probs)
    release = mapping is not None and hasattr(mmap, "MADV_DONTNEED")
    for start in range(0, log_probs.shape[1], chunk_size):
        yield log_probs[:, start : start + chunk_size]
        if release:
            mapping.madvise(mmap.MADV_DONTNEED)


def _chunks(log_probs: Chunks, chunk_size: int) -> Iterator[tuple[Array, int]]:
    """``(chunk [K, chunk_size, C], n)`` pairs: each chunk padded to ``chunk_size`` points.

    Chunks of an iterable longer than ``chunk_size`` are split; all must share ``K``, ``C``
    and the dtype of the first, else ``ValueError`` / ``TypeError``.
    """
    pieces = [log_probs] if hasattr(log_probs, "shape") else log_probs
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
            if n < chunk_size:  # pad with uniform predictions, whose scores are dropped
                xp = jnp if isinstance(chunk, jax.Array) else np
                padding = xp.full((K, chunk_size - n, C), -np.log(C), dtype=chunk.dtype)
                chunk = xp.concatenate([chunk, padding], axis=1)
            yield jnp.asarray(chunk), n
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
    chunk_size = _check_chunk_size(chunk_size)
    jitted = jax.jit(score_fn)
    scores = []
    pending = None
    for chunk, n in _chunks(log_probs, chunk_size):
        scores_n = jitted(chunk)
        _check_scores_shape(scores_n.shape, chunk_size)
        if pending is not None:
            scores.append(np.asarray(pending[0])[: pending[1]])
        pending = (scores_n, n)
    scores.append(np.asarray(pending[0])[: pending[1]])
    return np.concatenate(scores)


def _merge_step(score_fn: ScoreFn) -> Callable:
    """Jitted ``(best, chunk, offset, available) -> best``: running top-``b`` and a new chunk."""

    @jax.jit
    def step(best_scores_B, best_indices_B, chunk, offset, available_n):
        (b,) = best_scores_B.shape
        scores_n = score_fn(chunk)
        _check_scores_shape(scores_n.shape, chunk.shape[1])
        indices_n = offset + jnp.arange(chunk.shape[1], dtype=jnp.int32)
        masked_n = jnp.where(available_n, scores_n, -jnp.inf).astype(best_scores_B.dtype)
        # Earlier chunks first: lax.top_k breaks ties towards the lower position, hence the
        # lower pool index, as jaxal.select.top_k does.
        merged_scores = jnp.concatenate([best_scores_B, masked_n])
        best_scores_B, position_B = jax.lax.top_k(merged_scores, b)
        return best_scores_B, jnp.concatenate([best_indices_B, indices_n])[position_B]

    return step


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
    ``jaxal.select.top_k(score_fn(log_probs), b, available)`` (ties towards the lower index).

    Args:
      score_fn: ``[K, n, C] -> [n]`` per-point acquisition score.
      log_probs: ``[K, N, C]`` array or iterable of ``[K, n_i, C]`` chunks (see :func:`score`).
      b: batch size, a Python int with ``1 <= b <= #available``.
      chunk_size: points per chunk (static).
      available: optional bool ``[N]``; ``False`` marks labelled or excluded points.

    Returns:
      ``(indices [b] int32, scores [b])``: pool indices and their scores, best first.
    """
    chunk_size = _check_chunk_size(chunk_size)
    if isinstance(b, bool) or not isinstance(b, int | np.integer) or b < 1:
        raise ValueError(f"b must be a Python int >= 1; got {b!r}")
    if available is not None:
        available = np.asarray(available)
        check.available(available, available.shape[0])  # dtype, rank, at least one True
    step = _merge_step(score_fn)
    best_scores_B = best_indices_B = None
    N = 0
    for chunk, n in _chunks(log_probs, chunk_size):
        if best_scores_B is None:
            dtype = jax.eval_shape(score_fn, chunk).dtype
            best_scores_B = jnp.full((b,), -jnp.inf, dtype)
            best_indices_B = jnp.zeros((b,), jnp.int32)
        available_n = np.arange(chunk_size) < n
        if available is not None:
            if available.shape[0] < N + n:
                raise ValueError(f"available has {available.shape[0]} flags; the pool has more")
            available_n[:n] &= available[N : N + n]
        best_scores_B, best_indices_B = step(
            best_scores_B, best_indices_B, chunk, np.int32(N), available_n
        )
        N += n
    if available is not None and available.shape[0] != N:
        raise ValueError(f"available must have shape [N] = ({N},); got {available.shape}")
    num_available = N if available is None else int(available.sum())
    if b > num_available:
        raise ValueError(f"b = {b} is larger than the number of available points ({num_available})")
    return best_indices_B, best_scores_B
