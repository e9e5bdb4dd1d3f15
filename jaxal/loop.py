"""The compiled active-learning loop: whole rounds in one ``jit``, seeds under ``vmap``.

A round builds the round context (:class:`jaxal.context.Round`: the current posterior's
predictions and features, computed as the strategy asks for them), lets the strategy select
a batch among the unlabelled points, adds it to the labelled mask, refits the posterior on
the labelled points and evaluates it on the test set. Shapes never change (the labelled set
is a boolean mask over a fixed pool and the posterior fits with 0/1 weights), so rounds 2..R
reuse the program compiled for round 1. ``jax.vmap`` over a batch of states runs many seeds in
one program.

Design decisions:

* :class:`LoopState` holds what changes between rounds (mask, posterior parameters, key,
  round counter, history). The pool and test arrays (:class:`jaxal.data.Dataset`) are
  passed beside it: they are shared by every seed under ``vmap`` without being copied, and
  a checkpoint stores only what an interruption could lose. Optimiser state lives inside
  ``params`` for posteriors that warm-start; the default protocol refits from scratch.
* The key is stored as raw key data (``uint32``), so states checkpoint with orbax as-is.
* A strategy with memory across rounds (an ``init_memory`` attribute, see
  :mod:`jaxal.context`) keeps it in :attr:`LoopState.memory`, a fixed-shape pytree made by
  :func:`init` (``strategy=``) or, for a state without one, by :func:`run` before its first
  round; it is checkpointed like the rest. Stateless strategies leave it ``()``.
* Classification states record the cumulative labelling cost ``metrics["cost"]``
  (:func:`jaxal.conformal.query_cost`): ``log2 C`` per label asked among all classes
  (the initial labels and every strategy that shows no candidate sets), the candidate-set
  cost of the sets a strategy shows (:meth:`jaxal.context.Round.show_candidates`).
* :func:`run` is a Python loop over the jitted round that checkpoints after every round;
  :func:`restore` reads the latest checkpoint back. A checkpoint is written (atomically, by
  orbax) before the next round starts, so an interruption loses at most the round in flight
  and never an acquired label of a finished round.
* Checkpoints are verified: once orbax has finalised a step, jaxal records the sha256 and size
  of each of its files and the shape of each leaf of the state in :data:`CHECKSUMS` inside the
  step's directory. :func:`restore` (and :func:`run`, before continuing a directory) checks
  them and refuses, naming the step and the file, a step whose files changed, shrank or
  vanished, or whose shapes differ from the requested run's. The two latest steps are kept,
  so deleting a bad step's directory resumes from the one before it.
"""

import hashlib
import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jaxtyping import Bool

from jaxal import check, conformal, information, progress as progress_bar
from jaxal.context import Round, Targets, default_targets
from jaxal.data import Dataset, RegressionDataset
from jaxal.posterior import Posterior
from jaxal.strategies import Strategy
from jaxal.typing import Array, Key


class LoopState(NamedTuple):
    """Everything that changes between rounds; a pytree (leading seed axis under ``vmap``).

    Attributes:
      labelled: bool ``[N]`` mask of labelled pool points.
      params: the posterior's fitted parameters (any pytree).
      key: raw PRNG key data (``jax.random.key_data``) for the next round.
      round: int32 scalar, rounds completed.
      acquired: int32 ``[R, B]`` pool indices acquired in each round (``-1``: not yet).
      metrics: ``{"accuracy", "nll", "cost"}`` (classification) or ``{"rmse", "nll"}``
        (regression), each ``[R + 1]``: after the initial fit and after each round (NaN: not
        yet); ``cost`` is the cumulative labelling cost of the labelled points.
      memory: the strategy's memory across rounds (a fixed-shape pytree; ``()``: none).
    """

    labelled: Array
    params: Any
    key: Array
    round: Array
    acquired: Array
    metrics: dict[str, Array]
    memory: Any = ()


