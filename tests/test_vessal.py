"""VeSSAL (jaxal.select.vessal*), the streaming loop (jaxal.streaming) and ``jaxal run --stream``.

The oracle is a numpy transcription of the authors' ``StreamingSampling.streaming_sampler``
(github.com/asaran/VeSSAL, ``query_strategies/vessal.py`` at f506fe6, rank 1, no early
stop), fed the same uniforms as jaxal draws.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from typer.testing import CliRunner

import jaxal
from jaxal import cli, select, streaming
from jaxal.cli import app
from jaxal.select._vessal import query_probability, stream_uniform
from tests.test_compilation import count_compilations

N, P, B = 60, 4, 10
SCALES = np.array([3.0, 1.0, 0.3, 0.1])


def authors_streaming_sampler(samps, k, uniforms, cov_inv_scaling=100.0):
    """The authors' loop (rank 1), ``np.random.rand()`` replaced by ``uniforms[i]``."""
    inds, probabilities = [], []
    dim = samps.shape[-1]
    covariance = np.zeros((dim, dim))
    covariance_inv = cov_inv_scaling * np.eye(dim)
    for i, u in enumerate(samps):
        u = u.reshape(-1, 1)
        norm = np.abs(u.T @ covariance_inv @ u)
        ideal_rate = (k - len(inds)) / (len(samps) - i)
        covariance = (i / (i + 1)) * covariance + (1 / (i + 1)) * (u @ u.T)
        zeta = ideal_rate / np.trace(covariance @ covariance_inv)
        pu = np.abs(zeta) * norm
        probabilities.append(pu.item())
        if uniforms[i] < pu.item():
            inds.append(i)
            inner_inv = np.linalg.inv(np.eye(1) + u.T @ covariance_inv @ u)
            covariance_inv = covariance_inv - covariance_inv @ u @ inner_inv @ u.T @ covariance_inv
    return inds, covariance_inv, np.array(probabilities)


def _embeddings(rng, n=N):
    return rng.standard_normal((n, P)) * SCALES


def _uniforms(key, n, dtype=jnp.float64):
    data = jax.random.key_data(key)
    return np.asarray(jax.vmap(lambda t: stream_uniform(data, t, dtype))(jnp.arange(n)))


def test_the_stream_matches_the_authors_loop_with_the_same_uniforms(rng, key):
    g = _embeddings(rng)
    available = rng.random(N) < 0.8
    state = select.vessal_init(P, key=key, budget=B, length=int(available.sum()), dtype=jnp.float64)
    query, final = select.vessal_stream(state, jnp.asarray(g), available=jnp.asarray(available))
    inds, covariance_inv, p = authors_streaming_sampler(
        g[available], B, _uniforms(key, int(available.sum()))
    )
    assert 0 < len(inds) and ((p > 0.02) & (p < 0.98)).sum() > 10  # a real random decision
    np.testing.assert_array_equal(np.flatnonzero(query), np.flatnonzero(available)[inds])
    np.testing.assert_allclose(final.covariance_inv, covariance_inv, rtol=1e-9, atol=1e-12)
    assert int(final.seen) == available.sum() and int(final.queried) == len(inds)


def test_the_pool_batch_is_the_stream_then_random_fillers(rng, key):
    g = _embeddings(rng)
    available = jnp.asarray(rng.random(N) < 0.8)
    index = np.asarray(select.vessal(jnp.asarray(g), B, key=key, available=available))
    stream_key, _ = jax.random.split(key)
    n = int(available.sum())
    inds, _, _ = authors_streaming_sampler(g[np.asarray(available)], B, _uniforms(stream_key, n))
    streamed = np.flatnonzero(np.asarray(available))[inds]
    np.testing.assert_array_equal(index[: len(streamed)], streamed)
    assert len(set(index.tolist())) == B and np.asarray(available)[index].all()


