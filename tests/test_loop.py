"""The compiled loop: no recompilation, seeds under vmap, checkpoint / resume, bad budgets."""

import io
import os
import shutil
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import rich
from rich.console import Console

import jaxal
from jaxal import loop
from jaxal.context import default_targets
from jaxal.data import Dataset


def toy_data(seed: int = 0) -> Dataset:
    """Three Gaussian blobs in 4-D: 60 pool and 30 test points."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((3, 4))

    def sample(n):
        y = rng.integers(0, 3, n)
        return (centres[y] + rng.standard_normal((n, 4))).astype(np.float32), y.astype(np.int32)

    (x_pool, y_pool), (x_test, y_test) = sample(60), sample(30)
    return Dataset(
        jnp.asarray(x_pool), jnp.asarray(y_pool), jnp.asarray(x_test), jnp.asarray(y_test), 3
    )


POSTERIOR = jaxal.posterior.ensemble(
    jaxal.posterior.MLP(num_classes=3, hidden=(8,)),
    2,
    optimizer=optax.adam(1e-2),
    num_steps=20,
    batch_size=8,
)
SETTINGS = dict(posterior=POSTERIOR, initial=6, rounds=3, b=4)


def _assert_same(a: loop.LoopState, b: loop.LoopState):
    np.testing.assert_array_equal(a.labelled, b.labelled)
    np.testing.assert_array_equal(a.acquired, b.acquired)
    np.testing.assert_array_equal(a.round, b.round)
    for name in a.metrics:
        np.testing.assert_allclose(a.metrics[name], b.metrics[name], rtol=1e-5, err_msg=name)


def test_a_run_acquires_distinct_unlabelled_points_and_records_metrics():
    data = toy_data()
    start = loop.init(data, key=jax.random.key(0), **SETTINGS)
    end = loop.run(start, data, posterior=POSTERIOR, strategy=jaxal.strategies.get("bald"))
    acquired = np.asarray(end.acquired).ravel()
    assert len(set(acquired.tolist())) == 12
    assert not np.asarray(start.labelled)[acquired].any()
    assert int(end.labelled.sum()) == 6 + 12
    assert np.isfinite(end.metrics["accuracy"]).all() and np.isfinite(end.metrics["nll"]).all()


def test_the_sentinel_is_never_labelled():
    """Picks equal to ``N`` (``jaxal.check.picks``: nothing left to pick) label nothing."""
    data = toy_data()
    N = data.x_pool.shape[0]

    def short(r, b):
        first = jaxal.strategies.get("bald")(r, 1)
        return jnp.concatenate([first, jnp.full((b - 1,), N, first.dtype)])

    start = loop.init(data, key=jax.random.key(0), **SETTINGS)
    state = loop.round_step(
        start, data, default_targets(N), posterior=POSTERIOR, strategy=short, b=4
    )
    assert int(state.labelled.sum()) == int(start.labelled.sum()) + 1
    np.testing.assert_array_equal(state.acquired[0, 1:], -1)
    assert not start.labelled[state.acquired[0, 0]] and state.labelled[state.acquired[0, 0]]


def test_no_recompilation_after_the_first_round():
    traces = []

    def counting_random(r, b):
        traces.append(1)  # runs once per trace, i.e. per compilation
        return jaxal.strategies.random(r, b)

    data = toy_data()
    state = loop.init(data, key=jax.random.key(0), **SETTINGS)
    loop.run(state, data, posterior=POSTERIOR, strategy=counting_random)
    assert len(traces) == 1


@pytest.mark.parametrize("strategy", ["random", "bald"])
def test_vmap_over_seeds_equals_the_seeds_run_separately(strategy):
    data = toy_data()
    key = jax.random.key(3)
    batched = loop.init(data, key=key, seeds=3, **SETTINGS)
    batched = loop.run(batched, data, posterior=POSTERIOR, strategy=jaxal.strategies.get(strategy))
    for s, seed_key in enumerate(jax.random.split(key, 3)):
        single = loop.init(data, key=seed_key, **SETTINGS)
        single = loop.run(
            single, data, posterior=POSTERIOR, strategy=jaxal.strategies.get(strategy)
        )
        _assert_same(jax.tree.map(lambda x, s=s: x[s], batched), single)


class _Interrupt(Exception):
    pass


def test_resume_after_an_interruption_gives_the_uninterrupted_result(tmp_path):
    data = toy_data()
    strategy = jaxal.strategies.get("margin")
    start = loop.init(data, key=jax.random.key(1), **SETTINGS)
    uninterrupted = loop.run(start, data, posterior=POSTERIOR, strategy=strategy)

    def interrupt_after_first(state):
        if int(state.round) == 1:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        loop.run(
            start,
            data,
            posterior=POSTERIOR,
            strategy=strategy,
            checkpoint_dir=tmp_path,
            on_round=interrupt_after_first,
        )
    restored = loop.restore(tmp_path, like=start)
    assert int(restored.round) == 1
    np.testing.assert_array_equal(restored.acquired[0], uninterrupted.acquired[0])
    resumed = loop.run(
        restored, data, posterior=POSTERIOR, strategy=strategy, checkpoint_dir=tmp_path
    )
    _assert_same(resumed, uninterrupted)


KILLED_RUN = """
import os, signal, sys
import jax
sys.path.insert(0, {root!r})
from tests.test_loop import POSTERIOR, SETTINGS, toy_data
import jaxal
from jaxal import loop