def evaluate(prediction, y: Array) -> dict[str, Array]:
    """Test metrics of a posterior's predictions.

    Classification (``log_probs [K, M, C]``): accuracy and mean negative log-likelihood of the
    mixture predictive. Regression (``(mean, var) [K, M]``): RMSE of the mixture mean and mean
    Gaussian negative log-likelihood of the moment-matched predictive.
    """
    if isinstance(prediction, tuple):
        mean_K_M, var_K_M = prediction
        mu_M = jnp.mean(mean_K_M, axis=0)
        total_var_M = jnp.var(mean_K_M, axis=0) + jnp.mean(var_K_M, axis=0)
        nll_M = 0.5 * (jnp.log(2 * jnp.pi * total_var_M) + (y - mu_M) ** 2 / total_var_M)
        return {"rmse": jnp.sqrt(jnp.mean((y - mu_M) ** 2)), "nll": jnp.mean(nll_M)}
    log_pbar_M_C = information.mean_log_probs(prediction)
    nll_M = -jnp.take_along_axis(log_pbar_M_C, y[:, None], axis=1)[:, 0]
    accuracy = jnp.mean(jnp.argmax(log_pbar_M_C, axis=-1) == y)
    return {"accuracy": accuracy, "nll": jnp.mean(nll_M)}


def _fit_and_evaluate(
    posterior: Posterior, data: Dataset | RegressionDataset, labelled: Array, key: Key
):
    fit_key, predict_key = jax.random.split(key)
    weights = labelled.astype(data.x_pool.dtype)
    params = posterior.fit(data.x_pool, data.y_pool, weights, key=fit_key)
    return params, evaluate(posterior.predict(params, data.x_test, key=predict_key), data.y_test)


def check_budget(num_points: int, *, initial: int, rounds: int, b: int) -> None:
    """Require ``initial >= 1``, ``rounds >= 0``, ``1 <= b <= N`` and ``initial + rounds * b <= N``.

    :func:`init` calls it; callers that want to fail before any other work (the CLI, before it
    creates its run directory) can call it first. ``ValueError`` naming the setting otherwise.
    """
    for name, value, low in (("initial", initial, 1), ("rounds", rounds, 0), ("b", b, 1)):
        check.integer(value, name, low=low)
    if b > num_points:
        raise ValueError(f"b = {b} is larger than the pool (N = {num_points})")
    budget = initial + rounds * b
    if budget > num_points:
        raise ValueError(
            f"the budget initial + rounds * b = {initial} + {rounds} * {b} = {budget} exceeds "
            f"the pool (N = {num_points}); lower rounds or b"
        )


def balanced_labels(y_N: Array, per_class: int, key: Key) -> Bool[Array, " N"]:
    """``[N]`` mask of ``per_class`` points drawn uniformly without replacement from each
    class present in ``y_N`` (every class must hold that many)."""
    N = y_N.shape[0]
    order_N = jnp.lexsort((jax.random.uniform(key, (N,)), y_N))  # by class, random within
    y_sorted_N = y_N[order_N]
    rank_N = jnp.arange(N) - jnp.searchsorted(y_sorted_N, y_sorted_N)  # place in its class
    return jnp.zeros((N,), bool).at[order_N].set(rank_N < per_class)


# Duplicates (reason): _init, init and compare each list the loop's settings: static arguments
# of the jitted core, keyword-only parameters of the API.
@partial(jax.jit, static_argnames=("posterior", "initial", "rounds", "b", "per_class"))
def _init(
    data: Dataset | RegressionDataset,
    key: Key,
    *,
    posterior: Posterior,
    initial: int,
    rounds: int,
    b: int,
    per_class: int | None,
):
    N = data.x_pool.shape[0]
    initial_key, fit_key, next_key = jax.random.split(key, 3)
    if per_class is not None:  # balanced
        labelled = balanced_labels(data.y_pool, per_class, initial_key)
    else:
        labelled = (
            jnp.zeros((N,), bool)
            .at[jax.random.choice(initial_key, N, (initial,), replace=False)]
            .set(True)
        )
    params, metrics = _fit_and_evaluate(posterior, data, labelled, fit_key)
    if isinstance(data, Dataset):  # every initial label is asked among all classes
        metrics["cost"] = initial * jnp.log2(jnp.asarray(data.num_classes, jnp.float32))
    nan = jnp.asarray(jnp.nan, jnp.result_type(float))  # not weakly typed, as restored states
    history = {k: jnp.full((rounds + 1,), nan).at[0].set(v) for k, v in metrics.items()}
    return LoopState(
        labelled=labelled,
        params=params,
        key=jax.random.key_data(next_key),
        round=jnp.zeros((), jnp.int32),
        acquired=jnp.full((rounds, b), -1, jnp.int32),
        metrics=history,
    )


