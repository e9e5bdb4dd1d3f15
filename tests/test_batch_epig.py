"""Joint EPIG for batches against brute-force enumeration, its bounds, and its sampled path."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxal
from jaxal.select._batch_epig import _batch_epig, batch_epig
from tests import reference
from tests.conftest import DTYPES, TRANSFORMS

TOLERANCE = {np.float32: 2e-5, np.float64: 1e-6}


def epig_of_set(log_probs_pool, log_probs_target, indices):
    """``(1/M) sum_m I(y_B; y*_m)`` enumerating every batch configuration and target label."""
    p = reference.probs(log_probs_pool)  # [K, N, C]
    q = reference.probs(log_probs_target)  # [K, M, C]
    K, _, C = p.shape
    M = q.shape[1]
    total = 0.0
    for m in range(M):
        q_bar = q[:, m].mean(0)
        for config in itertools.product(range(C), repeat=len(indices)):
            per_sample = np.ones(K)
            for i, c in zip(indices, config, strict=True):
                per_sample = per_sample * p[:, i, c]
            p_config = per_sample.mean()
            for d in range(C):
                joint = np.mean(per_sample * q[:, m, d])
                if joint > 0:
                    total += joint * np.log(joint / (p_config * q_bar[d]))
    return total / M


def greedy_brute_force(log_probs_pool, log_probs_target, b, available):
    """Greedy argmax of ``EPIG(B + n)``, every value enumerated: ``(indices, scores)``."""
    N = np.shape(log_probs_pool)[1]
    chosen, scores = [], []
    for _ in range(b):
        candidates = [n for n in range(N) if available[n] and n not in chosen]
        values = [epig_of_set(log_probs_pool, log_probs_target, chosen + [n]) for n in candidates]
        best = int(np.argmax(values))
        chosen.append(candidates[best])
        scores.append(values[best])
    return np.array(chosen), np.array(scores)


def problem(rng, K, N, M, C, *, zeros=False):
    """Pool and targets; half the targets are pool points themselves, so EPIG is not tiny."""
    pool = reference.random_log_probs(rng, K, N, C, spread=1.0, zeros=zeros)
    other = reference.random_log_probs(rng, K, M - M // 2, C, spread=1.0, zeros=zeros)
    return pool, np.concatenate([pool[:, : M // 2], other], axis=1)


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("zeros", [False, True], ids=["positive", "zeros"])
def test_exact_path_matches_brute_force(dtype, transform, zeros, rng):
    pool, target = problem(rng, K=4, N=5, M=3, C=3, zeros=zeros)
    available = np.array([True, True, False, True, True])
    want_indices, want_scores = greedy_brute_force(pool, target, 3, available)

    def select(lp, lt, mask):
        return batch_epig(lp, lt, 3, available=mask)

    indices, scores = transform(select)(
        jnp.asarray(pool.astype(dtype)), jnp.asarray(target.astype(dtype)), available
    )
    np.testing.assert_array_equal(indices, want_indices)
    assert scores.dtype == dtype
    np.testing.assert_allclose(scores, want_scores, atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype])


def test_a_class_no_sample_predicts_is_handled(rng):
    # Class 2 has probability 0 under every sample: configurations using it have p(s) = 0.
    probs = rng.dirichlet(np.ones(2), size=(4, 6))
    with np.errstate(divide="ignore"):
        pool = np.log(np.concatenate([probs, np.zeros((4, 6, 1))], axis=-1))
    target = pool[:, :2]
    indices, scores = batch_epig(pool, target, 3)
    want_indices, want_scores = greedy_brute_force(pool, target, 3, np.ones(6, bool))
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_b1_is_epig_and_bounds_hold(seed):
    rng = np.random.default_rng(seed)
    K, N, M, C, b = 6, 12, 5, 3, 4
    pool, target = problem(rng, K, N, M, C)
    epig_N = np.asarray(jaxal.scores.epig(pool, target))
    indices, scores = batch_epig(pool, target, b)
    indices = np.asarray(indices)
    assert int(batch_epig(pool, target, 1)[0][0]) == int(np.argmax(epig_N))
    assert indices[0] == np.argmax(epig_N)
    np.testing.assert_allclose(scores[0], epig_N.max(), rtol=1e-10)
    assert len(set(indices.tolist())) == b
    assert np.all(np.diff(scores) >= -1e-12)  # I(y_B; y*) grows with B
    assert np.all(np.asarray(scores) >= 0.0)
    for i in range(b):
        # data processing: y_B - theta - y*, so I(y_B; y*) <= I(y_B; theta) and <= I(y*; theta)
        assert scores[i] <= reference.joint_mutual_information(pool, indices[: i + 1]) + 1e-10
        assert scores[i] <= reference.bald(target).mean() + 1e-10
        assert scores[i] <= reference.predictive_entropy(target).mean() + 1e-10


def test_joint_epig_is_not_submodular():
    # theta = two fair bits (K = 4 samples); y_1 = theta_1, y_2 = theta_2, y* = XOR.
    bits_K_2 = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    with np.errstate(divide="ignore"):
        pool = np.log(np.eye(2)[bits_K_2])  # [K, 2, C]
        target = np.log(np.eye(2)[bits_K_2[:, :1] ^ bits_K_2[:, 1:]])  # [K, 1, C]
    np.testing.assert_allclose(jaxal.scores.epig(pool, target), [0.0, 0.0], atol=1e-12)
    indices, scores = batch_epig(pool, target, 2)
    # The second label gains log 2 after gaining 0 alone: a gain grew with the batch, and the
    # joint EPIG exceeds the sum of the single-point EPIGs.
    np.testing.assert_allclose(scores, [0.0, np.log(2.0)], atol=1e-12)
    assert sorted(np.asarray(indices).tolist()) == [0, 1]


def test_block_sizes_change_nothing(key, rng):
    pool, target = problem(rng, K=8, N=60, M=20, C=4)
    kwargs = {"key": key, "num_samples": 400, "max_exact_configs": 16}  # exact, then sampled
    small = batch_epig(pool, target, 4, block_elements=300, **kwargs)  # 1 candidate, 1 target
    large = batch_epig(pool, target, 4, block_elements=2**24, **kwargs)  # everything at once
    np.testing.assert_array_equal(small[0], large[0])
    np.testing.assert_allclose(small[1], large[1], rtol=1e-10)


def test_sampled_path_approaches_the_exact_value(key, rng):
    # max_exact_configs=1 forces sampling from the second point on.
    pool, target = problem(rng, K=10, N=30, M=6, C=3)
    indices, scores = batch_epig(pool, target, 4, key=key, num_samples=5_000, max_exact_configs=1)
    exact = [epig_of_set(pool, target, list(np.asarray(indices[: i + 1]))) for i in range(4)]
    # Stated tolerance: 5e-3 nats at 5,000 configurations (observed errors up to 2.3e-3 for
    # EPIG values of 0.02-0.06; each configuration samples one target and label, where the
    # enumeration of every target had errors up to 2.5e-4 at 50x the cost).
    np.testing.assert_allclose(scores, exact, atol=5e-3)
    exact_indices, _ = batch_epig(pool, target, 4)
    assert len(set(np.asarray(indices).tolist()) & set(np.asarray(exact_indices).tolist())) >= 3


def test_sampled_gain_is_unbiased(rng):
    """The sampled step's estimate (one sampled target and label per configuration) averages
    to the exact gain: over 4,000 keys the mean of ``EPIG(B)``'s estimate is within 4
    standard errors of the enumeration."""
    pool, target = problem(rng, K=4, N=4, M=3, C=3)
    available = np.array([True, True, False, False])  # the second pick is the other point

    def estimate(key):
        _, scores = batch_epig(
            pool, target, 2, key=key, num_samples=8, max_exact_configs=1, available=available
        )
        return scores[1]  # exact EPIG of the first pick + the sampled gain of the second

    estimates = np.asarray(jax.jit(jax.vmap(estimate))(jax.random.split(jax.random.key(0), 4000)))
    exact = epig_of_set(pool, target, [0, 1])
    assert (estimates > 0).all()  # the clip at 0 never acts: the mean is the estimator's
    standard_error = estimates.std() / np.sqrt(estimates.size)
    assert standard_error > 1e-4  # a sampled estimate, not the enumeration
    assert abs(estimates.mean() - exact) < 4 * standard_error


def test_a_duplicated_point_is_taken_once(rng):
    # Point 0's samples are deterministic and disagree, and x0 is one of the targets: its EPIG
    # is the largest, and its exact copy (point 1) adds nothing once y_0 is known.
    K, C = 8, 3
    with np.errstate(divide="ignore"):
        sharp = np.log(np.eye(C)[np.arange(K) % C])[:, None, :]  # [K, 1, C] one-hot
    others = reference.random_log_probs(rng, K, 8, C, spread=1.0)
    pool = jnp.asarray(np.concatenate([sharp, sharp, others], axis=1))
    target = jnp.asarray(np.concatenate([sharp, reference.random_log_probs(rng, K, 4, C)], 1))
    top = jaxal.select.top_k(jaxal.scores.epig(pool, target), 2)
    assert sorted(np.asarray(top).tolist()) == [0, 1]  # top-k takes both copies
    indices, scores = batch_epig(pool, target, 2)
    assert int(indices[0]) in (0, 1)
    assert int(indices[1]) not in (0, 1)  # batch EPIG takes one
    np.testing.assert_allclose(scores[0], epig_of_set(pool, target, [0, 1]), rtol=1e-10)
    assert scores[1] > scores[0]


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_sampled_path_respects_available(transform, key, rng):
    pool, target = problem(rng, K=5, N=40, M=8, C=10)
    available = jnp.asarray(rng.random(40) < 0.5)
    b = 4

    def select(lp, lt, mask, k):
        return batch_epig(lp, lt, b, key=k, num_samples=200, available=mask)

    indices, scores = transform(select)(pool, target, available, key)
    assert len(set(np.asarray(indices).tolist())) == b
    assert np.asarray(available)[np.asarray(indices)].all()
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_vmap_over_problems_and_keys(dtype, rng):
    problems = [problem(rng, K=4, N=20, M=6, C=3) for _ in range(3)]
    pools = jnp.asarray(np.stack([p for p, _ in problems]).astype(dtype))
    targets = jnp.asarray(np.stack([t for _, t in problems]).astype(dtype))
    keys = jax.random.split(jax.random.key(0), 3)

    def select(lp, lt, k):
        return batch_epig(lp, lt, 5, key=k, num_samples=100)  # steps 4 and 5 sampled

    indices, scores = jax.vmap(select)(pools, targets, keys)
    for r in range(3):
        want_indices, want_scores = select(pools[r], targets[r], keys[r])
        np.testing.assert_array_equal(indices[r], want_indices)
        np.testing.assert_allclose(scores[r], want_scores, rtol=1e-5)


def test_float32_matches_float64(rng):
    pool, target = problem(rng, K=8, N=60, M=10, C=4)
    idx64, scores64 = batch_epig(pool, target, 3)
    idx32, scores32 = batch_epig(pool.astype(np.float32), target.astype(np.float32), 3)
    assert scores32.dtype == jnp.float32
    np.testing.assert_array_equal(idx32, idx64)
    np.testing.assert_allclose(scores32, scores64, atol=2e-5)


def test_no_recompile_on_second_call(rng):
    pool, target = problem(rng, K=3, N=8, M=4, C=3)
    batch_epig(pool, target, 2)
    before = _batch_epig._cache_size()
    pool, target = problem(rng, K=3, N=8, M=4, C=3)
    batch_epig(pool, target, 2)
    assert _batch_epig._cache_size() == before


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_validates_inputs(rng):
    pool, target = problem(rng, K=4, N=30, M=4, C=10)
    # Exact while C**i <= num_samples // (M C) = 250: 10**2 configurations, no key needed.
    batch_epig(pool, target, 3)
    with pytest.raises(ValueError, match="batch_epig needs key="):
        batch_epig(pool, target, 4)
    with pytest.raises(ValueError, match="num_samples must be >= K"):
        batch_epig(pool, target, 6, key=jax.random.key(0), num_samples=2)
    with pytest.raises(ValueError, match="same K"):
        batch_epig(pool, target[:3], 2)
    with pytest.raises(ValueError, match="same number of classes"):
        batch_epig(pool, reference.random_log_probs(rng, 4, 4, 3), 2)
    with pytest.raises(ValueError, match="log_probs_target must be normalised"):
        batch_epig(pool, target + 1.0, 2)
    with pytest.raises(ValueError, match="log_probs_pool contains NaN"):
        batch_epig(np.where(pool < -3.0, np.nan, pool), target, 2)
    with pytest.raises(ValueError, match="log_probs_pool must have shape"):
        batch_epig(pool[0], target, 2)
    with pytest.raises(ValueError, match="empty pool"):
        batch_epig(pool[:, :0], target, 1)
    with pytest.raises(ValueError, match="larger than the number of available"):
        batch_epig(pool, target, 3, available=np.arange(30) < 2)
    with pytest.raises(ValueError, match="max_exact_configs"):
        batch_epig(pool, target, 2, max_exact_configs=0)
    with pytest.raises(ValueError, match="block_elements"):
        batch_epig(pool, target, 2, block_elements=0)


# ---- zero probabilities, sentinels, keys (issue 15) -----------------------------------------


def one_hot_problem():
    """Deterministic samples (``K = 4``, ``N = 12``, ``C = 3``), the pool its own target set:
    most configurations of a batch have probability exactly 0."""
    labels_K_N = jax.random.randint(jax.random.key(0), (4, 12), 0, 3)
    pool = jnp.log(jax.nn.one_hot(labels_K_N, 3))
    return pool, pool[:, ::3]


@pytest.mark.parametrize("dtype", DTYPES)
def test_many_zero_probabilities_on_the_exact_path(dtype, rng):
    available = np.arange(12) >= 4
    pool, target = one_hot_problem()
    indices, scores = batch_epig(pool.astype(dtype), target.astype(dtype), 5, available=available)
    reference.assert_valid_batch(indices, scores, available, 5)
    want = [epig_of_set(pool, target, list(np.asarray(indices[: i + 1]))) for i in range(5)]
    np.testing.assert_allclose(scores, want, atol=TOLERANCE[dtype])
    pool = reference.sparse_log_probs(rng, K=5, N=6, C=3)
    target = np.concatenate([pool[:, :2], reference.sparse_log_probs(rng, K=5, N=2, C=3)], axis=1)
    want_indices, want_scores = greedy_brute_force(pool, target, 3, available[6:])
    indices, scores = batch_epig(
        pool.astype(dtype), target.astype(dtype), 3, available=available[6:]
    )
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_allclose(scores, want_scores, atol=TOLERANCE[dtype], rtol=TOLERANCE[dtype])


def test_many_zero_probabilities_on_the_sampled_path(key, rng):
    available = np.arange(12) >= 4
    sparse = jnp.asarray(reference.sparse_log_probs(rng, K=8, N=12, C=3))
    for pool, target in (one_hot_problem(), (sparse, sparse[:, ::3])):
        indices, scores = batch_epig(
            pool, target, 4, key=key, num_samples=2000, max_exact_configs=1, available=available
        )
        reference.assert_valid_batch(indices, scores, available, 4, tolerance=0.02)
        exact = [epig_of_set(pool, target, list(np.asarray(indices[: i + 1]))) for i in range(4)]
        np.testing.assert_allclose(scores, exact, atol=0.03)


SELECTIONS = {
    "exact": lambda lp, mask, key: batch_epig(lp, lp, 3, available=mask),
    "sampled": lambda lp, mask, key: batch_epig(
        lp, lp, 3, key=key, available=mask, num_samples=64, max_exact_configs=1
    ),
}


@pytest.mark.parametrize("name", SELECTIONS)
def test_traced_batches_past_the_available_count_hold_the_sentinel(name):
    select = SELECTIONS[name]
    pool = one_hot_problem()[0][:, :5]
    reference.assert_sentinel_past_the_available_count(select, pool)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_names_a_bad_key_and_bad_settings():
    pool, target = one_hot_problem()
    for bad in (5, np.uint32([0, 1]), jnp.zeros(2)):
        with pytest.raises(TypeError, match=r"key must be .*jax\.random\.key"):
            batch_epig(pool, target, 2, key=bad)  # exact path: the key is still checked
    for name, value in [("num_samples", 10.5), ("max_exact_configs", 0), ("block_elements", 0)]:
        with pytest.raises((TypeError, ValueError), match=f"{name} must be an int >= 1"):
            batch_epig(pool, target, 2, **{name: value})