def test_the_first_point_is_queried_at_the_budget_rate_and_never_more_than_b(rng, key):
    g = jnp.asarray(_embeddings(rng), jnp.float32)
    state = select.vessal_init(P, key=key, budget=B, length=N)
    p, _, _ = query_probability(state, g[0])
    np.testing.assert_allclose(p, B / N, rtol=1e-5)

    def count(k):
        query, _ = select.vessal_stream(state._replace(key=jax.random.key_data(k)), g)
        return query.sum(), query[0]

    draws = 1000
    count_S, first_S = jax.jit(jax.vmap(count))(jax.random.split(key, draws))
    assert int(count_S.max()) <= B
    assert 0.95 * B <= float(count_S.mean()) <= B  # the rate adapts to the budget
    se = np.sqrt(B / N * (1 - B / N) / draws)
    assert abs(float(first_S.mean()) - B / N) < 4 * se


def test_a_chunked_stream_decides_what_one_pass_decides(rng, key):
    g = jnp.asarray(_embeddings(rng))
    available = jnp.asarray(rng.random(N) < 0.9)
    state = select.vessal_init(P, key=key, budget=B, length=int(available.sum()))
    whole, final = select.vessal_stream(state, g, available=available)
    pieces = []
    for start, stop in ((0, 20), (20, 40), (40, N)):
        query, state = select.vessal_stream(state, g[start:stop], available=available[start:stop])
        pieces.append(query)
    np.testing.assert_array_equal(jnp.concatenate(pieces), whole)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(final), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_jit_and_vmap(rng, key):
    g = jnp.asarray(_embeddings(rng), jnp.float32)
    keys = jax.random.split(key, 3)
    masks = jnp.ones((3, N), bool).at[2].set(jnp.arange(N) < 4)  # 4 < B points: sentinels
    got = jax.jit(jax.vmap(lambda k, m: select.vessal(g, B, key=k, available=m)))(keys, masks)
    for s in range(2):
        np.testing.assert_array_equal(got[s], select.vessal(g, B, key=keys[s]))
    assert sorted(np.asarray(got[2, :4]).tolist()) == [0, 1, 2, 3]
    np.testing.assert_array_equal(got[2, 4:], N)


@pytest.mark.unchecked  # bad input on purpose: our own errors, not the annotation checks
def test_bad_input_is_refused(key):
    g = jnp.ones((N, P))
    with pytest.raises(ValueError, match=r"embeddings must have shape \[N, P\]"):
        select.vessal(jnp.ones(N), B, key=key)
    with pytest.raises(TypeError, match="floating dtype"):
        select.vessal(jnp.ones((N, P), int), B, key=key)
    with pytest.raises(ValueError, match="larger than the number of available"):
        select.vessal(g, B, key=key, available=jnp.arange(N) < 3)
    with pytest.raises(TypeError, match="PRNG key"):
        select.vessal(g, B, key=None)
    with pytest.raises(ValueError, match="cov_inv_scaling must be finite and > 0"):
        select.vessal(g, B, key=key, cov_inv_scaling=0.0)
    with pytest.raises(ValueError, match="contains NaN or inf"):
        select.vessal(g.at[0, 0].set(jnp.nan), B, key=key)
    with pytest.raises(ValueError, match="budget must be an int >= 0"):
        select.vessal_init(P, key=key, budget=-1, length=N)
    with pytest.raises(TypeError, match="length must be an int"):
        select.vessal_init(P, key=key, budget=B, length=2.5)
    state = select.vessal_init(P + 1, key=key, budget=B, length=N)
    with pytest.raises(ValueError, match=r"vessal_init\(4"):
        select.vessal_stream(state, g)
    with pytest.raises(TypeError, match="VessalState"):
        select.vessal_stream((1, 2), g)
    state = select.vessal_init(P, key=key, budget=B, length=N)
    with pytest.raises(TypeError, match="available must be a bool mask"):
        select.vessal_stream(state, g, available=jnp.ones(N))
    query, same = select.vessal_stream(state, g, available=jnp.zeros(N, bool))  # skipped
    assert not query.any() and int(same.seen) == 0


# --- the streaming loop ---------------------------------------------------------------------
# The loop test and the CLI test share one setting (digits, a tiny ensemble), so the CLI
# reuses the programs the loop test compiled (equal posteriors hash equal).

SETTING = dict(dataset="digits", strategy="vessal", initial=10, seeds=2, samples=2, steps=5)
SETTING |= dict(hidden=4, minibatch=16)
BUDGET, CHUNK = 40, 600