def init(
    data: Dataset | RegressionDataset,
    *,
    key: Key,
    posterior: Posterior,
    initial: int,
    rounds: int,
    b: int,
    seeds: int | None = None,
    strategy: Strategy | None = None,
    balanced: bool = False,
) -> LoopState:
    """The state before the first acquisition: ``initial`` random labels, posterior fitted.

    ``balanced=True`` draws ``initial / C`` labels from each of the ``C`` classes instead
    (classification; the initial sets of the BatchBALD and EPIG papers, e.g. 2 per class).

    With ``seeds = S``, ``key`` is split into ``S`` keys and the result is a batch of ``S``
    independent states (leading axis ``S``) that :func:`run` advances in one program.
    ``strategy``: a strategy with memory across rounds gets its initial memory now (else
    :func:`run` adds it; pass it when the state is the ``like`` of :func:`restore`).

    Raises:
      ValueError: when ``initial + rounds * b`` exceeds the pool or a count is not positive;
        with ``balanced``, when the data are not a classification set, ``initial`` is not a
        multiple of ``C`` or a class of the pool holds fewer than ``initial / C`` points.
      TypeError: when ``key`` is not a PRNG key.
    """
    check.key(key)
    check_budget(data.x_pool.shape[0], initial=initial, rounds=rounds, b=b)
    if seeds is not None:
        check.integer(seeds, "seeds")
    per_class = _per_class(data, initial) if balanced else None
    make = partial(
        _init, posterior=posterior, initial=initial, rounds=rounds, b=b, per_class=per_class
    )
    if seeds is None:
        state = make(data, key)
    else:
        state = jax.vmap(make, in_axes=(None, 0))(data, jax.random.split(key, seeds))
    return state if strategy is None else with_memory(state, data, strategy)


def _per_class(data: Dataset | RegressionDataset, initial: int) -> int:
    """``initial / C``; ``ValueError`` unless that many labels can be drawn from every class."""
    if not isinstance(data, Dataset):
        raise ValueError("balanced=True needs a classification Dataset (it draws per class)")
    C = data.num_classes
    if initial % C:
        raise ValueError(
            f"balanced=True draws initial / C labels per class: initial = {initial} is not a "
            f"multiple of C = {C}"
        )
    counts_C = np.bincount(np.asarray(data.y_pool), minlength=C)
    if counts_C.min() < initial // C:
        raise ValueError(
            f"balanced=True needs {initial // C} pool points of every class; class "
            f"{int(counts_C.argmin())} has {int(counts_C.min())}: lower initial"
        )
    return initial // C


def with_memory(
    state: LoopState, data: Dataset | RegressionDataset, strategy: Strategy
) -> LoopState:
    """``state`` with ``strategy``'s initial memory (broadcast over seeds) when the strategy has
    ``init_memory`` and the state holds no memory yet; ``state`` unchanged otherwise."""
    init_memory = getattr(strategy, "init_memory", None)
    if init_memory is None or jax.tree.leaves(state.memory):
        return state
    rounds, b = state.acquired.shape[-2:]
    memory = init_memory(
        num_points=data.x_pool.shape[0],
        num_classes=getattr(data, "num_classes", None),
        rounds=int(rounds),
        b=int(b),
    )
    seeds = state.round.shape
    memory = jax.tree.map(lambda leaf: jnp.broadcast_to(leaf, (*seeds, *jnp.shape(leaf))), memory)
    return state._replace(memory=memory)


def _remembered(new: Any, old: Any) -> Any:
    """The strategy's new memory, checked to have the old one's structure, shapes and dtypes."""
    if new is None:
        return old
    same = jax.tree.structure(new) == jax.tree.structure(old) and all(
        jnp.shape(a) == jnp.shape(b) and jnp.result_type(a) == jnp.result_type(b)
        for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(old), strict=True)
    )
    if not same:
        describe = partial(jax.tree.map, lambda a: f"{jnp.result_type(a)}{list(jnp.shape(a))}")
        raise ValueError(
            f"the strategy remembered {describe(new)}, but its memory is {describe(old)} "
            "(init_memory's structure, shapes and dtypes must stay fixed across rounds)"
        )
    return new


