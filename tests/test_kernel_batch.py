"""Tests for jaxal.select's kernel batch methods against brute-force numpy references.

The references take the old API's split of the features, ``pool`` (the unlabelled rows) and
``train`` (the labelled rows, bmdal's training set), so every comparison below also checks
that a labelled mask over the whole pool selects what the old ``Features(pool, train)`` did.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxal import kernel_features as kf, select
from jaxal.select._kernel_batch import _METHODS, _nearest_labelled

from .conftest import DTYPES, TRANSFORMS

METHODS = _METHODS.names()
NOISE = 0.05  # moderate noise keeps float32 posterior updates meaningful


def linear_kernel(a, c):
    return a @ c.T


def problem(rng, N=40, L=5, P=6, dtype=np.float64):
    """``(phi [N + L, P], labelled [N + L])``: ``N`` unlabelled and ``L`` labelled rows, mixed."""
    unlabelled = rng.normal(size=(N, P)) * rng.uniform(0.5, 1.5, size=(N, 1))
    phi = np.concatenate([unlabelled, rng.normal(size=(L, P))])
    order = rng.permutation(N + L)
    return jnp.asarray(phi[order], dtype), jnp.asarray(order >= N)


def split(phi, labelled, selectable=None):
    """The old API's view, float64: ``(pool, train, pool_index, pool_available)``."""
    phi, labelled = np.asarray(phi, np.float64), np.asarray(labelled)
    pool_index = np.flatnonzero(~labelled)
    selectable = ~labelled if selectable is None else np.asarray(selectable) & ~labelled
    return phi[pool_index], phi[labelled], pool_index, selectable[pool_index]


def run(name, phi, b, *, key, labelled=None, available=None):
    kwargs = {"noise": NOISE} if name in ("maxdet", "bait") else {}
    return select.kernel_batch(
        phi, b, method=name, key=key, labelled=labelled, available=available, **kwargs
    )


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


# --- brute-force agreement (and with the old Features(pool, train) API) ------------------------


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_maxdiag_is_argsort(rng, transform):
    phi, labelled = problem(rng)
    available = rng.random(45) < 0.7
    fn = transform(lambda p, lab, a: select.maxdiag(p, 6, labelled=lab, available=a))
    got = fn(phi, labelled, jnp.asarray(available))
    diag = np.where(available & ~labelled, (np.asarray(phi) ** 2).sum(1), -np.inf)
    assert got.tolist() == np.argsort(-diag, kind="stable")[:6].tolist()


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("noise", [1e-3, 0.5])
def test_maxdet_every_step_maximises_the_log_determinant(rng, transform, noise):
    phi, labelled = problem(rng, N=15, L=3, P=4)
    available = rng.random(18) < 0.8
    fn = transform(lambda p, lab, a: select.maxdet(p, 7, labelled=lab, available=a, noise=noise))
    got = fn(phi, labelled, jnp.asarray(available))
    pool, _, pool_index, pool_available = split(phi, labelled, available)
    assert got.tolist() == pool_index[maxdet_reference(pool, 7, noise, pool_available)].tolist()


def test_maxdet_on_the_posterior_is_tp_mode(rng):
    """Pivoting on the labelled points first is conditioning on them (the docstring's claim)."""
    phi, labelled = problem(rng, N=15, L=3, P=6)
    got = select.maxdet(kf.posterior(phi, labelled=labelled, noise=0.1), 5, labelled=labelled,
                        noise=0.1)  # fmt: skip
    pool, train, pool_index, _ = split(phi, labelled)
    expected = maxdet_reference(pool, 5, 0.1, np.ones(15, bool), train=train)
    assert got.tolist() == pool_index[expected].tolist()


@pytest.mark.parametrize("L", [0, 5])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_maxdist_picks_the_farthest_point(rng, L, transform):
    phi, labelled = problem(rng, L=L)
    available = rng.random(40 + L) < 0.8
    fn = transform(lambda p, lab, a: select.maxdist(p, 8, labelled=lab, available=a))
    got = fn(phi, labelled, jnp.asarray(available))
    pool, train, pool_index, pool_available = split(phi, labelled, available)
    assert got.tolist() == pool_index[maxdist_reference(pool, train, 8, pool_available)].tolist()


