"""Bad input gets a clear error before tracing; checkify keeps value checks under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jaxal
from tests import reference

# Every test here feeds bad input on purpose, to test jaxal's own messages: without jaxtyping's
# run-time checks, which would reject much of it first (tests/conftest.py).
pytestmark = pytest.mark.unchecked

GOOD = reference.random_log_probs(np.random.default_rng(0), 3, 5, 4)


def _bad(fn):
    """``fn`` applied to a copy of a valid ``[3, 5, 4]`` log-prob array."""
    x = GOOD.copy()
    fn(x)
    return x


def _set_nan(x):
    x[0, 1, 2] = np.nan


def _set_posinf(x):
    x[1, 2, 0] = np.inf


def _unnormalise(x):
    x[2, 0] += 0.1


LOG_PROBS_ERRORS = [
    (GOOD[0], ValueError, r"log_probs must have shape \[K, N, C\]"),
    (GOOD[None], ValueError, r"log_probs must have shape \[K, N, C\]"),
    (np.zeros((3, 0, 4)), ValueError, "empty pool"),
    (_bad(_set_nan), ValueError, "log_probs contains NaN"),
    (_bad(_set_posinf), ValueError, r"log_probs contains \+inf"),
    (_bad(_unnormalise), ValueError, "normalised log-probabilities"),
    (np.zeros((3, 5, 4), dtype=np.int32), TypeError, "floating dtype"),
]


@pytest.mark.parametrize("name", jaxal.scores.names(task="classification"))
@pytest.mark.parametrize("bad, error, message", LOG_PROBS_ERRORS)
def test_scores_reject_bad_log_probs(name, bad, error, message):
    with pytest.raises(error, match=message):
        jaxal.scores.get(name)(bad)


@pytest.mark.parametrize("bad, error, message", LOG_PROBS_ERRORS)
def test_batchbald_rejects_bad_log_probs(bad, error, message):
    with pytest.raises(error, match=message):
        jaxal.select.batchbald(bad, 2)


def test_minus_inf_is_a_valid_zero_probability():
    log_probs = jnp.log(jnp.array([[[1.0, 0.0, 0.0]], [[0.5, 0.5, 0.0]]]))
    assert np.isfinite(jaxal.scores.bald(log_probs)).all()
    assert np.isfinite(jaxal.select.batchbald(log_probs, 1)[1]).all()


def test_shape_errors_are_raised_under_jit_too():
    with pytest.raises(ValueError, match=r"\[K, N, C\]"):
        jax.jit(jaxal.scores.bald)(jnp.zeros((3, 4)))
    with pytest.raises(ValueError, match="larger than the pool"):
        jax.jit(lambda s: jaxal.select.top_k(s, 6))(jnp.zeros(5))


@pytest.mark.parametrize(
    "call",
    [
        lambda s, m, b: jaxal.select.top_k(s, b, available=m),
        lambda s, m, b: jaxal.select.stochastic(s, b, key=jax.random.key(0), available=m),
        lambda s, m, b: jaxal.select.random(s.shape[0], b, key=jax.random.key(0), available=m),
        lambda s, m, b: jaxal.select.batchbald(jnp.log(jnp.full((2, 5, 2), 0.5)), b, available=m),
    ],
    ids=["top_k", "stochastic", "random", "batchbald"],
)
def test_selection_rejects_impossible_budgets(call):
    scores = jnp.linspace(0.1, 1.0, 5)
    mask = jnp.array([True, False, True, False, False])
    with pytest.raises(
        ValueError, match=r"b = 3 is larger than the number of available points \(2\)"
    ):
        call(scores, mask, 3)
    with pytest.raises(ValueError, match="b must be >= 1"):
        call(scores, mask, 0)
    with pytest.raises(ValueError, match="b = 6 is larger than the pool"):
        call(scores, None, 6)
    with pytest.raises(ValueError, match="no True entry"):
        call(scores, jnp.zeros(5, bool), 1)
    with pytest.raises(TypeError, match="b must be a Python int"):
        call(scores, mask, 1.0)
    with pytest.raises(ValueError, match=r"available must have shape \[N\]"):
        call(scores, jnp.ones(4, bool), 1)
    with pytest.raises(TypeError, match="boolean mask"):
        call(scores, jnp.ones(5), 1)


def test_selection_rejects_bad_scores():
    with pytest.raises(ValueError, match="scores contains NaN or inf"):
        jaxal.select.top_k(jnp.array([0.1, jnp.nan, 0.3]), 1)
    with pytest.raises(ValueError, match=r"scores must have shape \[N\]"):
        jaxal.select.top_k(jnp.ones((2, 3)), 1)
    with pytest.raises(ValueError, match="must be >= 0"):
        jaxal.select.stochastic(jnp.array([0.1, -0.2]), 1, key=jax.random.key(0), mode="power")
    with pytest.raises(ValueError, match="mode must be"):
        jaxal.select.stochastic(jnp.ones(3), 1, key=jax.random.key(0), mode="powerr")
    with pytest.raises(ValueError, match="beta must be"):
        jaxal.select.stochastic(jnp.ones(3), 1, key=jax.random.key(0), beta=0.0)


def test_gaussian_scores_reject_bad_input():
    mean, var = jnp.zeros((3, 4)), jnp.ones((3, 4))
    with pytest.raises(ValueError, match="same shape"):
        jaxal.scores.predictive_variance(mean, var[:, :3])
    with pytest.raises(ValueError, match=r"mean must have shape \[K, N\]"):
        jaxal.scores.predictive_variance(mean[0], var[0])
    with pytest.raises(ValueError, match="var must be >= 0"):
        jaxal.scores.predictive_variance(mean, -var)
    with pytest.raises(ValueError, match="var must be > 0"):
        jaxal.scores.gaussian_bald(mean, 0 * var)
    with pytest.raises(ValueError, match="mean contains NaN or inf"):
        jaxal.scores.epistemic_variance(mean.at[0, 0].set(jnp.inf), var)


def test_checked_keeps_value_checks_inside_jit():
    @jaxal.check.checked
    @jax.jit
    def acquire(log_probs):
        jaxal.check.log_probs(log_probs)
        return jaxal.select.top_k(jaxal.scores.bald(log_probs), 2)

    np.testing.assert_array_equal(acquire(GOOD), jaxal.select.top_k(jaxal.scores.bald(GOOD), 2))
    with pytest.raises(checkify.JaxRuntimeError, match="log_probs contains NaN"):
        acquire(_bad(_set_nan))
    with pytest.raises(checkify.JaxRuntimeError, match="normalised"):
        acquire(_bad(_unnormalise))


def test_checked_works_in_both_orders_with_jit():
    def acquire(log_probs):
        jaxal.check.log_probs(log_probs)
        return jaxal.select.top_k(jaxal.scores.bald(log_probs), 2)

    outside_in = jax.jit(jaxal.check.checked(acquire))
    np.testing.assert_array_equal(outside_in(GOOD), jaxal.select.top_k(jaxal.scores.bald(GOOD), 2))
    with pytest.raises(jax.errors.JaxRuntimeError, match="log_probs contains NaN"):
        outside_in(_bad(_set_nan)).block_until_ready()


SAMPLERS = {
    "top_k": lambda m, b, key: jaxal.select.top_k(jnp.linspace(0.1, 1.0, 5), b, available=m),
    "stochastic": lambda m, b, key: jaxal.select.stochastic(
        jnp.linspace(0.0, 1.0, 5), b, key=key, available=m
    ),
    "random": lambda m, b, key: jaxal.select.random(5, b, key=key, available=m),
    "gumbel_top_k": lambda m, b, key: jaxal.select.gumbel_top_k(
        jnp.log(jnp.linspace(0.0, 1.0, 5)), b, key=key, available=m
    ),
}


@pytest.mark.parametrize("name", SAMPLERS)
def test_traced_batches_past_the_available_count_hold_the_sentinel(name):
    """Under jit and vmap, positions past the available count are N; the rest is available."""
    select = SAMPLERS[name]
    masks = jnp.array([[False, True, False, False, True], [False] * 5, [True] * 5])
    keys = jax.random.split(jax.random.key(0), 3)
    picks = jax.vmap(jax.jit(lambda m, k: select(m, 3, k)))(masks, keys)
    np.testing.assert_array_equal(picks[0, 2], 5)
    assert set(picks[0, :2].tolist()) == {1, 4}
    np.testing.assert_array_equal(picks[1], [5, 5, 5])
    assert len(set(picks[2].tolist())) == 3 and (picks[2] < 5).all()
    with pytest.raises(ValueError, match="larger than the number of available"):
        select(masks[0], 3, keys[0])


@pytest.mark.parametrize(
    "bad", [None, 0, np.uint32([0, 1]), jnp.zeros(2), jnp.zeros((2, 2), jnp.uint32)]
)
def test_selections_name_a_bad_key(bad):
    with pytest.raises(TypeError, match=r"key must be .*jax\.random\.key"):
        jaxal.select.stochastic(jnp.ones(3), 1, key=bad)
    with pytest.raises(TypeError, match=r"key must be .*jax\.random\.key"):
        jaxal.select.random(3, 1, key=bad)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: jaxal.check.fraction(1.0, "share"), r"share must be in \(0, 1\); got 1.0"),
        (lambda: jaxal.check.fraction(np.nan, "share"), r"share must be in \(0, 1\)"),
        (lambda: jaxal.check.fraction(-0.1, "p", closed=True), r"p must be in \[0, 1\]"),
        (lambda: jaxal.check.nonnegative(-1.0, "noise"), "noise must be >= 0; got -1.0"),
        (lambda: jaxal.check.nonnegative(np.nan, "noise"), "noise must be >= 0"),
    ],
)
def test_fraction_and_nonnegative_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_fraction_and_nonnegative_accept_valid_and_traced_values():
    jaxal.check.fraction(0.5, "share")
    jaxal.check.fraction(0.0, "p", closed=True)
    jaxal.check.nonnegative(0.0, "noise")
    jax.jit(lambda v: jaxal.check.fraction(v, "share") or jaxal.check.nonnegative(v, "n"))(-1.0)
