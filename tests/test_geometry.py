"""Tests for the geometric selections (BADGE, Core-Set, TypiClust, ProbCover) and embeddings."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxal import embeddings, select

from .conftest import DTYPES, TRANSFORMS
from .reference import random_log_probs


def sq_dists(x):
    return ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)


def coreset_reference(x, b, labelled, available):
    """Greedy k-center by recomputing every min distance (numpy, float64)."""
    d = np.sqrt(sq_dists(x.astype(np.float64)))
    centres = list(np.flatnonzero(labelled))
    selectable = available & ~labelled
    chosen = []
    for _ in range(b):
        if centres:
            score = d[:, centres].min(axis=1)
        else:
            score = np.linalg.norm(x - x.mean(0), axis=1)
        score = np.where(selectable, score, -np.inf)
        new = int(np.argmax(score))
        chosen.append(new)
        centres.append(new)
        selectable[new] = False
    return chosen


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num_labelled", [0, 5])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_coreset_matches_brute_force(rng, dtype, num_labelled, transform):
    N, D, b = 60, 3, 8
    x = rng.normal(size=(N, D)).astype(dtype)
    labelled = np.zeros(N, bool)
    labelled[rng.choice(N, num_labelled, replace=False)] = True
    available = rng.random(N) < 0.8
    fn = transform(
        lambda x, lab, av: select.coreset(x, b, labelled=lab, available=av, block_size=16)
    )
    got = fn(jnp.asarray(x), jnp.asarray(labelled), jnp.asarray(available))
    assert got.tolist() == coreset_reference(x, b, labelled, available.copy())
    assert available[np.asarray(got)].all() and not labelled[np.asarray(got)].any()


def probcover_gains(x, radius, covered):
    adj = sq_dists(x) <= radius**2
    return (adj & ~covered[None, :]).sum(1), adj


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_probcover_gain_is_direct_count(rng, transform):
    N, D, b, radius = 80, 2, 10, 0.5
    x = rng.normal(size=(N, D))
    labelled = np.zeros(N, bool)
    labelled[:3] = True
    available = rng.random(N) < 0.9
    fn = transform(
        lambda x, lab, av: select.probcover(
            x, b, radius=radius, labelled=lab, available=av, block_size=32
        )
    )
    got = np.asarray(fn(jnp.asarray(x), jnp.asarray(labelled), jnp.asarray(available)))
    _, adj = probcover_gains(x, radius, np.zeros(N, bool))
    covered = adj[:, labelled].any(1)
    selectable = available & ~labelled
    assert len(set(got.tolist())) == b and selectable[got].all()
    for i in got:
        gain, _ = probcover_gains(x, radius, covered)
        assert gain[i] == gain[selectable].max()
        covered |= adj[i]
        selectable[i] = False


def test_probcover_radius_purity(rng):
    x = np.concatenate([rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + 3.0])
    labels = np.repeat([0, 1], 40)
    radius = float(select.probcover_radius(jnp.asarray(x), jnp.asarray(labels), purity=0.9))
    d = np.sqrt(sq_dists(x))

    def purity(r):
        return np.mean([(labels[d[n] <= r] == labels[n]).all() for n in range(len(x))])

    assert radius > 0 and purity(radius) >= 0.9
    assert purity(radius * 1.05 + 1e-9) < 0.9 or radius >= d.max()
    grid = np.linspace(0.0, 3.0, 31)
    chosen = float(select.probcover_radius(x, labels, purity=0.9, candidates=grid))
    assert chosen == max(r for r in grid if purity(r) >= 0.9)


def test_badge_first_centre_and_distinct(key, rng):
    N, D, b = 50, 4, 12
    x = rng.normal(size=(N, D))
    available = rng.random(N) < 0.7
    got = np.asarray(
        jax.jit(select.badge, static_argnums=1)(x, b, key=key, available=jnp.asarray(available))
    )
    norms = np.where(available, np.linalg.norm(x, axis=1), -np.inf)
    assert got[0] == np.argmax(norms)
    assert len(set(got.tolist())) == b and available[got].all()
    eager = select.badge(x, b, key=key, available=jnp.asarray(available))
    np.testing.assert_array_equal(eager, got)


def test_badge_d2_sampling_distribution(key):
    # First centre: index 0 (largest norm). Second: P(n) proportional to |x_n - x_0|^2.
    x = jnp.array([[3.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    draws = jax.vmap(lambda k: select.badge(x, 2, key=k))(jax.random.split(key, 4000))
    assert (draws[:, 0] == 0).all()
    freq = np.bincount(np.asarray(draws[:, 1]), minlength=4) / 4000
    np.testing.assert_allclose(freq, np.array([0, 1, 4, 9]) / 14, atol=0.03)


def test_badge_duplicates_fall_back_to_uniform(key):
    x = jnp.ones((5, 2))
    got = select.badge(x, 5, key=key)
    assert sorted(got.tolist()) == list(range(5))


def blobs(rng, sizes, spread=0.1):
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [20, 20]], float)[: len(sizes)]
    x = np.concatenate(
        [c + spread * rng.normal(size=(s, 2)) for c, s in zip(centres, sizes, strict=True)]
    )
    return x, np.repeat(np.arange(len(sizes)), sizes)


def typiclust_reference(features, clusters, lset, uset, budget, k_nn=20, min_cluster_size=5):
    """The authors' ``TypiClust.select_samples`` and ``calculate_typicality`` (avihu111/TypiClust,
    ``deep-al/pycls/al/typiclust.py``, lines 27-31 and 76-108) transcribed to numpy: faiss's
    ``IndexFlatL2`` search (squared distances, the point itself first) by sorting, pandas'
    ``sort_values(['existing_count', 'neg_cluster_size'])`` by a stable ``np.lexsort``."""
    relevant = np.concatenate([lset, uset]).astype(int)
    features = features[relevant]
    labels = np.copy(clusters[relevant])
    existing = np.arange(len(lset))
    cluster_ids, cluster_sizes = np.unique(labels, return_counts=True)
    labelled_counts = np.bincount(labels[existing], minlength=len(cluster_ids))
    keep = cluster_sizes > min_cluster_size
    order = np.lexsort((-cluster_sizes[keep], labelled_counts[keep]))
    clusters_sorted = cluster_ids[keep][order]
    labels[existing] = -1
    selected = []
    for i in range(budget):
        cluster = clusters_sorted[i % len(clusters_sorted)]
        indices = (labels == cluster).nonzero()[0]
        k = min(k_nn, len(indices) // 2)
        distances = np.sort(sq_dists(features[indices]), axis=1)[:, 1 : k + 1]
        with warnings.catch_warnings():  # k = 0: the mean of nothing is NaN, argmax picks 0
            warnings.simplefilter("ignore", RuntimeWarning)
            typicality = 1 / (distances.mean(axis=1) + 1e-5)
        idx = indices[typicality.argmax()]
        selected.append(idx)
        labels[idx] = -1
    return relevant[np.array(selected)]


@pytest.mark.parametrize(
    ("num_points", "num_labelled", "b", "seed"),
    [
        (150, 6, 10, 0),  # clusters of <= 5 points are skipped; one pick per large cluster
        (60, 2, 8, 1),  # 4 large clusters for 8 picks: round-robin, typicality recomputed
    ],
)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_typiclust_matches_the_authors_code(key, num_points, num_labelled, b, seed, transform):
    rng = np.random.default_rng(seed)  # inputs on which the authors' code runs (no empty
    x = rng.normal(size=(num_points, 2))  # cluster, none emptied by the picks)
    lset = rng.choice(num_points, num_labelled, replace=False)
    labelled = np.zeros(num_points, bool)
    labelled[lset] = True
    k = num_labelled + b
    clusters = np.asarray(select.kmeans(x, k, key=key))
    sizes = np.bincount(clusters, minlength=k)
    assert (sizes > 0).all() and (sizes <= 5).any()
    assert (b > (sizes > 5).sum()) == (num_points == 60)  # the second case wraps around
    fn = transform(lambda lab: select.typiclust(x, b, key=key, labelled=lab, num_clusters=k))
    got = np.asarray(fn(jnp.asarray(labelled)))
    expected = typiclust_reference(x, clusters, lset, np.flatnonzero(~labelled), b)
    np.testing.assert_array_equal(got, expected)


def test_typiclust_uses_every_cluster_when_none_has_more_than_five_points(key, rng):
    """The authors' code divides by zero; this goes round-robin through all clusters."""
    x, blob = blobs(rng, [5, 4, 3])
    got = np.asarray(select.typiclust(x, 4, key=key, num_clusters=3))
    assert blob[got].tolist() == [0, 1, 2, 0]  # largest first, then round-robin
    clusters = np.asarray(select.kmeans(x, 3, key=key))
    expected = typiclust_reference(x, clusters, [], np.arange(len(x)), 4, min_cluster_size=0)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(
        select.typiclust(x, 4, key=key, num_clusters=3, min_cluster_size=0), expected
    )


