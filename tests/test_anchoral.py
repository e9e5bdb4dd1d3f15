"""AnchorAL (jaxal.subpool) and the sub-pool round (jaxal.context.Round.subpool)."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxal
from jaxal.context import Round
from jaxal.subpool import anchoral, anchoral_subpool, class_anchors

N, D, C, K = 40, 3, 3, 2


def brute_force_subpool(x, anchors, available, S, k):
    """The authors' retrieval in numpy: each anchor's k most cosine-similar available points,
    mean similarity over the anchors that retrieved a point, best S; then the fill rule."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    valid = [a for a in anchors if a < len(x)]
    sims = {}
    best = np.full(len(x), -np.inf)
    for a in valid:
        sim = unit @ unit[a]
        best = np.maximum(best, sim)
        candidates = np.flatnonzero(available)
        for n in candidates[np.argsort(-sim[candidates], kind="stable")][:k]:
            sims.setdefault(int(n), []).append(sim[n])
    retrieved = sorted(sims, key=lambda n: -np.mean(sims[n]))
    rest = [int(n) for n in np.argsort(-best) if available[n] and int(n) not in sims]
    return (retrieved + rest)[:S]


def _posterior(calls):
    """A softmax-regression 'posterior' that records the rows it predicts on."""
    w = jnp.asarray(np.random.default_rng(0).standard_normal((K, D, C)))

    def apply(params, x):
        return jnp.einsum("nd,kdc->knc", x, params)

    def predict(params, x, *, key):
        calls.append(x.shape[0])
        return jax.nn.log_softmax(apply(params, x), axis=-1)

    return types.SimpleNamespace(predict=predict, embed=None, apply=apply), w


def _pool(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D))
    y = rng.integers(0, C, N)
    labelled = np.zeros(N, bool)
    labelled[rng.permutation(N)[:9]] = True
    return jnp.asarray(x), jnp.asarray(y), jnp.asarray(labelled)


@pytest.mark.parametrize(("S", "k"), [(4, 5), (12, 5), (20, 3)])  # the last one fills
def test_subpool_is_the_brute_force_retrieval(rng, S, k):
    x = rng.standard_normal((N, D))
    available = rng.random(N) < 0.9
    anchors = np.array([3, 17, N, 25, 8])  # one empty slot
    available[[3, 17, 25, 8]] = False  # anchors are labelled points
    got = anchoral_subpool(
        jnp.asarray(x),
        jnp.asarray(anchors),
        S,
        num_neighbours=k,
        available=jnp.asarray(available),
        key=jax.random.key(0),
    )
    want = brute_force_subpool(x, anchors, available, S, k)
    assert S <= available.sum()
    np.testing.assert_array_equal(got, want)


def test_class_anchors_are_distinct_members_of_their_class():
    labels = np.full(N, -1)
    labels[:10] = 0
    labels[10:12] = 1  # class 2 has no labelled point
    x = jnp.asarray(np.random.default_rng(1).standard_normal((N, D)))
    got = np.asarray(
        class_anchors(
            x, jnp.asarray(labels), num_classes=C, anchors_per_class=3, key=jax.random.key(2)
        )
    )
    assert len(set(got[0])) == 3 and (labels[got[0]] == 0).all()
    assert sorted(got[1][:2].tolist()) == [10, 11] and got[1][2] == N
    assert (got[2] == N).all()


def test_inner_strategy_sees_only_the_subpool_predicted_there_alone():
    x, y, labelled = _pool()
    calls, seen = [], {}
    posterior, params = _posterior(calls)
    S, B = 10, 3

    def inner(r, b):
        seen.update(num_points=r.num_points, x_pool=r.x_pool, available=r.available)
        return jaxal.strategies.get("bald")(r, b)

    r = Round.from_posterior(
        posterior, params, key=jax.random.key(3), x_pool=x, labelled=labelled, y_pool=y
    )
    got = anchoral(inner, subpool_size=S, anchors_per_class=2, num_neighbours=4)(r, B)
    assert calls == [S], "predictions must be computed on the sub-pool only"
    assert seen["num_points"] == S and bool(seen["available"].all())
    # the rows the inner strategy saw are pool rows; its picks map back to them
    rows = [
        int(np.flatnonzero((np.asarray(x) == np.asarray(row)).all(axis=1))[0])
        for row in seen["x_pool"]
    ]
    assert not np.asarray(labelled)[rows].any()
    sub = Round(
        key=jax.random.key(0), labelled=jnp.zeros(S, bool), pool=r.subpool(jnp.asarray(rows)).pool
    )
    want = np.asarray(rows)[np.asarray(jaxal.strategies.get("bald")(sub, B))]
    np.testing.assert_array_equal(got, want)
    assert calls == [S, S]


