"""Rebuilt equal posteriors and optimizers reuse compiled programs; different ones do not.

Compilations inside jaxal are counted with ``jax.monitoring``: every XLA compilation records the
event ``/jax/core/compile/backend_compile_duration`` (cache hits record nothing), so the count is
exact and does not depend on log formats. Traces of a function the test defines are bounded
with ``chex.assert_max_traces``. Sizes are tiny: these tests are about caches.
"""

import contextlib
import functools
import gc
import weakref

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxal
from jaxal import posterior
from jaxal._config import Static, fingerprint
from jaxal.data import Dataset

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compilations():
    """Yields a list whose length is the number of XLA compilations inside the block."""
    compiled = []

    def listener(event, duration_secs, **kwargs):
        if event == _COMPILE_EVENT:
            compiled.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield compiled
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


N, D, C = 24, 3, 3


def toy_data() -> Dataset:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((N + 12, D)), jnp.float32)
    y = jnp.asarray(rng.integers(0, C, N + 12), jnp.int32)
    return Dataset(x[:N], y[:N], x[N:], y[N:], C)


def tiny_ensemble(learning_rate: float = 1e-2) -> posterior.Posterior:
    """A fresh model and a fresh optimizer every call, as a re-run notebook cell builds them."""
    return posterior.ensemble(
        posterior.MLP(num_classes=C, hidden=(4,)),
        2,
        optimizer=optax.adam(learning_rate),
        num_steps=3,
        batch_size=4,
    )


def fit_and_predict(post: posterior.Posterior, data: Dataset):
    weights = jnp.ones(N, jnp.float32)
    params = jax.jit(post.fit)(data.x_pool, data.y_pool, weights, key=jax.random.key(0))
    return jax.jit(post.predict)(params, data.x_test, key=jax.random.key(1)).block_until_ready()


def test_a_rebuilt_posterior_compiles_nothing_new_and_a_new_learning_rate_compiles():
    data = toy_data()
    first = tiny_ensemble()
    with count_compilations() as compiled:
        fit_and_predict(first, data)
    assert len(compiled) >= 2  # the counter sees the compilations of fit and predict
    second = tiny_ensemble()  # a fresh MLP and a fresh optax.adam(1e-2)
    assert second == first and hash(second) == hash(first)
    with count_compilations() as compiled:
        fit_and_predict(second, data)
    assert compiled == []
    other = tiny_ensemble(3e-2)
    assert other != first
    with count_compilations() as compiled:
        fit_and_predict(other, data)
    assert len(compiled) >= 1


@pytest.mark.parametrize("trainer", ["ensemble", "dropout"])
def test_trainers_reuse_their_program_for_an_equal_rebuilt_optimizer(trainer, key):
    data = toy_data()
    weights = jnp.ones(N, jnp.float32)
    if trainer == "ensemble":
        model = posterior.MLP(num_classes=C, hidden=(4,))
        params = posterior.init_ensemble(model, data.x_pool[:1], 2, key=key)
        train = functools.partial(posterior.train_ensemble, model=model)
    else:
        model = posterior.DropoutMLP(num_classes=C, hidden=(4,))
        params = model.init({"params": key, "dropout": key}, data.x_pool[:1])
        train = functools.partial(posterior.train_dropout, model=model)

    def run(learning_rate):
        optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(learning_rate))
        args = (params, data.x_pool, data.y_pool, weights)
        return train(*args, key=key, optimizer=optimizer, num_steps=2, batch_size=4)

    first = run(1e-2)
    with count_compilations() as compiled:
        again = run(1e-2)
    assert compiled == []
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    if trainer == "ensemble":
        with count_compilations() as compiled:
            run(2e-2)
        assert len(compiled) == 1


def test_the_loop_reuses_its_programs_for_a_rebuilt_posterior():
    data = toy_data()
    strategy = jaxal.strategies.get("random")
    settings = dict(initial=4, rounds=1, b=2)

    def run(post):
        state = jaxal.loop.init(data, key=jax.random.key(0), posterior=post, **settings)
        return jaxal.loop.run(state, data, posterior=post, strategy=strategy)

    first = run(tiny_ensemble())
    with count_compilations() as compiled:
        second = run(tiny_ensemble())
    assert compiled == []
    np.testing.assert_array_equal(first.acquired, second.acquired)