def acquisition_round(
    state: LoopState,
    data: Dataset | RegressionDataset,
    targets: Targets,
    *,
    posterior: Posterior,
    strategy: Strategy,
    b: int,
) -> LoopState:
    """One round: build the round context, select ``b`` unlabelled points, refit, evaluate.

    The strategy sees a :class:`jaxal.context.Round` of the current posterior on the pool,
    with ``targets`` drawn from the round's key. Pure and jittable (``posterior``,
    ``strategy`` and ``b`` static); see :data:`round_step`.
    """
    key = jax.random.wrap_key_data(state.key)
    round_key, fit_key, next_key = jax.random.split(key, 3)
    context = Round.from_posterior(
        posterior,
        state.params,
        key=round_key,
        x_pool=data.x_pool,
        labelled=state.labelled,
        targets=targets,
        x_test=data.x_test,
        y_pool=data.y_pool,
        memory=state.memory if jax.tree.leaves(state.memory) else None,
    )
    index_B = strategy(context, b).astype(jnp.int32)
    labelled = state.labelled.at[index_B].set(True, mode="drop")  # drops the sentinel N
    params, metrics = _fit_and_evaluate(posterior, data, labelled, fit_key)
    if "cost" in state.metrics:
        metrics["cost"] = state.metrics["cost"][state.round] + _batch_cost(
            data, context.shown_candidates, index_B
        )
    return LoopState(
        labelled=labelled,
        params=params,
        key=jax.random.key_data(next_key),
        round=state.round + 1,
        acquired=state.acquired.at[state.round].set(
            jnp.where(index_B < data.x_pool.shape[0], index_B, -1)
        ),
        metrics={k: v.at[state.round + 1].set(metrics[k]) for k, v in state.metrics.items()},
        memory=_remembered(context.remembered, state.memory),
    )


def _batch_cost(data, sets_N_C: Array | None, index_B: Array) -> Array:
    """The labelling cost of the batch: its candidate-set queries' (:func:`jaxal.conformal.
    query_cost` with the true labels), or ``log2 C`` a label without sets."""
    valid_B = index_B < data.x_pool.shape[0]
    if sets_N_C is None:
        per_label = jnp.log2(jnp.asarray(data.num_classes, jnp.float32))
        return jnp.sum(valid_B) * per_label
    y_B = data.y_pool.at[index_B].get(mode="fill", fill_value=0)
    sets_B_C = sets_N_C.at[index_B].get(mode="fill", fill_value=True)
    return jnp.sum(jnp.where(valid_B, conformal.query_cost(sets_B_C, y_B), 0.0))


def _acquisition_round_seeds(state, data, targets, *, posterior, strategy, b):
    one = partial(acquisition_round, posterior=posterior, strategy=strategy, b=b)
    return jax.vmap(one, in_axes=(0, None, None))(state, data, targets)


_STATIC = ("posterior", "strategy", "b")
round_step = jax.jit(acquisition_round, static_argnames=_STATIC)
"""One jitted round for a single state."""
round_step_seeds = jax.jit(_acquisition_round_seeds, static_argnames=_STATIC)
"""One jitted round for a batch of states (leading seed axis): all seeds in one program."""


CHECKSUMS = "jaxal-sha256.json"
"""The file, inside each checkpoint step's directory, recording ``{"files": {path: {"sha256",
"bytes"}}, "shapes": {leaf: shape}}`` for every other file of the step and every leaf of the
saved state. Written after orbax has finalised the step; checked before the step is used."""


def _checkpoint_manager(directory: str | Path) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True)
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def _step_directory(manager: ocp.CheckpointManager, step: int) -> Path:
    return Path(manager.directory) / str(step)


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _shapes(state: LoopState) -> dict[str, list[int]]:
    """``{leaf name: shape}`` of a state, concrete or abstract (names like ``params.Dense_0``)."""
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    return {
        jax.tree_util.keystr(path, simple=True, separator="."): list(x.shape) for path, x in leaves
    }


