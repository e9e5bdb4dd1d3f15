"""The common test every registered score runs through (STYLE.md, convention 11)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxal
from tests import reference
from tests.conftest import DTYPES

CLASSIFICATION = jaxal.scores.names(task="classification")
REGRESSION = jaxal.scores.names(task="regression")


def _inputs(name, rng, dtype, lead=()):
    if name in CLASSIFICATION:
        K, N, C = 5, 12, 4
        flat = reference.random_log_probs(rng, K, N * int(np.prod(lead)), C, zeros=True)
        log_probs = flat.reshape(K, *lead, N, C)
        return (jnp.asarray(np.moveaxis(log_probs, 0, len(lead)).astype(dtype)),)
    mean = rng.standard_normal((*lead, 5, 12)).astype(dtype)
    var = rng.uniform(0.1, 1.0, (*lead, 5, 12)).astype(dtype)
    return jnp.asarray(mean), jnp.asarray(var)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CLASSIFICATION + REGRESSION)
def test_shape_finiteness_jit_and_vmap(name, dtype, rng):
    score = jaxal.scores.get(name)
    args = _inputs(name, rng, dtype)
    eager = score(*args)
    chex.assert_shape(eager, (12,))
    chex.assert_type(eager, dtype)
    chex.assert_tree_all_finite(eager)
    np.testing.assert_allclose(jax.jit(score)(*args), eager, rtol=1e-5, atol=1e-6)

    batched = _inputs(name, rng, dtype, lead=(3,))
    out = jax.vmap(score)(*batched)
    chex.assert_shape(out, (3, 12))
    for r in range(3):
        np.testing.assert_allclose(out[r], score(*(a[r] for a in batched)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", CLASSIFICATION + REGRESSION)
def test_sample_invariance_and_point_equivariance(name, rng):
    score = jaxal.scores.get(name)
    args = _inputs(name, rng, np.float64)
    base = np.asarray(score(*args))
    sample_perm = rng.permutation(5)
    np.testing.assert_allclose(score(*(a[sample_perm] for a in args)), base, atol=1e-12)
    point_perm = rng.permutation(12)
    np.testing.assert_allclose(score(*(a[:, point_perm] for a in args)), base[point_perm])


@pytest.mark.parametrize("name", CLASSIFICATION + REGRESSION)
def test_no_recompilation_on_second_call(name, rng):
    traces = []

    def counted(*args):
        traces.append(1)
        return jaxal.scores.get(name)(*args)

    compiled = jax.jit(counted)
    compiled(*_inputs(name, rng, np.float32)).block_until_ready()
    compiled(*_inputs(name, rng, np.float32)).block_until_ready()
    assert len(traces) == 1
