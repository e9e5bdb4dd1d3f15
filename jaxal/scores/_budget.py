"""``memory_budget=`` for pointwise scores: chunk the pool so the working memory fits."""

import functools
from collections.abc import Callable

from jaxal import check, memory

WordsPerPoint = Callable[[int, int], int]
"""Working memory model of a score: ``(K, C) -> numbers per pool point`` (``C = 1`` for
regression scores); the bytes are this times the itemsize (at least 4)."""


def _classification_args(log_probs):
    log_probs = check.log_probs(log_probs, on_trace="skip")
    K, _, C = log_probs.shape
    return (log_probs,), (K, C)


def _regression_args(mean, var):
    mean, var = check.gaussian(mean, var, on_trace="skip")
    return (mean, var), (mean.shape[0], 1)


def budgeted(words_per_point: WordsPerPoint, *, task: str):
    """Give a pointwise score a keyword-only ``memory_budget`` (see :mod:`jaxal.memory`).

    Without a budget the score runs as is. With one, the inputs are validated; if the
    modelled working memory ``words_per_point(K, C) * itemsize * N`` exceeds the budget, the
    chunk size is the largest ``n`` for which ``n`` points' share of it plus their sliced
    inputs (``K C`` numbers per point and input) fits, and the pool is scored chunk by chunk
    in one compiled program. Scores are per point, so the result equals the unchunked one (up
    to floating-point rounding, as XLA may vectorise the two programs differently).
    """
    prepare = _classification_args if task == "classification" else _regression_args

    def wrap(score):
        @functools.wraps(score)
        def with_budget(*args, memory_budget: memory.Budget = None):
            if memory_budget is None:
                return score(*args)
            arrays, (K, C) = prepare(*args)
            N = arrays[0].shape[1]
            size = memory.itemsize(arrays[0])
            if words_per_point(K, C) * size * N <= memory.parse(memory_budget):
                return score(*arrays)
            # A chunk's working memory adds its sliced copy of the inputs: K * C per point.
            chunk = memory.chunk_size(
                memory_budget,
                N,
                per_point=(K * C * len(arrays) + words_per_point(K, C)) * size,
                what=f"{score.__name__} on K = {K} samples",
            )
            return memory.map_points(score, arrays, chunk=chunk)

        with_budget.__doc__ = (score.__doc__ or "") + (
            "\n    Memory: ``memory_budget=`` (bytes or a string like ``'4GB'``) bounds the "
            "working\n    memory, modelled as "
            f"``{words_per_point.__doc__}`` numbers per pool point; the pool\n    is scored "
            "in chunks when it would not fit (:mod:`jaxal.memory`).\n"
        )
        with_budget.memory_model = words_per_point  # pyright: ignore[reportAttributeAccessIssue]  # set on a function
        return with_budget

    return wrap


def entropy_words(K: int, C: int) -> int:
    """3 C + 2"""
    return 3 * C + 2


def probability_words(K: int, C: int) -> int:
    """2 C + 1"""
    return 2 * C + 1


def vote_words(K: int, C: int) -> int:
    """(K + 5) C + 4"""
    return (K + 5) * C + 4


def spread_words(K: int, C: int) -> int:
    """(K + 2) C + 2"""
    return (K + 2) * C + 2


def gaussian_words(K: int, C: int) -> int:
    """4"""
    return 4