def die_after_two(state):
    if int(state.round) == 2:
        os.kill(os.getpid(), signal.SIGKILL)

data = toy_data()
state = loop.init(data, key=jax.random.key(2), **SETTINGS)
loop.run(state, data, posterior=POSTERIOR, strategy=jaxal.strategies.get("bald"),
         checkpoint_dir={directory!r}, on_round=die_after_two)
"""


def test_a_killed_process_loses_no_finished_round(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = tmp_path / "killed.py"
    script.write_text(
        textwrap.dedent(KILLED_RUN.format(root=root, directory=str(tmp_path / "ckpt")))
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=300)
    assert result.returncode == -9, result.stderr.decode()[-2000:]

    data = toy_data()
    start = loop.init(data, key=jax.random.key(2), **SETTINGS)
    restored = loop.restore(tmp_path / "ckpt", like=jax.eval_shape(lambda: start))
    assert int(restored.round) == 2
    resumed = loop.run(restored, data, posterior=POSTERIOR, strategy=jaxal.strategies.get("bald"))
    uninterrupted = loop.run(
        start, data, posterior=POSTERIOR, strategy=jaxal.strategies.get("bald")
    )
    _assert_same(resumed, uninterrupted)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A finished 3-round run checkpointed in a directory (orbax keeps steps 2 and 3)."""
    directory = tmp_path_factory.mktemp("saved")
    data = toy_data()
    start = loop.init(data, key=jax.random.key(5), **SETTINGS)
    random = jaxal.strategies.get("random")
    final = loop.run(start, data, posterior=POSTERIOR, strategy=random, checkpoint_dir=directory)
    return directory, start, final


@pytest.fixture
def checkpoints(saved_run, tmp_path):
    """A copy of :func:`saved_run`'s directory to damage, the run's start and final states."""
    directory, start, final = saved_run
    shutil.copytree(directory, tmp_path / "ckpt")
    return tmp_path / "ckpt", start, final


def largest_data_file(step_directory):
    """The largest array-data file of a checkpoint step (orbax's ``d/`` chunk files)."""
    files = [f for f in step_directory.rglob("*") if f.is_file() and f.parent.name == "d"]
    return max(files, key=lambda f: f.stat().st_size)


def flip_64_bytes(file):
    raw = bytearray(file.read_bytes())
    middle = len(raw) // 2 - 32
    raw[middle : middle + 64] = bytes(255 - byte for byte in raw[middle : middle + 64])
    file.write_bytes(bytes(raw))


def truncate(file):
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def zero(file):
    file.write_bytes(bytes(file.stat().st_size))


def test_a_directory_holding_a_further_run_is_refused(checkpoints):
    directory, start, _ = checkpoints
    strategy = jaxal.strategies.get("random")
    with pytest.raises(ValueError, match="already holds round 3"):
        loop.run(
            start, toy_data(), posterior=POSTERIOR, strategy=strategy, checkpoint_dir=directory
        )