@pytest.mark.parametrize("L", [0, 5, 1500])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_lcmd_matches_bmdal_transcription(rng, L, transform):
    phi, labelled = problem(rng, N=60, L=L)
    available = rng.random(60 + L) < 0.8
    fn = transform(lambda p, lab, a: select.lcmd(p, 10, labelled=lab, available=a))
    got = fn(phi, labelled, jnp.asarray(available))
    pool, train, pool_index, pool_available = split(phi, labelled, available)
    assert got.tolist() == pool_index[lcmd_reference(pool, train, 10, pool_available)].tolist()


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_frankwolfe_matches_bmdal_transcription(rng, transform):
    phi, labelled = problem(rng)
    available = rng.random(45) < 0.8
    fn = transform(lambda p, lab, a: select.frankwolfe(p, 8, labelled=lab, available=a))
    got = fn(phi, labelled, jnp.asarray(available))
    pool, _, pool_index, pool_available = split(phi, labelled, available)
    assert got.tolist() == pool_index[frankwolfe_reference(pool, 8, pool_available)].tolist()


@pytest.mark.parametrize("factor", [1.0, 2.0, 1.5])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_bait_matches_brute_force_forward_backward(rng, factor, transform):
    phi, labelled = problem(rng, N=14, L=3, P=5)
    available = np.ones(17, bool)
    available[rng.choice(17, 4, replace=False)] = False
    fn = transform(
        lambda p, lab, a: select.bait(
            p, 4, labelled=lab, available=a, noise=0.1, overselection_factor=factor
        )
    )
    got = fn(phi, labelled, jnp.asarray(available))
    pool, train, pool_index, pool_available = split(phi, labelled, available)
    expected = bait_reference(pool, train, 4, 0.1, factor, pool_available)
    assert got.tolist() == pool_index[expected].tolist()


@pytest.mark.parametrize("noise", [1e-3, 0.1])
def test_bait_forward_is_ev_gp_with_the_linear_kernel(rng, noise):
    phi, labelled = problem(rng, N=50, L=6, P=8)
    # BAIT's targets are the unlabelled and the labelled rows: every row of phi.
    expected = select.ev_gp(phi, phi, 10, kernel=linear_kernel, noise=noise, available=~labelled)
    got = select.bait(phi, 10, labelled=labelled, noise=noise, overselection_factor=1.0)
    assert got.tolist() == expected.tolist()
    # Conditioning on the labelled rows: BAIT on posterior features = EV-GP given them.
    expected = select.ev_gp(phi, phi, 10, kernel=linear_kernel, noise=noise, labelled=labelled)
    post = kf.posterior(phi, labelled=labelled, noise=noise)
    got = select.bait(post, 10, labelled=labelled, noise=noise, overselection_factor=1.0)
    assert got.tolist() == expected.tolist()


@pytest.mark.parametrize("block_size", [1, 3, 64])
def test_nearest_labelled_blocks_agree_with_the_full_distance_matrix(rng, block_size):
    phi, labelled = problem(rng, N=30, L=7, P=3)
    phi = phi.at[5].set(phi[np.flatnonzero(labelled)[2]])  # ties: the lower labelled index
    phi = phi.at[np.flatnonzero(labelled)[4]].set(phi[np.flatnonzero(labelled)[1]])
    min_sq, nearest, any_labelled = jax.jit(_nearest_labelled, static_argnums=2)(
        phi, labelled, block_size
    )
    labelled_index = np.flatnonzero(labelled)
    d = sq_dists(np.asarray(phi), np.asarray(phi)[labelled_index])
    np.testing.assert_allclose(min_sq, d.min(1), atol=1e-12)
    assert nearest.tolist() == labelled_index[np.argmin(d, axis=1)].tolist()
    assert bool(any_labelled)
    none = _nearest_labelled(phi, jnp.zeros(37, bool), block_size)
    assert np.isinf(none[0]).all() and not bool(none[2])


def test_kmeanspp_first_pick_is_proportional_to_squared_distance(key, rng):
    phi, labelled = problem(rng, N=6, L=2, P=3)
    pool, train, pool_index, _ = split(phi, labelled)
    copy = pool_index[4]
    phi = phi.at[copy].set(phi[np.flatnonzero(labelled)[1]])  # a copy of a labelled point
    pool[4] = train[1]
    firsts = jax.jit(jax.vmap(lambda k: select.kmeanspp(phi, 1, key=k, labelled=labelled)))(
        jax.random.split(key, 20_000)
    )[:, 0]
    min_sq = sq_dists(pool, train).min(1)
    frequency = np.bincount(np.asarray(firsts), minlength=8)[pool_index] / 20_000
    np.testing.assert_allclose(frequency, min_sq / min_sq.sum(), atol=0.015)
    assert frequency[4] == 0.0 and not np.isin(np.flatnonzero(labelled), firsts).any()


