"""Tests for jaxal.select's kernel batch methods against brute-force numpy references."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxal import kernel_features as kf, select
from jaxal.select._kernel_batch import _METHODS

from .conftest import DTYPES, TRANSFORMS

METHODS = _METHODS.names()
NOISE = 0.05  # moderate noise keeps float32 posterior updates meaningful


def linear_kernel(a, c):
    return a @ c.T


def problem(rng, N=40, L=5, P=6, dtype=np.float64):
    pool = rng.normal(size=(N, P)) * rng.uniform(0.5, 1.5, size=(N, 1))
    return kf.Features(jnp.asarray(pool, dtype), jnp.asarray(rng.normal(size=(L, P)), dtype))


def run(name, features, b, *, key, available=None):
    kwargs = {"noise": NOISE} if name in ("maxdet", "bait") else {}
    return select.kernel_batch(features, b, method=name, key=key, available=available, **kwargs)


# --- numpy references ----------------------------------------------------------------------------


def sq_dists(a, c):
    return ((a[:, None, :] - c[None, :, :]) ** 2).sum(-1)


def maxdet_reference(pool, b, noise, available, train=None):
    """Greedy ``argmax_x slogdet(K_{T + S + x} + noise I)`` by fresh determinants."""
    train = np.zeros((0, pool.shape[1])) if train is None else train
    chosen = []
    for _ in range(b):
        best, best_value = None, -np.inf
        for x in np.flatnonzero(available):
            if x in chosen:
                continue
            phi = np.concatenate([train, pool[chosen + [x]]])
            value = np.linalg.slogdet(phi @ phi.T + noise * np.eye(len(phi)))[1]
            if value > best_value:
                best, best_value = int(x), value
        chosen.append(best)
    return chosen


def maxdist_reference(pool, train, b, available):
    """k-center from the full ``[N, N + L]`` distance matrix."""
    d = sq_dists(pool, np.concatenate([pool, train]))
    centres = list(range(len(pool), len(pool) + len(train)))
    available, chosen = available.copy(), []
    for _ in range(b):
        score = d[:, centres].min(1) if centres else (pool**2).sum(1)
        new = int(np.argmax(np.where(available, score, -np.inf)))
        chosen.append(new)
        centres.append(new)
        available[new] = False
    return chosen


def lcmd_reference(pool, train, b, available):
    """Transcription of bmdal's LargestClusterMaxDistSelectionMethod (TP mode)."""
    N, L = len(pool), len(train)
    min_sq, closest = np.full(N, np.inf), np.zeros(N, int)

    def add(vector, label):
        sq = ((pool - vector) ** 2).sum(1)
        closer = sq < min_sq
        closest[closer], min_sq[closer] = label, sq[closer]

    for label, vector in enumerate(train):
        add(vector, label)
    available, chosen = available.copy(), []
    for i in range(b):
        if L == 0 and i == 0:
            new = int(np.argmax(np.where(available, (pool**2).sum(1), -np.inf)))
        else:
            sums = np.bincount(closest[available], min_sq[available], minlength=L + b)
            candidate = available & (sums[closest] == sums.max())
            new = int(np.argmax(np.where(candidate, min_sq, -np.inf)))
        chosen.append(new)
        available[new] = False
        add(pool[new], L + i)
    return chosen


def frankwolfe_reference(pool, b, available):
    """Transcription of bmdal's FrankWolfeSelectionMethod (feature space, P mode)."""
    norm = np.sqrt((pool**2).sum(1))
    unit = pool / (norm + 1e-30)[:, None]
    target, radius = pool[available].sum(0), norm[available].sum()
    current, available, chosen = np.zeros(pool.shape[1]), available.copy(), []
    for _ in range(b):
        new = int(np.argmax(np.where(available, unit @ (target - current), -np.inf)))
        diff = radius * unit[new] - current
        gamma = diff @ (target - current) / (diff @ diff)
        current = (1 - gamma) * current + gamma * radius * unit[new]
        chosen.append(new)
        available[new] = False
    return chosen


