"""BatchBALD against brute-force enumeration, its properties, and batchbald_redux."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jaxal
from tests import reference
from tests.conftest import DTYPES, TRANSFORMS

TOLERANCE = {np.float32: 1e-4, np.float64: 1e-9}


@pytest.mark.parametrize("lazy", [True, False], ids=["lazy", "full"])
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_path_matches_brute_force(dtype, transform, lazy, rng):
    log_probs = reference.random_log_probs(rng, K=6, N=9, C=3, spread=1.0, zeros=True)
    available = np.ones(9, bool)
    available[[2, 5]] = False
    want_indices, want_scores = reference.batchbald_brute_force(log_probs, 4, available)

    def select(lp, mask):
        return jaxal.select.batchbald(lp, 4, available=mask, lazy=lazy)

    indices, scores = transform(select)(jnp.asarray(log_probs.astype(dtype)), available)
    np.testing.assert_array_equal(indices, want_indices)
    assert scores.dtype == dtype
    np.testing.assert_allclose(scores, want_scores, atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype])


def test_lazy_and_full_greedy_agree_on_a_larger_pool(rng):
    log_probs = jnp.asarray(reference.random_log_probs(rng, K=10, N=400, C=4))
    lazy = jaxal.select.batchbald(log_probs, 6, block_elements=4096)  # many small blocks
    full = jaxal.select.batchbald(log_probs, 6, lazy=False)
    np.testing.assert_array_equal(lazy[0], full[0])
    np.testing.assert_allclose(lazy[1], full[1], rtol=1e-10)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from([(1, 5), (4, 12), (8, 30)]))
def test_properties_on_the_exact_path(seed, shape):
    K, N = shape
    log_probs = jnp.asarray(reference.random_log_probs(np.random.default_rng(seed), K, N, 3))
    b = min(N, 4)
    indices, scores = jaxal.select.batchbald(log_probs, b)
    bald = np.asarray(jaxal.scores.bald(log_probs))
    assert len(set(np.asarray(indices).tolist())) == b
    # b = 1 is BALD (up to rounding: with K = 1 every BALD is 0 +- 1e-16)
    assert bald[int(indices[0])] >= bald.max() - 1e-12
    np.testing.assert_allclose(scores[0], bald.max(), rtol=1e-12, atol=1e-12)
    assert np.all(np.diff(scores) >= -1e-12)  # non-decreasing
    assert np.all(scores <= np.cumsum(bald[np.asarray(indices)]) + 1e-9)  # subadditive
    assert np.all(scores <= np.log(K) + 1e-9)


def test_a_copy_gains_less_than_the_original(rng):
    log_probs = reference.random_log_probs(rng, K=8, N=1, C=4, spread=0.5)
    pool = jnp.asarray(np.concatenate([log_probs, log_probs], axis=1))  # x and its copy
    indices, scores = jaxal.select.batchbald(pool, 2)
    bald = float(jaxal.scores.bald(pool)[0])
    assert bald < float(scores[1]) < 2 * bald
    np.testing.assert_allclose(scores[1], reference.joint_mutual_information(pool, [0, 1]))


def test_sampled_joint_entropy_approaches_the_exact_one(key, rng):
    # max_exact_configs=1 forces sampling from the second point on.
    log_probs = jnp.asarray(reference.random_log_probs(rng, K=10, N=60, C=4))
    indices, scores = jaxal.select.batchbald(
        log_probs, 5, key=key, num_samples=40_000, max_exact_configs=1
    )
    exact = [reference.joint_mutual_information(log_probs, indices[: i + 1]) for i in range(5)]
    # Stated tolerance: 0.02 nats at M = 40,000 configurations (observed error ~ 0.002).
    np.testing.assert_allclose(scores, exact, atol=0.02)
    exact_indices, _ = jaxal.select.batchbald(log_probs, 5)
    assert len(set(np.asarray(indices).tolist()) & set(np.asarray(exact_indices).tolist())) >= 4


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_sampled_path_respects_available_under_jit(transform, key, rng):
    log_probs = jnp.asarray(reference.random_log_probs(rng, K=5, N=40, C=10))
    available = jnp.asarray(rng.random(40) < 0.5)
    b = 6

    def select(lp, mask, k):
        return jaxal.select.batchbald(lp, b, key=k, num_samples=500, available=mask)

    indices, scores = transform(select)(log_probs, available, key)
    assert len(set(np.asarray(indices).tolist())) == b
    assert np.asarray(available)[np.asarray(indices)].all()
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_vmap_over_pools_and_keys(dtype, rng):
    log_probs = jnp.asarray(
        np.stack([reference.random_log_probs(rng, 4, 30, 3) for _ in range(3)]).astype(dtype)
    )
    keys = jax.random.split(jax.random.key(0), 3)

    def select(lp, k):
        return jaxal.select.batchbald(lp, 8, key=k, num_samples=400)

    indices, scores = jax.vmap(select)(log_probs, keys)
    for r in range(3):
        want_indices, want_scores = select(log_probs[r], keys[r])
        np.testing.assert_array_equal(indices[r], want_indices)
        np.testing.assert_allclose(scores[r], want_scores, rtol=1e-5)


def test_needs_a_key_only_when_sampling(rng):
    log_probs = jnp.asarray(reference.random_log_probs(rng, 4, 30, 10))
    jaxal.select.batchbald(log_probs, 5)  # 10**4 configurations: exact, no key needed
    with pytest.raises(ValueError, match="needs key="):
        jaxal.select.batchbald(log_probs, 6)
    with pytest.raises(ValueError, match="num_samples must be >= K"):
        jaxal.select.batchbald(log_probs, 6, key=jax.random.key(0), num_samples=2)


@pytest.mark.peers
def test_matches_batchbald_redux_on_the_exact_path(rng):
    torch = pytest.importorskip("torch")
    redux = pytest.importorskip("batchbald_redux.batchbald")
    log_probs = reference.random_log_probs(rng, K=20, N=300, C=10)  # [K, N, C]
    theirs = redux.get_batchbald_batch(
        torch.from_numpy(np.transpose(log_probs, (1, 0, 2)).copy()), 4, 10_000, dtype=torch.double
    )
    indices, scores = jaxal.select.batchbald(jnp.asarray(log_probs), 4)
    np.testing.assert_array_equal(indices, theirs.indices)
    np.testing.assert_allclose(scores, theirs.scores, rtol=1e-8)


# ---- zero probabilities, sentinels, keys (issue 15) -----------------------------------------


def one_hot_pool():
    """The issue's reproducer: ``K = 4`` deterministic samples of ``N = 12`` points, ``C = 3``.

    Most configurations of a batch have probability exactly 0, and after two picks the four
    samples are told apart (joint MI ``log 4``): every later gain is exactly 0.
    """
    labels_K_N = jax.random.randint(jax.random.key(0), (4, 12), 0, 3)
    return jnp.log(jax.nn.one_hot(labels_K_N, 3))


@pytest.mark.parametrize("lazy", [True, False], ids=["lazy", "full"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_probability_configurations_on_the_exact_path(dtype, lazy, rng):
    # Issue 15: 0/0 weights made the joint MI -inf after two picks; with lazy=False the
    # selection then returned duplicates and unavailable indices.
    pool = one_hot_pool()
    available = np.arange(12) >= 4
    indices, scores = jaxal.select.batchbald(pool.astype(dtype), 5, available=available, lazy=lazy)
    reference.assert_valid_batch(indices, scores, available, 5)
    want = [reference.joint_mutual_information(pool, indices[: i + 1]) for i in range(5)]
    np.testing.assert_allclose(scores, want, atol=TOLERANCE[dtype])
    np.testing.assert_allclose(scores[1:], np.log(4.0), atol=TOLERANCE[dtype])
    # Many exact zeros without ties: the brute-force greedy selection itself.
    sparse = reference.sparse_log_probs(rng, K=6, N=9, C=3)
    want_indices, want_scores = reference.batchbald_brute_force(sparse, 4, available[:9])
    indices, scores = jaxal.select.batchbald(
        jnp.asarray(sparse.astype(dtype)), 4, available=available[:9], lazy=lazy
    )
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_allclose(scores, want_scores, atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype])


@pytest.mark.parametrize("lazy", [True, False], ids=["lazy", "full"])
def test_zero_probability_configurations_on_the_sampled_path(lazy, key, rng):
    available = np.arange(12) >= 4
    for pool in (one_hot_pool(), jnp.asarray(reference.sparse_log_probs(rng, K=8, N=12, C=3))):
        indices, scores = jaxal.select.batchbald(
            pool, 5, key=key, num_samples=4000, max_exact_configs=1, available=available, lazy=lazy
        )
        reference.assert_valid_batch(indices, scores, available, 5, tolerance=0.02)
        exact = [reference.joint_mutual_information(pool, indices[: i + 1]) for i in range(5)]
        np.testing.assert_allclose(scores, exact, atol=0.05)


SELECTIONS = {
    "exact": lambda lp, mask, key: jaxal.select.batchbald(lp, 3, available=mask),
    "full": lambda lp, mask, key: jaxal.select.batchbald(lp, 3, available=mask, lazy=False),
    "sampled": lambda lp, mask, key: jaxal.select.batchbald(
        lp, 3, key=key, available=mask, num_samples=64, max_exact_configs=1
    ),
}


@pytest.mark.parametrize("name", SELECTIONS)
def test_traced_batches_past_the_available_count_hold_the_sentinel(name):
    select = SELECTIONS[name]
    pool = one_hot_pool()[:, :5]
    reference.assert_sentinel_past_the_available_count(select, pool)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_names_a_bad_key_and_bad_settings():
    pool = one_hot_pool()
    for bad in (5, np.uint32([0, 1]), jnp.zeros(2)):
        with pytest.raises(TypeError, match=r"key must be .*jax\.random\.key"):
            jaxal.select.batchbald(pool, 2, key=bad)  # exact path: the key is still checked
    for name, value in [("num_samples", 10.5), ("max_exact_configs", 0), ("block_elements", 0)]:
        with pytest.raises((TypeError, ValueError), match=f"{name} must be an int >= 1"):
            jaxal.select.batchbald(pool, 2, **{name: value})
