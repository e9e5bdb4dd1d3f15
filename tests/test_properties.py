"""Property-based checks over every public score and selection, in float32 and float64.

Inputs include exact zeros (log-prob ``-inf``), one-hot predictions, ties (repeated points,
identical samples), ``K = 1``, ``C = 1`` and ``b`` equal to the number of available points.
Invariants: scores finite and in their ranges (BALD in ``[0, min(log C, log K)]``, EPIG in
``[0, BALD]``); selections return ``b`` distinct, available, unlabelled indices; BatchBALD's
and batch EPIG's joint mutual information never decreases along the batch.

float32 runs with ``jax_enable_x64`` off (what users get by default), float64 with it on.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jaxal
from tests import reference

N = 8
TOLERANCE = {"float32": 1e-4, "float64": 1e-9}
EXAMPLES = settings(max_examples=6, deadline=None, derandomize=True)


def _log_probs(rng, K, C, kind, dtype):
    """``[K, N, C]`` log-probs of one of four kinds (all valid input)."""
    if kind == "one-hot":  # every probability exactly 0 or 1
        with np.errstate(divide="ignore"):
            log_probs = np.log(np.eye(C)[rng.integers(0, C, (K, N))])
    elif kind == "ties":  # repeated points and identical samples
        log_probs = reference.random_log_probs(rng, 1, 2, C, zeros=True)
        log_probs = np.broadcast_to(log_probs[:, rng.integers(0, 2, N)], (K, N, C))
    else:
        log_probs = reference.random_log_probs(rng, K, N, C, zeros=kind == "zeros")
    return jnp.asarray(log_probs, dtype)


@st.composite
def pools(draw):
    """(dtype, log_probs [K, N, C], available [N], labelled [N], b, key)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    K, C = draw(st.sampled_from([1, 4])), draw(st.sampled_from([1, 3]))
    kind = draw(st.sampled_from(["random", "zeros", "one-hot", "ties"]))
    available = rng.random(N) < draw(st.sampled_from([0.3, 0.7, 1.0]))
    available[rng.integers(N)] = True
    labelled = ~available & (rng.random(N) < 0.5)
    b = draw(st.sampled_from(["one", "some", "all"]))
    b = {"one": 1, "some": max(1, int(available.sum()) // 2), "all": int(available.sum())}[b]
    with jax.enable_x64(dtype == "float64"):
        log_probs = _log_probs(rng, K, C, kind, dtype)
    return dtype, log_probs, jnp.asarray(available), jnp.asarray(labelled), b, rng


class Pool:
    """One drawn example: ``log_probs`` and masks, with features and keys derived from it."""

    def __init__(self, log_probs, available, labelled, b, rng):
        self.log_probs, self.available, self.labelled, self.b = log_probs, available, labelled, b
        self.rng = rng

    @functools.cached_property
    def features(self):
        """``[N, C + 1]``: mean probabilities (ties stay ties) and a coarse 0/1 coordinate."""
        probs = jnp.exp(self.log_probs).mean(0)
        coarse = jnp.asarray(self.rng.integers(0, 2, (N, 1)), probs.dtype)
        return jnp.concatenate([probs, coarse], 1)

    @property
    def key(self):
        return jax.random.key(int(self.rng.integers(2**31)))

    @property
    def bald(self):
        return jaxal.scores.bald(self.log_probs)


def _kernel_selection(name):
    return lambda p: getattr(jaxal.select, name)(
        p.features, p.b, labelled=p.labelled, available=p.available
    )


SELECTIONS = {
    "top_k": lambda p: jaxal.select.top_k(p.bald, p.b, available=p.available),
    "stochastic-power": lambda p: jaxal.select.stochastic(
        p.bald, p.b, key=p.key, available=p.available
    ),
    "stochastic-softrank": lambda p: jaxal.select.stochastic(
        p.bald, p.b, key=p.key, mode="softrank", available=p.available
    ),
    "random": lambda p: jaxal.select.random(N, p.b, key=p.key, available=p.available),
    "gumbel_top_k": lambda p: jaxal.select.gumbel_top_k(
        jnp.log(p.bald), p.b, key=p.key, available=p.available
    ),
    "chunked.top_k": lambda p: jaxal.chunked.top_k(
        jaxal.scores.bald, p.log_probs, p.b, available=p.available, chunk_size=3
    )[0],
    "batchbald": lambda p: jaxal.select.batchbald(p.log_probs, p.b, available=p.available),
    "batchbald-eager": lambda p: jaxal.select.batchbald(
        p.log_probs, p.b, available=p.available, lazy=False
    ),
    "batchbald-sampled": lambda p: jaxal.select.batchbald(
        p.log_probs, p.b, key=p.key, num_samples=50, max_exact_configs=1, available=p.available
    ),
    "batch_epig": lambda p: jaxal.select.batch_epig(  # every step exact
        p.log_probs, p.log_probs[:, :3], p.b, available=p.available, max_exact_configs=10_000
    ),
    "batch_epig-sampled": lambda p: jaxal.select.batch_epig(
        p.log_probs,
        p.log_probs[:, :3],
        p.b,
        key=p.key,
        num_samples=50,
        max_exact_configs=1,
        available=p.available,
    ),
    "ical": lambda p: jaxal.select.ical(
        p.log_probs,
        p.b,
        key=p.key,
        available=p.available,
        num_pool_samples=4,
        max_batch_samples=3,
    ),
    "badge": lambda p: jaxal.select.badge(p.features, p.b, key=p.key, available=p.available),
    "coreset": lambda p: jaxal.select.coreset(
        p.features, p.b, labelled=p.labelled, available=p.available
    ),
    "typiclust": lambda p: jaxal.select.typiclust(
        p.features, p.b, key=p.key, labelled=p.labelled, available=p.available, num_neighbours=3
    ),
    "probcover": lambda p: jaxal.select.probcover(
        p.features, p.b, radius=0.3, labelled=p.labelled, available=p.available
    ),
    "ev_gp": lambda p: jaxal.select.ev_gp(
        p.features, p.features[:3], p.b, labelled=p.labelled, available=p.available
    ),
    "kmeanspp": lambda p: jaxal.select.kmeanspp(
        p.features, p.b, key=p.key, labelled=p.labelled, available=p.available
    ),
    **{
        name: _kernel_selection(name)
        for name in ["maxdiag", "maxdet", "bait", "frankwolfe", "maxdist", "lcmd"]
    },
}
JOINT = {"batchbald", "batchbald-eager", "batch_epig"}
"""Selections that return the exact joint mutual information of each prefix of the batch."""


@pytest.mark.parametrize("name", sorted(SELECTIONS))
@EXAMPLES
@given(pool=pools())
def test_selections_pick_distinct_available_unlabelled_points(name, pool):
    dtype, log_probs, available, labelled, b, rng = pool
    with jax.enable_x64(dtype == "float64"):
        out = SELECTIONS[name](Pool(log_probs, available, labelled, b, rng))
    indices, scores = out if isinstance(out, tuple) else (out, None)
    indices = np.asarray(indices)
    assert indices.shape == (b,)
    assert len(set(indices.tolist())) == b, indices
    assert np.asarray(available)[indices].all(), indices
    assert not np.asarray(labelled)[indices].any(), indices
    if scores is not None:  # the joint mutual information of the first i + 1 picks
        scores = np.asarray(scores)
        assert np.isfinite(scores).all(), scores
        if name in JOINT:
            assert (np.diff(scores) >= -TOLERANCE[dtype]).all(), scores


CLASSIFICATION_SCORES = [
    "bald",
    "predictive_entropy",
    "expected_entropy",
    "margin",
    "least_confidence",
    "variation_ratios",
    "mean_std",
]


@EXAMPLES
@given(pool=pools())
def test_classification_scores_are_finite_and_in_range(pool):
    """(``margin`` needs two classes and says so for ``C = 1``.)"""
    dtype, log_probs, *_ = pool
    K, _, C = log_probs.shape
    tolerance = TOLERANCE[dtype]
    names = [n for n in CLASSIFICATION_SCORES if C > 1 or n != "margin"]
    with jax.enable_x64(dtype == "float64"):
        values = {n: np.asarray(getattr(jaxal.scores, n)(log_probs)) for n in names}
        epig = np.asarray(jaxal.scores.epig(log_probs, log_probs[:, :3]))
    for name, value in values.items():
        assert value.shape == (N,) and value.dtype == dtype and np.isfinite(value).all(), name
    bald = values["bald"]
    assert (bald >= 0).all() and (bald <= min(math.log(C), math.log(K)) + tolerance).all()
    assert (values["predictive_entropy"] >= -tolerance).all()
    assert (values["predictive_entropy"] <= math.log(C) + tolerance).all()
    assert (values["expected_entropy"] <= values["predictive_entropy"] + tolerance).all()
    assert np.isfinite(epig).all()
    assert (epig >= -tolerance).all() and (epig <= bald + tolerance).all()


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**31 - 1),
    dtype=st.sampled_from(["float32", "float64"]),
    K=st.sampled_from([1, 2, 5]),
    log_scale=st.sampled_from([-15.0, 0.0, 15.0, 30.0]),
)
def test_regression_scores_are_finite_and_nonnegative(seed, dtype, K, log_scale):
    """Means spread up to 1e15 and variances up to 1e38 (near float32's largest) stay finite;
    (a variance beyond float32's range is rightly ``inf``: tests/test_scores.py)."""
    rng = np.random.default_rng(seed)
    with jax.enable_x64(dtype == "float64"):
        scale = 10.0**log_scale  # means' spread at most 1e15: variances within float32
        mean = jnp.asarray(min(scale, 1e15) * rng.standard_normal((K, N)), dtype)
        var = jnp.asarray(np.minimum(scale**2, 1e38) * rng.uniform(0.1, 1.0, (K, N)), dtype)
        values = {
            name: np.asarray(getattr(jaxal.scores, name)(mean, var))
            for name in ["predictive_variance", "epistemic_variance", "gaussian_bald"]
        }
        epig = np.asarray(jaxal.scores.gaussian_epig(mean, var, mean[:, :3], var[:, :3]))
    for name, value in values.items():
        assert np.isfinite(value).all() and (value >= 0).all(), (name, value)
    if K == 1:
        np.testing.assert_array_equal(values["gaussian_bald"], 0.0)
        np.testing.assert_array_equal(values["epistemic_variance"], 0.0)
    assert np.isfinite(epig).all() and (epig >= -TOLERANCE[dtype]).all()
