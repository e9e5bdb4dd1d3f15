"""Tests for jaxal.bench: the cached-posterior acquisition benchmark."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from rich.console import Console
from typer.testing import CliRunner

from jaxal import bench, data, posterior, strategies
from jaxal.cli import _bench_note, _bench_table, app


def _random_log_probs(rng, K, N, C):
    logits = 2 * rng.standard_normal((1, N, C)) + rng.standard_normal((K, N, C))
    return logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)


def _joint_mi_brute_force(log_probs_K_N_C, indices):
    """Exact I(y_B; theta) by enumerating every label configuration of the batch."""
    p_K_B_C = np.exp(log_probs_K_N_C[:, indices])
    K, B, C = p_K_B_C.shape
    joint_entropy = 0.0
    for config in itertools.product(range(C), repeat=B):
        p = np.mean(np.prod(p_K_B_C[:, np.arange(B), config], axis=1))
        joint_entropy -= p * np.log(p)
    expected = -np.sum(np.mean(np.sum(p_K_B_C * np.log(p_K_B_C), axis=-1), axis=0))
    return joint_entropy - expected


def test_joint_mutual_information_matches_enumeration(rng, key):
    log_probs = _random_log_probs(rng, 6, 8, 3)
    for indices in ([2], [0, 5], [1, 3, 7]):
        exact = _joint_mi_brute_force(log_probs, indices)
        estimate = bench.joint_mutual_information(
            jnp.asarray(log_probs), jnp.asarray(indices), key=key, num_samples=60_000
        )
        np.testing.assert_allclose(float(estimate), exact, atol=0.01)


def test_reweighted_metrics_match_numpy(rng):
    pool = _random_log_probs(rng, 5, 12, 4)
    test = _random_log_probs(rng, 5, 7, 4)
    y_pool, y_test = rng.integers(0, 4, 12), rng.integers(0, 4, 7)
    indices = np.array([3, 8, 1])
    gain, accuracy = bench.reweighted_test_metrics(
        *map(jnp.asarray, (pool, test, indices, y_pool, y_test))
    )
    w = np.exp(pool[:, indices, y_pool[indices]].sum(1))
    w /= w.sum()
    p_test = np.exp(test)
    before = -np.mean(np.log(p_test.mean(0)[np.arange(7), y_test]))
    mixture = np.einsum("k,kmc->mc", w, p_test)
    after = -np.mean(np.log(mixture[np.arange(7), y_test]))
    np.testing.assert_allclose(float(gain), before - after, rtol=1e-5)
    np.testing.assert_allclose(float(accuracy), np.mean(mixture.argmax(-1) == y_test))


def test_identical_samples_gain_nothing(rng):
    one = _random_log_probs(rng, 1, 10, 3)
    pool, test = np.repeat(one, 4, axis=0), np.repeat(one[:, :6], 4, axis=0)
    gain, _ = bench.reweighted_test_metrics(
        *map(jnp.asarray, (pool, test, np.array([0, 1]), np.zeros(10, int), np.zeros(6, int)))
    )
    assert float(gain) == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope="module")
def tiny():
    """A cache recorded from real (tiny) runs on moons: 2 trajectories x 3 states, K = 2."""
    key = jax.random.key(0)
    ds = data.moons(key=key, num_samples=60, test_fraction=0.5)
    post = posterior.ensemble(
        posterior.MLP(num_classes=2, hidden=(8,)),
        2,
        optimizer=optax.adam(1e-2),
        num_steps=5,
        batch_size=8,
    )
    cache = bench.record(
        ds, ["random", "bald"], key=key, posterior=post, initial=4, rounds=2, b=3, dataset="moons"
    )
    return cache, ds, post


def test_record_save_load_round_trip(tiny, tmp_path):
    cache, ds, _ = tiny
    assert cache.log_probs_pool.shape == (2, 3, 2, 30, 2)
    assert cache.log_probs_test.shape == (2, 3, 2, 30, 2)
    assert cache.embeddings.shape == (2, 3, 2, 30, 8)
    for big in (cache.log_probs_pool, cache.log_probs_test, cache.embeddings, cache.x_pool):
        assert big.dtype == np.float16
    np.testing.assert_allclose(cache.x_pool, ds.x_pool, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(cache.x_test, ds.x_test, rtol=1e-3, atol=1e-3)
    # Both trajectories start from the same labels and fit (common random numbers).
    np.testing.assert_array_equal(cache.labelled[0, 0], cache.labelled[1, 0])
    np.testing.assert_array_equal(cache.log_probs_pool[0, 0], cache.log_probs_pool[1, 0])
    np.testing.assert_array_equal(cache.embeddings[0, 0], cache.embeddings[1, 0])
    bench.save(cache, tmp_path / "c.npz")
    loaded = bench.load(tmp_path / "c.npz")
    for a, b in zip(loaded, cache, strict=True):
        np.testing.assert_array_equal(a, b)
    bench.save(cache._replace(embeddings=None), tmp_path / "bare.npz")
    assert bench.load(tmp_path / "bare.npz").embeddings is None


def test_load_errors(tiny, tmp_path):
    cache, _, _ = tiny
    with pytest.raises(FileNotFoundError, match="no cache file"):
        bench.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a jaxal.bench cache"):
        bench.load(tmp_path / "other.npz")
    # A cache of the first format: predictions only, no version in its meta.
    old_meta = json.dumps({"strategies": ["random"], "b": 3, "dataset": "moons"})
    np.savez(
        tmp_path / "old.npz",
        meta=np.asarray(old_meta),
        log_probs_pool=cache.log_probs_pool,
        log_probs_test=cache.log_probs_test,
        labelled=cache.labelled,
        accuracy=cache.accuracy,
        y_pool=cache.y_pool,
        y_test=cache.y_test,
    )
    with pytest.raises(ValueError, match="format 1, but this jaxal reads format 2.*bench-record"):
        bench.load(tmp_path / "old.npz")


def test_record_without_embed_warns_and_stores_none(tiny):
    _, ds, post = tiny
    bare = posterior.Posterior(fit=post.fit, predict=post.predict)  # no embed
    with pytest.warns(UserWarning, match="no `embed`"):
        cache = bench.record(
            ds, ["random"], key=jax.random.key(1), posterior=bare, initial=4, rounds=0, b=3
        )
    assert cache.embeddings is None and cache.log_probs_pool.shape == (1, 1, 2, 30, 2)


def test_replay_geometric_epig_and_bald_family(tiny, key):
    cache, _, _ = tiny
    names = ["coreset", "badge", "epig", "power-bald", "bald"]
    result = bench.replay(
        cache, {n: strategies.get(n) for n in names}, key=key, num_targets=5, repeats=1
    )
    assert result["skipped"] == {} and set(result["ranking"]) == set(names)
    T, S, N = cache.labelled.shape
    assert result["states"] == T * S and result["num_targets"] == 5
    for name in names:
        batches = np.asarray(result["batches"][name])
        assert batches.shape == (T * S, cache.b)
        for index_B, labelled_N in zip(batches, cache.labelled.reshape(T * S, N), strict=True):
            assert len(np.unique(index_B)) == cache.b  # distinct
            assert not labelled_N[index_B].any()  # available
        assert result["overlap"][name][name] == 1.0
        assert np.isfinite(result["per_state"][name]["nll_gain"]).all()
    with pytest.raises(ValueError, match="num_targets must be in"):
        bench.replay(cache, {"bald": strategies.get("bald")}, key=key, num_targets=31)
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):  # was UnboundLocalError
        bench.replay(cache, {"bald": strategies.get("bald")}, key=key, repeats=0)


def test_replay_skips_a_strategy_whose_source_the_cache_lacks(tiny, key):
    cache, _, _ = tiny
    chosen = {n: strategies.get(n) for n in ("coreset", "lcmd", "margin")}
    result = bench.replay(cache._replace(embeddings=None), chosen, key=key, repeats=1)
    assert result["ranking"] == ["margin"] and set(result["strategies"]) == {"margin"}
    assert set(result["skipped"]) == {"coreset", "lcmd"}
    assert "'embeddings'" in result["skipped"]["coreset"]
    assert "'network'" in result["skipped"]["lcmd"]

    def broken(r, b):
        raise ValueError("a bug, not a missing source")

    with pytest.raises(ValueError, match="a bug"):
        bench.replay(cache, {"broken": broken}, key=key, repeats=1)


def test_replay_on_the_bundled_cache(key):
    cache = bench.load_bundled()
    T, S, K, N, C = cache.log_probs_pool.shape
    assert cache.strategies == ("random", "bald") and cache.dataset == "digits"
    assert cache.labelled.shape == (T, S, N) and cache.accuracy.shape == (T, S)
    assert cache.embeddings is not None and cache.embeddings.shape[:4] == (T, S, K, N)
    assert cache.x_pool.shape[0] == N and cache.x_test.shape[0] == cache.y_test.shape[0]
    # Each recorded state adds b labels to the previous one.
    np.testing.assert_array_equal(np.diff(cache.labelled.sum(-1), axis=1), cache.b)
    chosen = {"random": strategies.get("random"), "bald": strategies.get("bald")}
    result = bench.replay(cache, chosen, key=key, repeats=1)
    assert result["states"] == T * S and set(result["ranking"]) == set(chosen)
    for name in chosen:
        assert result["overlap"][name][name] == 1.0
        assert len(result["per_state"][name]["joint_mi"]) == T * S
    # BALD's batches carry more information about the model than random ones.
    assert result["strategies"]["bald"]["joint_mi"] > result["strategies"]["random"]["joint_mi"]
    with pytest.raises(ValueError, match="b must be in"):
        bench.replay(cache, chosen, key=key, b=10_000)
    with pytest.raises(ValueError, match="at least one strategy"):
        bench.replay(cache, {}, key=key)


def test_cli_bench_prints_a_ranking_and_writes_results(tmp_path):
    out = tmp_path / "bench"
    result = CliRunner().invoke(
        app, ["bench", "--out", str(out), "--strategy", "random", "--strategy", "margin"]
    )
    assert result.exit_code == 0, result.output
    assert "rank" in result.output and "margin" in result.output
    assert "most" in result.output and "alike" in result.output  # the overlap column
    record = json.loads((out / "results.json").read_text())
    assert record["ranking"] and (out / "bench.png").stat().st_size > 0
    bad = CliRunner().invoke(app, ["bench", "--out", str(out), "--strategy", "lcmd"])
    assert bad.exit_code == 2 and "unknown classification strategies ['lcmd']" in bad.output


def test_cli_bench_table_keeps_long_names_whole():
    """Every strategy's name, in full, and its most alike strategy fit 80 columns."""
    names = strategies.names(task="classification")
    metrics = dict(nll_gain=-0.1234, accuracy=0.5, joint_mi=1.234, classes=3.0, time_ms=12.34)
    result = {
        "dataset": "mnist1d",
        "states": 8,
        "b": 10,
        "ranking": names,
        "strategies": {name: metrics for name in names},
        "overlap": {a: {c: 1.0 if a == c else 0.5 for c in names} for a in names},
    }
    console = Console(width=80, record=True)
    console.print(_bench_table(result))
    lines = console.export_text().splitlines()
    for rank, name in enumerate(names, 1):
        row = next(line for line in lines if f" {name} " in line).split()
        assert row[0] == str(rank) and row[-2:] == ["#2" if rank == 1 else "#1", "0.50"]


