"""jaxal.plot: learning curves, selection maps, strategy rankings; and jaxal.progress."""

import io

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
from rich.console import Console

from jaxal import plot, progress

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_embed_2d_is_pca(rng):
    x_N_D = rng.standard_normal((50, 5)) * np.array([5.0, 3.0, 1.0, 0.1, 0.1])
    z_N_2 = np.asarray(plot.embed_2d(jnp.asarray(x_N_D)))
    centred = x_N_D - x_N_D.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    np.testing.assert_allclose(np.abs(z_N_2), np.abs(expected), rtol=1e-6, atol=1e-8)
    assert z_N_2[:, 0].var() > z_N_2[:, 1].var()  # the first axis explains most variance
    images = jnp.asarray(x_N_D).reshape(50, 5, 1)  # any trailing shape is flattened
    np.testing.assert_allclose(plot.embed_2d(images), z_N_2, atol=1e-8)
    batched = jax.vmap(plot.embed_2d)(jnp.stack([jnp.asarray(x_N_D)] * 2))
    np.testing.assert_allclose(batched[1], z_N_2, atol=1e-8)


def test_selection_map_marks_initial_labels_and_picks_by_round(rng, ax):
    x_pool = rng.standard_normal((30, 3))
    acquired_R_B = np.array([[3, 7], [11, -1]])  # -1: nothing picked
    labelled = np.zeros(30, bool)
    labelled[[0, 1, 3, 7, 11]] = True
    plot.selection_map(ax, x_pool, acquired_R_B, labelled=labelled)
    pool, initial, picked = ax.collections
    assert len(pool.get_offsets()) == 30 and len(initial.get_offsets()) == 2
    np.testing.assert_array_equal(picked.get_array(), [1, 1, 2])  # coloured by round
    assert len(ax.figure.axes) == 2  # with a colour bar of the rounds
    fig, one_batch = plt.subplots()
    plot.selection_map(one_batch, x_pool, acquired_R_B[:1])
    assert len(fig.axes) == 1 and len(one_batch.collections) == 2  # no colour bar, no initial
    plt.close(fig)


def test_learning_curves_and_strategy_ranking(ax):
    curves = {"bald": ([10, 20, 30], np.array([[0.5, 0.6, 0.7], [0.4, 0.6, 0.8]]))}
    plot.learning_curves(ax, curves, metric="accuracy")
    (line,) = ax.lines
    np.testing.assert_allclose(line.get_ydata(), [0.45, 0.6, 0.75])
    assert ax.get_ylabel() == "test accuracy" and ax.get_legend_handles_labels()[1] == ["bald"]
    fig, bars = plt.subplots()
    result = {
        "ranking": ["epig", "random"],
        "strategies": {"epig": {"nll_gain": 0.3}, "random": {"nll_gain": -0.1}},
    }
    plot.strategy_ranking(bars, result)
    assert [t.get_text() for t in bars.get_yticklabels()] == ["random", "epig"]  # best on top
    assert [p.get_width() for p in bars.patches] == [-0.1, 0.3]
    with pytest.raises(ValueError, match="unknown metric 'foo'; choose one of"):
        plot.strategy_ranking(bars, result, metric="foo")
    plt.close(fig)


def test_progress_bar_is_drawn_only_where_watched():
    terminal = Console(file=io.StringIO(), force_terminal=True, width=100)
    with progress.bar("work", 4, console=terminal) as update:
        update(3, "step 3: fine")
    assert "work" in terminal.file.getvalue() and "step 3: fine" in terminal.file.getvalue()
    with progress.bar("work", 4, console=terminal, enabled=False) as update:
        assert update is None
    piped = Console(file=io.StringIO())
    with progress.bar("work", 4, console=piped) as update:
        assert update is None
    assert piped.file.getvalue() == ""
