r"""Cached-posterior acquisition benchmark: compare acquisition functions without retraining.

Training dominates an active-learning experiment, so comparing twenty acquisition functions
the usual way costs twenty sets of training runs. Here the posterior of **real** training runs
is recorded once (:func:`record`, at every round of a :func:`jaxal.loop.run`: the pool and
test log-probs ``[K, N, C]`` / ``[K, M, C]``, the pool's last-layer embeddings ``[K, N, H]``,
the labelled mask and the test accuracy, plus the pool and test inputs once) and any strategy
is then **replayed** on every recorded round (:func:`replay`), which takes seconds. Replay
builds the round context of each recorded state from the cache
(:class:`jaxal.context.Round`: pool and target predictions, pool and target inputs,
embeddings, labelled mask, a per-state key), so every registered strategy whose inputs the
cache holds takes part: the BALD family, EPIG and batch EPIG, ICAL, BatchBALD, EV-GP, and the
geometric methods (BADGE, Core-Set, TypiClust, ProbCover) on the recorded embeddings. The
**targets** are the test inputs: each state draws ``num_targets`` of them (with the state's
key), and their recorded test predictions are the round's target predictions. A strategy
that asks for something the cache lacks (the regression kernel methods need the network
itself, a cache without embeddings cannot feed the geometric methods) is skipped, with the
reason, instead of failing. For each strategy and recorded state, replay measures:

* ``time_ms``: the jitted selection's wall time (compiled once per strategy, best of up to
  ``repeats`` runs per state);
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
recorded acquisition) are kept in the cache and shown beside the replay.

A small cache recorded on scikit-learn's digits ships with jaxal (:func:`load_bundled`), so
``jaxal bench`` runs offline. It holds 2 trajectories (random, BALD) of 4 states each (20
random labels, then 3 rounds of 10) of a deep ensemble of ``K = 8`` one-hidden-layer MLPs of
width ``H = 16`` (narrower than ``jaxal run``'s 128, so the embeddings keep the file at 4 MB),
and was recorded with::

    jaxal bench-record --dataset digits --strategy random --strategy bald --samples 8 \
        --hidden 16 --rounds 3 --batch 10 --initial 20 --seed 0 \
        --out jaxal/_data/digits_cache.npz
"""

import json
import time
import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from jaxal import check, information, loop, progress as progress_bar
from jaxal.context import MissingSource, Round, masked_labels
from jaxal.data import Dataset
from jaxal.posterior import Posterior
from jaxal.strategies import Strategy, get as get_strategy
from jaxal.typing import Key

BUNDLED = "digits_cache.npz"
"""The shipped cache (``jaxal/_data/``): digits, an 8-member ensemble, random and BALD runs."""

VERSION = 2
"""The cache file format :func:`save` writes and :func:`load` reads (``meta["version"]``).
Format 1 (no ``version``) held predictions only: no inputs, no embeddings."""

DEFAULT_NUM_TARGETS = 32
"""Targets per replayed state, drawn from the test inputs: few, because batch EPIG's cost grows
linearly with them (the loop draws 100 a round, :class:`jaxal.context.Targets`)."""


