"""``memory_budget=`` for pointwise scores: chunk the pool so the working memory fits."""

import functools

from jaxal import check, memory


def _classification_args(log_probs):
    log_probs = check.log_probs(log_probs, on_trace="skip")
    return (log_probs,), log_probs.shape[0]


def _regression_args(mean, var):
    mean, var = check.gaussian(mean, var, on_trace="skip")
    return (mean, var), mean.shape[0]


def budgeted(*, task: str):
    """Give a pointwise score a keyword-only ``memory_budget`` (see :mod:`jaxal.memory`).

    Without a budget the score runs as is. With one, the inputs are validated and the pool is
    scored in the largest chunk of points whose compiled program (XLA's count of its
    temporaries) fits the budget, in one compiled program (:func:`jaxal.memory.map_within`).
    Scores are per point, so the result equals the unchunked one (up to floating-point
    rounding, as XLA may vectorise the two programs differently).
    """
    prepare = _classification_args if task == "classification" else _regression_args

    def wrap(score):
        @functools.wraps(score)
        def with_budget(*args, memory_budget: memory.Budget = None):
            if memory_budget is None:
                return score(*args)
            arrays, K = prepare(*args)
            return memory.map_within(
                memory_budget, score, arrays, what=f"{score.__name__} on K = {K} samples"
            )

        with_budget.__doc__ = (score.__doc__ or "") + (
            "\n    Memory: ``memory_budget=`` (bytes or a string like ``'4GB'``) bounds the "
            "working\n    memory (XLA's count of the compiled program's temporaries); the "
            "pool is scored\n    in chunks when it would not fit (:mod:`jaxal.memory`).\n"
        )
        return with_budget

    return wrap
