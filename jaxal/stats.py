r"""Statistics for comparing active-learning strategies over seeds.

Shapes: ``S`` seeds, ``R`` points of a learning curve (the metric after the initial fit and
after each round, against the label count at each point).

* :func:`area_under_curve`: each seed's curve summarised by its normalised area;
* :func:`labels_to_reach`: the first label count at which a seed's curve reaches a threshold;
* :func:`paired_bootstrap`: a percentile-bootstrap confidence interval of the mean paired
  difference between two strategies, or of the difference of their spreads (standard
  deviations over the same seeds);
* :func:`verdict`: ``"held"`` / ``"not held"`` / ``"inconclusive"`` for a claimed direction,
  read off that interval.

**Paired.** :func:`jaxal.loop.compare` starts every strategy of seed ``s`` from the same
initial labels and initial fit, so two strategies' per-seed values ``a_s`` and ``b_s`` are
compared through their differences :math:`d_s = a_s - b_s`, which cancels the variation
between seeds that both share (the initial set, the network's initialisation). The test is
the percentile bootstrap of :math:`\bar d`: draw ``S`` seeds with replacement, take the mean
of their ``d``, repeat, and report the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles
(Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13). With few seeds it is
optimistic (the resampled means take at most ``S^S`` values and ignore the spread beyond the
seeds seen), so a narrow interval from 5 seeds is evidence, not proof.

**Spreads.** A claim about variability ("lower variance across initialisations") compares
:math:`\mathrm{sd}(a) - \mathrm{sd}(b)` over the seeds (``statistic="std"``, sample standard
deviations): the same resampled seeds feed both sides, so the pairing is kept, and the
interval is read as for a mean. A spread from few seeds is itself uncertain: expect wide
intervals below 10 seeds.

**Never reached.** :func:`labels_to_reach` returns ``inf`` for a seed whose curve never
reaches the threshold. The bootstrap needs finite values, so :func:`paired_bootstrap` takes
``censor``: each ``inf`` becomes that value (e.g. the label budget plus one batch, a lower
bound of the true count) and the number of censored seeds of each side is kept. A censored
``a_s`` makes ``d_s`` a lower bound of the true difference and a censored ``b_s`` an upper
bound, so :func:`verdict` trusts an interval lying above its threshold only if no ``b_s``
was censored, and one lying below only if no ``a_s`` was; otherwise the claim is
``"inconclusive"`` (when both strategies never reach the threshold on every seed, every
``d_s`` is 0 and the claim is undecided, as it should be).

JAX with explicit PRNG keys, like the rest of jaxal: :func:`area_under_curve`,
:func:`labels_to_reach` and :func:`paired_bootstrap` work under ``jit`` and ``vmap`` (their
value checks, NaN and ``inf``, run when the inputs are concrete); :func:`verdict` reads a
concrete interval on the host. The sizes are small (``S`` seeds, 10,000 resamples).
"""

from collections.abc import Sequence
from functools import partial
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, Real

from jaxal import check

Direction = Literal["greater", "less"]
Verdict = Literal["held", "not held", "inconclusive"]

__all__ = [
    "Direction",
    "PairedCI",
    "Verdict",
    "area_under_curve",
    "labels_to_reach",
    "paired_bootstrap",
    "verdict",
]


def _curves(
    curve: ArrayLike, labels: ArrayLike | Sequence[int | float], name: str
) -> tuple[Array, Array]:
    """``curve [S, R]`` and ``labels`` broadcast to ``[S, R]``, validated."""
    curve_S_R = check.float_array(curve, name)
    if curve_S_R.ndim != 2:
        raise ValueError(
            f"{name} must have shape [S, R] (seeds, curve points); got {curve_S_R.shape}"
        )
    labels_R = jnp.asarray(labels, dtype=curve_S_R.dtype)
    if labels_R.shape not in ((curve_S_R.shape[1],), curve_S_R.shape):
        raise ValueError(
            f"labels must have shape [R] or [S, R] = {curve_S_R.shape}, one label count per "
            f"curve point; got {labels_R.shape}"
        )
    check.require(~jnp.isnan(curve_S_R).any(), f"{name} contains NaN", on_trace="skip")
    return curve_S_R, jnp.broadcast_to(labels_R, curve_S_R.shape)


