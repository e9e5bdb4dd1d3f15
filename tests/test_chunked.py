"""Chunked scoring: equal to scoring the whole pool, for arrays, memmaps and iterables."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxal
from tests.reference import random_log_probs

K, N, C = 6, 1003, 4
CHUNK = 128  # does not divide N


@pytest.fixture
def log_probs(rng):
    return random_log_probs(rng, K, N, C)


@pytest.mark.parametrize("score_fn", [jaxal.scores.bald, jaxal.scores.predictive_entropy])
@pytest.mark.parametrize("as_jax", [False, True], ids=["numpy", "jax"])
def test_score_equals_unchunked(log_probs, score_fn, as_jax):
    pool = jnp.asarray(log_probs) if as_jax else log_probs
    scores_N = jaxal.chunked.score(score_fn, pool, chunk_size=CHUNK)
    assert isinstance(scores_N, np.ndarray) and scores_N.shape == (N,)
    np.testing.assert_allclose(scores_N, score_fn(log_probs), rtol=1e-12, atol=1e-12)


def test_memmap(log_probs, tmp_path):
    path = tmp_path / "pool.npy"
    np.save(path, log_probs.astype(np.float32))
    pool = np.load(path, mmap_mode="r")
    assert isinstance(pool, np.memmap)
    scores_N = jaxal.chunked.score(jaxal.scores.bald, pool, chunk_size=CHUNK)
    assert scores_N.dtype == np.float32
    np.testing.assert_allclose(scores_N, jaxal.scores.bald(np.asarray(pool)), rtol=1e-5, atol=1e-6)


def test_copy_on_write_memmap_keeps_changes(log_probs, tmp_path):
    path = tmp_path / "pool.npy"
    np.save(path, log_probs)
    pool = np.load(path, mmap_mode="c")
    pool[:, -5:] = np.log(np.full((K, 5, C), 1 / C))  # in memory only: BALD 0 there
    scores_N = jaxal.chunked.score(jaxal.scores.bald, pool, chunk_size=CHUNK)
    np.testing.assert_allclose(scores_N, jaxal.scores.bald(np.asarray(pool)), atol=1e-12)
    np.testing.assert_allclose(scores_N[-5:], 0.0, atol=1e-12)


def test_iterable_of_uneven_chunks(log_probs):
    bounds = [0, 50, 51, 400, 700, N]  # chunks of 50, 1, 349 (split in three), 300, 303
    chunks = (log_probs[:, a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    scores_N = jaxal.chunked.score(jaxal.scores.bald, chunks, chunk_size=CHUNK)
    np.testing.assert_allclose(scores_N, jaxal.scores.bald(log_probs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("with_available", [False, True], ids=["all", "available"])
@pytest.mark.parametrize("b", [1, 10, 200])  # b > CHUNK too
def test_top_k_equals_select_top_k(log_probs, rng, with_available, b):
    available = rng.random(N) < 0.5 if with_available else None
    indices_B, scores_B = jaxal.chunked.top_k(
        jaxal.scores.bald, log_probs, b, chunk_size=CHUNK, available=available
    )
    full_N = jaxal.scores.bald(log_probs)
    expected_B = jaxal.select.top_k(full_N, b, available=available)
    np.testing.assert_array_equal(indices_B, expected_B)
    np.testing.assert_allclose(scores_B, full_N[expected_B], rtol=1e-12)


def test_top_k_ties_towards_lower_index():
    log_probs = np.log(np.full((2, 300, 3), 1 / 3))  # every score is 0
    indices_B, _ = jaxal.chunked.top_k(jaxal.scores.bald, log_probs, 5, chunk_size=64)
    np.testing.assert_array_equal(indices_B, np.arange(5))


def first_class(log_probs):
    """A score that is ``-inf`` at points where class 0 has probability 0."""
    return log_probs[0, :, 0]


def few_finite_scores(N, finite):
    """``[K, N, C]``: class 0 has probability 0 except at the points ``finite`` (``1 / C``)."""
    with np.errstate(divide="ignore"):
        pool = np.log(np.tile([0.0] + [1 / (C - 1)] * (C - 1), (K, N, 1)))
    pool[:, finite] = -np.log(C)
    return pool


def test_top_k_rejects_fewer_finite_scores_than_b():
    # Issue 15: with 2 finite scores and b = 4, the placeholders of the running best
    # (index 0, score -inf) came back: duplicated, unavailable indices.
    pool = few_finite_scores(20, [5, 13])
    with pytest.raises(ValueError, match="score_fn gave an available point a NaN or infinite"):
        jaxal.chunked.top_k(first_class, pool, 4, chunk_size=8, available=np.arange(20) > 2)
    with pytest.raises(ValueError, match="NaN or infinite"):
        jaxal.chunked.top_k(lambda lp: first_class(lp) * 0.0, pool, 1, chunk_size=8)  # NaN


@pytest.mark.parametrize("transform", ["jit", "vmap"])
def test_traced_top_k_past_the_available_count_holds_the_sentinel(transform, rng):
    pool = jnp.asarray(random_log_probs(rng, K, 10, C))
    masks = jnp.array([[False, True] + [False] * 7 + [True], [False] * 10, [True] * 10])

    def select(lp, mask):
        return jaxal.chunked.top_k(jaxal.scores.bald, lp, 3, chunk_size=4, available=mask)

    if transform == "jit":
        indices = np.stack([jax.jit(select)(pool, mask)[0] for mask in masks])
    else:
        indices = jax.vmap(select, in_axes=(None, 0))(pool, masks)[0]
    np.testing.assert_array_equal(indices[0, 2], 10)
    assert set(indices[0, :2].tolist()) == {1, 9}
    np.testing.assert_array_equal(indices[1], [10, 10, 10])
    expected = jaxal.select.top_k(jaxal.scores.bald(pool), 3)
    np.testing.assert_array_equal(indices[2], expected)
    with pytest.raises(ValueError, match="larger than the number of available"):
        select(pool, masks[0])


def test_traced_top_k_ranks_available_points_first_whatever_their_score():
    # Under jit the score check is skipped; an available point with score -inf or NaN still
    # ranks before every unavailable point (and the placeholders), lowest index first.
    pool = jnp.asarray(few_finite_scores(12, [5, 9]))
    available = jnp.arange(12) >= 4

    def select(lp, mask):
        return jaxal.chunked.top_k(first_class, lp, 4, chunk_size=5, available=mask)

    indices, scores = jax.jit(select)(pool, available)
    np.testing.assert_array_equal(indices, [5, 9, 4, 6])
    np.testing.assert_array_equal(scores[2:], -np.inf)


def test_one_compilation_across_chunks(log_probs):
    traces = []

    def counted_bald(log_probs):
        traces.append(log_probs.shape)
        return jaxal.scores.bald(log_probs)

    jaxal.chunked.score(counted_bald, log_probs, chunk_size=CHUNK)
    assert traces == [(K, CHUNK, C)]
    traces.clear()
    jaxal.chunked.top_k(counted_bald, log_probs, 5, chunk_size=CHUNK)
    assert len(traces) <= 2 and set(traces) == {(K, CHUNK, C)}  # eval_shape + one jit trace


@pytest.mark.parametrize("chunk_size", [0, -3])
def test_bad_chunk_size(log_probs, chunk_size):
    with pytest.raises(ValueError, match="chunk_size"):
        jaxal.chunked.score(jaxal.scores.bald, log_probs, chunk_size=chunk_size)
    with pytest.raises(ValueError, match="chunk_size"):
        jaxal.chunked.top_k(jaxal.scores.bald, log_probs, 3, chunk_size=chunk_size)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_bad_chunk_size_type(log_probs):
    with pytest.raises(TypeError, match="chunk_size must be an int"):
        jaxal.chunked.score(jaxal.scores.bald, log_probs, chunk_size=1.5)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
@pytest.mark.parametrize(
    "second", [(K + 1, 10, C), (K, 10, C + 1), (K, 10)], ids=["K", "C", "rank"]
)
def test_mismatched_chunks(log_probs, second):
    chunks = [log_probs[:, :10], np.log(np.full(second, 0.5))]
    with pytest.raises(ValueError, match="shape"):
        jaxal.chunked.score(jaxal.scores.bald, chunks, chunk_size=CHUNK)


def test_mismatched_dtype(log_probs):
    chunks = [log_probs[:, :10], log_probs[:, 10:20].astype(np.float32)]
    with pytest.raises(TypeError, match="dtype"):
        jaxal.chunked.score(jaxal.scores.bald, chunks, chunk_size=CHUNK)


def test_empty_pool():
    with pytest.raises(ValueError, match="empty"):
        jaxal.chunked.score(jaxal.scores.bald, [], chunk_size=CHUNK)


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_bad_top_k_arguments(log_probs):
    with pytest.raises(ValueError, match="b = "):
        jaxal.chunked.top_k(jaxal.scores.bald, log_probs, N + 1, chunk_size=CHUNK)
    with pytest.raises(ValueError, match="b must"):
        jaxal.chunked.top_k(jaxal.scores.bald, log_probs, 0, chunk_size=CHUNK)
    with pytest.raises(ValueError, match="available"):
        jaxal.chunked.top_k(
            jaxal.scores.bald, log_probs, 3, chunk_size=CHUNK, available=np.ones(N - 1, bool)
        )
    with pytest.raises(ValueError, match="available"):
        jaxal.chunked.top_k(
            jaxal.scores.bald, log_probs, 3, chunk_size=CHUNK, available=np.ones(N + 1, bool)
        )
    few = np.zeros(N, bool)
    few[:2] = True
    with pytest.raises(ValueError, match="available points"):
        jaxal.chunked.top_k(jaxal.scores.bald, log_probs, 3, chunk_size=CHUNK, available=few)


def test_score_fn_must_be_per_point(log_probs):
    with pytest.raises(ValueError, match="score_fn"):
        jaxal.chunked.score(lambda lp: jnp.sum(lp, axis=(0, 2))[:5], log_probs, chunk_size=CHUNK)


def test_jit_of_jitted_score_fn(log_probs):
    scores_N = jaxal.chunked.score(jax.jit(jaxal.scores.bald), log_probs, chunk_size=CHUNK)
    np.testing.assert_allclose(scores_N, jaxal.scores.bald(log_probs), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- buckets


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_bucket_size():
    assert [jaxal.chunked.bucket_size(n) for n in (1, 2, 3, 1000, 1024, 1025)] == [
        1,
        2,
        4,
        1024,
        1024,
        2048,
    ]
    assert [jaxal.chunked.bucket_size(n, multiple=100) for n in (1, 100, 101)] == [100, 100, 200]
    for bad, error in [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)]:
        with pytest.raises(error, match="n must"):
            jaxal.chunked.bucket_size(bad)
    with pytest.raises(ValueError, match="multiple must"):
        jaxal.chunked.bucket_size(10, multiple=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("as_jax", [False, True], ids=["numpy", "jax"])
def test_pad_pool(log_probs, rng, dtype, as_jax):
    xp = jnp if as_jax else np
    available_N = rng.random(N) < 0.5
    pool = xp.asarray(log_probs.astype(dtype))
    padded, available_P = jaxal.chunked.pad_pool(pool, xp.asarray(available_N))
    assert isinstance(padded, type(pool)) and isinstance(available_P, type(pool))
    assert padded.shape == (K, 1024, C) and padded.dtype == dtype
    np.testing.assert_array_equal(padded[:, :N], pool)
    np.testing.assert_allclose(np.exp(padded[:, N:]), 1 / C, rtol=1e-6)
    np.testing.assert_array_equal(available_P, np.concatenate([available_N, np.zeros(21, bool)]))
    assert np.isfinite(jaxal.scores.bald(padded)).all()
    _, all_P = jaxal.chunked.pad_pool(pool, multiple=100)
    assert all_P.shape == (1100,) and all_P[:N].all() and not all_P[N:].any()


@pytest.mark.unchecked  # wrong inputs on purpose, for jaxal's own messages
def test_pad_pool_bad_arguments(log_probs):
    with pytest.raises(ValueError, match="shape"):
        jaxal.chunked.pad_pool(log_probs[0])
    with pytest.raises(TypeError, match="floating"):
        jaxal.chunked.pad_pool(np.zeros((K, N, C), np.int32))
    with pytest.raises(ValueError, match="available"):
        jaxal.chunked.pad_pool(log_probs, np.ones(N - 1, bool))
    with pytest.raises(TypeError, match="available"):
        jaxal.chunked.pad_pool(log_probs, np.ones(N, np.int32))


SELECTIONS = {
    "top_k": lambda lp, available, key: jaxal.select.top_k(
        jaxal.scores.bald(lp), 10, available=available
    ),
    "stochastic": lambda lp, available, key: jaxal.select.stochastic(
        jaxal.scores.bald(lp), 10, key=key, available=available
    ),
    "batchbald_exact": lambda lp, available, key: jaxal.select.batchbald(
        lp, 3, available=available
    )[0],
    "batchbald_sampled": lambda lp, available, key: jaxal.select.batchbald(
        lp, 5, key=key, num_samples=60, available=available
    )[0],
}


@pytest.mark.parametrize("name", SELECTIONS)
@pytest.mark.parametrize("with_available", [False, True], ids=["all", "available"])
def test_selection_on_padded_pool_equals_unpadded(log_probs, rng, key, name, with_available):
    select = jax.jit(SELECTIONS[name])
    available_N = rng.random(N) < 0.5 if with_available else np.ones(N, bool)
    expected_B = select(log_probs, available_N, key)
    padded, available_P = jaxal.chunked.pad_pool(log_probs, available_N)
    np.testing.assert_array_equal(select(padded, available_P, key), expected_B)


def test_one_compilation_per_bucket(rng):
    traces = []

    @jax.jit
    def acquire(log_probs, available):
        traces.append(log_probs.shape)
        return jaxal.select.top_k(jaxal.scores.bald(log_probs), 5, available=available)

    full = random_log_probs(rng, 4, 1023, 3)
    for n in range(1000, 1024):
        indices_B = acquire(*jaxal.chunked.pad_pool(full[:, :n]))
        assert int(indices_B.max()) < n
    assert traces == [(4, 1024, 3)]
    acquire(*jaxal.chunked.pad_pool(full[:, :1000], multiple=1000))  # another bucket
    assert traces == [(4, 1024, 3), (4, 1000, 3)]
