r"""Cached-posterior acquisition benchmark: compare acquisition functions without retraining.

Training dominates an active-learning experiment, so comparing ten acquisition functions the
usual way costs ten sets of training runs. Here the posterior predictions of **real** training
runs are recorded once (:func:`record`: at every round of a :func:`jaxal.loop.run`, the pool
and test log-probs ``[K, N, C]`` / ``[K, M, C]``, the labelled mask and the test accuracy) and
any strategy is then **replayed** on every recorded round (:func:`replay`), which takes
seconds. For each strategy and recorded state, replay measures:

* ``time_ms``: the jitted selection's wall time (best of ``repeats`` after a warm-up);
* ``joint_mi``: the information the batch carries about the model, :math:`I(y_B; \theta)`
  under the recorded posterior (:func:`joint_mutual_information`, a Monte-Carlo estimate);
* ``nll_gain`` and ``accuracy``: the batch's value for **test predictions**, with the true
  labels of the batch and no retraining. The recorded posterior samples are reweighted by the
  likelihood of the batch's labels (a Bayesian update of the mixture over the ``K`` samples),

  .. math:: w_k \propto \prod_{i \in B} p_k(y_i), \qquad
            p(y^* \mid x^*, B) = \sum_k w_k\, p_k(y^* \mid x^*),

  and ``nll_gain`` is the drop in mean test negative log-likelihood from the recorded
  predictive to the reweighted one (nats; higher is better), ``accuracy`` the reweighted
  predictive's test accuracy. It is a proxy that ranks batches by how much their labels
  discriminate between the posterior samples in directions that matter for the test set;
  with few samples ``K`` it saturates, so it ranks rather than predicts learning curves;
* ``classes``: the number of distinct true classes in the batch (diversity);
* ``overlap``: for each pair of strategies, the mean Jaccard overlap of their batches.

The trajectories' own learning curves (the accuracy of the models actually trained after each
recorded acquisition) are kept in the cache and shown beside the replay. A small cache
recorded on scikit-learn's digits ships with jaxal (:func:`load_bundled`), so ``jaxal bench``
runs offline in seconds.
"""

import json
import time
from collections.abc import Mapping, Sequence
from functools import partial
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from jaxal import loop
from jaxal.data import Dataset
from jaxal.posterior import Posterior
from jaxal.scores import _entropy
from jaxal.strategies import Strategy, get as get_strategy
from jaxal.typing import Key

BUNDLED = "digits_cache.npz"
"""The shipped cache (``jaxal/_data/``): digits, a 8-member ensemble, random and BALD runs."""


class Cache(NamedTuple):
    """Recorded predictions of ``T`` trajectories of ``R + 1`` states each.

    Attributes:
      log_probs_pool: ``[T, R + 1, K, N, C]`` pool log-probs of the posterior fitted at each
        state (stored as float16; replay converts to float32).
      log_probs_test: ``[T, R + 1, K, M, C]`` test log-probs of the same posteriors.
      labelled: bool ``[T, R + 1, N]`` labelled masks.
      accuracy: ``[T, R + 1]`` test accuracy of the trained posterior at each state.
      y_pool: ``[N]`` true pool labels (revealed only for the selected batch).
      y_test: ``[M]`` test labels.
      strategies: ``T`` names of the strategies that produced the trajectories.
      b: the acquisition size of the recorded runs (the default replay size).
      dataset: the dataset's name.
    """

    log_probs_pool: Float[np.ndarray, "T S K N C"]
    log_probs_test: Float[np.ndarray, "T S K M C"]
    labelled: Bool[np.ndarray, "T S N"]
    accuracy: Float[np.ndarray, "T S"]
    y_pool: Int[np.ndarray, " N"]
    y_test: Int[np.ndarray, " M"]
    strategies: tuple[str, ...]
    b: int
    dataset: str