class Cache(NamedTuple):
    r"""Recorded predictions of ``T`` trajectories of ``S = R + 1`` states each.

    Big arrays are stored as float16; replay converts them to float32.

    Attributes:
      log_probs_pool: ``[T, S, K, N, C]`` pool log-probs of the posterior fitted at each
        state.
      log_probs_test: ``[T, S, K, M, C]`` test log-probs of the same posteriors, with the same
        prediction key as the pool's (the same sample :math:`\theta_k` everywhere): the
        reweighted test metrics and, since the targets are the test inputs, the target
        predictions of the replayed rounds.
      embeddings: ``[T, S, K, N, H]`` each sample's last-layer features on the pool (same
        key), or ``None`` when the posterior has no ``embed``.
      labelled: bool ``[T, S, N]`` labelled masks.
      accuracy: ``[T, S]`` test accuracy of the trained posterior at each state.
      x_pool: ``[N, ...]`` pool inputs.
      x_test: ``[M, ...]`` test inputs (the targets).
      y_pool: ``[N]`` true pool labels (revealed only for the selected batch).
      y_test: ``[M]`` test labels.
      strategies: ``T`` names of the strategies that produced the trajectories.
      b: the acquisition size of the recorded runs (the default replay size).
      dataset: the dataset's name.
    """

    log_probs_pool: Float[np.ndarray, "T S K N C"]
    log_probs_test: Float[np.ndarray, "T S K M C"]
    embeddings: Float[np.ndarray, "T S K N H"] | None
    labelled: Bool[np.ndarray, "T S N"]
    accuracy: Float[np.ndarray, "T S"]
    x_pool: Float[np.ndarray, "N ..."]
    x_test: Float[np.ndarray, "M ..."]
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
    progress: bool = True,
) -> Cache:
    r"""Run the loop once per named strategy and record the posterior at every state.

    Every strategy starts from the same initial labels and fit (:func:`jaxal.loop.compare`'s
    common random numbers). The posterior of each state is the one the loop trained, so its
    predictions are those of real training runs. Each state's pool and test predictions and
    pool embeddings (``posterior.embed``) use one prediction key, so an MC-dropout sample
    :math:`\theta_k` is the same sample in all three, as EPIG's joint predictive needs. The
    test inputs serve as the replayed rounds' targets. A posterior without ``embed`` is
    recorded without embeddings (with a warning): replay then skips the strategies that need
    them.

    Args:
      data: a classification :class:`~jaxal.data.Dataset`.
      strategies: registered strategy names (:mod:`jaxal.strategies`) to record.
      key: PRNG key of the runs (initial labels, fits, predictions).
      posterior: the posterior to train, e.g. :func:`jaxal.posterior.ensemble`.
      initial, rounds, b: the loop's budget (``initial + rounds * b`` <= pool size).
      dataset: a name stored with the cache.
      progress: a bar of each strategy's rounds (:func:`jaxal.loop.run`); ``False``: none.
    """
    if not strategies:
        raise ValueError("strategies must name at least one strategy to record")
    if posterior.embed is None:
        warnings.warn(
            "the posterior has no `embed`: recording without last-layer embeddings, so replay "
            "will skip the strategies that need them (r.embeddings, r.features('last-layer'), "
            "r.features('badge'))",
            stacklevel=2,
        )
    run_key, predict_key = jax.random.split(key)
    start = loop.init(data, key=run_key, posterior=posterior, initial=initial, rounds=rounds, b=b)

    @jax.jit
    def predict(params):
        pool = posterior.predict(params, data.x_pool, key=predict_key)
        test = posterior.predict(params, data.x_test, key=predict_key)
        if posterior.embed is None:
            return pool, test, None
        return pool, test, posterior.embed(params, data.x_pool, key=predict_key)

    def stack16(arrays) -> np.ndarray:
        return np.stack([np.asarray(a, np.float16) for a in arrays])

    pool, test, embeddings, labelled, accuracy = [], [], [], [], []
    for name in strategies:
        states = [start]
        loop.run(
            start,
            data,
            posterior=posterior,
            strategy=get_strategy(name),
            on_round=states.append,
            progress=progress and f"recording {name}",
        )
        pool_S, test_S, embeddings_S = zip(*(predict(s.params) for s in states), strict=True)
        pool.append(stack16(pool_S))
        test.append(stack16(test_S))
        if posterior.embed is not None:
            embeddings.append(stack16(embeddings_S))
        labelled.append(np.stack([np.asarray(s.labelled) for s in states]))
        accuracy.append(np.asarray(states[-1].metrics["accuracy"], np.float32))
    return Cache(
        log_probs_pool=np.stack(pool),
        log_probs_test=np.stack(test),
        embeddings=np.stack(embeddings) if embeddings else None,
        labelled=np.stack(labelled),
        accuracy=np.stack(accuracy),
        x_pool=np.asarray(data.x_pool, np.float16),
        x_test=np.asarray(data.x_test, np.float16),
        y_pool=np.asarray(data.y_pool),
        y_test=np.asarray(data.y_test),
        strategies=tuple(strategies),
        b=int(b),
        dataset=dataset,
    )


_ARRAYS = (
    "log_probs_pool",
    "log_probs_test",
    "labelled",
    "accuracy",
    "x_pool",
    "x_test",
    "y_pool",
    "y_test",
)
_OPTIONAL = ("embeddings",)


