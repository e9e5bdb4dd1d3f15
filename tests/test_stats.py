"""jaxal.stats: learning-curve summaries, the paired bootstrap against its exact
distribution, and the verdicts."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxal import stats
from tests.conftest import TRANSFORMS


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_area_under_a_linear_curve_is_its_midpoint_value(transform):
    labels_R = jnp.array([20.0, 30.0, 60.0, 100.0])  # uneven steps
    curve_S_R = jnp.stack([0.5 + 0.004 * (labels_R - 20.0), jnp.full(4, 0.8)])
    area_S = transform(stats.area_under_curve)(curve_S_R, labels_R)
    np.testing.assert_allclose(area_S, [0.66, 0.8], rtol=1e-12)


def test_area_under_curve_is_the_trapezoid_rule_with_per_seed_labels(rng):
    curve_S_R = rng.uniform(size=(3, 5))
    labels_S_R = np.cumsum(rng.uniform(1.0, 3.0, size=(3, 5)), axis=1)
    expected_S = [
        sum((x[r] - x[r - 1]) * (y[r] + y[r - 1]) / 2 for r in range(1, 5)) / (x[-1] - x[0])
        for x, y in zip(labels_S_R, curve_S_R, strict=True)
    ]
    np.testing.assert_allclose(stats.area_under_curve(curve_S_R, labels_S_R), expected_S)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_labels_to_reach_takes_the_first_point_at_or_above_the_threshold(transform):
    accuracy_S_R = jnp.array([[0.5, 0.9, 0.8, 0.95], [0.5, 0.6, 0.7, 0.89], [0.9, 0.9, 0.9, 0.9]])
    reach = transform(stats.labels_to_reach)
    np.testing.assert_array_equal(
        reach(accuracy_S_R, jnp.array([10, 20, 30, 40]), 0.9), [20.0, np.inf, 10.0]
    )
    # labels as a list of ints, as the experiments pass them
    np.testing.assert_array_equal(
        stats.labels_to_reach(accuracy_S_R, [10, 20, 30, 40], 0.9), [20.0, np.inf, 10.0]
    )
    cost_S_R = jnp.array([[1.0, 2, 3, 4], [1, 2, 3, 4], [5, 6, 7, 8]])  # per-seed x values
    np.testing.assert_array_equal(reach(accuracy_S_R, cost_S_R, 0.9), [2.0, np.inf, 5.0])


def exact_bootstrap_means(d_S: np.ndarray) -> np.ndarray:
    """All ``S^S`` equally likely resamples' means (the bootstrap distribution, exactly)."""
    S = len(d_S)
    return np.array([d_S[list(index)].mean() for index in itertools.product(range(S), repeat=S)])


def test_paired_bootstrap_quantiles_match_the_exact_bootstrap_distribution():
    a_S, b_S = np.array([1.0, 3.0, 5.5]), np.array([1.0, 2.0, 0.5])  # d = [0, 1, 5]
    exact_T = exact_bootstrap_means(a_S - b_S)  # 27 resamples
    resamples = 20_000
    ci = stats.paired_bootstrap(a_S, b_S, jax.random.key(0), resamples=resamples, level=0.8)
    assert float(ci.mean) == pytest.approx(2.0)
    assert (ci.level, ci.seeds) == (0.8, 3)
    # low is the 0.1 quantile of the resampled means: the exact CDF must cross 0.1 at low,
    # within Monte Carlo error (4 standard errors of an empirical CDF at p = 0.1)
    tolerance = 4 * np.sqrt(0.1 * 0.9 / resamples)
    for value, tail in ((float(ci.low), 0.1), (float(ci.high), 0.9)):
        assert np.mean(exact_T <= value) >= tail - tolerance
        assert np.mean(exact_T < value) <= tail + tolerance
    assert exact_T.min() <= float(ci.low) < float(ci.high) <= exact_T.max()


def test_spread_bootstrap_matches_the_exact_bootstrap_distribution():
    """``statistic="std"``: sd(a) - sd(b) over one resampled set of seeds for both sides."""
    a_S, b_S = np.array([0.60, 0.70, 0.95]), np.array([0.50, 0.52, 0.55])
    index_T_S = np.array(list(itertools.product(range(3), repeat=3)))
    exact_T = a_S[index_T_S].std(-1, ddof=1) - b_S[index_T_S].std(-1, ddof=1)
    resamples = 20_000
    ci = stats.paired_bootstrap(
        a_S, b_S, jax.random.key(0), resamples=resamples, level=0.8, statistic="std"
    )
    assert float(ci.mean) == pytest.approx(a_S.std(ddof=1) - b_S.std(ddof=1))
    tolerance = 4 * np.sqrt(0.1 * 0.9 / resamples)
    for value, tail in ((float(ci.low), 0.1), (float(ci.high), 0.9)):
        assert np.mean(exact_T <= value + 1e-12) >= tail - tolerance
        assert np.mean(exact_T < value - 1e-12) <= tail + tolerance