def total_posterior_variance(pool, train, conditioned, noise, available):
    """``sum_t k_S(t, t)`` over targets ``t`` in available pool and train, fresh solve."""
    targets = np.concatenate([pool[available], train])
    prior = (targets**2).sum()
    if not conditioned:
        return prior
    phi_s = pool[conditioned]
    k_ts = targets @ phi_s.T
    solved = np.linalg.solve(phi_s @ phi_s.T + noise * np.eye(len(conditioned)), k_ts.T)
    return prior - np.sum(k_ts * solved.T)


def bait_reference(pool, train, b, noise, factor, available):
    """BAIT forward-backward by recomputing the objective for every candidate."""
    objective = partial(total_posterior_variance, pool, train, noise=noise, available=available)
    num_forward = max(b, min(round(factor * b), len(pool)))
    chosen = []
    for _ in range(num_forward):
        candidates = [x for x in np.flatnonzero(available) if x not in chosen]
        chosen.append(int(min(candidates, key=lambda x: objective(chosen + [x]))))
    while len(chosen) > b:
        worst = min(chosen, key=lambda x: objective([c for c in chosen if c != x]))
        chosen.remove(worst)
    return chosen


# --- brute-force agreement -----------------------------------------------------------------------


def as_numpy(f):
    return np.asarray(f.pool, np.float64), np.asarray(f.train, np.float64)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_maxdiag_is_argsort(rng, transform):
    f = problem(rng)
    available = rng.random(40) < 0.7
    got = transform(lambda f, a: select.maxdiag(f, 6, available=a))(f, jnp.asarray(available))
    diag = np.where(available, (np.asarray(f.pool) ** 2).sum(1), -np.inf)
    assert got.tolist() == np.argsort(-diag, kind="stable")[:6].tolist()


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("noise", [1e-3, 0.5])
def test_maxdet_every_step_maximises_the_log_determinant(rng, transform, noise):
    f = problem(rng, N=15, P=4)
    available = rng.random(15) < 0.8
    fn = transform(lambda f, a: select.maxdet(f, 7, noise=noise, available=a))
    got = fn(f, jnp.asarray(available))
    assert got.tolist() == maxdet_reference(np.asarray(f.pool), 7, noise, available)


def test_maxdet_on_the_posterior_is_tp_mode(rng):
    """Pivoting on the training points first is conditioning on them (the docstring's claim)."""
    f = problem(rng, N=15, L=3, P=6)
    got = select.maxdet(kf.posterior(f, noise=0.1), 5, noise=0.1)
    pool, train = as_numpy(f)
    assert got.tolist() == maxdet_reference(pool, 5, 0.1, np.ones(15, bool), train=train)


@pytest.mark.parametrize("L", [0, 5])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_maxdist_picks_the_farthest_point(rng, L, transform):
    f = problem(rng, L=L)
    available = rng.random(40) < 0.8
    got = transform(lambda f, a: select.maxdist(f, 8, available=a))(f, jnp.asarray(available))
    assert got.tolist() == maxdist_reference(*as_numpy(f), 8, available)


@pytest.mark.parametrize("L", [0, 5, 1500])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_lcmd_matches_bmdal_transcription(rng, L, transform):
    f = problem(rng, N=60, L=L)
    available = rng.random(60) < 0.8
    got = transform(lambda f, a: select.lcmd(f, 10, available=a))(f, jnp.asarray(available))
    assert got.tolist() == lcmd_reference(*as_numpy(f), 10, available)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_frankwolfe_matches_bmdal_transcription(rng, transform):
    f = problem(rng)
    available = rng.random(40) < 0.8
    got = transform(lambda f, a: select.frankwolfe(f, 8, available=a))(f, jnp.asarray(available))
    assert got.tolist() == frankwolfe_reference(np.asarray(f.pool), 8, available)


