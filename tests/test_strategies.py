"""The contract every registered strategy meets, per task, in float32 and float64.

Each strategy in :mod:`jaxal.strategies` (adding one to the registry adds it here) runs on the
round context of a real (tiny) posterior: under ``jit`` for one seed and under ``vmap`` over
3 seeds, it returns ``b`` distinct available indices, and a second round (new labelled mask,
new key, new parameters) compiles nothing new.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxal
from jaxal.context import MissingSource, Round, Targets, masked_labels
from tests.conftest import DTYPES

N, D, C, K, M, B, SEEDS = 24, 3, 3, 3, 8, 3, 3

CASES = [
    (task, name)
    for task in ("classification", "regression")
    for name in jaxal.strategies.names(task=task)
]


@functools.cache
def _setting(task: str, dtype) -> tuple:
    """Pool inputs, a posterior, and ``[2, SEEDS]`` fitted parameters (two rounds' worth)."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((N, D)), dtype)
    if task == "classification":
        y = jnp.asarray(rng.integers(0, C, N))
        model = jaxal.posterior.MLP(num_classes=C, hidden=(8,))
        make = jaxal.posterior.ensemble
    else:
        y = jnp.asarray(rng.standard_normal(N), dtype)
        model = jaxal.posterior.MLP(num_classes=1, hidden=(8,))
        make = jaxal.posterior.ensemble_regression
    post = make(model, K, optimizer=optax.adam(1e-2), num_steps=5, batch_size=4)
    weights = jnp.ones((N,), dtype)
    keys = jax.random.split(jax.random.key(1), (2, SEEDS))
    params = jax.vmap(jax.vmap(lambda k: post.fit(x, y, weights, key=k)))(keys)
    return x, post, params


def _labelled(round_: int, seed: int) -> jax.Array:
    order = np.random.default_rng(10 * round_ + seed).permutation(N)
    return jnp.zeros((N,), bool).at[order[: 4 + round_ * B]].set(True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("task", "name"), CASES)
def test_strategy_contract(task, name, dtype):
    x, post, params = _setting(task, dtype)
    strategy = jaxal.strategies.get(name)
    targets = Targets("pool", M)
    traces = []

    def one_round(params, labelled, key):
        traces.append(1)  # once per trace, i.e. per compilation
        r = Round.from_posterior(
            post, params, key=key, x_pool=x, labelled=labelled, targets=targets
        )
        return strategy(r, B)

    single = jax.jit(one_round)
    seeds = jax.jit(jax.vmap(one_round))
    for round_ in range(2):
        keys = jax.random.split(jax.random.key(round_), SEEDS)
        labelled = jnp.stack([_labelled(round_, s) for s in range(SEEDS)])
        params_S = jax.tree.map(lambda leaf, r=round_: leaf[r], params)
        got = {
            "jit": single(jax.tree.map(lambda leaf: leaf[0], params_S), labelled[0], keys[0])[None],
            "vmap": seeds(params_S, labelled, keys),
        }
        for mode, index_S_B in got.items():
            index_S_B = np.asarray(index_S_B)
            assert index_S_B.shape == (len(index_S_B), B), mode
            for s, index_B in enumerate(index_S_B):
                assert len(set(index_B.tolist())) == B, (mode, index_B)
                assert not np.asarray(labelled[s])[index_B].any(), (mode, index_B)
    assert len(traces) == 2, "the second round recompiled"


def test_names_are_kebab_case_and_tasks_partition_them():
    everything = jaxal.strategies.names()
    assert all(name == name.lower() and "_" not in name for name in everything)
    assert set(everything) == {name for _, name in CASES}
    assert jaxal.strategies.task_of("random") == "any"
    with pytest.raises(ValueError, match="unknown strategy 'badl'"):
        jaxal.strategies.get("badl")


def test_top_score_strategies_take_the_top_scores(rng):
    log_probs = jnp.log(jnp.asarray(rng.dirichlet(np.ones(C), (K, N))))
    r = Round(key=jax.random.key(0), labelled=jnp.zeros((N,), bool), pool=log_probs)
    got = jaxal.strategies.get("bald")(r, 4)
    np.testing.assert_array_equal(got, jaxal.select.top_k(jaxal.scores.bald(log_probs), 4))


def test_a_round_computes_only_what_the_strategy_asks_for(rng):
    asked = []

    def source(name, value):
        def make():
            asked.append(name)
            return value

        return make

    log_probs = jnp.log(jnp.asarray(rng.dirichlet(np.ones(C), (K, N))))
    r = Round(
        key=jax.random.key(0),
        labelled=jnp.zeros((N,), bool),
        pool=source("pool", log_probs),
        target=source("target", log_probs[:, :M]),
        embeddings=source("embeddings", jnp.ones((K, N, 2))),
    )
    jaxal.strategies.get("bald")(r, 2)
    jaxal.strategies.get("margin")(r, 2)
    assert asked == ["pool"]
    jaxal.strategies.get("epig")(r, 2)
    assert asked == ["pool", "target"]


def test_a_missing_source_names_what_is_needed():
    r = Round(key=jax.random.key(0), labelled=jnp.zeros((N,), bool), pool=jnp.zeros((K, N, C)))
    with pytest.raises(ValueError, match="last-layer features"):
        jaxal.strategies.get("coreset")(r, 2)


def test_targets_are_drawn_per_round_from_their_source():
    x_pool = jnp.arange(40.0).reshape(20, 2)
    given = Targets("given", 5, inputs=-jnp.arange(12.0).reshape(6, 2))
    a = given.draw(jax.random.key(0), x_pool)
    assert a.shape == (5, 2) and (np.asarray(a) <= 0).all()
    assert len({tuple(row) for row in np.asarray(a).tolist()}) == 5  # without replacement
    b = Targets("pool", 5).draw(jax.random.key(1), x_pool)
    assert set(np.asarray(b)[:, 0].tolist()) <= set(np.asarray(x_pool)[:, 0].tolist())
    assert not np.array_equal(b, Targets("pool", 5).draw(jax.random.key(2), x_pool))
    with pytest.raises(ValueError, match="inputs must be given"):
        Targets("given", 5)
    with pytest.raises(ValueError, match="size must be an int >= 1"):
        Targets("pool", 0)


def test_a_round_shows_only_the_labelled_points_labels():
    labelled = jnp.array([True, False, True, False])
    assert jnp.array_equal(
        masked_labels(jnp.array([3, 1, 2, 0]), labelled), jnp.array([3, -1, 2, -1])
    )
    y = masked_labels(jnp.array([0.5, 1.0, -2.0, 3.0]), labelled)
    assert jnp.array_equal(jnp.isnan(y), ~labelled) and y[2] == -2.0
    r = Round(key=jax.random.key(0), labelled=labelled)
    with pytest.raises(MissingSource, match="labels"):
        _ = r.labels
