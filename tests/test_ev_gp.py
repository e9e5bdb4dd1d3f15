"""Tests for jaxal.select.ev_gp against a from-scratch numpy GP greedy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxal import kernels, select

from .conftest import DTYPES, TRANSFORMS

KERNEL = kernels.infinite_width(3)


def mean_posterior_variance(gram, targets, conditioned, noise):
    """Mean over ``targets`` of the GP posterior variance given ``conditioned`` (fresh solve)."""
    prior = np.diag(gram)[targets]
    if not conditioned:
        return prior.mean()
    k_TS = gram[np.ix_(targets, conditioned)]
    k_SS = gram[np.ix_(conditioned, conditioned)] + noise * np.eye(len(conditioned))
    return (prior - np.sum(k_TS * np.linalg.solve(k_SS, k_TS.T).T, axis=1)).mean()


def brute_force(x_all, candidates, targets, labelled, b, noise):
    """Greedy over ``candidates`` (indices into ``x_all``), conditioned on ``labelled`` (indices
    into ``x_all``: the old ``x_labelled`` rows), by recomputing the posterior each step."""
    gram = np.asarray(KERNEL(jnp.asarray(x_all), jnp.asarray(x_all)))
    chosen = []
    for _ in range(b):
        best, best_value = None, np.inf
        for n in candidates:
            if n in chosen:
                continue
            value = mean_posterior_variance(gram, targets, list(labelled) + chosen + [n], noise)
            if value < best_value:
                best, best_value = n, value
        chosen.append(best)
    return chosen


def problem(rng, N=25, M=15, L=4, D=3):
    """``x_all`` ``[N + M, D]``: pool rows then target rows; a labelled mask over the pool."""
    x_all = rng.normal(size=(N + M, D))
    labelled = np.zeros(N, bool)
    labelled[rng.choice(N, L, replace=False)] = True
    return x_all, np.arange(N), np.arange(N, N + M), labelled


@pytest.mark.parametrize("L", [0, 4])
@pytest.mark.parametrize("noise", [1e-6, 0.1])
def test_labelled_mask_matches_the_explicit_gp_posterior(rng, L, noise):
    """The mask conditions on exactly what ``x_labelled = x_pool[labelled]`` used to."""
    x_all, pool, targets, labelled = problem(rng, L=L)
    expected = brute_force(x_all, pool[~labelled], targets, pool[labelled], 6, noise)
    got = select.ev_gp(x_all[pool], x_all[targets], 6, noise=noise, labelled=jnp.asarray(labelled))
    assert got.tolist() == expected


def test_target_is_pool_matches_the_papers_criterion(rng):
    """With X_T = pool the first pick is argmax_x sum_t Theta(t, x)^2 / (Theta(x, x) + s2)."""
    x_all, pool, _, _ = problem(rng)
    x = jnp.asarray(x_all[pool])
    gram = np.asarray(KERNEL(x, x))
    criterion = np.sum(gram**2, axis=0) / (np.diag(gram) + 1e-6)
    got = select.ev_gp(x, x, 5)  # the authors' kernel and noise variance 1e-6
    assert int(got[0]) == int(np.argmax(criterion))
    assert got.tolist() == brute_force(x_all, pool, pool, [], 5, 1e-6)


def test_defaults_are_the_authors(rng):
    assert select._ev_gp.DEFAULT_NOISE == 1e-3**2  # sigma_noise = 1e-3, a standard deviation
    x = jnp.asarray(rng.normal(size=(12, 3)))
    expected = select.ev_gp(x, x, 4, kernel=kernels.infinite_width(3), noise=1e-6)
    assert select.ev_gp(x, x, 4).tolist() == expected.tolist()


def test_never_picks_labelled_or_unavailable(rng):
    x_all, pool, targets, labelled = problem(rng, L=5)
    available = np.ones(len(pool), bool)
    available[::3] = False
    got = select.ev_gp(
        x_all[pool],
        x_all[targets],
        8,
        noise=1e-3,
        labelled=jnp.asarray(labelled),
        available=jnp.asarray(available | labelled),  # labelled rows are never selected
    )
    selectable = available & ~labelled
    assert len(set(got.tolist())) == 8 and selectable[np.asarray(got)].all()
    expected = brute_force(x_all, pool[selectable], targets, pool[labelled], 8, 1e-3)
    assert got.tolist() == expected


def test_no_labelled_point_is_labelled_none(rng):
    x_all, pool, targets, _ = problem(rng)
    x_pool, x_target = x_all[pool], x_all[targets]
    none = select.ev_gp(x_pool, x_target, 6, noise=1e-3)
    assert select.ev_gp(x_pool, x_target, 6, noise=1e-3, labelled=np.zeros(25, bool)).tolist() == (
        none.tolist()
    )


def test_can_choose_every_available_point(rng):
    x_all, _, targets, _ = problem(rng, N=6)
    available = jnp.asarray([True, False, True, True, False, True])
    got = select.ev_gp(x_all[:6], x_all[targets], 4, available=available)
    assert sorted(got.tolist()) == [0, 2, 3, 5]
    got = select.ev_gp(x_all[:6], x_all[targets], 4, labelled=~available)
    assert sorted(got.tolist()) == [0, 2, 3, 5]


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_jit_equals_eager_and_vmap_over_labelled_masks(rng, transform):
    x_all, pool, targets, _ = problem(rng)
    x_pool, x_target = jnp.asarray(x_all[pool]), jnp.asarray(x_all[targets])

    def run(labelled, available):
        return select.ev_gp(x_pool, x_target, 5, noise=1e-3, labelled=labelled, available=available)

    labelled = jnp.asarray(rng.random((3, len(pool))) < jnp.asarray([[0.0], [0.1], [0.6]]))
    masks = jnp.asarray(rng.random((3, len(pool))) < 0.8) & ~labelled
    batched = transform(jax.vmap(run))(labelled, masks)
    for lab, mask, indices in zip(labelled, masks, batched, strict=True):
        assert run(lab, mask).tolist() == indices.tolist()
        assert mask[indices].all()


def test_float32_matches_float64(rng):
    x_all, pool, targets, labelled = problem(rng)
    results = {}
    for dtype in DTYPES:
        results[dtype] = select.ev_gp(
            x_all[pool].astype(dtype),
            x_all[targets].astype(dtype),
            6,
            labelled=jnp.asarray(labelled),
            noise=1e-2,
        ).tolist()
    assert results[np.float32] == results[np.float64]


def test_no_recompile_when_the_labelled_set_grows(rng):
    x_all, pool, targets, labelled = problem(rng)
    select.ev_gp(x_all[pool], x_all[targets], 3, labelled=jnp.asarray(labelled))
    before = select._ev_gp._ev_gp._cache_size()
    grown = jnp.asarray(labelled | (rng.random(len(pool)) < 0.5))
    select.ev_gp(x_all[pool] + 1.0, x_all[targets], 3, noise=0.5, labelled=grown)
    assert select._ev_gp._ev_gp._cache_size() == before


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_invalid_arguments(rng):
    x = rng.normal(size=(5, 2))
    with pytest.raises(TypeError, match="kernel"):
        select.ev_gp(x, x, 2, kernel=None)
    with pytest.raises(ValueError, match="x_target"):
        select.ev_gp(x, x[:, :1], 2)
    with pytest.raises(ValueError, match="noise"):
        select.ev_gp(x, x, 2, noise=0.0)
    with pytest.raises(ValueError, match="available"):
        select.ev_gp(x, x, 3, available=jnp.asarray([True, True, False, False, False]))
    with pytest.raises(ValueError, match="available"):
        select.ev_gp(x, x, 3, labelled=jnp.asarray([True, True, True, False, False]))
    with pytest.raises(TypeError, match="labelled must be a boolean"):
        select.ev_gp(x, x, 2, labelled=np.zeros(5, int))
    with pytest.raises(ValueError, match="labelled must have shape"):
        select.ev_gp(x, x, 2, labelled=np.zeros(4, bool))


def nan_kernel(x1, x2):
    return jnp.full((x1.shape[0], x2.shape[0]), jnp.nan, x1.dtype)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"x_pool": lambda x: x.at[1, 0].set(jnp.nan)}, ValueError, "x_pool contains NaN"),
        ({"x_target": lambda x: x.at[0, 1].set(jnp.inf)}, ValueError, "x_target contains NaN"),
        ({"noise": jnp.inf}, ValueError, "noise must be finite and > 0"),
        ({"noise": jnp.nan}, ValueError, "noise must be finite and > 0"),
        ({"noise": -1.0}, ValueError, "noise must be finite and > 0"),
        ({"noise": jnp.ones(2)}, ValueError, "noise must be a scalar"),
        ({"kernel": nan_kernel}, ValueError, "kernel returned NaN"),
        ({"kernel": lambda a, c: a @ a.T}, ValueError, r"kernel.*expected \[N, M\] = \(6, 4\)"),
        ({"kernel": lambda a, c: a @ c.T > 0}, TypeError, "kernel must return a floating"),
    ],
)
@pytest.mark.parametrize("labelled", [None, np.arange(6) < 2])
def test_nan_inf_noise_and_kernel_output_are_rejected(rng, change, error, match, labelled):
    """Issue 15: eager NaN / inf inputs, invalid noise and bad kernels raise, naming the cause."""
    args = {"x_pool": jnp.asarray(rng.normal(size=(6, 3))), "x_target": None, "noise": 1e-3}
    args["x_target"] = args["x_pool"][:4]
    for name, value in change.items():
        args[name] = value(args[name]) if name.startswith("x_") else value
    kernel = args.pop("kernel", KERNEL)
    with pytest.raises(error, match=match):
        select.ev_gp(b=2, kernel=kernel, labelled=labelled, **args)


@pytest.mark.parametrize("transform", ["jit", "vmap"])
def test_traced_b_past_the_available_count_gives_the_sentinel(rng, transform):
    """Issue 15: under jit/vmap b > #available fills the rest with N (it returned index 0)."""
    x = jnp.asarray(rng.normal(size=(8, 3)))
    two, none = jnp.arange(8) % 4 == 1, jnp.zeros(8, bool)  # selectable: {1, 5}, then nothing
    # (available, labelled): two available; two unlabelled (conditioned on the rest); none
    masks = [(two, None), (jnp.ones(8, bool), ~two), (none, None)]

    def run(available, labelled):
        return select.ev_gp(x, x, 3, available=available, labelled=labelled)

    if transform == "jit":
        got = [jax.jit(run)(*mask).tolist() for mask in masks]
    else:
        got = jax.vmap(run)(jnp.stack([two, two, none]), jnp.stack([none, ~two, none])).tolist()
    for indices in got[:2]:
        assert sorted(indices[:2]) == [1, 5] and indices[2] == 8
    assert got[2] == [8, 8, 8]
    with pytest.raises(ValueError, match="larger than the number of available points"):
        run(two, None)