def test_bench_note_explains_all_negative_gains():
    def result(*gains):
        return {"strategies": {f"s{i}": {"nll_gain": g} for i, g in enumerate(gains)}}

    assert _bench_note(result(0.1, -0.2)) is None
    note = _bench_note(result(-0.1, -0.2))
    assert "every NLL gain is negative" in note and "weights collapse" in note


def test_cli_bench_reports_skipped_strategies(tiny, tmp_path, monkeypatch):
    cache, _, _ = tiny
    bench.save(cache._replace(embeddings=None), tmp_path / "bare.npz")
    monkeypatch.chdir(tmp_path)
    # Without --out, the results go to a folder named after the cache, never overwritten.
    args = ["bench", "--cache", str(tmp_path / "bare.npz"), "--strategy", "margin"]
    result = CliRunner().invoke(app, [*args, "--strategy", "coreset"])
    assert result.exit_code == 0, result.output
    assert "skipped coreset" in " ".join(result.output.split())
    assert (tmp_path / "results" / "bench-bare" / "results.json").exists()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2, again.output
    assert "results/bench-bare already holds bench results: pass --force" in again.output
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0
    old = tmp_path / "old.npz"
    np.savez(old, meta=np.asarray(json.dumps({"strategies": [], "b": 1, "dataset": "x"})))
    result = CliRunner().invoke(app, ["bench", "--cache", str(old), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "format 1" in result.output


def test_joint_mi_is_jittable_and_vmappable(rng, key):
    log_probs = jnp.asarray(_random_log_probs(rng, 4, 6, 3))
    indices_R_B = jnp.array([[0, 1], [2, 3], [4, 5]])
    batched = jax.vmap(lambda i: bench.joint_mutual_information(log_probs, i, key=key))(indices_R_B)
    single = [bench.joint_mutual_information(log_probs, i, key=key) for i in indices_R_B]
    np.testing.assert_allclose(batched, jnp.stack(single), rtol=1e-5)
