"""top_k, stochastic (power / softmax / softrank), random, Gumbel-top-k; the calling convention."""

import inspect
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxal
from tests.conftest import DTYPES, TRANSFORMS

MODES = ["power", "softmax", "softrank"]


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_top_k_matches_numpy_and_respects_available(transform, dtype, rng):
    scores = rng.random(100).astype(dtype)
    available = rng.random(100) < 0.6
    got = transform(lambda s, a: jaxal.select.top_k(s, 7, available=a))(scores, available)
    candidates = np.flatnonzero(available)
    want = candidates[np.argsort(-scores[candidates], kind="stable")[:7]]
    np.testing.assert_array_equal(got, want)


def test_top_k_under_vmap(rng):
    scores = jnp.asarray(rng.random((4, 30)))
    got = jax.vmap(lambda s: jaxal.select.top_k(s, 3))(scores)
    np.testing.assert_array_equal(got, np.argsort(-np.asarray(scores), axis=1)[:, :3])


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_stochastic_draws_distinct_available_points(mode, dtype, transform, key, rng):
    scores = rng.random(50).astype(dtype)
    available = rng.random(50) < 0.5
    b = int(available.sum())  # exhaust the available points: hardest case

    def draw(k):
        return jaxal.select.stochastic(scores, b, key=k, mode=mode, available=available)

    got = np.asarray(transform(draw)(key))
    assert len(set(got.tolist())) == b
    assert available[got].all()


@pytest.mark.parametrize("mode", MODES)
def test_stochastic_with_huge_beta_is_top_k(mode, key, rng):
    scores = rng.permutation(40).astype(np.float64) / 40 + 0.01  # distinct, positive
    beta = {"power": 1e5, "softmax": 1e5, "softrank": 1e3}[mode]
    got = jaxal.select.stochastic(scores, 8, key=key, mode=mode, beta=beta)
    np.testing.assert_array_equal(got, jaxal.select.top_k(scores, 8))


def test_power_mode_takes_zero_scores_last(key):
    scores = jnp.array([0.0, 0.0, 1.0, 2.0, 0.0])
    available = jnp.array([True, True, True, True, False])
    for k in jax.random.split(key, 20):
        got = np.asarray(jaxal.select.stochastic(scores, 4, key=k, available=available))
        assert set(got[:2]) == {2, 3} and set(got[2:]) == {0, 1}


def _sequential_probability(weights, ordered):
    """Probability of drawing ``ordered`` one at a time without replacement."""
    w = np.array(weights, float)
    p = 1.0
    for i in ordered:
        p *= w[i] / w.sum()
        w[i] = 0.0
    return p


@pytest.mark.parametrize("mode", MODES)
def test_gumbel_top_k_equals_sequential_sampling_in_distribution(mode):
    scores = jnp.array([0.1, 0.5, 1.0, 2.0])
    log_w = np.asarray(jaxal.select._stochastic.log_weights(scores, mode, 1.0, jnp.ones(4, bool)))
    draws = 40_000
    keys = jax.random.split(jax.random.key(0), draws)
    got = np.asarray(jax.vmap(lambda k: jaxal.select.stochastic(scores, 2, key=k, mode=mode))(keys))
    for pair in itertools.permutations(range(4), 2):
        p = _sequential_probability(np.exp(log_w), pair)
        freq = np.mean((got[:, 0] == pair[0]) & (got[:, 1] == pair[1]))
        assert abs(freq - p) < 5 * np.sqrt(p * (1 - p) / draws) + 1e-4, (pair, freq, p)


def test_random_is_uniform_over_available(key):
    available = jnp.array([True, False, True, True, False, True])
    keys = jax.random.split(key, 8000)
    got = np.asarray(
        jax.vmap(lambda k: jaxal.select.random(6, 2, key=k, available=available))(keys)
    )
    assert available[got].all() and (got[:, 0] != got[:, 1]).all()
    counts = np.bincount(got.ravel(), minlength=6)[[0, 2, 3, 5]] / got.size
    np.testing.assert_allclose(counts, 0.25, atol=0.02)


def test_stochastic_under_vmap_over_keys_and_scores(rng):
    scores = jnp.asarray(rng.random((3, 25)))
    keys = jax.random.split(jax.random.key(1), 3)
    got = jax.vmap(lambda k, s: jaxal.select.stochastic(s, 5, key=k, mode="softmax"))(keys, scores)
    for r in range(3):
        want = jaxal.select.stochastic(scores[r], 5, key=keys[r], mode="softmax")
        np.testing.assert_array_equal(got[r], want)


@pytest.mark.unchecked  # a [2, 2] log_weights, for jaxal's own message
def test_gumbel_top_k_draws_positive_weights_first(key):
    log_weights = jnp.log(jnp.array([0.0, 1.0, 0.0, 3.0, 2.0]))
    available = jnp.array([True, True, True, True, False])
    for k in jax.random.split(key, 20):
        got = np.asarray(jaxal.select.gumbel_top_k(log_weights, 4, key=k, available=available))
        assert set(got[:2]) == {1, 3} and set(got[2:]) == {0, 2}
    with pytest.raises(ValueError, match="log_weights contains NaN or \\+inf"):
        jaxal.select.gumbel_top_k(jnp.array([0.0, jnp.inf]), 1, key=key)
    with pytest.raises(ValueError, match="log_weights must have shape"):
        jaxal.select.gumbel_top_k(jnp.zeros((2, 2)), 1, key=key)
    with pytest.raises(ValueError, match="b = 3"):
        jaxal.select.gumbel_top_k(jnp.zeros(3), 3, key=key, available=jnp.array([1, 1, 0], bool))


# The positional parameters of each selection (pool inputs, then b) and whether it is random.
CONVENTION = {
    "top_k": (["scores", "b"], False),
    "stochastic": (["scores", "b"], True),
    "random": (["num_points", "b"], True),
    "gumbel_top_k": (["log_weights", "b"], True),
    "badge": (["embeddings", "b"], True),
    "coreset": (["features", "b"], False),
    "typiclust": (["features", "b"], True),
    "probcover": (["features", "b"], False),
    "ical": (["log_probs", "b"], True),
    "batchbald": (["log_probs", "b"], False),  # key only for sampled configurations
    "batch_epig": (["log_probs_pool", "log_probs_target", "b"], False),
}


@pytest.mark.parametrize("name", sorted(CONVENTION))
def test_calling_convention(name):
    """Pool inputs and ``b`` positional; the rest keyword-only; ``key`` required if random."""
    positional, is_random = CONVENTION[name]
    parameters = inspect.signature(getattr(jaxal.select, name)).parameters
    kinds = {p.name: p.kind for p in parameters.values()}
    assert [n for n, k in kinds.items() if k is not inspect.Parameter.KEYWORD_ONLY] == positional
    assert all(kinds[n] is inspect.Parameter.POSITIONAL_OR_KEYWORD for n in positional)
    keyword = [n for n, k in kinds.items() if k is inspect.Parameter.KEYWORD_ONLY]
    assert keyword[-1] == "memory_budget" and parameters["memory_budget"].default is None
    assert parameters["available"].default is None
    if "labelled" in parameters:
        assert parameters["labelled"].default is None
    if is_random:
        assert parameters["key"].default is inspect.Parameter.empty
