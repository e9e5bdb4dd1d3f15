"""Split-conformal candidate sets and the candidate-set query (jaxal.conformal): the quantile
exactly, coverage on exchangeable data, the cost model by hand, the adaptive alpha against a
transcription of the authors' ``update_k`` (github.com/yehogwon/csq-al, al/strategy_dtopk.py),
the strategy under jit / vmap and its cost in the loop."""

import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxal
from jaxal import conformal
from jaxal.context import Round


@pytest.mark.parametrize("n", [1, 4, 19, 20, 99])
@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2, 0.5, 0.9])
def test_the_quantile_is_the_finite_sample_order_statistic(n, alpha, rng):
    scores = rng.random(n)
    k = math.ceil((n + 1) * (1 - Fraction(str(alpha))))  # exact rational arithmetic
    expected = np.inf if k > n else np.sort(scores)[k - 1]
    assert float(conformal.quantile(jnp.asarray(scores), alpha=alpha)) == expected
    if k <= n:  # the empirical quantile at level ceil((n+1)(1-alpha))/n
        assert expected == np.quantile(scores, k / n, method="inverted_cdf")
    padded = jnp.concatenate([jnp.asarray(scores), jnp.full((3,), -5.0)])  # masked rows
    valid = jnp.arange(n + 3) < n
    traced = jax.jit(lambda s, a: conformal.quantile(s, alpha=a, valid=valid))
    assert float(traced(padded, alpha)) == expected


def test_the_sets_cover_on_average_over_calibration_draws():
    """Exchangeable calibration and test points: coverage >= 1 - alpha, and not much above."""
    T, n, C, alpha = 4000, 20, 5, 0.1

    def draw(key):
        p_key, y_key = jax.random.split(key)
        probs_N_C = jax.random.dirichlet(p_key, jnp.ones(C), (n + 1,))
        y_N = jax.random.categorical(y_key, jnp.log(probs_N_C))
        q = conformal.quantile(conformal.scores(probs_N_C[:n], y_N[:n]), alpha=alpha)
        return conformal.prediction_sets(probs_N_C[n:], q)[0, y_N[n]]

    covered = jax.jit(jax.vmap(draw))(jax.random.split(jax.random.key(0), T))
    coverage, se = float(jnp.mean(covered)), math.sqrt(alpha * (1 - alpha) / T)
    assert 1 - alpha - 3 * se <= coverage <= 19 / 21 + 3 * se  # ceil(21 * 0.9) / 21


def test_the_cost_model_by_hand():
    C = 10
    sets = np.zeros((5, C), bool)
    sets[0, [1, 2, 3]] = True  # hit among 3: log2(4)
    sets[1, [1, 2, 3]] = True  # miss: log2(4) + log2(7)
    sets[2] = True  # all classes: log2(10)
    sets[3, :9] = True  # miss among 9: log2(10) + log2(1)
    # row 4 empty: all classes
    y = jnp.array([2, 7, 4, 9, 0])
    expected = [2.0, 2.0 + np.log2(7), np.log2(10), np.log2(10), np.log2(10)]
    np.testing.assert_allclose(conformal.query_cost(jnp.asarray(sets), y), expected, rtol=1e-6)
    assert conformal.full_query_cost(C) == pytest.approx(np.log2(10))
    np.testing.assert_allclose(
        conformal.expected_cost(jnp.array([3, 10, 1]), alpha=0.1, num_classes=C),
        [2 + 0.1 * np.log2(7), np.log2(10), 1 + 0.1 * np.log2(9)],
        rtol=1e-6,
    )
    probs = jnp.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]])
    sets = conformal.prediction_sets(probs, 0.75)  # p >= 0.25
    np.testing.assert_array_equal(sets, [[True, False, False], [True, True, True]])
    sets = conformal.prediction_sets(probs, 0.35)  # p >= 0.65; the empty set becomes all
    np.testing.assert_array_equal(sets, [[True, False, False], [True, True, True]])
    sets = conformal.prediction_sets(probs, 0.62)  # p >= 0.38
    np.testing.assert_array_equal(sets, [[True, False, False], [True, False, False]])


def _authors_best_alpha(probs: np.ndarray, y: np.ndarray) -> float:
    """The adaptive-alpha search of ``DynamicTopKStrategyConfBase.update_k`` in numpy, with
    the finite-sample quantile (the authors' code has it commented out as legacy)."""
    C, n = probs.shape[1], len(y)
    scores = 1 - probs[np.arange(n), y]
    table = {}
    for alpha in np.linspace(0, 0.98, 50):
        k = math.ceil(round((n + 1) * (1 - alpha), 9))
        q = np.inf if k > n else np.sort(scores)[k - 1]
        set_sizes = np.sum(1 - probs <= q, axis=1)
        set_sizes = np.where(set_sizes < 1, C, set_sizes)
        order = np.argsort(-probs, axis=1)
        costs = np.log2(np.clip(set_sizes + 1, 1, C))
        for i, label in enumerate(y):
            if label not in order[i, : set_sizes[i]]:
                costs[i] += np.log2(np.clip(C - set_sizes[i], 1, C))
        table[alpha] = costs.sum()
    return min(table, key=table.get)