def area_under_curve(
    curve_S_R: Float[ArrayLike, "S R"],
    labels_R: Real[ArrayLike, "*seeds R"] | Sequence[int | float],
) -> Float[Array, " S"]:
    r"""``[S]`` normalised area under each seed's curve: the trapezoid rule over the labels,
    divided by the label range,

    .. math::
        \mathrm{AUC}_s = \frac{1}{x_{R-1} - x_0} \sum_{r=1}^{R-1}
            (x_r - x_{r-1}) \, \frac{y_{s,r-1} + y_{s,r}}{2},

    a weighted mean of the curve in its own units (an accuracy curve gives a value in
    ``[0, 1]``; a constant curve gives the constant). ``labels_R`` is ``[R]`` (shared) or
    ``[S, R]`` (per seed, e.g. a cumulative labelling cost), increasing, ``R >= 2``.
    """
    y_S_R, x_S_R = _curves(curve_S_R, labels_R, "curve_S_R")
    if y_S_R.shape[1] < 2:
        raise ValueError(f"a curve needs at least 2 points for an area; got R = {y_S_R.shape[1]}")
    check.require(
        (jnp.diff(x_S_R, axis=-1) > 0).all(), "labels must be strictly increasing", "skip"
    )
    return jnp.trapezoid(y_S_R, x=x_S_R, axis=-1) / (x_S_R[:, -1] - x_S_R[:, 0])


def labels_to_reach(
    accuracy_S_R: Float[ArrayLike, "S R"],
    labels_R: Real[ArrayLike, "*seeds R"] | Sequence[int | float],
    threshold: float | Float[ArrayLike, ""],
) -> Float[Array, " S"]:
    """``[S]`` per seed, the label count at the first curve point with ``accuracy >=
    threshold``; ``inf`` where the seed never reaches it. ``labels_R`` is ``[R]`` or
    ``[S, R]`` (per seed, e.g. the cumulative labelling cost at each point)."""
    y_S_R, x_S_R = _curves(accuracy_S_R, labels_R, "accuracy_S_R")
    reached_S_R = y_S_R >= threshold
    first_S = jnp.argmax(reached_S_R, axis=-1)
    at_S = jnp.take_along_axis(x_S_R, first_S[:, None], axis=-1)[:, 0]
    return jnp.where(reached_S_R.any(axis=-1), at_S, jnp.inf)


class PairedCI(NamedTuple):
    """A paired comparison of ``a`` and ``b`` over seeds: ``mean`` is the compared difference
    (the mean of ``d = a - b``; with ``statistic="std"``, ``sd(a) - sd(b)``), ``[low,
    high]`` its percentile-bootstrap interval at ``level``, with the number of ``seeds`` and
    how many seeds of ``a`` and of ``b`` were censored (``inf`` replaced, see
    :func:`paired_bootstrap`). Under ``jit`` ``level`` and ``seeds`` come back as arrays."""

    mean: Float[Array, ""]
    low: Float[Array, ""]
    high: Float[Array, ""]
    level: float | Float[Array, ""]
    seeds: int | Int[Array, ""]
    censored_a: Int[Array, ""]
    censored_b: Int[Array, ""]


