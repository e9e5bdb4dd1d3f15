"""Tests for jaxal.memory and the ``memory_budget=`` of scores and selections.

The budgets are derived from XLA's own count of the compiled program's temporaries
(``memory_analysis().temp_size_in_bytes``); the tests count independently: the unchunked
program needs more than the budget, the budgeted program fits in it, and the answer is the
same.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxal import memory, scores
from jaxal.scores import _epig

CLASSIFICATION = scores.names(task="classification")
REGRESSION = scores.names(task="regression")


def temp_bytes(fn, *args) -> int:
    """XLA's working memory of ``jit(fn)(*args)``: temporaries beyond inputs and outputs."""
    return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes


def random_log_probs(key, K, N, C, dtype=jnp.float32):
    logits = 2 * jax.random.normal(key, (1, N, C)) + jax.random.normal(key, (K, N, C))
    return jax.nn.log_softmax(logits.astype(dtype), axis=-1)


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        (4096, 4096),
        ("4GB", 4 * 10**9),
        ("512MiB", 512 * 2**20),
        ("1.5 GiB", int(1.5 * 2**30)),
        ("100kB", 100_000),
        (None, None),
    ],
)
def test_parse(budget, expected):
    assert memory.parse(budget) == expected


@pytest.mark.parametrize(
    ("budget", "error", "match"),
    [
        ("4XB", ValueError, "not a size"),
        (0, ValueError, "at least 1 byte"),
        (True, TypeError, "memory_budget must be bytes"),
    ],
)
def test_parse_rejects(budget, error, match):
    with pytest.raises(error, match=match):
        memory.parse(budget)


def test_temp_bytes_is_xlas_count_and_cached(key):
    # K = 8: two steps of BALD's sample loop, whose running sums need working memory (with
    # K <= 5 XLA fuses the whole program and counts 0 bytes)
    log_probs = random_log_probs(key, 8, 50, 3)
    count = memory.temp_bytes(scores.bald, log_probs)
    assert count == temp_bytes(scores.bald, log_probs) > 0
    spec = jax.ShapeDtypeStruct(log_probs.shape, log_probs.dtype)
    assert memory.temp_bytes(scores.bald, spec) == count  # the shapes, not the values


def test_chunk_size_searches_a_measured_program():
    calls = []

    def measure(n):  # convex, as XLA's counts often are
        calls.append(n)
        return 100 + n * n

    assert memory.chunk_size(None, 100, measure, what="x") == 100
    assert calls == []  # nothing is measured without a budget
    assert memory.chunk_size(20_000, 100, measure, what="x") == 100
    n = memory.chunk_size(1100, 100, measure, what="x")
    assert measure(n) <= 1100 and n >= 20  # the largest is 31: a few steps get close
    assert len(calls) <= 2 + 6 + 1
    with pytest.raises(ValueError, match="too small for thing: it needs at least 101 bytes"):
        memory.chunk_size(100, 10, measure, what="thing")


def test_chunk_size_fits_or_names_the_minimum():
    def linear(n):
        return 200 + 8 * n

    assert memory.chunk_size(None, 100, linear, what="x") == 100
    assert memory.chunk_size(1000, 100, linear, what="x") == 100
    assert memory.chunk_size(1000, 1000, linear, what="x") == 100
    with pytest.raises(ValueError, match="too small for thing: it needs at least 208 bytes"):
        memory.chunk_size(100, 10, linear, what="thing")


@pytest.mark.parametrize("chunk", [1, 3, 6, 7, 100])
def test_map_points_equals_the_direct_computation(key, chunk):
    x_K_N = jax.random.normal(key, (3, 7))
    y_K_N = jax.random.normal(jax.random.fold_in(key, 1), (3, 7))

    def fn(x, y):
        return jnp.stack([jnp.sum(x * y, 0), jnp.max(x, 0)], axis=1)  # [n, 2]

    np.testing.assert_allclose(
        memory.map_points(fn, [x_K_N, y_K_N], chunk=chunk), fn(x_K_N, y_K_N), rtol=1e-14
    )