def test_typiclust_picks_typical_points_of_largest_uncovered_clusters(key, rng):
    sizes = [30, 12, 25, 18, 8]
    x, blob = blobs(rng, sizes)
    labelled = np.zeros(len(x), bool)
    labelled[np.flatnonzero(blob == 0)[0]] = True  # blob 0 (largest) is covered
    b = 3  # |L| + b = 4 would merge blobs: ask for the 5 clusters explicitly
    got = np.asarray(
        select.typiclust(x, b, key=key, labelled=jnp.asarray(labelled), num_clusters=5)
    )
    # Largest blobs without labels: 2 (25), 3 (18), 1 (12).
    assert blob[got].tolist() == [2, 3, 1]
    for i in got:
        members = np.flatnonzero(blob == blob[i])
        d = sq_dists(x[members])  # squared distances, as in the authors' code
        np.fill_diagonal(d, np.inf)
        k = min(20, len(members) // 2)
        mean_knn = np.sort(d, axis=1)[:, :k].mean(1)
        assert members[np.argmin(mean_knn)] == i


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_typiclust_jit_and_cluster_count(key, rng, transform):
    x, blob = blobs(rng, [20, 20, 20, 20])
    labelled = jnp.zeros(len(x), bool).at[0].set(True).at[20].set(True)
    fn = transform(lambda k, x, lab: select.typiclust(x, 2, key=k, labelled=lab, num_clusters=4))
    got = np.asarray(fn(key, jnp.asarray(x), labelled))
    assert sorted(blob[got].tolist()) == [2, 3]
    eager = select.typiclust(x, 2, key=key, labelled=labelled)  # |L| + b = 4 read from the mask
    assert sorted(blob[np.asarray(eager)].tolist()) == [2, 3]
    traces = []

    def traced(lab):  # |L| + b read from a traced mask: one program for every |L|
        traces.append(1)
        return select.typiclust(x, 2, key=key, labelled=lab)

    compiled = jax.jit(traced)
    assert sorted(blob[np.asarray(compiled(labelled))].tolist()) == [2, 3]
    three = labelled.at[40].set(True)  # |L| + b = 5 clusters: blob 3 is split or not, never 2
    assert 3 in blob[np.asarray(compiled(three))].tolist() and len(traces) == 1


def test_more_than_clusters_never_repeats(key, rng):
    x, _ = blobs(rng, [6, 6])
    labelled = jnp.zeros(12, bool).at[0].set(True)
    available = jnp.ones(12, bool).at[5].set(False)
    for fn in (
        lambda: select.typiclust(
            x, 9, key=key, labelled=labelled, available=available, num_clusters=2
        ),
        lambda: select.coreset(x, 10, labelled=labelled, available=available),
        lambda: select.probcover(x, 10, radius=1.0, labelled=labelled, available=available),
        lambda: select.badge(x, 11, key=key, available=available),
    ):
        got = np.asarray(fn())
        assert len(set(got.tolist())) == len(got)
        assert np.asarray(available)[got].all()


@pytest.mark.parametrize("name", ["coreset", "typiclust", "probcover"])
def test_labelled_sets_the_default_available_and_is_never_selected(key, rng, name):
    x, _ = blobs(rng, [6, 6])
    labelled = jnp.zeros(12, bool).at[jnp.array([0, 3, 7])].set(True)
    select_9 = {
        "coreset": lambda **masks: select.coreset(x, 9, **masks),
        "typiclust": lambda **masks: select.typiclust(x, 9, key=key, **masks),
        "probcover": lambda **masks: select.probcover(x, 9, radius=1.0, **masks),
    }[name]
    explicit = np.asarray(select_9(labelled=labelled, available=~labelled))
    np.testing.assert_array_equal(select_9(labelled=labelled), explicit)  # available = ~labelled
    np.testing.assert_array_equal(
        select_9(labelled=labelled, available=jnp.ones(12, bool)), explicit
    )
    assert sorted(explicit.tolist()) == sorted(set(range(12)) - {0, 3, 7})
    np.testing.assert_array_equal(  # labelled=None: nothing labelled
        select_9(available=~labelled), select_9(labelled=jnp.zeros(12, bool), available=~labelled)
    )


def test_embeddings_badge_matches_outer_product(rng):
    K, N, C, H = 3, 7, 4, 5
    log_probs = jax.nn.log_softmax(jnp.asarray(rng.normal(size=(K, N, C))), axis=-1)
    h = rng.normal(size=(N, H))
    got = np.asarray(embeddings.badge(h, log_probs))
    pbar = np.exp(np.asarray(log_probs)).mean(0)
    residual = pbar - np.eye(C)[pbar.argmax(1)]
    expected = np.stack([np.outer(residual[n], h[n]).ravel() for n in range(N)])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(embeddings.badge(h, pbar), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jax.jit(embeddings.badge)(h, log_probs), expected, rtol=1e-10)
    with pytest.raises(ValueError, match="probabilities"):
        embeddings.badge(h, np.asarray(log_probs[0]))


def badge_embedding_reference(out, batch_probs):
    """The authors' ``get_grad_embedding`` (JordanAsh/badge, ``query_strategies/strategy.py``,
    lines 337-343) transcribed to numpy: ``out`` ``[N, H]`` penultimate features,
    ``batch_probs`` ``[N, C]`` softmax."""
    N, emb_dim = out.shape
    n_lab = batch_probs.shape[1]
    embedding = np.zeros([N, emb_dim * n_lab])
    max_inds = np.argmax(batch_probs, 1)
    for j in range(N):
        for c in range(n_lab):
            if c == max_inds[j]:
                embedding[j][emb_dim * c : emb_dim * (c + 1)] = out[j] * (1 - batch_probs[j][c])
            else:
                embedding[j][emb_dim * c : emb_dim * (c + 1)] = out[j] * (-1 * batch_probs[j][c])
    return embedding


def test_embeddings_badge_is_the_negative_of_the_authors(key, rng):
    h = rng.normal(size=(6, 3))
    probs = np.asarray(jax.nn.softmax(jnp.asarray(rng.normal(size=(6, 4))), axis=-1))
    theirs = badge_embedding_reference(h, probs)
    ours = np.asarray(embeddings.badge(h, probs))
    np.testing.assert_allclose(ours, -theirs, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(select.badge(ours, 4, key=key), select.badge(-ours, 4, key=key))


def test_validation(key):
    x = jnp.zeros((4, 2))
    with pytest.raises(TypeError, match="labelled"):
        select.coreset(x, 1, labelled=jnp.zeros(4))
    with pytest.raises(ValueError, match="available"):
        select.probcover(x, 1, radius=1.0, labelled=jnp.ones(4, bool))
    with pytest.raises(ValueError, match="b = 5"):
        select.badge(x, 5, key=key)
    for missing in ({}, {"radius": None}):
        with pytest.raises(TypeError, match="radius is None.*radius=.*probcover_radius"):
            select.probcover(x, 1, **missing)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
@pytest.mark.parametrize("radius", [-1.0, np.nan, np.inf, jnp.array([0.5]), "a"])
def test_probcover_radius_must_be_a_finite_nonnegative_scalar(radius):
    with pytest.raises((TypeError, ValueError), match="radius must be"):
        select.probcover(jnp.zeros((4, 2)), 1, radius=radius)


def test_probcover_radius_zero_covers_coincident_points_only():
    """``probcover_radius`` can return 0; ``probcover`` then picks the most repeated point."""
    x = jnp.array([[0.0], [1.0], [1.0], [2.0], [1.0]])
    assert select.probcover(x, 1, radius=0.0).tolist() == [1]


def test_single_pick_and_single_cluster(key, rng):
    x = rng.normal(size=(12, 2))
    available = jnp.asarray(rng.random(12) < 0.7).at[0].set(True)
    norms = np.where(available, np.linalg.norm(x, axis=1), -np.inf)
    assert select.badge(x, 1, key=key, available=available).tolist() == [np.argmax(norms)]
    d = sq_dists(x)
    np.fill_diagonal(d, np.inf)
    mean_knn = np.sort(d, axis=1)[:, :6].mean(1)  # one cluster: k = min(20, 12 // 2)
    none = jnp.zeros(12, bool)
    assert select.typiclust(x, 1, key=key, labelled=none).tolist() == [np.argmin(mean_knn)]
    got = select.typiclust(x, 3, key=key, num_clusters=1).tolist()  # recomputed after each pick
    assert got == typiclust_reference(x, np.zeros(12, int), [], np.arange(12), 3).tolist()
    assert (select.kmeans(x, 1, key=key) == 0).all()


# Every selection of features (and ICAL, on log-probs): (input, call(input, b, key, **masks)).
SELECTIONS = {
    "coreset": ("features", lambda x, b, k, **m: select.coreset(x, b, **m)),
    "badge": ("embeddings", lambda x, b, k, **m: select.badge(x, b, key=k, **m)),
    "typiclust": ("features", lambda x, b, k, **m: select.typiclust(x, b, key=k, **m)),
    "probcover": ("features", lambda x, b, k, **m: select.probcover(x, b, radius=0.5, **m)),
    "ical": ("log_probs", lambda x, b, k, **m: select.ical(x, b, key=k, **m)),
}
WITH_LABELLED = ("coreset", "typiclust", "probcover")


def pool_input(name, rng, dtype=np.float64):
    """``[6, 2]`` features, or ``[4, 6, 3]`` log-probs for ICAL."""
    if SELECTIONS[name][0] == "log_probs":
        return jnp.asarray(random_log_probs(rng, 4, 6, 3, dtype=dtype))
    return jnp.asarray(rng.normal(size=(6, 2)).astype(dtype))


@pytest.mark.parametrize("name", SELECTIONS)
def test_short_pool_under_tracing_fills_the_sentinel(key, rng, name):
    argument, call = SELECTIONS[name]
    x, N = pool_input(name, rng), 6
    two, none = jnp.zeros(N, bool).at[jnp.array([1, 4])].set(True), jnp.zeros(N, bool)

    def by_available(mask):
        return call(x, 3, key, available=mask)

    def by_labelled(mask):  # selectable = ~labelled = mask
        return call(x, 3, key, labelled=~mask)

    jitted = jax.jit(by_available)
    batched = jax.vmap(by_labelled if name in WITH_LABELLED else by_available)(
        jnp.stack([two, none])
    )
    for got in (jitted(two), batched[0]):
        assert sorted(got[:2].tolist()) == [1, 4] and int(got[2]) == N  # selectable first
    assert (jitted(none) == N).all() and (batched[1] == N).all()
    with pytest.raises(ValueError, match="available"):
        by_available(two)


KEYED = {
    "badge": lambda x, k: select.badge(x, 2, key=k),
    "typiclust": lambda x, k: select.typiclust(x, 2, key=k),
    "kmeans": lambda x, k: select.kmeans(x, 2, key=k),
    "ical": lambda x, k: select.ical(x, 2, key=k),
}


@pytest.mark.unchecked  # wrong keys on purpose, for jaxal's own messages
@pytest.mark.parametrize("bad_key", [None, 0])
@pytest.mark.parametrize("name", KEYED)
def test_key_must_be_a_prng_key(rng, name, bad_key):
    x = pool_input("ical" if name == "ical" else "coreset", rng)
    with pytest.raises(TypeError, match=r"key must be a JAX PRNG key.*jax\.random\.key"):
        KEYED[name](x, bad_key)


NONFINITE_CALLS = {
    **SELECTIONS,
    "kmeans": ("features", lambda x, b, k: select.kmeans(x, b, key=k)),
    "probcover_radius": (
        "features",
        lambda x, b, k: select.probcover_radius(x, jnp.arange(6) % 2),
    ),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("name", NONFINITE_CALLS)
def test_nonfinite_input_raises_naming_it(key, rng, name, bad, dtype):
    argument, call = NONFINITE_CALLS[name]
    x = pool_input(name if name in SELECTIONS else "coreset", rng, dtype)
    x = x.at[(0,) * x.ndim].set(bad)
    with pytest.raises(ValueError, match=f"{argument} contains"):
        call(x, 2, key)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_features_dtype_shape_and_candidates_are_checked(rng):
    x = rng.normal(size=(6, 2))
    with pytest.raises(TypeError, match="features must have a floating dtype"):
        select.coreset(np.arange(12).reshape(6, 2), 1)
    with pytest.raises(ValueError, match=r"embeddings must have shape \[N, D\]"):
        select.badge(x[:, 0], 1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="candidates contains NaN"):
        select.probcover_radius(x, np.arange(6) % 2, candidates=np.array([0.1, np.nan]))