def test_kmeanspp_without_labelled_points_starts_uniformly(key, rng):
    phi, _ = problem(rng, N=5, L=0)
    available = jnp.asarray([True, False, True, True, True])
    firsts = jax.vmap(lambda k: select.kmeanspp(phi, 2, key=k, available=available))(
        jax.random.split(key, 8000)
    )
    frequency = np.bincount(np.asarray(firsts[:, 0]), minlength=5) / 8000
    np.testing.assert_allclose(frequency, [0.25, 0, 0.25, 0.25, 0.25], atol=0.02)


def test_kmeanspp_takes_positive_distances_before_duplicates(key, rng):
    pool = np.repeat(rng.normal(size=(3, 4)), [3, 1, 1], axis=0)  # points 0-2 coincide
    phi = jnp.asarray(np.concatenate([pool[:1], pool]))  # row 0 is labelled
    labelled = jnp.arange(6) == 0
    for k in jax.random.split(key, 20):
        got = select.kmeanspp(phi, 4, key=k, labelled=labelled).tolist()
        assert sorted(got[:2]) == [4, 5] and set(got[2:]) <= {1, 2, 3}


# --- properties of every method ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", METHODS)
def test_distinct_available_and_jit_equals_eager(key, rng, name, dtype):
    phi, labelled = problem(rng, dtype=dtype)
    available = jnp.asarray(rng.random(45) < 0.6)
    eager = run(name, phi, 7, key=key, labelled=labelled, available=available)
    jitted = jax.jit(partial(run, name, b=7))(phi, key=key, labelled=labelled, available=available)
    assert eager.dtype == jnp.int32 and eager.shape == (7,)
    assert len(set(eager.tolist())) == 7 and bool((available & ~labelled)[eager].all())
    assert jitted.tolist() == eager.tolist()


@pytest.mark.parametrize("name", METHODS)
def test_vmap_over_features_and_masks_with_different_numbers_of_labelled_points(key, rng, name):
    problems = [problem(rng, N=30 - L, L=L) for L in (0, 3, 9)]
    phis, labelled = (jnp.stack(x) for x in zip(*problems, strict=True))
    masks = jnp.asarray(rng.random((3, 30)) < 0.8)
    keys = jax.random.split(key, 3)

    def one(p, k, lab, a):
        return run(name, p, 5, key=k, labelled=lab, available=a)

    batched = jax.vmap(one)(phis, keys, labelled, masks)
    for s in range(3):
        assert batched[s].tolist() == one(phis[s], keys[s], labelled[s], masks[s]).tolist()


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("L", [0, 5])
def test_can_choose_every_available_point(key, rng, name, L):
    phi, labelled = problem(rng, N=8, L=L)
    unlabelled = np.flatnonzero(~labelled)
    available = np.ones(8 + L, bool)
    available[unlabelled[[1, 4, 7]]] = False
    got = run(name, phi, 5, key=key, labelled=labelled, available=jnp.asarray(available))
    assert sorted(got.tolist()) == unlabelled[[0, 2, 3, 5, 6]].tolist()
    assert sorted(run(name, phi, 8, key=key, labelled=labelled).tolist()) == unlabelled.tolist()


@pytest.mark.parametrize("name", [n for n in METHODS if n != "kmeanspp"])
def test_unavailable_points_are_absent(key, rng, name):
    """Selecting with a mask equals selecting from the pool without those rows, mapped back."""
    phi, labelled = problem(rng)
    available = rng.random(45) < 0.6
    kept = np.flatnonzero(available | labelled)
    got = run(name, phi, 6, key=key, labelled=labelled, available=jnp.asarray(available))
    sub = run(name, phi[kept], 6, key=key, labelled=labelled[kept])
    assert got.tolist() == kept[np.asarray(sub)].tolist()


def test_labelled_rows_never_selected_even_when_available(key, rng):
    phi, labelled = problem(rng, N=10, L=20)
    for name in METHODS:
        got = run(name, phi, 10, key=key, labelled=labelled, available=jnp.ones(30, bool))
        assert sorted(got.tolist()) == np.flatnonzero(~labelled).tolist(), name


def test_float32_matches_float64_on_well_separated_problems(rng):
    phi, labelled = problem(rng)
    for name in ("maxdiag", "maxdist", "lcmd", "frankwolfe", "maxdet", "bait"):
        single = run(name, phi.astype(np.float32), 6, key=None, labelled=labelled)
        assert single.tolist() == run(name, phi, 6, key=None, labelled=labelled).tolist(), name