@pytest.mark.parametrize("factor", [1.0, 2.0, 1.5])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_bait_matches_brute_force_forward_backward(rng, factor, transform):
    f = problem(rng, N=14, L=3, P=5)
    available = np.ones(14, bool)
    available[rng.choice(14, 3, replace=False)] = False
    fn = transform(
        lambda f, a: select.bait(f, 4, noise=0.1, overselection_factor=factor, available=a)
    )
    got = fn(f, jnp.asarray(available))
    assert got.tolist() == bait_reference(*as_numpy(f), 4, 0.1, factor, available)


@pytest.mark.parametrize("noise", [1e-3, 0.1])
def test_bait_forward_is_ev_gp_with_the_linear_kernel(rng, noise):
    f = problem(rng, N=50, L=6, P=8)
    targets = jnp.concatenate([f.pool, f.train])
    expected = select.ev_gp(linear_kernel, f.pool, targets, 10, noise=noise)
    got = select.bait(f, 10, noise=noise, overselection_factor=1.0)
    assert got.tolist() == expected.tolist()
    # Conditioning on the training set: BAIT on posterior features = EV-GP with x_labelled.
    expected = select.ev_gp(linear_kernel, f.pool, targets, 10, noise=noise, x_labelled=f.train)
    got = select.bait(kf.posterior(f, noise=noise), 10, noise=noise, overselection_factor=1.0)
    assert got.tolist() == expected.tolist()


def test_kmeanspp_first_pick_is_proportional_to_squared_distance(key, rng):
    f = problem(rng, N=6, L=2, P=3)
    pool, train = (x.copy() for x in as_numpy(f))
    pool[4] = train[1]  # a copy of a training point: probability 0
    f = kf.Features(jnp.asarray(pool), f.train)
    firsts = jax.jit(jax.vmap(lambda k: select.kmeanspp(f, 1, key=k)))(
        jax.random.split(key, 20_000)
    )[:, 0]
    min_sq = sq_dists(pool, train).min(1)
    frequency = np.bincount(np.asarray(firsts), minlength=6) / 20_000
    np.testing.assert_allclose(frequency, min_sq / min_sq.sum(), atol=0.015)
    assert frequency[4] == 0.0


def test_kmeanspp_without_training_points_starts_uniformly(key, rng):
    f = problem(rng, N=5, L=0)
    available = jnp.asarray([True, False, True, True, True])
    firsts = jax.vmap(lambda k: select.kmeanspp(f, 2, key=k, available=available))(
        jax.random.split(key, 8000)
    )
    frequency = np.bincount(np.asarray(firsts[:, 0]), minlength=5) / 8000
    np.testing.assert_allclose(frequency, [0.25, 0, 0.25, 0.25, 0.25], atol=0.02)


def test_kmeanspp_takes_positive_distances_before_duplicates(key, rng):
    pool = np.repeat(rng.normal(size=(3, 4)), [3, 1, 1], axis=0)  # points 0-2 coincide
    f = kf.last_layer(pool, pool[:1])  # point 0's copies sit on a training point
    for k in jax.random.split(key, 20):
        got = select.kmeanspp(f, 4, key=k).tolist()
        assert sorted(got[:2]) == [3, 4] and set(got[2:]) <= {0, 1, 2}


# --- properties of every method ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", METHODS)
def test_distinct_available_and_jit_equals_eager(key, rng, name, dtype):
    f = problem(rng, dtype=dtype)
    available = jnp.asarray(rng.random(40) < 0.6)
    eager = run(name, f, 7, key=key, available=available)
    jitted = jax.jit(partial(run, name, b=7))(f, key=key, available=available)
    assert eager.dtype == jnp.int32 and eager.shape == (7,)
    assert len(set(eager.tolist())) == 7 and bool(available[eager].all())
    assert jitted.tolist() == eager.tolist()