def _save(manager: ocp.CheckpointManager, step: int, state: LoopState) -> None:
    """Save ``state`` as ``step``; once orbax has finalised it, write :data:`CHECKSUMS`."""
    manager.save(step, args=ocp.args.StandardSave(state))
    manager.wait_until_finished()
    directory = _step_directory(manager, step)
    files = {
        file.relative_to(directory).as_posix(): {
            "sha256": _sha256(file),
            "bytes": file.stat().st_size,
        }
        for file in sorted(directory.rglob("*"))
        if file.is_file()
    }
    temporary = directory / f"{CHECKSUMS}.partial"
    temporary.write_text(json.dumps({"files": files, "shapes": _shapes(state)}, indent=1))
    os.replace(temporary, directory / CHECKSUMS)


def _verified(manager: ocp.CheckpointManager, step: int, like: LoopState) -> None:
    """Check ``step``'s files against :data:`CHECKSUMS` and its shapes against ``like``'s.

    Raises:
      ValueError: naming the step, the file or leaf, and how to resume from the step before.
    """
    directory = _step_directory(manager, step)
    where = f"checkpoint step {step} in {manager.directory}"
    earlier = [s for s in manager.all_steps() if s < step]
    fix = (
        f"delete {directory} to resume from step {max(earlier)}, the previous checkpoint"
        if earlier
        else f"it is the only checkpoint: delete {directory} to start again from the initial fit"
    )
    manifest = directory / CHECKSUMS
    try:
        recorded = json.loads(manifest.read_text())
        files, shapes = recorded["files"], recorded["shapes"]
        expected = {name: (entry["sha256"], entry["bytes"]) for name, entry in files.items()}
    except FileNotFoundError:
        raise ValueError(
            f"{where} has no {CHECKSUMS} (written once orbax has finalised a step: the step "
            f"is from an older jaxal or the process stopped in between), so it cannot be "
            f"verified; {fix}"
        ) from None
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ValueError(f"{where}: its {CHECKSUMS} is unreadable ({error!r}); {fix}") from None
    for name, (sha256, size) in expected.items():
        file = directory / name
        if not file.is_file():
            raise ValueError(f"{where} is missing its file {name}; {fix}")
        if file.stat().st_size != size:
            raise ValueError(
                f"{where} is corrupt: file {name} has {file.stat().st_size} bytes, {size} were "
                f"saved (truncated or overwritten); {fix}"
            )
        if _sha256(file) != sha256:
            raise ValueError(
                f"{where} is corrupt: file {name} changed since it was saved (sha256 "
                f"mismatch); {fix}"
            )
    wanted = _shapes(like)
    for name in [*wanted, *(name for name in shapes if name not in wanted)]:
        if shapes.get(name) != wanted.get(name):
            there, here = (
                "absent" if shape is None else str(tuple(shape))
                for shape in (shapes.get(name), wanted.get(name))
            )
            raise ValueError(
                f"{where} is of a run with other settings: its {name} has shape {there}, the "
                f"requested run's {here} (rounds, b, seeds, the pool or the posterior differ); "
                "continue it with the settings it was saved with, or use an empty directory"
            )


