"""Batch selection: turn scores or posterior samples into ``[b]`` pool indices.

Every function takes ``available`` (bool ``[N]``, ``False`` = labelled or excluded) and never
returns an unavailable or repeated index for valid input.
"""

from jaxal.select._batch_epig import batch_epig as batch_epig
from jaxal.select._batchbald import batchbald as batchbald
from jaxal.select._ev_gp import ev_gp as ev_gp
from jaxal.select._geometry import (
    badge as badge,
    coreset as coreset,
    probcover as probcover,
    probcover_radius as probcover_radius,
    typiclust as typiclust,
)
from jaxal.select._gumbel import gumbel_top_k as gumbel_top_k
from jaxal.select._ical import ical as ical
from jaxal.select._kernel_batch import (
    bait as bait,
    frankwolfe as frankwolfe,
    kernel_batch as kernel_batch,
    kmeanspp as kmeanspp,
    lcmd as lcmd,
    maxdet as maxdet,
    maxdiag as maxdiag,
    maxdist as maxdist,
)
from jaxal.select._stochastic import random as random, stochastic as stochastic
from jaxal.select._top_k import top_k as top_k

__all__ = [
    "badge",
    "bait",
    "batch_epig",
    "batchbald",
    "coreset",
    "ev_gp",
    "frankwolfe",
    "gumbel_top_k",
    "ical",
    "kernel_batch",
    "kmeanspp",
    "lcmd",
    "maxdet",
    "maxdiag",
    "maxdist",
    "probcover",
    "probcover_radius",
    "random",
    "stochastic",
    "top_k",
    "typiclust",
]
