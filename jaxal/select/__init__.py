"""Batch selection: turn scores or posterior samples into ``[b]`` pool indices.

Every function takes ``available`` (bool ``[N]``, ``False`` = labelled or excluded) and never
returns an unavailable or repeated index for valid input.
"""

from jaxal.select._batchbald import batchbald as batchbald
from jaxal.select._gumbel import gumbel_top_k as gumbel_top_k
from jaxal.select._stochastic import random as random, stochastic as stochastic
from jaxal.select._top_k import top_k as top_k

__all__ = ["batchbald", "gumbel_top_k", "random", "stochastic", "top_k"]