def test_restore_from_an_empty_directory_is_none(tmp_path):
    data = toy_data()
    like = jax.eval_shape(lambda: loop.init(data, key=jax.random.key(0), **SETTINGS))
    assert loop.restore(tmp_path, like=like) is None


@pytest.mark.parametrize(
    "target, damage, problem",
    [
        (None, flip_64_bytes, "changed since it was saved"),
        (None, truncate, r"bytes, \d+ were saved"),
        (None, lambda file: file.unlink(), "is missing its file"),
        ("default/_METADATA", zero, "file default/_METADATA changed since it was saved"),
        (loop.CHECKSUMS, lambda file: file.unlink(), f"has no {loop.CHECKSUMS}"),
        (loop.CHECKSUMS, zero, f"its {loop.CHECKSUMS} is unreadable"),
    ],
    ids=["flipped", "truncated", "missing", "zeroed-metadata", "no-checksums", "zeroed-checksums"],
)
def test_a_damaged_checkpoint_is_refused_naming_the_step_and_the_file(
    checkpoints, target, damage, problem
):
    directory, _, final = checkpoints
    step = directory / "3"
    file = step / target if target else largest_data_file(step)
    damage(file)
    like = jax.eval_shape(lambda: final)
    with pytest.raises(ValueError, match=problem) as error:
        loop.restore(directory, like=like)
    message = str(error.value)
    assert f"checkpoint step 3 in {directory}" in message
    assert file.relative_to(step).as_posix() in message
    assert f"delete {step} to resume from step 2, the previous checkpoint" in message
    with pytest.raises(ValueError, match="checkpoint step 3"):  # nor does run continue it
        loop.run(
            final,
            toy_data(),
            posterior=POSTERIOR,
            strategy=jaxal.strategies.get("random"),
            checkpoint_dir=directory,
        )

    shutil.rmtree(step)  # the fix the message gives
    restored = loop.restore(directory, like=like)
    assert int(restored.round) == 2
    np.testing.assert_array_equal(restored.acquired[:2], final.acquired[:2])


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(rounds=5), r"its acquired has shape \(3, 4\), the requested run's \(5, 4\)"),
        (dict(seeds=2), r"its labelled has shape \(60,\), the requested run's \(2, 60\)"),
    ],
    ids=["rounds", "seeds"],
)
def test_a_checkpoint_of_other_settings_is_refused_in_one_line(checkpoints, settings, message):
    directory, _, _ = checkpoints
    data = toy_data()
    other = jax.eval_shape(
        lambda: loop.init(data, key=jax.random.key(0), **{**SETTINGS, **settings})
    )
    with pytest.raises(ValueError, match=message) as error:
        loop.restore(directory, like=other)
    assert "\n" not in str(error.value) and "other settings" in str(error.value)
    # Nor does run continue the directory with such a state (at its round, 3): it would mix two
    # runs. Only the shapes and the round matter, as run refuses before the first round.
    at_round_3 = jax.tree.map(lambda x: jnp.full(x.shape, 3, x.dtype), other)
    with pytest.raises(ValueError, match=message):
        loop.run(
            at_round_3,
            data,
            posterior=POSTERIOR,
            strategy=jaxal.strategies.get("random"),
            checkpoint_dir=directory,
        )


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(initial=20, rounds=10, b=5), r"budget initial \+ rounds \* b = 20 \+ 10 \* 5 = 70"),
        (dict(initial=6, rounds=1, b=61), r"b = 61 is larger than the pool \(N = 60\)"),
        (dict(initial=0, rounds=1, b=1), "initial must be an int >= 1"),
        (dict(initial=5, rounds=1, b=0), "b must be an int >= 1"),
        (dict(initial=5, rounds=1, b=1, seeds=0), "seeds must be an int >= 1"),
    ],
)
def test_impossible_budgets_are_rejected(settings, message):
    with pytest.raises(ValueError, match=message):
        loop.init(toy_data(), key=jax.random.key(0), posterior=POSTERIOR, **settings)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_balanced_labels_draw_each_class_uniformly(jit):
    """Exactly ``per_class`` labels of every class, each point of a class equally likely
    (frequencies over 4,000 keys within 5 standard errors of ``per_class / count``)."""
    y_N = jnp.asarray(np.repeat(np.arange(3), [4, 7, 10]))
    draw = jax.vmap(lambda key: loop.balanced_labels(y_N, 2, key))
    masks = (jax.jit(draw) if jit else draw)(jax.random.split(jax.random.key(0), 4000))
    masks = np.asarray(masks)
    for c, count in enumerate((4, 7, 10)):
        np.testing.assert_array_equal(masks[:, np.asarray(y_N) == c].sum(1), 2)
        p = 2 / count
        frequency = masks[:, np.asarray(y_N) == c].mean(0)
        assert np.all(np.abs(frequency - p) < 5 * np.sqrt(p * (1 - p) / 4000)), (c, frequency)