def save(cache: Cache, path: str | Path) -> None:
    """Write ``cache`` to a compressed ``.npz`` (arrays plus a JSON ``meta`` entry with the
    format :data:`VERSION`)."""
    meta = {
        "version": VERSION,
        "strategies": list(cache.strategies),
        "b": cache.b,
        "dataset": cache.dataset,
    }
    arrays = {
        name: getattr(cache, name)
        for name in (*_ARRAYS, *_OPTIONAL)
        if getattr(cache, name) is not None
    }
    np.savez_compressed(Path(path), meta=np.asarray(json.dumps(meta)), **arrays)


def load(path: str | Path) -> Cache:
    """Read a cache written by :func:`save`.

    Raises:
      FileNotFoundError: no file at ``path``.
      ValueError: not a jaxal.bench cache, or one of another format :data:`VERSION` (record it
        again with ``jaxal bench-record``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no cache file at {path}; write one with jaxal.bench.save")
    with np.load(path) as npz:
        if "meta" not in npz.files:
            raise ValueError(f"{path} is not a jaxal.bench cache: it has no 'meta' entry")
        meta = json.loads(str(npz["meta"]))
        version = meta.get("version", 1)
        if version != VERSION:
            raise ValueError(
                f"{path} is a jaxal.bench cache of format {version}, but this jaxal reads format "
                f"{VERSION} (which also stores the pool and test inputs and the pool "
                "embeddings); record it again with `jaxal bench-record`"
            )
        missing = sorted(set(_ARRAYS) - set(npz.files))
        if missing:
            raise ValueError(f"{path} is not a jaxal.bench cache: missing {missing}")
        arrays = {name: npz[name] for name in _ARRAYS}
        optional: dict[str, Any] = {
            name: npz[name] if name in npz.files else None for name in _OPTIONAL
        }
    return Cache(
        **arrays,
        **optional,
        strategies=tuple(meta["strategies"]),
        b=int(meta["b"]),
        dataset=meta["dataset"],
    )


def load_bundled() -> Cache:
    """The cache shipped with jaxal: digits, 8-member ensemble, random and BALD trajectories."""
    with resources.as_file(resources.files("jaxal") / "_data" / BUNDLED) as path:
        return load(path)


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
    uniformly, then every :math:`y_i \sim p_k(y_i)` by inverse-CDF sampling), stratified so
    each ``k`` draws ``S / K`` of them:
    :math:`H[y_B] \approx -\frac1S \sum_s \log \frac1K \sum_k \prod_i p_k(y_i^s)`.
    Unbiased for the log-mixture given each configuration; the standard error shrinks as
    :math:`1/\sqrt S`.

    Args:
      log_probs: ``[K, N, C]`` pool log-probabilities.
      indices: ``[B]`` the batch.
      key: PRNG key for the configurations.
      num_samples: ``S`` (static), rounded down to a multiple of ``K`` (at least ``K``).
    """
    K = log_probs.shape[0]
    B = indices.shape[0]
    per_k = max(num_samples // K, 1)
    log_probs_K_B_C = log_probs[:, indices]
    # Inverse-CDF sampling: one uniform per label (Gumbel-max would draw C of them).
    cdf_K_B_C = jnp.cumsum(jnp.exp(log_probs_K_B_C), axis=-1)
    u_K_S_B = jax.random.uniform(key, (K, per_k, B), cdf_K_B_C.dtype) * cdf_K_B_C[:, None, :, -1]
    labels_K_S_B = jnp.sum(u_K_S_B[..., None] >= cdf_K_B_C[:, None], axis=-1)
    # log p_j(y^s) for every sample j and configuration s drawn by sample k: [J, K * S]
    flat_labels_KS_B = labels_K_S_B.reshape(K * per_k, -1)
    log_lik_J_KS = jnp.sum(
        jnp.take_along_axis(log_probs_K_B_C[:, None], flat_labels_KS_B[None, :, :, None], axis=-1)[
            ..., 0
        ],
        axis=-1,
    )
    joint_entropy = -jnp.mean(jax.nn.logsumexp(log_lik_J_KS, axis=0) - jnp.log(K))
    expected_entropy = jnp.sum(information.expected_entropy(log_probs_K_B_C))
    return joint_entropy - expected_entropy


# Duplicates (reason): this signature and record's only share their shape with others'
# (data._mnist1d.transform, streaming.init): annotated parameters, different logic.
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


class _State(NamedTuple):
    """One recorded state as the jitted selection's arguments (float32, fixed shapes), named
    as :class:`~jaxal.context.Round`'s keywords."""

    pool: Array
    target: Array
    x_pool: Array
    x_target: Array
    embeddings: Array | None
    labelled: Array
    labels: Array
    key: Key


def _float32(x: np.ndarray) -> Array:
    """A float16 cache array as a float32 device array (converted by numpy: no compilation)."""
    return jnp.asarray(np.asarray(x, np.float32))


def _states(cache: Cache, key: Key, *, num_targets: int) -> list[_State]:
    """Every recorded state, with its key and ``num_targets`` targets drawn from the test set."""
    T, S = cache.labelled.shape[:2]
    M = cache.y_test.shape[0]
    target_keys, round_keys = jax.random.split(key, (2, T * S))
    draw = jax.vmap(lambda k: jax.random.choice(k, M, (num_targets,), replace=False))
    target_TS_M = np.asarray(jax.jit(draw)(target_keys))
    x_pool = _float32(cache.x_pool)
    states = []
    for (t, s), target_M, round_key in zip(np.ndindex(T, S), target_TS_M, round_keys, strict=True):
        embeddings = None if cache.embeddings is None else _float32(cache.embeddings[t, s])
        states.append(
            _State(
                pool=_float32(cache.log_probs_pool[t, s]),
                target=_float32(cache.log_probs_test[t, s][:, target_M]),
                x_pool=x_pool,
                x_target=_float32(cache.x_test[target_M]),
                embeddings=embeddings,
                labelled=jnp.asarray(cache.labelled[t, s]),
                labels=masked_labels(jnp.asarray(cache.y_pool), jnp.asarray(cache.labelled[t, s])),
                key=round_key,
            )
        )
    return states


def _selection(strategy: Strategy, b: int):
    """``state -> [b] indices``: the strategy on the :class:`~jaxal.context.Round` of a state."""

    def select(state: _State) -> Array:
        return strategy(Round(**state._asdict()), b)

    return select


def _compile(lowered: jax.stages.Lowered) -> tuple[jax.stages.Compiled, float]:
    start = time.perf_counter()
    return lowered.compile(), time.perf_counter() - start


def _best_time(compiled, state: _State, *, repeats: int, budget_s: float = 0.2):
    """The selection and its best wall time over up to ``repeats`` runs (at least one; no
    more once the runs took ``budget_s``: slow selections are timed once)."""
    best, spent = float("inf"), 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        index_B = jax.block_until_ready(compiled(state))
        seconds = time.perf_counter() - start
        best, spent = min(best, seconds), spent + seconds
        if spent >= budget_s:
            break
    return index_B, best


def replay(
    cache: Cache,
    strategies: Mapping[str, Strategy],
    *,
    key: Key,
    b: int | None = None,
    num_targets: int | None = None,
    repeats: int = 3,
    progress: bool = True,
) -> dict:
    """Replay ``strategies`` on every recorded state of ``cache`` and measure their batches.

    Each state becomes a :class:`~jaxal.context.Round` built from the cache (pool and target
    predictions, pool and target inputs, embeddings, labelled mask) with its own key; every
    strategy sees the same states and keys (common random numbers). A strategy is traced and
    compiled once for all states (their shapes are equal). A strategy that asks the round for
    something the cache lacks is skipped, with the round's reason.

    Args:
      cache: from :func:`record`, :func:`load` or :func:`load_bundled`.
      strategies: ``{name: strategy}``, strategies ``(r: Round, b) -> [b] indices``
        (:mod:`jaxal.strategies`).
      key: PRNG key of the per-state keys.
      b: batch size (default: the recorded runs' ``cache.b``).
      num_targets: targets per state, drawn without replacement from the ``M`` test inputs
        (default: :data:`DEFAULT_NUM_TARGETS`, at most ``M``). Batch EPIG's cost grows
        linearly with it.
      repeats: timed runs per state (the best counts; a state whose runs took 0.2 s stops).
      progress: a bar of the strategies compiled, then replayed, where someone watches
        (:mod:`jaxal.progress`); ``False``: none.

    Returns:
      A JSON-able dict: ``"strategies"`` ``{name: {metric: mean over states}}``,
      ``"per_state"`` ``{name: {metric: [T * S]}}``, ``"batches"`` ``{name: [T * S] index
      lists}``, ``"overlap"`` ``{name: {other: mean Jaccard}}``, ``"ranking"`` (names by
      ``nll_gain``, best first), all for the replayed strategies; ``"skipped"`` ``{name:
      reason}``; ``"compile_s"`` ``{name: seconds to compile}``; ``"recorded"``
      ``{trajectory: accuracy curve}``; and ``dataset``, ``b``, ``states``, ``num_targets``.
    """
    if not strategies:
        raise ValueError("strategies must hold at least one strategy to replay")
    repeats = check.integer(repeats, "repeats")
    b = cache.b if b is None else b
    T, S, N = cache.labelled.shape
    M = cache.y_test.shape[0]
    available_counts = N - cache.labelled.sum(-1)
    if b < 1 or b > int(available_counts.min()):
        raise ValueError(
            f"b must be in [1, {int(available_counts.min())}] (the fewest unlabelled points of "
            f"a recorded state); got {b}"
        )
    num_targets = min(DEFAULT_NUM_TARGETS, M) if num_targets is None else num_targets
    if not 1 <= num_targets <= M:
        raise ValueError(f"num_targets must be in [1, {M}] (the test inputs); got {num_targets}")
    y_pool, y_test = jnp.asarray(cache.y_pool), jnp.asarray(cache.y_test)
    state_key, mi_key = jax.random.split(key)
    states = _states(cache, state_key, num_targets=num_targets)
    mi_keys = jax.random.split(mi_key, T * S)
    test_K_M_C = [_float32(cache.log_probs_test[ts]) for ts in np.ndindex(T, S)]
    selections: dict[str, list[np.ndarray]] = {}
    per_state: dict[str, dict[str, list[float]]] = {}
    skipped: dict[str, str] = {}
    compiled = {}
    bar = progress_bar.bar("replay", 2 * len(strategies), enabled=progress)
    with bar as update:
        for step, (name, strategy) in enumerate(strategies.items()):
            if update is not None:
                update(step, f"compiling {name}")
            try:
                lowered = jax.jit(_selection(strategy, b)).lower(states[0])
            except MissingSource as error:
                skipped[name] = str(error)
                continue
            compiled[name] = _compile(lowered)
        for step, name in enumerate(compiled, len(strategies) + len(skipped)):
            if update is not None:
                update(step, f"replaying {name}")
            metrics = {m: [] for m in ("time_ms", "joint_mi", "nll_gain", "accuracy", "classes")}
            chosen = []
            for state, test, mi_key in zip(states, test_K_M_C, mi_keys, strict=True):
                index_B, seconds = _best_time(compiled[name][0], state, repeats=repeats)
                gain, accuracy = reweighted_test_metrics(state.pool, test, index_B, y_pool, y_test)
                metrics["time_ms"].append(1e3 * seconds)
                metrics["joint_mi"].append(
                    float(joint_mutual_information(state.pool, index_B, key=mi_key))
                )
                metrics["nll_gain"].append(float(gain))
                metrics["accuracy"].append(float(accuracy))
                metrics["classes"].append(len(np.unique(cache.y_pool[np.asarray(index_B)])))
                chosen.append(np.asarray(index_B))
            selections[name] = chosen
            per_state[name] = metrics
        if update is not None:
            update(2 * len(strategies), "done")
    names = list(selections)
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
        "num_targets": num_targets,
        "strategies": summary,
        "per_state": per_state,
        "overlap": overlap,
        "batches": {n: [x.tolist() for x in selections[n]] for n in names},
        "ranking": sorted(names, key=lambda n: -summary[n]["nll_gain"]),
        "skipped": skipped,
        "compile_s": {name: seconds for name, (_, seconds) in compiled.items()},
        "recorded": {
            f"{name} #{t}": cache.accuracy[t].tolist() for t, name in enumerate(cache.strategies)
        },
    }