def test_a_subpool_sentinel_maps_to_the_pool_sentinel():
    x, y, labelled = _pool()
    posterior, params = _posterior([])
    r = Round.from_posterior(
        posterior, params, key=jax.random.key(0), x_pool=x, labelled=labelled, y_pool=y
    )
    got = anchoral(lambda r, b: jnp.array([0, r.num_points]), subpool_size=8)(r, 2)
    assert 0 <= int(got[0]) < N and int(got[1]) == N


def test_subpool_round_indexes_pool_sources_and_keeps_targets(rng):
    log_probs = jnp.asarray(np.log(rng.dirichlet(np.ones(C), (K, N))))
    target = log_probs[:, :5]
    features = jnp.asarray(rng.standard_normal((N, 4)))
    r = Round(
        key=jax.random.key(0),
        labelled=jnp.zeros(N, bool).at[2].set(True),
        pool=log_probs,
        target=target,
        features={"given": features},
    )
    idx = jnp.array([2, 7, 1])
    sub = r.subpool(idx)
    np.testing.assert_array_equal(sub.pool, log_probs[:, idx])
    np.testing.assert_array_equal(sub.target, target)
    np.testing.assert_array_equal(sub.features("given"), features[idx])
    np.testing.assert_array_equal(sub.labelled, [True, False, False])
    np.testing.assert_array_equal(sub.subpool(jnp.array([1, 2])).pool, log_probs[:, idx[1:]])


def test_jit_and_vmap_compile_once_across_rounds():
    x, y, _ = _pool()
    posterior, params = _posterior([])
    strategy = anchoral(jaxal.strategies.get("margin"), subpool_size=12, anchors_per_class=2)
    traces = []

    def one_round(labelled, key):
        traces.append(1)
        r = Round.from_posterior(posterior, params, key=key, x_pool=x, labelled=labelled, y_pool=y)
        return strategy(r, 3)

    seeds = jax.jit(jax.vmap(one_round))
    for round_ in range(2):
        labelled = jnp.stack([_pool(10 * round_ + s)[2] for s in range(3)])
        got = np.asarray(seeds(labelled, jax.random.split(jax.random.key(round_), 3)))
        for s in range(3):
            assert len(set(got[s])) == 3 and not np.asarray(labelled[s])[got[s]].any()
        single = jax.jit(one_round)(labelled[0], jax.random.split(jax.random.key(round_), 3)[0])
        np.testing.assert_array_equal(single, got[0])
    assert len(traces) == 2, "a second round recompiled"


def test_the_registry_composes_anchoral_with_any_strategy():
    assert "anchoral" in jaxal.strategies.names(task="classification")
    assert callable(jaxal.strategies.get("anchoral:badge"))
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        jaxal.strategies.get("anchoral:nope")
    with pytest.raises(ValueError, match="unknown strategy wrapper"):
        jaxal.strategies.get("nope:bald")


def test_the_command_line_spells_the_inner_strategy():
    from jaxal import cli

    cli.RunConfig(dataset="imbalanced-blobs", strategy="anchoral", inner="bald").validate()
    with pytest.raises(ValueError, match="--inner needs --strategy in"):
        cli.RunConfig(strategy="bald", inner="margin").validate()
    with pytest.raises(ValueError, match="unknown classification --inner 'nope'"):
        cli.RunConfig(strategy="anchoral", inner="nope").validate()
