"""Every registered strategy: distinct available indices, eager and jitted, under vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxal
from tests import reference
from tests.conftest import TRANSFORMS


def _samples(task, rng):
    if task == "regression":
        return jnp.asarray(rng.standard_normal((4, 30))), jnp.asarray(rng.uniform(0.1, 1, (4, 30)))
    return jnp.asarray(reference.random_log_probs(rng, 4, 30, 3))


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("name", jaxal.strategies.names())
def test_strategy_selects_distinct_available_points(name, transform, key, rng):
    task = "regression" if name in jaxal.strategies.names(task="regression") else "classification"
    samples = _samples(task, rng)
    available = jnp.asarray(rng.random(30) < 0.5)
    strategy = jaxal.strategies.get(name)
    got = np.asarray(transform(lambda k, s, a: strategy(k, s, a, 5))(key, samples, available))
    assert got.shape == (5,) and len(set(got.tolist())) == 5
    assert np.asarray(available)[got].all()


def test_top_score_strategies_take_the_top_scores(rng):
    log_probs = _samples("classification", rng)
    got = jaxal.strategies.get("bald")(None, log_probs, jnp.ones(30, bool), 4)
    np.testing.assert_array_equal(got, jaxal.select.top_k(jaxal.scores.bald(log_probs), 4))


def test_strategies_vmap_over_seeds(rng):
    log_probs = _samples("classification", rng)
    keys = jax.random.split(jax.random.key(0), 3)
    strategy = jaxal.strategies.get("powerbald")
    got = jax.vmap(lambda k: strategy(k, log_probs, jnp.ones(30, bool), 4))(keys)
    for r in range(3):
        np.testing.assert_array_equal(got[r], strategy(keys[r], log_probs, jnp.ones(30, bool), 4))
