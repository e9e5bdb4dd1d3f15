"""TAILOR (jaxal.tailor): the reward, the Thompson posterior against a transcription of the
authors' ``strategy/meta/thompson_meta.py`` (github.com/jifanz/TAILOR, commit 8a23e14), the
bandit concentrating on the best arm, and the strategy in the loop (memory, vmap, resume)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxal
from jaxal import loop, tailor
from jaxal.context import Round, masked_labels
from tests.test_loop import toy_data


def _authors_v(labels_onehot: np.ndarray, labeled: np.ndarray) -> np.ndarray:
    """``ThompsonMetaProcedure.get_v`` with ``obj="div"``, verbatim in numpy."""
    w = np.sum(labels_onehot[labeled], axis=0)
    w = np.clip(w, a_min=1, a_max=None)
    w[(w / float(len(labeled))) > 0.5] *= -1
    return 1 / w


def _authors_update(stats: np.ndarray, algs: list[int], labels_onehot: np.ndarray, new_label):
    """The stats update of ``ThompsonMetaProcedure.sample`` (multi-class), verbatim."""
    new_stats = np.zeros_like(stats)
    for idx, point in zip(algs, new_label, strict=True):
        label = labels_onehot[point]
        new_stats[0, idx] += label
        new_stats[1, idx] += 1 - label
    return stats * 0.9 + new_stats


def test_the_reward_by_hand():
    labels = jnp.array([0, 0, 0, 1, -1, 2, -1])  # n = [3, 1, 1, 0], L = 5
    np.testing.assert_allclose(tailor.reward_weights(labels, 4), [-1 / 3, 1, 1, 1])
    # the authors compare the clipped counts: with one label every class is negative
    np.testing.assert_allclose(tailor.reward_weights(jnp.array([2, -1]), 3), [-1, -1, -1])
    np.testing.assert_allclose(tailor.reward_weights(jnp.array([0, 1, 1, 2]), 3), [1, 1 / 2, 1])


def test_the_reward_matches_the_authors(rng):
    C, N = 5, 40
    y = rng.choice(C, N, p=[0.6, 0.2, 0.1, 0.05, 0.05])
    labeled = np.sort(rng.choice(N, 17, replace=False))
    labels = masked_labels(jnp.asarray(y), jnp.zeros(N, bool).at[labeled].set(True))
    np.testing.assert_allclose(
        tailor.reward_weights(labels, C), _authors_v(np.eye(C)[y], labeled), rtol=1e-6
    )


def test_the_posterior_update_matches_the_authors(rng):
    A, C, N, B = 3, 4, 30, 12
    stats = np.concatenate([1 + rng.random((1, A, C)), np.ones((1, A, C))])
    y = rng.integers(0, C, N)
    points = rng.choice(N, B, replace=False)
    algs = rng.integers(0, A, B)
    expected = _authors_update(stats, list(algs), np.eye(C)[y], points)
    got = tailor.update_stats(
        jnp.asarray(stats[0]), jnp.asarray(algs), jnp.asarray(y[points]), decay=0.9
    )
    np.testing.assert_allclose(got, expected[0], rtol=1e-6)
    ignored = tailor.update_stats(jnp.asarray(stats[0]), jnp.array([-1, 0]), jnp.array([0, -1]))
    np.testing.assert_allclose(ignored, 0.9 * stats[0], rtol=1e-6)


def test_the_thompson_draw_matches_the_authors_on_the_same_draws():
    A, C = 4, 3
    stats = jnp.asarray(np.random.default_rng(0).random((A, C)) * 5)
    v = jnp.array([-0.25, 1.0, 0.5])
    keys = jax.random.split(jax.random.key(0), 50)
    theta_T_A_C = jax.vmap(lambda k: jax.random.dirichlet(k, stats + 1))(keys)  # the authors'
    expected_reward_T_A = np.asarray(theta_T_A_C) @ np.asarray(v)
    arms = jax.vmap(lambda k: tailor.choose_arm(stats, v, key=k))(keys)
    np.testing.assert_array_equal(arms, np.argmax(expected_reward_T_A, axis=1))
    assert len(set(arms.tolist())) > 1  # the draws matter


def test_the_bandit_concentrates_on_the_best_arm():
    """Three arms label class 0 (the only rewarded class) w.p. 0.2, 0.5, 0.8."""
    A, C, B, T = 3, 3, 10, 40
    p_A_C = jnp.array([[0.2, 0.4, 0.4], [0.5, 0.25, 0.25], [0.8, 0.1, 0.1]])
    v = jnp.array([1.0, 0.0, 0.0])

    def round_(stats, key):
        choose_key, label_key = jax.random.split(key)
        arm = tailor.choose_arm(stats, v, key=choose_key)
        labels = jax.random.categorical(label_key, jnp.log(p_A_C[arm]), shape=(B,))
        return tailor.update_stats(stats, jnp.full((B,), arm), labels), arm

    keys = jax.random.split(jax.random.key(0), T)
    _, arms = jax.lax.scan(round_, tailor.init_stats(A, C), keys)
    assert float(jnp.mean(arms[T // 2 :] == 2)) >= 0.8, arms


def _round(labels, memory, N=20, C=3, K=2):
    rng = np.random.default_rng(0)
    log_probs = jnp.log(jnp.asarray(rng.dirichlet(np.ones(C), (K, N)), jnp.float32))
    labelled = labels >= 0
    return Round(
        key=jax.random.key(3), labelled=labelled, pool=log_probs, labels=labels, memory=memory
    )


def test_the_strategy_updates_its_memory_and_plays_the_chosen_candidate():
    N, C, b = 20, 3, 4
    strategy = jaxal.strategies.tailor(["margin", "entropy"])
    memory = strategy.init_memory(num_points=N, num_classes=C, rounds=3, b=b)
    memory = {**memory, "arm": jnp.asarray(1, jnp.int32), "index": jnp.array([0, 1, 2, 20])}
    memory["pulls"] = memory["pulls"].at[1].set(1)
    memory["arms"] = memory["arms"].at[0].set(1)
    labels = jnp.full((N,), -1).at[jnp.array([0, 1, 2, 5])].set(jnp.array([2, 2, 0, 1]))

    def run(labels, memory):
        r = _round(labels, memory)
        index_B = strategy(r, b)
        arm = r.remembered["arm"]
        candidates = [jaxal.strategies.get(name)(_round(labels, memory), b) for name in names]
        return index_B, r.remembered, jnp.stack(candidates)[arm]

    names = ["margin", "entropy"]
    index_S_B, new, played_S_B = jax.jit(jax.vmap(run, in_axes=(0, None)))(
        jnp.stack([labels] * 2), memory
    )  # two identical seeds under vmap
    np.testing.assert_array_equal(index_S_B[0], index_S_B[1])
    np.testing.assert_array_equal(index_S_B, played_S_B)  # the chosen candidate's own batch
    index_B, new = index_S_B[0], jax.tree.map(lambda x: x[0], new)
    expected_stats = 0.9 * np.ones((2, C))
    expected_stats[1] += [1, 0, 2]  # arm 1 acquired labels 2, 2, 0 (the sentinel is ignored)
    np.testing.assert_allclose(new["stats"], expected_stats, rtol=1e-6)
    arm = int(new["arm"])
    np.testing.assert_array_equal(new["pulls"], np.eye(2, dtype=int)[1] + np.eye(2, dtype=int)[arm])
    np.testing.assert_array_equal(new["arms"], [1, arm, -1])
    np.testing.assert_array_equal(new["index"], index_B)


@pytest.mark.parametrize(
    ("candidates", "message"),
    [
        (["bald"], "at least two distinct"),
        (["bald", "bald"], "at least two distinct"),
        (["bald", "badl"], "unknown strategy 'badl'"),
        (["bald", "maxdet"], "regression strategy"),
        (["bald", "candidate-set"], "memory of its own"),
    ],
)
def test_bad_candidates_are_refused(candidates, message):
    with pytest.raises(ValueError, match=message):
        jaxal.strategies.tailor(candidates)


def test_the_loop_runs_tailor_over_seeds_once_compiled_and_resumes_its_memory(tmp_path):
    """2 seeds under vmap, one trace for all rounds, memory checkpointed and restored."""
    traces = []

    def counting_random(r, b):
        traces.append(1)  # once per trace of the round
        return jaxal.strategies.random(r, b)

    strategy = tailor.Tailor(
        (("random", counting_random), ("margin", jaxal.strategies.get("margin")))
    )
    data = toy_data()
    posterior = jaxal.posterior.ensemble(
        jaxal.posterior.MLP(num_classes=3, hidden=(8,)), 2, optimizer=optax.adam(1e-2),
        num_steps=5, batch_size=8,
    )  # fmt: skip
    settings = dict(posterior=posterior, initial=6, rounds=3, b=4, seeds=2)
    start = loop.init(data, key=jax.random.key(1), strategy=strategy, **settings)
    assert start.memory["stats"].shape == (2, 2, 3)
    final = loop.run(start, data, posterior=posterior, strategy=strategy, progress=False)
    assert len(traces) == 1, "a later round recompiled"
    arms = np.asarray(final.memory["arms"])
    assert arms.shape == (2, 3) and set(arms.ravel().tolist()) <= {0, 1}
    np.testing.assert_array_equal(final.memory["pulls"].sum(-1), [3, 3])
    cost = np.asarray(final.metrics["cost"])  # no candidate sets: log2 C a label
    np.testing.assert_allclose(cost, np.broadcast_to(np.log2(3) * (6 + 4 * np.arange(4)), (2, 4)))

    after_first = []

    def stop_after_first(state):
        after_first.append(state)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loop.run(
            start,
            data,
            posterior=posterior,
            strategy=strategy,
            checkpoint_dir=tmp_path,
            on_round=stop_after_first,
            progress=False,
        )
    restored = loop.restore(tmp_path, like=start)
    assert restored is not None and np.all(np.asarray(restored.round) == 1)
    jax.tree.map(np.testing.assert_array_equal, restored.memory, after_first[0].memory)
    resumed = loop.run(
        restored, data, posterior=posterior, strategy=strategy, checkpoint_dir=tmp_path,
        progress=False,
    )  # fmt: skip
    jax.tree.map(np.testing.assert_array_equal, resumed.memory, final.memory)
    np.testing.assert_array_equal(resumed.acquired, final.acquired)
    assert len(traces) == 1, "the restored state recompiled"


def test_the_command_line_takes_the_candidates():
    from jaxal import cli

    config = cli.RunConfig(strategy="tailor", candidates="margin,entropy")
    assert cli._Experiment(config).strategy.names == ("margin", "entropy")
    with pytest.raises(ValueError, match="--candidates is TAILOR's"):
        cli.RunConfig(strategy="bald", candidates="margin,entropy").validate()
    with pytest.raises(ValueError, match="unknown strategy 'badl'"):
        cli._Experiment(cli.RunConfig(strategy="tailor", candidates="margin,badl"))