def record(
    data: Dataset,
    strategies: Sequence[str],
    *,
    key: Key,
    posterior: Posterior,
    initial: int,
    rounds: int,
    b: int,
    dataset: str = "custom",
) -> Cache:
    """Run the loop once per named strategy and record the posterior's predictions each round.

    Every strategy starts from the same initial labels and fit (:func:`jaxal.loop.compare`'s
    common random numbers). The posterior of each state is the one the loop trained, so its
    predictions are those of real training runs.

    Args:
      data: a classification :class:`~jaxal.data.Dataset`.
      strategies: registered strategy names (:mod:`jaxal.strategies`) to record.
      key: PRNG key of the runs (initial labels, fits, predictions).
      posterior: the posterior to train, e.g. :func:`jaxal.posterior.ensemble`.
      initial, rounds, b: the loop's budget (``initial + rounds * b`` <= pool size).
      dataset: a name stored with the cache.
    """
    if not strategies:
        raise ValueError("strategies must name at least one strategy to record")
    run_key, predict_key = jax.random.split(key)
    start = loop.init(data, key=run_key, posterior=posterior, initial=initial, rounds=rounds, b=b)

    @jax.jit
    def predict(params):
        pool_key, test_key = jax.random.split(predict_key)
        return (
            posterior.predict(params, data.x_pool, key=pool_key),
            posterior.predict(params, data.x_test, key=test_key),
        )

    trajectories = []
    for name in strategies:
        states = [start]
        loop.run(
            start,
            data,
            posterior=posterior,
            strategy=get_strategy(name),
            on_round=states.append,
        )
        predictions = [predict(s.params) for s in states]
        trajectories.append(
            {
                "pool": np.stack([np.asarray(p, np.float16) for p, _ in predictions]),
                "test": np.stack([np.asarray(t, np.float16) for _, t in predictions]),
                "labelled": np.stack([np.asarray(s.labelled) for s in states]),
                "accuracy": np.asarray(states[-1].metrics["accuracy"], np.float32),
            }
        )
    return Cache(
        log_probs_pool=np.stack([t["pool"] for t in trajectories]),
        log_probs_test=np.stack([t["test"] for t in trajectories]),
        labelled=np.stack([t["labelled"] for t in trajectories]),
        accuracy=np.stack([t["accuracy"] for t in trajectories]),
        y_pool=np.asarray(data.y_pool),
        y_test=np.asarray(data.y_test),
        strategies=tuple(strategies),
        b=int(b),
        dataset=dataset,
    )


_ARRAYS = ("log_probs_pool", "log_probs_test", "labelled", "accuracy", "y_pool", "y_test")


def save(cache: Cache, path: str | Path) -> None:
    """Write ``cache`` to a compressed ``.npz`` (arrays plus a JSON ``meta`` entry)."""
    meta = {"strategies": list(cache.strategies), "b": cache.b, "dataset": cache.dataset}
    arrays = {name: getattr(cache, name) for name in _ARRAYS}
    np.savez_compressed(Path(path), meta=np.asarray(json.dumps(meta)), **arrays)