def test_the_adaptive_alpha_matches_the_authors(rng):
    C, n = 6, 30
    probs = rng.dirichlet(0.3 * np.ones(C), n)
    y = np.array([rng.choice(C, p=p) for p in probs])
    got = conformal.best_alpha(jnp.asarray(probs), jnp.asarray(y))
    assert float(got) == pytest.approx(_authors_best_alpha(probs, y))
    unlabelled = jnp.concatenate([jnp.asarray(y), jnp.full((5,), -1)])
    padded = jnp.concatenate([jnp.asarray(probs), jnp.full((5, C), 1 / C)])
    assert float(conformal.best_alpha(padded, unlabelled)) == pytest.approx(float(got))


def test_the_strategy_acquires_by_cost_efficiency_under_jit_and_vmap(rng):
    N, C, K, b = 16, 4, 3, 3
    log_probs = jnp.log(jnp.asarray(rng.dirichlet(np.ones(C), (K, N))))
    labels = jnp.full((N,), -1).at[jnp.array([0, 1, 2])].set(jnp.array([1, 3, 0]))
    strategy = jaxal.strategies.get("candidate-set")
    memory = strategy.init_memory(num_points=N, num_classes=C, rounds=2, b=b)
    memory = {
        "probs": jnp.asarray(rng.dirichlet(np.ones(C), b), jnp.float32),
        "index": jnp.array([0, 1, 2]),
    }

    def run(log_probs):
        r = Round(
            key=jax.random.key(0), labelled=labels >= 0, pool=log_probs, labels=labels,
            memory=memory,
        )  # fmt: skip
        return strategy(r, b), r.shown_candidates, r.remembered

    index_S_B, sets_S_N_C, new = jax.jit(jax.vmap(run))(jnp.stack([log_probs] * 2))
    y = np.array([1, 3, 0])
    alpha = _authors_best_alpha(np.asarray(memory["probs"], np.float64), y)
    scores = 1 - np.asarray(memory["probs"])[np.arange(b), y]
    k = math.ceil(round((b + 1) * (1 - alpha), 9))
    q = np.inf if k > b else np.sort(scores)[k - 1]
    pbar = np.exp(log_probs).mean(0)
    sets = 1 - pbar <= q
    sets[~sets.any(1)] = True
    np.testing.assert_array_equal(sets_S_N_C[0], sets)
    sizes = sets.sum(1)
    cost = np.log2(np.clip(sizes + 1, 1, C)) + alpha * np.log2(np.clip(C - sizes, 1, C))
    entropy = -np.sum(pbar * np.log(pbar), 1)
    acquisition = np.where(np.asarray(labels) >= 0, -np.inf, (1 + entropy) ** 1.2 / cost)
    np.testing.assert_array_equal(index_S_B[0], np.argsort(-acquisition)[:b])
    np.testing.assert_array_equal(index_S_B[0], index_S_B[1])
    np.testing.assert_allclose(new["probs"][0], pbar[index_S_B[0]], rtol=1e-5)


def test_the_loop_prices_candidate_set_queries():
    """``metrics["cost"]`` starts at ``initial log2 C``; the first round (no calibration yet:
    full sets) adds ``b log2 C``; a later round adds the query cost of the sets the strategy
    showed, recomputed here from the round the loop built (seed 0)."""
    from jaxal import loop
    from tests.test_loop import POSTERIOR, toy_data

    data, strategy = toy_data(), jaxal.strategies.get("candidate-set")
    settings = dict(posterior=POSTERIOR, initial=6, rounds=2, b=4, seeds=2)
    start = loop.init(data, key=jax.random.key(0), strategy=strategy, **settings)
    states = [start]
    final = loop.run(
        start, data, posterior=POSTERIOR, strategy=strategy, on_round=states.append, progress=False
    )
    cost = np.asarray(final.metrics["cost"])
    np.testing.assert_allclose(cost[:, 0], 6 * np.log2(3), rtol=1e-6)
    np.testing.assert_allclose(cost[:, 1] - cost[:, 0], 4 * np.log2(3), rtol=1e-6)
    before = jax.tree.map(lambda x: x[0], states[1])  # seed 0 before the second round
    round_key = jax.random.split(jax.random.wrap_key_data(before.key), 3)[0]

    @jax.jit
    def second_round(before, round_key):
        r = Round.from_posterior(
            POSTERIOR, before.params, key=round_key, x_pool=data.x_pool, labelled=before.labelled,
            y_pool=data.y_pool, memory=before.memory,
        )  # fmt: skip
        index_B = strategy(r, 4)
        return index_B, conformal.query_cost(r.shown_candidates[index_B], data.y_pool[index_B])

    index_B, cost_B = second_round(before, round_key)
    np.testing.assert_array_equal(index_B, final.acquired[0, 1])
    expected = float(jnp.sum(cost_B))
    assert cost[0, 2] - cost[0, 1] == pytest.approx(expected, rel=1e-5)
    assert np.all(np.asarray(final.memory["index"]) == np.asarray(final.acquired[:, -1]))
