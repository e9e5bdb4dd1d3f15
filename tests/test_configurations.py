"""Tests for jaxal.select._configurations: the joint configurations of a greedy batch."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxal.select import _configurations as configurations


def test_conditional_entropy_enumerates_the_batch_exactly(rng):
    """H[y_x | y_B] from the exact configurations equals the brute-force sum over labels."""
    K, N, C = 3, 4, 3
    probs = rng.dirichlet(np.ones(C), size=(K, N))
    probs[0, 0] = [1.0, 0.0, 0.0]  # impossible configurations add 0 log 0 = 0
    batch = [0, 1]
    log_joint = np.zeros((1, K))
    with np.errstate(divide="ignore"):  # log 0 = -inf: a valid probability 0
        log_probs = np.log(probs)
    for i in batch:
        log_joint = (log_joint[:, None, :] + log_probs[:, i, :].T[None]).reshape(-1, K)
    configs = configurations.configs(jnp.asarray(log_joint), exact=True)
    got = configurations.conditional_entropy(configs, jnp.asarray(probs[:, 2:]))
    for n, x in enumerate(range(2, N)):
        expected = 0.0
        for labels in itertools.product(range(C), repeat=len(batch)):
            p_k = np.prod([probs[:, i, c] for i, c in zip(batch, labels, strict=True)], axis=0)
            if p_k.sum() == 0:
                continue
            conditional = (p_k / p_k.sum()) @ probs[:, x]
            expected -= p_k.mean() * np.sum(
                conditional * np.log(np.where(conditional > 0, conditional, 1))
            )
        np.testing.assert_allclose(got[n], expected, rtol=1e-12)


def test_settings_round_num_samples_and_require_a_key_for_sampled_steps():
    s = configurations.settings(
        "m",
        (4, 6, 3),
        3,
        key=jax.random.key(0),
        available=None,
        num_samples=10,
        max_exact_configs=3,
        block_elements=8,
    )
    assert (s.b, s.num_samples, s.exact_steps, s.block_elements) == (3, 8, 2, 8)
    with pytest.raises(ValueError, match="m needs key="):
        configurations.settings(
            "m",
            (4, 6, 3),
            3,
            key=None,
            available=None,
            num_samples=10,
            max_exact_configs=3,
            block_elements=8,
        )


def test_inverse_cdf_draws_each_label_with_its_probability_and_never_an_impossible_one():
    """On a grid of ``n`` uniforms (and ``u = 0``), label ``c`` of sample ``k`` is drawn for a
    fraction of them within ``1 / n`` of ``p_k(c)``; probability-0 classes never."""
    probs_K_C = np.array([[0.0, 0.5, 0.0, 0.5], [0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.0, 1.0]])
    with np.errstate(divide="ignore"):
        log_probs_K_C = np.log(probs_K_C)
    n = 1000
    uniform = np.concatenate([[0.0], (np.arange(n) + 0.5) / n])
    K = probs_K_C.shape[0]
    sample_S = np.repeat(np.arange(K), uniform.size)
    labels = np.asarray(
        configurations.inverse_cdf(
            jnp.asarray(log_probs_K_C), jnp.asarray(sample_S), jnp.asarray(np.tile(uniform, K))
        )
    ).reshape(K, -1)
    for k in range(K):
        frequency = np.bincount(labels[k, 1:], minlength=4) / n
        np.testing.assert_allclose(frequency, probs_K_C[k], atol=1.5 / n)
        assert np.all(probs_K_C[k, labels[k]] > 0)
