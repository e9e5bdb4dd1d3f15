"""Independent float64 numpy transcriptions of the formulas in ../shared/METHODS.md."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest


def random_log_probs(rng, K, N, C, *, spread=2.0, zeros=False, dtype=np.float64):
    """``[K, N, C]`` log-probs as in the benchmarks: ``spread * randn(N, 1, C) + randn(K, N, C)``.

    With ``zeros``, some probabilities are exactly 0 (log-prob ``-inf``).
    """
    logits = spread * rng.standard_normal((1, N, C)) + rng.standard_normal((K, N, C))
    if zeros:
        logits = np.where(rng.random((K, N, C)) < 0.2, -np.inf, logits)
        logits[..., 0] = np.maximum(logits[..., 0], 0.0)  # keep one finite class
    logits = logits - logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return log_probs.astype(dtype)


def entropy(p, axis=-1):
    p = np.asarray(p, np.float64)
    plogp = np.zeros_like(p)
    nz = p > 0
    plogp[nz] = p[nz] * np.log(p[nz])
    return -plogp.sum(axis)


def probs(log_probs):
    return np.exp(np.asarray(log_probs, np.float64))


def predictive(log_probs):
    return probs(log_probs).mean(0)


def predictive_entropy(log_probs):
    return entropy(predictive(log_probs))


def expected_entropy(log_probs):
    return entropy(probs(log_probs)).mean(0)


def bald(log_probs):
    return predictive_entropy(log_probs) - expected_entropy(log_probs)


def margin(log_probs):
    p = np.sort(predictive(log_probs), axis=-1)
    return 1.0 - (p[:, -1] - p[:, -2])


def least_confidence(log_probs):
    return 1.0 - predictive(log_probs).max(-1)


def variation_ratios(log_probs):
    K, N, C = np.shape(log_probs)
    hard = np.argmax(log_probs, axis=-1)  # [K, N]
    out = np.empty(N)
    for n in range(N):
        counts = np.bincount(hard[:, n], minlength=C)
        out[n] = 1.0 - counts.max() / K
    return out


def mean_std(log_probs):
    return probs(log_probs).std(0).mean(-1)


def predictive_variance(mean, var):
    return np.var(mean, 0) + np.mean(var, 0)


def epistemic_variance(mean, var):
    return np.var(mean, 0)


def gaussian_bald(mean, var):
    return 0.5 * np.log(predictive_variance(mean, var)) - 0.5 * np.log(var).mean(0)


CLASSIFICATION = {
    "bald": bald,
    "entropy": predictive_entropy,
    "expected-entropy": expected_entropy,
    "margin": margin,
    "least-confidence": least_confidence,
    "variation-ratios": variation_ratios,
    "mean-std": mean_std,
}
REGRESSION = {
    "predictive-variance": predictive_variance,
    "epistemic-variance": epistemic_variance,
    "gaussian-bald": gaussian_bald,
}


def joint_mutual_information(log_probs, indices):
    """``I(y_S; theta)`` by enumerating all ``C^|S|`` label configurations."""
    p = probs(log_probs)  # [K, N, C]
    K, _, C = p.shape
    joint_entropy = 0.0
    for config in itertools.product(range(C), repeat=len(indices)):
        per_sample = np.ones(K)
        for i, c in zip(indices, config, strict=True):
            per_sample = per_sample * p[:, i, c]
        joint = per_sample.mean()
        if joint > 0:
            joint_entropy -= joint * np.log(joint)
    return joint_entropy - sum(expected_entropy(log_probs)[i] for i in indices)


def batchbald_brute_force(log_probs, b, available=None):
    """Greedy BatchBALD with every joint entropy enumerated: ``(indices, scores)``."""
    N = np.shape(log_probs)[1]
    available = np.ones(N, bool) if available is None else np.asarray(available)
    chosen, scores = [], []
    for _ in range(b):
        candidates = [n for n in range(N) if available[n] and n not in chosen]
        values = [joint_mutual_information(log_probs, chosen + [n]) for n in candidates]
        best = int(np.argmax(values))
        chosen.append(candidates[best])
        scores.append(values[best])
    return np.array(chosen), np.array(scores)


def two_blobs(N, *, centre, std, dtype=None):
    """Two Gaussian blobs around ``(-centre, -centre)`` and ``(centre, centre)``.

    Returns ``x [N, 2]`` and alternating labels ``y [N]`` as jax arrays.
    """
    import jax
    import jax.numpy as jnp

    y_N = jnp.arange(N, dtype=jnp.int32) % 2
    centres_N_2 = jnp.where(y_N[:, None] == 1, centre, -centre) * jnp.ones((1, 2))
    x_N_2 = centres_N_2 + std * jax.random.normal(jax.random.key(0), (N, 2))
    return (x_N_2 if dtype is None else x_N_2.astype(dtype)), y_N


def sparse_log_probs(rng, K, N, C, *, zero_fraction=0.6):
    """``[K, N, C]`` log-probs with about ``zero_fraction`` of the probabilities exactly 0."""
    logits = rng.standard_normal((K, N, C))
    keep = rng.integers(0, C, (K, N, 1)) == np.arange(C)  # one class stays possible
    logits = np.where((rng.random((K, N, C)) < zero_fraction) & ~keep, -np.inf, logits)
    return logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))


def assert_valid_batch(indices, scores, available, b, *, tolerance=1e-9):
    """Distinct available indices, finite scores, a non-decreasing joint mutual information."""
    indices = np.asarray(indices)
    assert len(set(indices.tolist())) == b, indices
    assert np.asarray(available)[indices].all(), indices
    assert np.isfinite(scores).all(), scores
    assert np.all(np.diff(scores) >= -tolerance), scores


def assert_sentinel_past_the_available_count(select, pool):
    """A greedy batch of 3 from 5 points (``select(pool, mask, key) -> (indices, scores)``)
    under ``jit``/``vmap``: 2 available give the 2 then the sentinel 5 with the score
    repeated, none give only sentinels, 5 give 3 distinct picks; eagerly, ``ValueError``."""
    masks = jnp.array([[False, True, False, False, True], [False] * 5, [True] * 5])
    keys = jax.random.split(jax.random.key(0), 3)
    indices, scores = jax.vmap(jax.jit(lambda m, k: select(pool, m, k)))(masks, keys)
    np.testing.assert_array_equal(indices[0, 2], 5)
    assert set(indices[0, :2].tolist()) == {1, 4}
    np.testing.assert_array_equal(indices[1], [5, 5, 5])
    assert len(set(indices[2].tolist())) == 3 and (indices[2] < 5).all()
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(scores[0, 2], scores[0, 1])  # nothing added
    with pytest.raises(ValueError, match="larger than the number of available"):
        select(pool, masks[0], keys[0])