def paired_bootstrap(
    a_S: Real[ArrayLike, " S"],
    b_S: Real[ArrayLike, " S"],
    key: jax.Array,
    *,
    resamples: int = 10_000,
    level: float = 0.95,
    censor: float | None = None,
    statistic: Literal["mean", "std"] = "mean",
) -> PairedCI:
    r"""Percentile-bootstrap confidence interval of the mean paired difference
    :math:`\bar d = \frac1S \sum_s (a_s - b_s)` (``statistic="mean"``) or of the difference
    of the spreads :math:`\mathrm{sd}(a) - \mathrm{sd}(b)` (``"std"``, sample standard
    deviations over the seeds; each resample draws one set of seeds for both sides).

    Seed ``s`` of ``a_S`` and of ``b_S`` must share their start (initial labels and fit, as
    in :func:`jaxal.loop.compare`). Draws ``resamples`` sets of ``S`` seed indices uniformly
    with replacement (``key``), takes the mean of ``d`` over each, and returns the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those means (linear
    interpolation) with :math:`\bar d` itself.

    ``inf`` (a label count never reached, :func:`labels_to_reach`) is a ``ValueError``
    unless ``censor`` is given: then every ``+inf`` is replaced by ``censor`` and the
    censored seeds are counted in the result, which :func:`verdict` takes into account.
    Fewer than 2 seeds, different shapes, NaN, an unknown ``statistic`` or ``censor`` with
    ``"std"`` (the spread of censored counts means nothing) are ``ValueError``\ s.
    """
    check.key(key)
    resamples = check.integer(resamples, "resamples")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1); got {level!r}")
    if statistic not in ("mean", "std"):
        raise ValueError(f"statistic must be 'mean' or 'std'; got {statistic!r}")
    if statistic == "std" and censor is not None:
        raise ValueError("censor= needs statistic='mean': a spread of censored counts is not one")
    sides = []
    for name, x in (("a_S", a_S), ("b_S", b_S)):
        x_S = check.float_array(jnp.asarray(x, dtype=float), name)
        if x_S.ndim != 1:
            raise ValueError(f"{name} must have shape [S] (one value per seed); got {x_S.shape}")
        check.require(~jnp.isnan(x_S).any(), f"{name} contains NaN", on_trace="skip")
        check.require(
            ~jnp.isneginf(x_S).any(), f"{name} contains -inf; only +inf can be censored", "skip"
        )
        if censor is None:
            check.require(
                ~jnp.isposinf(x_S).any(),
                f"{name} contains inf (a label count never reached?); pass censor=, e.g. the "
                "label budget plus one batch",
                on_trace="skip",
            )
        sides.append(x_S)
    first_S, second_S = sides
    if first_S.shape != second_S.shape:
        raise ValueError(
            f"a_S and b_S must hold the same seeds (paired); got {first_S.shape[0]} and "
            f"{second_S.shape[0]} values"
        )
    S = first_S.shape[0]
    if S < 2:
        raise ValueError(f"a paired bootstrap needs at least 2 seeds; got {S}")
    censored = [jnp.isposinf(x_S).sum() for x_S in sides]
    if censor is not None:
        first_S, second_S = (jnp.where(jnp.isposinf(x_S), censor, x_S) for x_S in sides)
    estimate = _statistic(first_S, second_S, statistic)
    low, high = _percentile_interval(first_S, second_S, key, resamples, level, statistic)
    return PairedCI(estimate, low, high, level, S, *censored)


def _statistic(a_TS: Array, b_TS: Array, statistic: str) -> Array:
    """The mean of ``a - b`` or ``sd(a) - sd(b)`` along the last axis (seeds)."""
    if statistic == "mean":
        return (a_TS - b_TS).mean(axis=-1)
    return a_TS.std(axis=-1, ddof=1) - b_TS.std(axis=-1, ddof=1)


@partial(jax.jit, static_argnums=(3, 4, 5))
def _percentile_interval(
    a_S: Array, b_S: Array, key: Array, resamples: int, level: float, statistic: str
) -> Array:
    """``[2]`` the ``(1 -+ level) / 2`` quantiles of the ``statistic`` over ``resamples``
    bootstrap sets of seeds, the same set for ``a`` and ``b`` (one compiled program per
    shape, instead of a dispatch per operation)."""
    S = a_S.shape[0]
    index_T_S = jax.random.randint(key, (resamples, S), 0, S)
    values_T = _statistic(a_S[index_T_S], b_S[index_T_S], statistic)
    tails = jnp.array([(1.0 - level) / 2.0, (1.0 + level) / 2.0], dtype=a_S.dtype)
    return jnp.quantile(values_T, tails)


def verdict(ci: PairedCI, direction: Direction, *, margin: float = 0.0) -> Verdict:
    """Whether the claim "``mean(a - b)`` is on the ``direction`` side" held, from ``ci``.

    ``direction="greater"`` claims ``a`` larger than ``b`` (e.g. accuracy), ``"less"`` claims
    ``a`` smaller (e.g. labels to reach an accuracy, RMSE). With a non-inferiority
    ``margin >= 0`` the claim is weaker: ``a`` is no worse than ``b`` by more than
    ``margin`` (greater: ``mean(d) > -margin``; less: ``mean(d) < margin``). Returns
    ``"held"`` if the whole interval lies on the claimed side of that threshold, ``"not
    held"`` if it lies wholly on the other side, else ``"inconclusive"``. A side whose
    bound rests on censored seeds (module docstring) is not trusted: an interval above the
    threshold counts only if no seed of ``b`` was censored, one below only if none of ``a``.
    """
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less'; got {direction!r}")
    if not margin >= 0.0:
        raise ValueError(f"margin must be >= 0; got {margin!r}")
    low, high = float(ci.low), float(ci.high)
    if low != low or high != high:
        raise ValueError(f"the interval contains NaN: [{low}, {high}]")
    threshold = -margin if direction == "greater" else margin
    above = low > threshold and int(ci.censored_b) == 0
    below = high < threshold and int(ci.censored_a) == 0
    if direction == "greater":
        return "held" if above else "not held" if below else "inconclusive"
    return "held" if below else "not held" if above else "inconclusive"