def load(path: str | Path) -> Cache:
    """Read a cache written by :func:`save`; ``FileNotFoundError`` / ``ValueError`` if invalid."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no cache file at {path}; write one with jaxal.bench.save")
    with np.load(path) as npz:
        missing = sorted({"meta", *_ARRAYS} - set(npz.files))
        if missing:
            raise ValueError(f"{path} is not a jaxal.bench cache: missing {missing}")
        meta = json.loads(str(npz["meta"]))
        arrays = {name: npz[name] for name in _ARRAYS}
    return Cache(
        **arrays, strategies=tuple(meta["strategies"]), b=int(meta["b"]), dataset=meta["dataset"]
    )


def load_bundled() -> Cache:
    """The cache shipped with jaxal: digits, 8-member ensemble, random and BALD trajectories."""
    return load(resources.files("jaxal") / "_data" / BUNDLED)


@partial(jax.jit, static_argnames="num_samples")
def joint_mutual_information(
    log_probs: Float[Array, "K N C"],
    indices: Int[Array, " B"],
    *,
    key: Key,
    num_samples: int = 10_000,
) -> Float[Array, ""]:
    r"""Monte-Carlo estimate of the batch's joint mutual information :math:`I(y_B; \theta)`.

    :math:`I = H[y_B] - \sum_{i \in B} \frac1K \sum_k H[p_k(y_i)]`; the joint entropy is
    estimated from ``S`` label configurations drawn from the mixture (a sample index ``k``
    uniformly, then every :math:`y_i \sim p_k(y_i)`), stratified so each ``k`` draws ``S / K``
    of them: :math:`H[y_B] \approx -\frac1S \sum_s \log \frac1K \sum_k \prod_i p_k(y_i^s)`.
    Unbiased for the log-mixture given each configuration; the standard error shrinks as
    :math:`1/\sqrt S`.

    Args:
      log_probs: ``[K, N, C]`` pool log-probabilities.
      indices: ``[B]`` the batch.
      key: PRNG key for the configurations.
      num_samples: ``S`` (static), rounded down to a multiple of ``K`` (at least ``K``).
    """
    K = log_probs.shape[0]
    per_k = max(num_samples // K, 1)
    log_probs_K_B_C = log_probs[:, indices]
    labels_K_S_B = jax.random.categorical(
        key, log_probs_K_B_C[:, None], axis=-1, shape=(K, per_k, indices.shape[0])
    )
    # log p_j(y^s) for every sample j and configuration s drawn by sample k: [J, K * S]
    flat_labels_KS_B = labels_K_S_B.reshape(K * per_k, -1)
    log_lik_J_KS = jnp.sum(
        jnp.take_along_axis(log_probs_K_B_C[:, None], flat_labels_KS_B[None, :, :, None], axis=-1)[
            ..., 0
        ],
        axis=-1,
    )
    joint_entropy = -jnp.mean(jax.nn.logsumexp(log_lik_J_KS, axis=0) - jnp.log(K))
    expected_entropy = jnp.sum(_entropy.expected_entropy(log_probs_K_B_C))
    return joint_entropy - expected_entropy


@jax.jit
def reweighted_test_metrics(
    log_probs_pool: Float[Array, "K N C"],
    log_probs_test: Float[Array, "K M C"],
    indices: Int[Array, " B"],
    y_pool: Int[Array, " N"],
    y_test: Int[Array, " M"],
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    r"""``(nll_gain, accuracy)`` of the posterior reweighted by the batch's true labels.

    :math:`\log w_k = \sum_{i \in B} \log p_k(y_i) - \operatorname{logsumexp}`; the test
    predictive :math:`\sum_k w_k p_k(y^*)` gives the mean test NLL, and ``nll_gain`` is the
    recorded (uniform-weight) mixture's NLL minus it.
    """
    K = log_probs_pool.shape[0]
    batch_log_lik_K = jnp.sum(
        jnp.take_along_axis(log_probs_pool[:, indices], y_pool[indices][None, :, None], axis=-1),
        axis=(1, 2),
    )
    log_w_K = jax.nn.log_softmax(batch_log_lik_K)
    test_log_lik_K_M = jnp.take_along_axis(log_probs_test, y_test[None, :, None], axis=-1)[..., 0]
    nll_before = -jnp.mean(jax.nn.logsumexp(test_log_lik_K_M, axis=0) - jnp.log(K))
    nll_after = -jnp.mean(jax.nn.logsumexp(test_log_lik_K_M + log_w_K[:, None], axis=0))
    log_pred_M_C = jax.nn.logsumexp(log_probs_test + log_w_K[:, None, None], axis=0)
    accuracy = jnp.mean(jnp.argmax(log_pred_M_C, axis=-1) == y_test)
    return nll_before - nll_after, accuracy


def _best_time(fn, *args, repeats: int) -> tuple[Array, float]:
    out = jax.block_until_ready(fn(*args))  # warm-up (compiles on the first state)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return out, best


def replay(
    cache: Cache,
    strategies: Mapping[str, Strategy],
    *,
    key: Key,
    b: int | None = None,
    repeats: int = 3,
) -> dict:
    """Replay ``strategies`` on every recorded state of ``cache`` and measure their batches.

    Args:
      cache: from :func:`record`, :func:`load` or :func:`load_bundled`.
      strategies: ``{name: strategy}`` with the :mod:`jaxal.strategies` signature.
      key: PRNG key; every strategy sees the same per-state keys (common random numbers).
      b: batch size (default: the recorded runs' ``cache.b``).
      repeats: timed repetitions per state after a warm-up.

    Returns:
      ``{"strategies": {name: {metric: mean over states}}, "per_state": {name: {metric:
      [T * (R + 1)]}}, "overlap": {name: {other: mean Jaccard}}, "ranking": [names by
      nll_gain, best first], "recorded": {trajectory name: accuracy curve}}``.
    """
    if not strategies:
        raise ValueError("strategies must hold at least one strategy to replay")
    b = cache.b if b is None else b
    T, S = cache.labelled.shape[:2]
    N = cache.labelled.shape[-1]
    available_counts = N - cache.labelled.sum(-1)
    if b < 1 or b > int(available_counts.min()):
        raise ValueError(
            f"b must be in [1, {int(available_counts.min())}] (the fewest unlabelled points of "
            f"a recorded state); got {b}"
        )
    y_pool, y_test = jnp.asarray(cache.y_pool), jnp.asarray(cache.y_test)
    states = [(t, s) for t in range(T) for s in range(S)]
    keys = jax.random.split(key, len(states))
    selections: dict[str, list[np.ndarray]] = {}
    per_state: dict[str, dict[str, list[float]]] = {}
    for name, strategy in strategies.items():
        select = jax.jit(strategy, static_argnums=3)
        metrics = {"time_ms": [], "joint_mi": [], "nll_gain": [], "accuracy": [], "classes": []}
        chosen = []
        for (t, s), state_key in zip(states, keys, strict=True):
            pool_K_N_C = jnp.asarray(cache.log_probs_pool[t, s], jnp.float32)
            test_K_M_C = jnp.asarray(cache.log_probs_test[t, s], jnp.float32)
            available_N = ~jnp.asarray(cache.labelled[t, s])
            select_key, mi_key = jax.random.split(state_key)
            index_B, seconds = _best_time(
                select, select_key, pool_K_N_C, available_N, b, repeats=repeats
            )
            gain, accuracy = reweighted_test_metrics(
                pool_K_N_C, test_K_M_C, index_B, y_pool, y_test
            )
            metrics["time_ms"].append(1e3 * seconds)
            metrics["joint_mi"].append(
                float(joint_mutual_information(pool_K_N_C, index_B, key=mi_key))
            )
            metrics["nll_gain"].append(float(gain))
            metrics["accuracy"].append(float(accuracy))
            metrics["classes"].append(len(np.unique(cache.y_pool[np.asarray(index_B)])))
            chosen.append(np.asarray(index_B))
        selections[name] = chosen
        per_state[name] = metrics
    names = list(strategies)
    overlap = {
        a: {
            c: float(
                np.mean(
                    [
                        len(np.intersect1d(x, y)) / len(np.union1d(x, y))
                        for x, y in zip(selections[a], selections[c], strict=True)
                    ]
                )
            )
            for c in names
        }
        for a in names
    }
    summary = {n: {m: float(np.mean(v)) for m, v in per_state[n].items()} for n in names}
    return {
        "dataset": cache.dataset,
        "b": b,
        "states": len(states),
        "strategies": summary,
        "per_state": per_state,
        "overlap": overlap,
        "ranking": sorted(names, key=lambda n: -summary[n]["nll_gain"]),
        "recorded": {
            f"{name} #{t}": cache.accuracy[t].tolist() for t, name in enumerate(cache.strategies)
        },
    }
