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


def brute_force(x_all, pool, targets, labelled, b, noise, available=None):
    """Greedy over ``pool`` (indices into ``x_all``) by recomputing the posterior each step."""
    gram = np.asarray(KERNEL(jnp.asarray(x_all), jnp.asarray(x_all)))
    chosen = []
    for _ in range(b):
        best, best_value = None, np.inf
        for n, point in enumerate(pool):
            if n in chosen or (available is not None and not available[n]):
                continue
            selected = [pool[c] for c in chosen]
            value = mean_posterior_variance(gram, targets, labelled + selected + [point], noise)
            if value < best_value:
                best, best_value = n, value
        chosen.append(best)
    return chosen


def problem(rng, N=25, M=15, L=4, D=3):
    x_all = rng.normal(size=(N + M + L, D))
    pool = list(range(N))
    targets = list(range(N, N + M))
    labelled = list(range(N + M, N + M + L))
    return x_all, pool, targets, labelled


@pytest.mark.parametrize("with_labelled", [False, True])
@pytest.mark.parametrize("noise", [1e-3, 0.1])
def test_matches_brute_force_greedy(rng, with_labelled, noise):
    x_all, pool, targets, labelled = problem(rng)
    labelled = labelled if with_labelled else []
    expected = brute_force(x_all, pool, targets, labelled, 6, noise)
    got = select.ev_gp(
        KERNEL,
        x_all[pool],
        x_all[targets],
        6,
        noise=noise,
        x_labelled=x_all[labelled] if labelled else None,
    )
    assert got.tolist() == expected


def test_target_is_pool_matches_the_papers_criterion(rng):
    """With X_T = pool the first pick is argmax_x sum_t Theta(t, x)^2 / (Theta(x, x) + s2)."""
    x_all, pool, _, _ = problem(rng)
    x = jnp.asarray(x_all[pool])
    gram = np.asarray(KERNEL(x, x))
    criterion = np.sum(gram**2, axis=0) / (np.diag(gram) + 1e-3)
    got = select.ev_gp(KERNEL, x, x, 5)
    assert int(got[0]) == int(np.argmax(criterion))
    assert got.tolist() == brute_force(x_all, pool, pool, [], 5, 1e-3)


def test_never_picks_labelled_or_unavailable(rng):
    x_all, pool, targets, _ = problem(rng)
    x_pool = x_all[pool]
    available = np.ones(len(pool), bool)
    available[::2] = False
    labelled = [1, 3, 5]  # also in the pool: conditioning makes them nearly worthless
    available[labelled] = False
    got = select.ev_gp(
        KERNEL,
        x_pool,
        x_all[targets],
        8,
        x_labelled=x_pool[labelled],
        available=jnp.asarray(available),
    )
    assert len(set(got.tolist())) == 8
    assert available[np.asarray(got)].all()
    expected = brute_force(x_all, pool, targets, labelled, 8, 1e-3, available=available)
    assert got.tolist() == expected


def test_can_choose_every_available_point(rng):
    x_all, pool, targets, _ = problem(rng, N=6)
    available = jnp.asarray([True, False, True, True, False, True])
    got = select.ev_gp(KERNEL, x_all[:6], x_all[targets], 4, available=available)
    assert sorted(got.tolist()) == [0, 2, 3, 5]


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_jit_equals_eager_and_vmap(rng, transform):
    x_all, pool, targets, labelled = problem(rng)
    x_pool, x_target, x_labelled = (jnp.asarray(x_all[i]) for i in (pool, targets, labelled))

    def run(x_pool, available):
        return select.ev_gp(KERNEL, x_pool, x_target, 5, x_labelled=x_labelled, available=available)

    masks = jnp.asarray(rng.random((3, len(pool))) < 0.7)
    batched = transform(jax.vmap(run, in_axes=(None, 0)))(x_pool, masks)
    for mask, indices in zip(masks, batched, strict=True):
        assert run(x_pool, mask).tolist() == indices.tolist()
        assert mask[indices].all()


def test_float32_matches_float64(rng):
    x_all, pool, targets, labelled = problem(rng)
    results = {}
    for dtype in DTYPES:
        results[dtype] = select.ev_gp(
            KERNEL,
            x_all[pool].astype(dtype),
            x_all[targets].astype(dtype),
            6,
            x_labelled=x_all[labelled].astype(dtype),
            noise=1e-2,
        ).tolist()
    assert results[np.float32] == results[np.float64]


def test_no_recompile_on_second_call(rng):
    x_all, pool, targets, _ = problem(rng)
    select.ev_gp(KERNEL, x_all[pool], x_all[targets], 3)
    before = select._ev_gp._ev_gp._cache_size()
    select.ev_gp(KERNEL, x_all[pool] + 1.0, x_all[targets], 3, noise=0.5)
    assert select._ev_gp._ev_gp._cache_size() == before


def test_invalid_arguments(rng):
    x = rng.normal(size=(5, 2))
    with pytest.raises(TypeError, match="kernel"):
        select.ev_gp(None, x, x, 2)
    with pytest.raises(ValueError, match="x_target"):
        select.ev_gp(KERNEL, x, x[:, :1], 2)
    with pytest.raises(ValueError, match="noise"):
        select.ev_gp(KERNEL, x, x, 2, noise=0.0)
    with pytest.raises(ValueError, match="available"):
        select.ev_gp(KERNEL, x, x, 3, available=jnp.asarray([True, True, False, False, False]))