def test_balanced_init_labels_initial_over_c_per_class_and_checks_it_can():
    data = toy_data()
    settings = SETTINGS | dict(initial=6)
    state = loop.init(data, key=jax.random.key(0), seeds=2, balanced=True, **settings)
    for labelled in np.asarray(state.labelled):
        np.testing.assert_array_equal(np.bincount(np.asarray(data.y_pool)[labelled]), [2, 2, 2])
    with pytest.raises(ValueError, match="initial = 7 is not a multiple of C = 3"):
        loop.init(data, key=jax.random.key(0), balanced=True, **settings | dict(initial=7))
    two_classes = (jnp.arange(60) % 2).astype(data.y_pool.dtype)
    few = data._replace(y_pool=two_classes.at[0].set(2))
    with pytest.raises(ValueError, match="class 2 has 1"):
        loop.init(few, key=jax.random.key(0), balanced=True, **settings)


@pytest.mark.unchecked  # wrong keys on purpose, for jaxal's own messages
@pytest.mark.parametrize("key", [0, None, jnp.zeros(2, jnp.float32)], ids=["int", "none", "float"])
def test_a_key_that_is_not_a_prng_key_is_a_type_error(key):
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        loop.init(toy_data(), key=key, **SETTINGS)
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        loop.compare(toy_data(), {"random": jaxal.strategies.get("random")}, key=key, **SETTINGS)


def test_compare_runs_every_strategy_from_one_start():
    data = toy_data()
    chosen = {name: jaxal.strategies.get(name) for name in ("random", "bald")}
    finals = loop.compare(data, chosen, key=jax.random.key(4), **SETTINGS)
    start = loop.init(data, key=jax.random.key(4), **SETTINGS)
    for name, strategy in chosen.items():
        _assert_same(finals[name], loop.run(start, data, posterior=POSTERIOR, strategy=strategy))
    np.testing.assert_array_equal(
        finals["random"].metrics["accuracy"][0], finals["bald"].metrics["accuracy"][0]
    )


def test_progress_bar_where_watched_and_quiet_elsewhere(monkeypatch):
    """``run`` and ``compare`` draw jaxal.progress's bar on a terminal, nothing elsewhere."""
    data = toy_data()
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)
    monkeypatch.setattr(rich, "get_console", lambda: terminal)
    strategy = jaxal.strategies.get("margin")
    runs = loop.compare(data, {"toy-margin": strategy}, key=jax.random.key(0), **SETTINGS)
    shown = terminal.file.getvalue()
    final = float(runs["toy-margin"].metrics["accuracy"][-1])
    assert "toy-margin" in shown and f"round 3: accuracy {final:.3f}" in shown
    start = loop.init(data, key=jax.random.key(0), **SETTINGS)
    terminal.file = io.StringIO()
    loop.run(start, data, posterior=POSTERIOR, strategy=strategy, progress=False)
    assert terminal.file.getvalue() == ""
    piped = Console(file=io.StringIO(), width=120)  # not a terminal: a log file, pytest
    monkeypatch.setattr(rich, "get_console", lambda: piped)
    loop.run(start, data, posterior=POSTERIOR, strategy=strategy)
    assert piped.file.getvalue() == ""
