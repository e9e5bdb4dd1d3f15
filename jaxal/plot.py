"""Plots of active learning, shared by the command line, the notebooks and the experiments.

Each draws on a matplotlib ``Axes`` it is given (no figure creation, no file I/O), so callers
choose the layout and the backend:

* :func:`learning_curves`: a test metric against the number of labels, mean and ±1 std band
  over seeds, one curve per run (:func:`mean_band` draws one);
* :func:`selection_map`: the pool in two dimensions (:func:`embed_2d`, PCA) with the points
  each round picked, coloured by round;
* :func:`strategy_ranking`: a bar chart of a :func:`jaxal.bench.replay` result.
"""

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Real


def mean_band(
    ax,
    x: Real[ArrayLike, " R"] | Sequence[int | float],
    values: Float[ArrayLike, "S R"],
    *,
    label: str,
):
    """Plot the mean over seeds of ``values [S, R]`` against ``x [R]``, with a ±1 std band.

    Returns the line, whose colour the band shares.
    """
    values_S_R = np.asarray(values)
    mean_R, std_R = values_S_R.mean(axis=0), values_S_R.std(axis=0)
    (line,) = ax.plot(x, mean_R, marker="o", markersize=3, label=label)
    ax.fill_between(x, mean_R - std_R, mean_R + std_R, color=line.get_color(), alpha=0.2)
    return line


def learning_curves(
    ax,
    curves: Mapping[str, tuple[Int[ArrayLike, " R"] | Sequence[int], Float[ArrayLike, "S R"]]],
    *,
    metric: str = "accuracy",
) -> None:
    """One :func:`mean_band` per ``{label: (labels [R], values [S, R])}``: test ``metric``
    against the number of labelled points, mean ± std over the ``S`` seeds."""
    for label, (x_R, values_S_R) in curves.items():
        mean_band(ax, x_R, values_S_R, label=label)
    ax.set_xlabel("number of labelled points")
    ax.set_ylabel(f"test {metric}")
    ax.set_title("mean ± std over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


@jax.jit
def embed_2d(x: Float[Array, "N ..."]) -> Float[Array, "N 2"]:
    r"""The first two principal components of the ``N`` inputs (flattened to ``[N, D]``).

    With :math:`X_c = X - \bar x` (centred rows) and :math:`X_c = U \Sigma V^\top`, returns
    :math:`X_c V_{:, :2}` (``[N, 2]``; the signs of the axes are arbitrary, as for any SVD).
    """
    x_N_D = x.reshape(x.shape[0], -1)
    centred_N_D = x_N_D - jnp.mean(x_N_D, axis=0, keepdims=True)
    _, _, vt_D_D = jnp.linalg.svd(centred_N_D, full_matrices=False)
    return centred_N_D @ vt_D_D[:2].T


def selection_map(
    ax,
    x_pool: Float[ArrayLike, "N ..."],
    acquired: Int[ArrayLike, "R B"],
    *,
    labelled: Bool[ArrayLike, " N"] | None = None,
) -> None:
    """The pool's :func:`embed_2d` in grey, each round's picks ``acquired [R, B]`` coloured by
    round (``-1``: none; a colour bar when ``R > 1``) and, with the final ``labelled [N]``
    mask, the initial labels (labelled but never acquired) as black squares."""
    z_N_2 = np.asarray(embed_2d(jnp.asarray(x_pool, float)))
    acquired_R_B = np.asarray(acquired)
    ax.scatter(*z_N_2.T, s=4, color="lightgrey", label="pool")
    if labelled is not None:
        initial_N = np.asarray(labelled).copy()
        initial_N[acquired_R_B[acquired_R_B >= 0]] = False
        ax.scatter(*z_N_2[initial_N].T, s=14, marker="s", color="black", label="initial")
    round_R_B = np.broadcast_to(np.arange(1, len(acquired_R_B) + 1)[:, None], acquired_R_B.shape)
    picked = acquired_R_B >= 0
    points = ax.scatter(
        *z_N_2[acquired_R_B[picked]].T, s=16, c=round_R_B[picked], cmap="viridis", label="picked"
    )
    if len(acquired_R_B) > 1:  # one round (a single batch) needs no colour scale
        ax.figure.colorbar(points, ax=ax, label="round")
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.legend(fontsize=7)


RANKING_LABELS = {
    "nll_gain": "test NLL gain of the reweighted posterior (nats)",
    "accuracy": "test accuracy of the reweighted posterior",
    "joint_mi": "joint MI of the batch (nats)",
    "classes": "classes in the batch",
    "time_ms": "selection time (ms)",
}
"""The axis label of each metric of :func:`jaxal.bench.replay` that :func:`strategy_ranking`
draws."""


def strategy_ranking(ax, result: Mapping, *, metric: str = "nll_gain") -> None:
    """Horizontal bars of a :func:`jaxal.bench.replay` ``result``'s ``metric`` (mean over the
    recorded states), one per strategy, in the result's ranking (best at the top)."""
    if metric not in RANKING_LABELS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(RANKING_LABELS)}")
    names = list(result["ranking"])[::-1]
    ax.barh(names, [result["strategies"][name][metric] for name in names])
    ax.axvline(0, color="black", linewidth=0.5)
    ax.set_xlabel(RANKING_LABELS[metric])