@pytest.mark.parametrize("name", CLASSIFICATION)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_classification_score_under_a_budget_fits_and_agrees(key, name, dtype):
    score = scores.get(name)
    log_probs = random_log_probs(key, 8, 1000, 6, dtype)
    budget = 15_000
    # The unchunked program would not fit (XLA needs no temporaries for mean-std here).
    assert temp_bytes(score, log_probs) > budget or name == "mean-std"
    budgeted = jax.jit(lambda lp: score(lp, memory_budget=budget))
    assert temp_bytes(budgeted, log_probs) <= budget
    rtol = 1e-6 if dtype == jnp.float32 else 1e-12
    np.testing.assert_allclose(budgeted(log_probs), score(log_probs), rtol=rtol, atol=rtol)
    # Eagerly, and vmapped over a leading axis, too.
    np.testing.assert_allclose(
        score(log_probs, memory_budget="15kB"), score(log_probs), rtol=rtol, atol=rtol
    )
    stacked = jnp.stack([log_probs[:, :100], log_probs[:, 100:200]])
    np.testing.assert_allclose(
        jax.vmap(lambda lp: score(lp, memory_budget=2_000))(stacked),
        jax.vmap(score)(stacked),
        rtol=rtol,
        atol=rtol,
    )


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_score_under_a_budget_agrees(key, name):
    mean_K_N = jax.random.normal(key, (6, 2000))
    var_K_N = jnp.exp(jax.random.normal(jax.random.fold_in(key, 1), (6, 2000)))
    score = scores.get(name)
    np.testing.assert_allclose(
        score(mean_K_N, var_K_N, memory_budget=2_000), score(mean_K_N, var_K_N), rtol=1e-6
    )
    assert temp_bytes(lambda m, v: score(m, v, memory_budget=2_000), mean_K_N, var_K_N) <= 2_000


@pytest.mark.parametrize("name", [*CLASSIFICATION[:2], REGRESSION[0]])
def test_impossible_budget_is_a_clear_error(key, name):
    score = scores.get(name)
    args = (
        (random_log_probs(key, 8, 10, 3),)  # K = 8: K <= 5 fuses to 0 bytes (see above)
        if name in CLASSIFICATION
        else (jnp.zeros((4, 10)), jnp.ones((4, 10)))
    )
    with pytest.raises(ValueError, match="memory_budget=10 bytes is too small"):
        score(*args, memory_budget=10)


def test_epig_under_a_budget_fits_and_agrees(key):
    pool = random_log_probs(key, 10, 600, 5)
    target = random_log_probs(jax.random.fold_in(key, 1), 10, 200, 5)
    budget = 305_000  # XLA's count: 299 kB with blocks of 1 x 1, 315 kB with 128 x 200
    # XLA's count for the default blocks (128 pool points x 200 targets) exceeds the budget.
    assert _epig._budgeted_blocks(
        budget, pool, target, pool_block_size=128, target_block_size=200
    ) != (128, 200)
    budgeted = jax.jit(lambda p, t: scores.epig(p, t, memory_budget=budget))
    assert temp_bytes(budgeted, pool, target) <= budget
    np.testing.assert_allclose(budgeted(pool, target), scores.epig(pool, target), atol=1e-6)
    with pytest.raises(ValueError, match="too small for EPIG"):
        scores.epig(pool, target, memory_budget="250kB")


def test_gaussian_epig_under_a_budget_fits_and_agrees(key):
    mean_pool, mean_target = jax.random.normal(key, (8, 1500)), jax.random.normal(key, (8, 300))
    var_pool, var_target = jnp.ones((8, 1500)), jnp.ones((8, 300))
    args = (mean_pool, var_pool, mean_target, var_target)
    budget = 600_000
    assert temp_bytes(jax.jit(scores.gaussian_epig), *args) > budget  # the default does not fit
    budgeted = jax.jit(lambda *a: scores.gaussian_epig(*a, memory_budget=budget))
    assert temp_bytes(budgeted, *args) <= budget
    np.testing.assert_allclose(budgeted(*args), scores.gaussian_epig(*args), rtol=1e-6)
    with pytest.raises(ValueError, match="too small for gaussian_epig"):
        scores.gaussian_epig(*args, memory_budget="100kB")
