"""Plotting helpers shared by the command line and the experiments.

They draw on a matplotlib ``Axes`` they are given (no figure creation, no file I/O), so this
module imports nothing heavy: ``from jaxal.plot import mean_band``.
"""

import numpy as np
from jaxtyping import ArrayLike, Float


def mean_band(ax, x: Float[ArrayLike, " R"], values: Float[ArrayLike, "S R"], *, label: str):
    """Plot the mean over seeds of ``values [S, R]`` against ``x [R]``, with a ±1 std band.

    Returns the line, whose colour the band shares.
    """
    values_S_R = np.asarray(values)
    mean_R, std_R = values_S_R.mean(axis=0), values_S_R.std(axis=0)
    (line,) = ax.plot(x, mean_R, marker="o", markersize=3, label=label)
    ax.fill_between(x, mean_R - std_R, mean_R + std_R, color=line.get_color(), alpha=0.2)
    return line