def test_the_stream_labels_up_to_the_budget_in_one_compiled_chunk_under_vmap():
    experiment = cli._Experiment(cli.RunConfig(**SETTING))  # type: ignore[arg-type]
    data, initial = experiment.dataset, SETTING["initial"]
    pool = data.x_pool.shape[0]
    compiled_after_chunk = []
    with count_compilations() as compiled:
        state = streaming.run(
            data,  # type: ignore[arg-type]
            key=jax.random.key(1),  # the CLI's key for --seed 0
            posterior=experiment.posterior,
            budget=BUDGET,
            initial=initial,
            chunk_size=CHUNK,
            seeds=2,
            on_chunk=lambda _: compiled_after_chunk.append(len(compiled)),
            progress=False,
        )
    R = streaming.num_chunks(pool, initial=initial, chunk_size=CHUNK)
    assert R == 3 and len(compiled_after_chunk) == R
    assert compiled_after_chunk[0] == compiled_after_chunk[-1]  # no recompilation per chunk
    labels = np.asarray(state.labels)
    assert labels.shape == (2, R + 1) and (np.diff(labels, axis=1) >= 0).all()
    assert (labels[:, 0] == initial).all() and (labels[:, -1] <= BUDGET).all()
    assert labels[:, -1].min() > initial + (BUDGET - initial) // 2  # about the budget
    assert np.isfinite(np.asarray(state.metrics["accuracy"])).all()
    for s in range(2):
        count, order = int(state.count[s]), np.asarray(state.order[s])
        acquired = np.asarray(state.acquired[s])
        assert sorted(order.tolist()) == list(range(pool))
        assert len(set(acquired[:count].tolist())) == count and (acquired[count:] == -1).all()
        np.testing.assert_array_equal(acquired[:initial], order[:initial])
        position = np.argsort(order)[acquired[:count]]
        assert (np.diff(position) > 0).all()  # labelled in order of arrival
        np.testing.assert_array_equal(state.x[s, :count], data.x_pool[acquired[:count]])
        np.testing.assert_array_equal(state.y[s, :count], data.y_pool[acquired[:count]])


@pytest.mark.unchecked  # bad settings on purpose: our own errors, not the annotation checks
def test_stream_settings_are_checked():
    data = jaxal.data.Dataset(
        jnp.ones((20, 2)), jnp.zeros(20, int), jnp.ones((5, 2)), jnp.zeros(5, int), 2
    )
    post = jaxal.posterior.ensemble(
        jaxal.posterior.MLP(num_classes=2, hidden=(4,)),
        2,
        optimizer=optax.adam(1e-2),
        num_steps=5,
        batch_size=8,
    )
    settings = dict(key=jax.random.key(0), posterior=post, initial=4, chunk_size=5)
    with pytest.raises(ValueError, match="must be >= initial"):
        streaming.init(data, budget=3, **settings)
    with pytest.raises(ValueError, match="exceeds the pool"):
        streaming.init(data, budget=21, **settings)
    with pytest.raises(ValueError, match="sampler must be one of"):
        streaming.init(data, budget=8, sampler="badge", **settings)  # type: ignore[arg-type]


def test_cli_run_stream(tmp_path):
    runner = CliRunner()
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({k: SETTING[k] for k in ("hidden", "minibatch")}))
    flags = [f"--{k}={v}" for k, v in SETTING.items() if k not in ("hidden", "minibatch")]
    flags += ["--config", str(config), "--stream", "--chunk", str(CHUNK), "--budget", str(BUDGET)]
    out = tmp_path / "stream"
    result = runner.invoke(app, ["run", "--out", str(out), *flags])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "results.json").read_text())
    assert record["stream"] == {"chunk": CHUNK, "budget": BUDGET, "sampler": "vessal"}
    assert np.asarray(record["metrics"]["accuracy"]).shape == (2, 4)
    assert max(record["labelled"][0]) <= BUDGET and (out / "curves.png").stat().st_size > 0
    result = runner.invoke(
        app, ["run", "--out", str(tmp_path / "x"), "--stream", "--strategy", "bald"]
    )
    assert result.exit_code == 2 and "only --strategy vessal" in " ".join(result.output.split())