def run(
    state: LoopState,
    data: Dataset | RegressionDataset,
    *,
    posterior: Posterior,
    strategy: Strategy,
    targets: Targets | None = None,
    checkpoint_dir: str | Path | None = None,
    on_round: Callable[[LoopState], None] | None = None,
    progress: bool | str = True,
) -> LoopState:
    """Run the remaining rounds of ``state`` (single or seed-batched), checkpointing each.

    Args:
      state: from :func:`init` or :func:`restore`; its ``acquired`` shape fixes ``R`` and ``b``.
      data: the pool and test arrays the state was made with.
      posterior, strategy: as for :func:`acquisition_round`.
      targets: where each round's target inputs come from (EPIG, batch EPIG, EV-GP);
        default :func:`jaxal.context.default_targets`.
      checkpoint_dir: if given, the state is saved there after every round (orbax) with its
        checksums (:data:`CHECKSUMS`). It must not hold a run that is further along than
        ``state``; a run it holds must verify and have ``state``'s shapes.
      on_round: called with the new state after each round (logging, stopping early by
        raising: the round's checkpoint is written first).
      progress: a bar of the rounds, with the mean over seeds of the test accuracy
        (classification) or RMSE (regression), where someone watches
        (:mod:`jaxal.progress`); a string labels it; ``False``: none.

    Returns:
      The final state, after ``R`` rounds.

    Raises:
      ValueError: when ``checkpoint_dir`` holds a run further along, a corrupt latest step or
        one of other shapes.
    """
    state = with_memory(state, data, strategy)
    rounds, b = state.acquired.shape[-2:]
    step = round_step_seeds if state.round.ndim == 1 else round_step
    manager = _checkpoint_manager(checkpoint_dir) if checkpoint_dir is not None else None
    done = int(jnp.min(state.round))
    targets = default_targets(data.x_pool.shape[0]) if targets is None else targets
    label = progress if isinstance(progress, str) else "rounds"
    shown = progress_bar.bar(label, int(rounds), completed=done, enabled=progress is not False)
    try:
        latest = None if manager is None else manager.latest_step()
        if latest is not None and latest > done:
            raise ValueError(
                f"checkpoint_dir {checkpoint_dir} already holds round {latest} of a run, ahead "
                f"of this state (round {done}); continue it with "
                "jaxal.loop.restore(checkpoint_dir, like=state) or pass an empty directory"
            )
        if manager is not None and latest is not None:
            _verified(manager, latest, state)
        elif manager is not None:
            _save(manager, done, state)  # the initial labels too
        with shown as update:
            for r in range(done, rounds):
                state = step(state, data, targets, posterior=posterior, strategy=strategy, b=int(b))
                if manager is not None:
                    _save(manager, r + 1, state)
                if update is not None:
                    metric = "accuracy" if "accuracy" in state.metrics else "rmse"
                    value = float(jnp.mean(state.metrics[metric][..., r + 1]))
                    update(r + 1, f"round {r + 1}: {metric} {value:.3f}")
                if on_round is not None:
                    on_round(state)
    finally:
        if manager is not None:
            manager.close()
    return state


def restore(checkpoint_dir: str | Path, like: LoopState) -> LoopState | None:
    """The latest checkpointed state in ``checkpoint_dir``, or ``None`` if there is none.

    ``like`` gives the structure, shapes and dtypes: a state made with the same settings, or
    ``jax.eval_shape`` of :func:`init` (costs no computation).

    Raises:
      ValueError: when the latest step's files differ from their recorded checksums (changed,
        truncated or missing), it has no checksums, or its shapes differ from ``like``'s. The
        message names the step and the file; deleting that step's directory resumes from the
        previous step (the two latest are kept).
    """
    manager = _checkpoint_manager(checkpoint_dir)
    try:
        step = manager.latest_step()
        if step is None:
            return None
        _verified(manager, step, like)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        state: Any = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    finally:
        manager.close()
    return LoopState(*state) if not isinstance(state, LoopState) else state


def compare(
    data: Dataset | RegressionDataset,
    strategies: dict[str, Strategy],
    *,
    key: Key,
    posterior: Posterior,
    initial: int,
    rounds: int,
    b: int,
    seeds: int | None = None,
    targets: Targets | None = None,
    on_round: Callable[[LoopState], None] | None = None,
    progress: bool = True,
    balanced: bool = False,
) -> dict[str, LoopState]:
    """Run several strategies from one shared start: ``{name: final state}``.

    Every strategy starts from the same :func:`init` state (the same initial labels and the
    same initial fit per seed; ``balanced`` as in :func:`init`) and draws the same round
    keys, so differences between the curves come from the acquisitions alone (common random
    numbers). ``progress``: a bar per strategy, labelled with its name (see :func:`run`).
    """
    start = init(
        data,
        key=key,
        posterior=posterior,
        initial=initial,
        rounds=rounds,
        b=b,
        seeds=seeds,
        balanced=balanced,
    )
    return {
        name: run(
            start,
            data,
            posterior=posterior,
            strategy=strategy,
            targets=targets,
            on_round=on_round,
            progress=progress and name,
        )
        for name, strategy in strategies.items()
    }