@pytest.mark.parametrize("statistic", ["mean", "std"])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_paired_bootstrap_is_the_same_under_jit(transform, statistic, rng):
    a_S, b_S = rng.uniform(size=5), rng.uniform(size=5)
    run = lambda a, b, key: stats.paired_bootstrap(a, b, key, resamples=500, statistic=statistic)  # noqa: E731
    eager = run(a_S, b_S, jax.random.key(1))
    traced = transform(run)(a_S, b_S, jax.random.key(1))
    for field in ("mean", "low", "high", "censored_a", "censored_b"):
        np.testing.assert_allclose(getattr(traced, field), getattr(eager, field))


def test_paired_bootstrap_censors_inf_and_counts_it():
    a_S = np.array([100.0, np.inf, 120.0])
    b_S = np.array([np.inf, np.inf, 150.0])
    ci = stats.paired_bootstrap(a_S, b_S, jax.random.key(0), censor=160.0, resamples=100)
    assert float(ci.mean) == pytest.approx((-60.0 + 0.0 - 30.0) / 3)
    assert (int(ci.censored_a), int(ci.censored_b)) == (1, 2)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
@pytest.mark.parametrize(
    ("a_S", "b_S", "message"),
    [
        ([0.1, 0.2, 0.3], [0.1, 0.2], "same seeds"),
        ([0.1], [0.2], "at least 2 seeds"),
        ([0.1, np.nan], [0.2, 0.3], "a_S contains NaN"),
        ([0.1, 0.2], [0.2, np.inf], "b_S contains inf .* pass censor="),
        ([[0.1, 0.2]], [[0.2, 0.3]], r"shape \[S\]"),
    ],
)
def test_paired_bootstrap_rejects_bad_input(a_S, b_S, message):
    with pytest.raises(ValueError, match=message):
        stats.paired_bootstrap(np.array(a_S), np.array(b_S), jax.random.key(0))


@pytest.mark.unchecked  # a wrong statistic on purpose
def test_paired_bootstrap_rejects_a_bad_statistic_or_censored_spreads():
    a_S, b_S, key = np.array([1.0, 2.0]), np.array([1.0, np.inf]), jax.random.key(0)
    with pytest.raises(ValueError, match="statistic must be 'mean' or 'std'"):
        stats.paired_bootstrap(a_S, a_S, key, statistic="median")  # pyright: ignore[reportArgumentType]
    with pytest.raises(ValueError, match="censor= needs statistic='mean'"):
        stats.paired_bootstrap(a_S, b_S, key, censor=3.0, statistic="std")


def ci(low: float, high: float, censored_a: int = 0, censored_b: int = 0) -> stats.PairedCI:
    return stats.PairedCI(
        jnp.asarray((low + high) / 2), jnp.asarray(low), jnp.asarray(high), 0.95, 5,
        jnp.asarray(censored_a), jnp.asarray(censored_b),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("interval", "direction", "margin", "expected"),
    [
        (ci(0.01, 0.03), "greater", 0.0, "held"),
        (ci(-0.03, -0.01), "greater", 0.0, "not held"),
        (ci(-0.01, 0.03), "greater", 0.0, "inconclusive"),
        (ci(0.0, 0.0), "greater", 0.0, "inconclusive"),  # every seed tied
        (ci(-30.0, -10.0), "less", 0.0, "held"),
        (ci(10.0, 30.0), "less", 0.0, "not held"),
        (ci(-0.005, 0.002), "greater", 0.01, "held"),  # within the non-inferiority margin
        (ci(-0.03, -0.02), "greater", 0.01, "not held"),
        (ci(0.005, 0.02), "less", 0.01, "inconclusive"),
        # censored seeds: an interval resting on a bound in the claim's favour is not trusted
        (ci(-30.0, -10.0, censored_a=1), "less", 0.0, "inconclusive"),
        (ci(-30.0, -10.0, censored_b=2), "less", 0.0, "held"),
        (ci(10.0, 30.0, censored_b=1), "less", 0.0, "inconclusive"),
        (ci(10.0, 30.0, censored_a=1), "less", 0.0, "not held"),
    ],
)
def test_verdict(interval, direction, margin, expected):
    assert stats.verdict(interval, direction, margin=margin) == expected


@pytest.mark.unchecked
def test_verdict_rejects_bad_input():
    with pytest.raises(ValueError, match="direction must be 'greater' or 'less'"):
        stats.verdict(ci(0.0, 1.0), "more")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="margin must be >= 0"):
        stats.verdict(ci(0.0, 1.0), "greater", margin=-0.1)
    with pytest.raises(ValueError, match="contains NaN"):
        stats.verdict(ci(np.nan, 1.0), "greater")


@pytest.mark.unchecked
def test_curve_summaries_reject_bad_input():
    with pytest.raises(ValueError, match=r"labels must have shape \[R\] or \[S, R\]"):
        stats.area_under_curve(jnp.zeros((2, 3)), [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2 points"):
        stats.area_under_curve(jnp.zeros((2, 1)), [1.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        stats.area_under_curve(jnp.zeros((2, 3)), [1.0, 3.0, 2.0])
    with pytest.raises(ValueError, match="contains NaN"):
        stats.labels_to_reach(jnp.array([[0.1, np.nan]]), [1.0, 2.0], 0.5)
