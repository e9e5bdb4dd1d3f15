"""Batch selection: turn scores or posterior samples into ``[b]`` pool indices.

One calling convention: the pool inputs and the batch size ``b`` are positional, everything
else is keyword-only::

    select.method(pool_inputs..., b, *, key=, available=, labelled=, hyperparameters...,
                  memory_budget=)

* ``key``: a PRNG key, required (no default) for the random methods; :func:`batchbald` and
  :func:`batch_epig` need it only when they sample configurations (``key=None`` otherwise);
* ``available``: bool ``[N]``, ``False`` = labelled or excluded; ``None`` = every point;
* ``labelled``: bool ``[N]``, the labelled set, only for the methods that use it
  (such as :func:`coreset`, :func:`typiclust`, :func:`probcover`); ``None`` = none.
  When ``labelled`` is given and ``available`` is ``None``, ``available`` defaults to
  ``~labelled``; labelled points are never selected, even where ``available`` is ``True``;
* hyperparameters keyword-only, with the papers' defaults;
* ``memory_budget``: optional bound on the working memory (:mod:`jaxal.memory`).

No function returns an unavailable, labelled or repeated index for valid input. Under
``jit``/``vmap``, where a batch larger than the selectable count cannot be rejected, the
positions of the returned ``[b]`` indices past that count hold the sentinel ``N``
(:func:`jaxal.check.picks`).
"""

from jaxal.select._badge import badge as badge
from jaxal.select._batch_epig import batch_epig as batch_epig
from jaxal.select._batchbald import batchbald as batchbald
from jaxal.select._coreset import coreset as coreset
from jaxal.select._ev_gp import ev_gp as ev_gp
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
from jaxal.select._ldm import (
    ldm_seeding as ldm_seeding,
    least_disagree_metric as least_disagree_metric,
    perturbed_labels as perturbed_labels,
)
from jaxal.select._probcover import probcover as probcover, probcover_radius as probcover_radius
from jaxal.select._stochastic import random as random, stochastic as stochastic
from jaxal.select._top_k import top_k as top_k
from jaxal.select._typiclust import kmeans as kmeans, typiclust as typiclust
from jaxal.select._vessal import (
    VessalState as VessalState,
    vessal as vessal,
    vessal_init as vessal_init,
    vessal_stream as vessal_stream,
)

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
    "kmeans",
    "kmeanspp",
    "ldm_seeding",
    "least_disagree_metric",
    "lcmd",
    "maxdet",
    "maxdiag",
    "maxdist",
    "perturbed_labels",
    "probcover",
    "probcover_radius",
    "random",
    "stochastic",
    "top_k",
    "typiclust",
    "VessalState",
    "vessal",
    "vessal_init",
    "vessal_stream",
]
