"""Tests for the ``memory_budget=`` of every :mod:`jaxal.select` function.

Budgets are compared with XLA's own count of the compiled program's temporaries
(``memory_analysis()``), and the tests count independently. Where a method
blocks over the pool (top-k chunks, BatchBALD's candidate blocks, distance blocks) a budget
far below the unchunked need gives the same answer in a program that fits it; where it
cannot (state the algorithm needs throughout) a budget that fits changes nothing and one
that does not raises ``ValueError``.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxal import kernels, select
from jaxal.select import _gumbel, _kernel_batch, _top_k

from .conftest import DTYPES

N, D, K, C, B, L = 300, 4, 6, 3, 6, 200
KERNEL = kernels.infinite_width(3)


def compiled(fn, *args):
    return jax.jit(fn).lower(*args).compile()


def temp_bytes(fn, *args) -> int:
    """XLA's working memory of ``jit(fn)(*args)``: temporaries beyond inputs and outputs."""
    return compiled(fn, *args).memory_analysis().temp_size_in_bytes


def itemsize(dtype) -> int:
    return max(np.dtype(dtype).itemsize, 4)


def assert_same(got, expected, dtype):
    for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        if jnp.issubdtype(e.dtype, jnp.integer):
            np.testing.assert_array_equal(g, e)
        else:
            rtol = 1e-5 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol)