def test_the_table_of_built_posteriors_keeps_nothing_alive():
    post = tiny_ensemble(5e-3)
    ref = weakref.ref(post)
    assert tiny_ensemble(5e-3) is post  # an equal live posterior is returned as is
    del post
    gc.collect()
    assert ref() is None


# ---------------------------------------------------------------------------------------------
# Every factory: equal settings give equal posteriors, a changed setting an unequal one


def _features(x):
    return jnp.tanh(x)


def _other_features(x):
    return jnp.sin(x)


_MLP_PARAMS = posterior.MLP(2, (4,)).init(jax.random.key(0), jnp.zeros((1, D)))

FACTORIES = {
    "ensemble": lambda lr=1e-2: posterior.ensemble(
        posterior.MLP(C, (4,)), 2, optimizer=optax.adam(lr), num_steps=3, batch_size=4
    ),
    "ensemble_regression": lambda lr=1e-2: posterior.ensemble_regression(
        posterior.MLP(1, (4,)), 2, optimizer=optax.adam(lr), num_steps=3, batch_size=4
    ),
    "mc_dropout": lambda lr=1e-2: posterior.mc_dropout(
        posterior.DropoutMLP(C, (4,)), 2, optimizer=optax.adamw(lr), num_steps=3, batch_size=4
    ),
    "bnn_svi": lambda lr=1e-2: posterior.bnn_svi(C, 2, optimizer=optax.adam(lr), num_steps=3),
    "bnn_nuts": lambda scale=1.0: posterior.bnn_nuts(C, 2, prior_scale=scale),
    "laplace_last_layer": lambda fn=_features: posterior.laplace_last_layer(fn, C, 2),
    "laplace_last_layer-mlp": lambda scale=1.0: posterior.laplace_last_layer(
        posterior.mlp_features(
            posterior.MLP(2, (4,)), jax.tree.map(lambda p: scale * p, _MLP_PARAMS)
        ),
        C,
        2,
    ),
    "bayesian_last_layer_regression": lambda fn=_features: posterior.bayesian_last_layer_regression(
        fn, 2
    ),
    "neural_linear_regression": lambda lr=1e-2: posterior.neural_linear_regression(
        posterior.MLP(1, (4,)), 2, optimizer=optax.adam(lr), num_steps=3, batch_size=4
    ),
}
CHANGED = {
    "bnn_nuts": 2.0,
    "laplace_last_layer": _other_features,
    "laplace_last_layer-mlp": 2.0,
    "bayesian_last_layer_regression": _other_features,
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_every_factory_is_identified_by_its_settings(name):
    make = FACTORIES[name]
    first, second = make(), make()
    assert first == second and hash(first) == hash(second)
    assert first.config is not None and first.config[0] == name.split("-")[0]
    changed = make(CHANGED.get(name, 3e-2))
    assert changed != first


def test_build_by_name_is_identified_by_its_settings():
    first = posterior.build("ensemble", num_classes=3, num_steps=5)
    assert posterior.build("ensemble", num_classes=3, num_steps=5) == first
    assert posterior.build("ensemble", num_classes=3, num_steps=5, learning_rate=0.1) != first
    assert posterior.build("ensemble", task="regression", num_steps=5) != first


# ---------------------------------------------------------------------------------------------
# fingerprint


def _adder(offset):
    def add(x):
        return x + offset

    return add


def test_fingerprint_of_optimizers_is_their_configuration():
    assert fingerprint(optax.adam(1e-3)) == fingerprint(optax.adam(1e-3))
    assert hash(fingerprint(optax.adam(1e-3))) == hash(fingerprint(optax.adam(1e-3)))
    assert fingerprint(optax.adam(1e-3)) != fingerprint(optax.adam(2e-3))
    assert fingerprint(optax.adam(1e-3)) != fingerprint(optax.sgd(1e-3))
    schedule = optax.cosine_decay_schedule
    assert fingerprint(optax.adam(schedule(1e-3, 10))) == fingerprint(
        optax.adam(schedule(1e-3, 10))
    )
    assert fingerprint(optax.adam(schedule(1e-3, 10))) != fingerprint(optax.adam(schedule(1e-3, 9)))
    injected = optax.inject_hyperparams(optax.adam)
    assert fingerprint(injected(learning_rate=0.1)) == fingerprint(injected(learning_rate=0.1))
    assert fingerprint(injected(learning_rate=0.1)) != fingerprint(injected(learning_rate=0.2))


def test_fingerprint_of_functions_scalars_and_arrays():
    assert fingerprint(_adder(1.0)) == fingerprint(_adder(1.0))
    assert fingerprint(_adder(1.0)) != fingerprint(_adder(2.0))
    assert fingerprint(_adder(1.0)) != fingerprint(_adder(1))  # 1.0 and 1 trace differently
    assert fingerprint(0.0) != fingerprint(-0.0)
    assert fingerprint(_features) != fingerprint(_other_features)
    partial = functools.partial
    assert fingerprint(partial(_adder, 1.0)) == fingerprint(partial(_adder, 1.0))
    assert fingerprint(np.arange(3.0)) == fingerprint(jnp.arange(3.0, dtype=jnp.float64))
    assert fingerprint(np.arange(3.0)) != fingerprint(np.arange(3.0, dtype=np.float32))
    assert fingerprint(np.arange(3.0)) != fingerprint(np.arange(3.0).reshape(3, 1))
    assert fingerprint(np.arange(3.0)) != fingerprint(np.arange(3.0) + 1e-12)
    assert fingerprint(jax.random.key(0)) == fingerprint(jax.random.key(0))
    assert fingerprint(jax.random.key(0)) != fingerprint(jax.random.key(1))
    assert fingerprint({"a": 1, "b": [2, 3]}) == fingerprint({"a": 1, "b": [2, 3]})
    assert fingerprint({"a": 1, "b": [2, 3]}) != fingerprint({"b": [2, 3], "a": 1})


def test_fingerprint_reads_the_globals_a_function_uses():
    namespace = {"jnp": jnp, "scale": np.ones(2)}
    source = "def feature_fn(x):\n    return scale * x\n"
    exec(source, namespace)
    before = fingerprint(namespace["feature_fn"])
    namespace["scale"] = 2 * np.ones(2)
    assert fingerprint(namespace["feature_fn"]) != before
    namespace["scale"] = np.ones(2)
    assert fingerprint(namespace["feature_fn"]) == before


def test_fingerprint_follows_cycles_once():
    def outer():
        def countdown(n):
            return 0 if n == 0 else countdown(n - 1)

        return countdown

    assert fingerprint(outer()) == fingerprint(outer())
    cyclic = []
    cyclic.append(cyclic)
    assert hash(fingerprint(cyclic)) == hash(fingerprint(cyclic))


def test_fingerprint_of_an_empty_closure_cell():
    def reads_later():
        return later  # assigned below, after the first fingerprint

    empty = fingerprint(reads_later)
    later = 1.0
    assert fingerprint(reads_later) != empty


def test_fingerprint_of_anything_else_is_its_identity():
    class Opaque:
        pass

    a, b = Opaque(), Opaque()
    assert fingerprint(a) == fingerprint(a)
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(iter([])) != fingerprint(iter([]))


def test_flax_modules_are_fingerprinted_by_their_fields():
    assert fingerprint(posterior.MLP(2, (4,))) == fingerprint(posterior.MLP(2, (4,)))
    assert fingerprint(posterior.MLP(2, (4,))) != fingerprint(posterior.MLP(2, (5,)))

    class Unhashable(nn.Module):
        widths: list

        def __call__(self, x):
            return x

    module = Unhashable([1])
    assert fingerprint(module) == fingerprint(module)
    assert fingerprint(Unhashable([1])) != fingerprint(module)  # by identity, never wrongly


def test_static_holder_is_a_jit_static_argument_by_fingerprint():
    chex.clear_trace_counter()

    @functools.partial(jax.jit, static_argnames="optimizer")
    @chex.assert_max_traces(n=1)
    def init(params, *, optimizer):
        return optimizer.value.init(params)

    params = jnp.zeros(3)
    init(params, optimizer=Static(optax.adam(1e-3)))
    init(params, optimizer=Static(optax.adam(1e-3)))  # an equal rebuilt optimizer: no trace
    with pytest.raises(AssertionError, match="traced > 1 times"):
        init(params, optimizer=Static(optax.adam(2e-3)))  # another one traces again