def test_no_recompile_when_the_labelled_set_grows(key, rng):
    phi, labelled = problem(rng, N=30, L=10)
    cores = {
        "lcmd": select._kernel_batch._lcmd,
        "maxdist": select._kernel_batch._maxdist,
        "kmeanspp": select._kernel_batch._kmeanspp,
        "bait": select._kernel_batch._bait,
    }
    for name in cores:
        run(name, phi, 4, key=key, labelled=labelled)
    before = [core._cache_size() for core in cores.values()]
    grown = labelled | jnp.asarray(rng.random(40) < 0.3)
    for name in cores:
        run(
            name, phi + 1.0, 4, key=key, labelled=grown, available=jnp.asarray(rng.random(40) < 0.9)
        )
    assert [core._cache_size() for core in cores.values()] == before


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_invalid_arguments(key, rng):
    phi, labelled = problem(rng, N=6, L=2, P=3)
    with pytest.raises(TypeError, match="floating"):
        select.lcmd(jnp.ones((8, 3), int), 2)
    with pytest.raises(ValueError, match="rank 2"):
        select.maxdist(phi[None], 2)
    with pytest.raises(ValueError, match="NaN"):
        select.bait(phi.at[0, 0].set(jnp.nan), 2)
    with pytest.raises(ValueError, match="NaN or inf"):
        select.frankwolfe(phi.at[3, 1].set(jnp.inf), 2)
    with pytest.raises(ValueError, match="empty"):
        select.maxdiag(phi[:0], 1)
    with pytest.raises(TypeError, match="labelled must be a boolean"):
        select.lcmd(phi, 2, labelled=labelled.astype(int))
    with pytest.raises(ValueError, match="labelled must have shape"):
        select.maxdist(phi, 2, labelled=labelled[:5])
    two = jnp.zeros(8, bool).at[np.flatnonzero(~labelled)[:2]].set(True)
    with pytest.raises(ValueError, match="larger than the number of available"):
        select.lcmd(phi, 3, labelled=labelled, available=two | labelled)
    with pytest.raises(ValueError, match="b must be >= 1"):
        select.maxdist(phi, 0)
    with pytest.raises(ValueError, match=r"unknown kernel selection method 'k-center'.*lcmd"):
        select.kernel_batch(phi, 2, method="k-center")
    with pytest.raises(ValueError, match="key"):
        select.kernel_batch(phi, 2, method="kmeanspp")
    with pytest.raises(ValueError, match="noise"):
        select.bait(phi, 2, noise=0.0)
    with pytest.raises(ValueError, match="noise"):
        select.maxdet(phi, 2, noise=-1.0)
    with pytest.raises(ValueError, match="overselection_factor"):
        select.bait(phi, 2, overselection_factor=0.5)


@pytest.mark.parametrize("transform", ["jit", "vmap"])
@pytest.mark.parametrize("name", METHODS)
def test_traced_b_past_the_available_count_gives_the_sentinel(key, rng, name, transform):
    """Issue 15: under jit/vmap b > #selectable fills the rest with N, eager still raises."""
    phi, labelled = problem(rng, N=8, L=2, P=3)
    two = jnp.zeros(10, bool).at[np.flatnonzero(~labelled)[[1, 4]]].set(True)
    none = jnp.zeros(10, bool)

    def one(available):
        return run(name, phi, 3, key=key, labelled=labelled, available=available)

    if transform == "jit":
        got = [jax.jit(one)(available).tolist() for available in (two, none)]
    else:
        got = jax.vmap(one)(jnp.stack([two, none])).tolist()
    assert sorted(got[0][:2]) == np.flatnonzero(two).tolist() and got[0][2] == 10
    assert got[1] == [10, 10, 10]
    with pytest.raises(ValueError, match="larger than the number of available points"):
        one(two)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda phi, key: select.maxdet(phi, 2, noise=jnp.inf), ValueError, "noise"),
        (lambda phi, key: select.maxdet(phi, 2, noise=jnp.nan), ValueError, "noise"),
        (lambda phi, key: select.bait(phi, 2, noise=jnp.inf), ValueError, "noise"),
        (lambda phi, key: select.bait(phi, 2, overselection_factor=np.inf), ValueError, "overs"),
        (lambda phi, key: select.kmeanspp(phi, 2, key=None), TypeError, "key=jax.random.key"),
        (lambda phi, key: select.kmeanspp(phi, 2, key=3), TypeError, "key=jax.random.key"),
        (lambda phi, key: select.kernel_batch(phi, 2, key=3), TypeError, "key=jax.random.key"),
    ],
)
def test_invalid_values_and_keys_are_rejected(key, rng, call, error, match):
    """Issue 15: infinite noise / factor and non-key keys raise eagerly, naming the argument."""
    phi, _ = problem(rng, N=6, L=0, P=3)
    with pytest.raises(error, match=match):
        call(phi, key)