@pytest.mark.parametrize("name", METHODS)
def test_vmap_over_feature_sets_and_masks(key, rng, name):
    fs = [problem(rng, N=30, L=4) for _ in range(3)]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *fs)
    masks = jnp.asarray(rng.random((3, 30)) < 0.8)
    keys = jax.random.split(key, 3)
    batched = jax.vmap(lambda f, k, a: run(name, f, 5, key=k, available=a))(stacked, keys, masks)
    for s in range(3):
        assert batched[s].tolist() == run(name, fs[s], 5, key=keys[s], available=masks[s]).tolist()


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("L", [0, 5])
def test_can_choose_every_available_point(key, rng, name, L):
    f = problem(rng, N=8, L=L)
    available = jnp.asarray([True, False, True, True, False, True, True, False])
    got = run(name, f, 5, key=key, available=available)
    assert sorted(got.tolist()) == [0, 2, 3, 5, 6]
    assert sorted(run(name, f, 8, key=key).tolist()) == list(range(8))


@pytest.mark.parametrize("name", [n for n in METHODS if n != "kmeanspp"])
def test_unavailable_points_are_absent(key, rng, name):
    """Selecting with a mask equals selecting from the masked-out pool, indices mapped back."""
    f = problem(rng)
    available = rng.random(40) < 0.6
    kept = np.flatnonzero(available)
    sub = kf.Features(f.pool[kept], f.train)
    got = run(name, f, 6, key=key, available=jnp.asarray(available))
    assert got.tolist() == kept[np.asarray(run(name, sub, 6, key=key))].tolist()


def test_float32_matches_float64_on_well_separated_problems(rng):
    f = problem(rng)
    for name in ("maxdiag", "maxdist", "lcmd", "frankwolfe", "maxdet", "bait"):
        single = run(name, jax.tree.map(lambda x: x.astype(np.float32), f), 6, key=None)
        assert single.tolist() == run(name, f, 6, key=None).tolist(), name


def test_no_recompile_on_second_call(rng):
    f = problem(rng)
    select.lcmd(f, 4)
    select.bait(f, 4, noise=0.1)
    cores = (select._kernel_batch._lcmd, select._kernel_batch._bait)
    before = [core._cache_size() for core in cores]
    select.lcmd(problem(rng), 4, available=jnp.asarray(rng.random(40) < 0.9))
    select.bait(problem(rng), 4, noise=0.2)
    assert [core._cache_size() for core in cores] == before


def test_invalid_arguments(key, rng):
    f = problem(rng, N=6, L=2, P=3)
    with pytest.raises(TypeError, match="floating"):
        select.lcmd(kf.Features(jnp.ones((6, 3), int), jnp.ones((2, 3), int)), 2)
    with pytest.raises(ValueError, match="rank 2"):
        select.maxdist(kf.Features(f.pool[None], f.train), 2)
    with pytest.raises(ValueError, match="P = 3"):
        select.maxdet(kf.Features(f.pool, f.train[:, :2]), 2)
    with pytest.raises(ValueError, match="NaN"):
        select.bait(kf.Features(f.pool.at[0, 0].set(jnp.nan), f.train), 2)
    with pytest.raises(ValueError, match="inf"):
        select.frankwolfe(kf.Features(f.pool, f.train.at[0, 0].set(jnp.inf)), 2)
    with pytest.raises(ValueError, match="empty"):
        select.maxdiag(kf.Features(f.pool[:0], f.train), 1)
    with pytest.raises(TypeError, match="Features"):
        select.lcmd(f.pool, 2)
    with pytest.raises(ValueError, match="larger than the number of available"):
        select.lcmd(f, 3, available=jnp.asarray([True, True, False, False, False, False]))
    with pytest.raises(ValueError, match="b must be >= 1"):
        select.maxdist(f, 0)
    with pytest.raises(ValueError, match=r"unknown kernel selection method 'k-center'.*lcmd"):
        select.kernel_batch(f, 2, method="k-center")
    with pytest.raises(ValueError, match="key"):
        select.kernel_batch(f, 2, method="kmeanspp")
    with pytest.raises(ValueError, match="noise"):
        select.bait(f, 2, noise=0.0)
    with pytest.raises(ValueError, match="noise"):
        select.maxdet(f, 2, noise=-1.0)
    with pytest.raises(ValueError, match="overselection_factor"):
        select.bait(f, 2, overselection_factor=0.5)