def pool(dtype, seed=0):
    """One small problem for every method: ``(key, arrays)``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D)).astype(dtype)
    logits = 2 * rng.normal(size=(1, N, C)) + rng.normal(size=(K, N, C))
    available = rng.random(N) < 0.9
    return jax.random.key(seed), {
        "scores": jnp.asarray(np.round(3 * rng.random(N)), dtype),  # many ties
        "log_probs": jax.nn.log_softmax(jnp.asarray(logits, dtype), axis=-1),
        "x": jnp.asarray(x),
        "available": jnp.asarray(available),
        "labelled": jnp.asarray(~available & (rng.random(N) < 0.5)),
        "many_labelled": jnp.asarray(rng.permutation(N) < L),  # the kernel methods' centres
        "clusters": jnp.asarray(rng.integers(0, 5, N)),
    }


# name -> (argument names, fn(key, *arguments, memory_budget=))
CALLS = {
    "top_k": (("scores", "available"), lambda k, s, a, **m: select.top_k(s, B, available=a, **m)),
    "stochastic": (
        ("scores", "available"),
        lambda k, s, a, **m: select.stochastic(s, B, key=k, mode="softrank", available=a, **m),
    ),
    "random": (("available",), lambda k, a, **m: select.random(N, B, key=k, available=a, **m)),
    "gumbel_top_k": (
        ("scores", "available"),
        lambda k, s, a, **m: select.gumbel_top_k(s, B, key=k, available=a, **m),
    ),
    "batchbald": (
        ("log_probs", "available"),
        lambda k, lp, a, **m: select.batchbald(lp, B, key=k, num_samples=60, available=a, **m),
    ),
    "ical": (
        ("log_probs", "available"),
        lambda k, lp, a, **m: select.ical(lp, B, key=k, available=a, **m),
    ),
    "ev_gp": (
        ("x", "labelled", "available"),
        lambda k, x, lab, a, **m: select.ev_gp(
            x, x[:50], B, kernel=KERNEL, labelled=lab, available=a, **m
        ),
    ),
    "badge": (("x", "available"), lambda k, x, a, **m: select.badge(x, B, key=k, available=a, **m)),
    "coreset": (
        ("x", "labelled", "available"),
        lambda k, x, lab, a, **m: select.coreset(x, B, labelled=lab, available=a, **m),
    ),
    "typiclust": (
        ("x", "labelled", "available"),
        lambda k, x, lab, a, **m: select.typiclust(
            x, B, key=k, labelled=lab, available=a, num_clusters=12, kmeans_iterations=5, **m
        ),
    ),
    "probcover": (
        ("x", "labelled", "available"),
        lambda k, x, lab, a, **m: select.probcover(
            x, B, radius=0.8, labelled=lab, available=a, **m
        ),
    ),
    "probcover_radius": (
        ("x", "clusters"),
        lambda k, x, c, **m: select.probcover_radius(x, c, purity=0.8, **m),
    ),
    **{
        name: (
            ("x", "many_labelled", "available"),
            lambda k, phi, lab, a, name=name, **m: select.kernel_batch(
                phi, B, method=name, key=k, labelled=lab, available=a, **m
            ),
        )
        for name in ("maxdiag", "maxdet", "maxdist", "kmeanspp", "lcmd", "frankwolfe", "bait")
    },
    "kernel_batch": (
        ("x", "many_labelled", "available"),
        lambda k, phi, lab, a, **m: select.kernel_batch(
            phi, B, key=k, labelled=lab, available=a, **m
        ),
    ),
    "kmeans": (
        ("x",),
        lambda k, x, **m: select.kmeans(x, 5, key=k, **m),
    ),
    "batch_epig": (
        ("log_probs", "available"),
        lambda k, lp, a, **m: select.batch_epig(
            lp, lp[:, :20], 2, key=k, num_samples=60, available=a, **m
        ),
    ),
}


UNBUDGETED = {
    "least_disagree_metric": "elementwise over its [P, N] input: no temporaries to bound",
    "perturbed_labels": "its chunk= bounds the perturbed networks evaluated at once",
    "ldm_seeding": "[N] temporaries per seeding step (distances to the newest centre)",
    "vessal": "a scan over the pool: [P, P] state and [P] temporaries per point",
    "vessal_init": "the [P, P] state itself",
    "vessal_stream": "a scan over the chunk: [P, P] state and [P] temporaries per point",
    "VessalState": "a state container",
}
"""Public names of jaxal.select without ``memory_budget=``, each with why none is needed."""


def test_every_selection_takes_a_budget():
    """Every public function of jaxal.select is covered here or exempt with a reason."""
    assert set(select.__all__) == set(CALLS) | set(UNBUDGETED)
    assert not set(CALLS) & set(UNBUDGETED)


def call(name, dtype, budget=None):
    """``(fn(key, *args), key, args)`` for ``name`` on the shared problem."""
    key, data = pool(dtype)
    names, fn = CALLS[name]
    kwargs = {} if budget is None else {"memory_budget": budget}
    return (lambda k, *args: fn(k, *args, **kwargs)), key, [data[n] for n in names]


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize(
    ("dtype", "transform"), [(np.float32, jax.jit), (np.float64, lambda f: f)], ids=["jit", "eager"]
)
def test_a_budget_that_fits_changes_nothing(name, dtype, transform):
    fn, key, args = call(name, dtype, budget="1GB")  # under jit: a Python value
    assert_same(transform(fn)(key, *args), call(name, dtype)[0](key, *args), dtype)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_an_impossible_budget_is_a_clear_error(name):
    fn, key, args = call(name, np.float32, budget=10)
    with pytest.raises(ValueError, match=r"memory_budget=10 bytes is too small for \w+"):
        fn(key, *args)


@pytest.mark.parametrize("name", ["top_k", "stochastic", "ev_gp", "maxdet", "coreset"])
@pytest.mark.parametrize(("budget", "error"), [("4XB", ValueError), (True, TypeError)])
def test_the_budget_is_validated_even_when_nothing_is_chunked(name, budget, error):
    fn, key, args = call(name, np.float32, budget=budget)
    with pytest.raises(error, match="memory_budget"):
        fn(key, *args)


# --- chunked: a budget far below the unchunked need ------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_top_k_in_chunks_is_identical_and_fits(rng, dtype):
    num_points, b = 5000, 20
    scores = jnp.asarray(rng.integers(0, 50, num_points), dtype)  # many ties
    available = jnp.asarray(rng.random(num_points) < 0.8)

    def count(chunk):
        return temp_bytes(partial(_top_k._top_k_chunked, b=b, chunk=chunk), scores, available)

    budget = count(64)
    assert count(num_points) > 10 * budget
    budgeted = compiled(
        lambda s, a: select.top_k(s, b, available=a, memory_budget=budget), scores, available
    )
    assert budgeted.memory_analysis().temp_size_in_bytes <= budget
    expected = select.top_k(scores, b, available=available)
    np.testing.assert_array_equal(budgeted(scores, available), expected)
    np.testing.assert_array_equal(
        select.top_k(scores, b, available=available, memory_budget=f"{budget / 1000}kB"), expected
    )
    with pytest.raises(ValueError, match="too small for top_k of b = 20: it needs at least"):
        select.top_k(scores, b, available=available, memory_budget=count(1) - 1)


@pytest.mark.parametrize("chunk", [1, 2, 5, 6, 7, 64, 299])
def test_chunked_top_k_breaks_ties_towards_the_lower_index(rng, chunk):
    scores_N = jnp.asarray(rng.integers(0, 3, N), jnp.float32)
    available_N = jnp.asarray(rng.random(N) < 0.7)
    for b in (1, B, 40):
        np.testing.assert_array_equal(
            _top_k._top_k_chunked(scores_N, available_N, b=b, chunk=chunk),
            select.top_k(scores_N, b, available=available_N),
        )


SAMPLED_AND_EXACT = pytest.mark.parametrize(
    ("dtype", "num_samples"), [(np.float32, 60), (np.float64, 1000)], ids=["sampled", "exact"]
)


def assert_configuration_blocks_shrink(run, dtype, args):
    """BatchBALD / batch EPIG: a budget between the unbudgeted count and XLA's count with
    blocks of one candidate gives a program that fits it and the same selection."""
    unbudgeted = run(None)
    one_candidate = needed(lambda: run(10))
    assert unbudgeted.memory_analysis().temp_size_in_bytes > one_candidate
    budget = (unbudgeted.memory_analysis().temp_size_in_bytes + one_candidate) // 2
    budgeted = run(budget)
    assert budgeted.memory_analysis().temp_size_in_bytes <= budget
    assert_same(budgeted(*args), unbudgeted(*args), dtype)


@SAMPLED_AND_EXACT
def test_batchbald_in_smaller_blocks_is_identical_and_fits(dtype, num_samples):
    key, data = pool(dtype)
    args = (data["log_probs"], data["available"])

    def run(budget):
        def fn(lp, a):
            return select.batchbald(
                lp, B, key=key, num_samples=num_samples, available=a, memory_budget=budget
            )

        return compiled(fn, *args)

    assert_configuration_blocks_shrink(run, dtype, args)
    with pytest.raises(ValueError, match="too small for batchbald with K = 6"):
        run(10)


@SAMPLED_AND_EXACT
def test_batch_epig_in_smaller_blocks_is_identical_and_fits(dtype, num_samples):
    key, data = pool(dtype)
    args = (data["log_probs"], data["available"])

    def run(budget):
        def fn(lp, a):
            return select.batch_epig(
                lp,
                lp[:, :20],
                3,
                key=key,
                num_samples=num_samples,
                available=a,
                max_exact_configs=num_samples // 10,
                memory_budget=budget,
            )

        return compiled(fn, *args)

    assert_configuration_blocks_shrink(run, dtype, args)
    with pytest.raises(ValueError, match="too small for batch_epig with K = 6"):
        run(10)


BLOCKED = ["coreset", "typiclust", "probcover", "probcover_radius", "maxdist", "kmeanspp", "lcmd"]


@pytest.mark.parametrize("name", BLOCKED)
@pytest.mark.parametrize("dtype", DTYPES)
def test_distance_blocks_shrink_to_the_budget(name, dtype):
    fn, key, args = call(name, dtype)
    unbudgeted = temp_bytes(fn, key, *args)
    small, key, args = call(name, dtype, budget=10)
    one_row = needed(small, key, *args)  # XLA's count with blocks of one row
    assert unbudgeted > one_row
    budget = (unbudgeted + one_row) // 2
    fn, key, args = call(name, dtype, budget=budget)
    budgeted = compiled(fn, key, *args)
    assert budgeted.memory_analysis().temp_size_in_bytes <= budget
    assert_same(budgeted(key, *args), call(name, dtype)[0](key, *args), dtype)


# --- the budgets are XLA's count of the method's program -------------------------------------


def needed(fn, *args) -> int:
    """The bytes ``fn(*args)`` says it needs at least (with a budget too small)."""
    with pytest.raises(ValueError, match="needs at least") as error:
        fn(*args)
    return int(str(error.value).split("needs at least ")[1].split(" bytes")[0])


def test_unchunked_budgets_are_xlas_count(rng):
    x, scores, available = problem(rng, np.float32, 500)
    b, key = 12, jax.random.key(0)
    labelled = jnp.arange(500) < 30
    maxdet = jax.jit(partial(_kernel_batch._maxdet, b=b))
    draw = jax.jit(partial(_gumbel.draw, b=b))
    assert needed(lambda: select.maxdet(x, b, labelled=labelled, memory_budget=10)) == temp_bytes(
        maxdet, x, available & ~labelled, 1e-6
    )
    assert needed(
        lambda: select.gumbel_top_k(jnp.log(scores), b, key=key, memory_budget=10)
    ) == temp_bytes(lambda k, w, a: draw(k, w, available_N=a), key, jnp.log(scores), available)


def problem(rng, dtype, num_points):
    x = jnp.asarray(rng.normal(size=(num_points, 5)), dtype)
    scores = jnp.asarray(rng.random(num_points), dtype)
    available = jnp.asarray(rng.random(num_points) < 0.9)
    return x, scores, available
