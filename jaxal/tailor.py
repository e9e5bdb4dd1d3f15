r"""TAILOR: Thompson-sampling selection among candidate strategies (Zhang et al., NeurIPS 2023).

Each round a bandit picks which candidate strategy (an *arm*) acquires the batch, rewarding
arms whose labels are of rare classes. The authors' multi-class version
(``strategy/meta/thompson_meta.py``, ``obj="div"``):

* **reward** (class diversity) of a label :math:`y`: :math:`v_y` with
  :math:`v_c = \pm 1 / \max(1, n_c)`, :math:`n_c` the labelled points of class ``c``, negative
  for a class holding more than half of the labelled points (:func:`reward_weights`);
* **posterior** of arm ``a``: a Dirichlet over the class of its next label with concentration
  :math:`\text{stats}_{a} + 1`, ``stats`` starting at ones (:func:`init_stats`);
* **Thompson draw**: :math:`\theta_a \sim \text{Dir}(\text{stats}_a + 1)` for every arm, play
  :math:`\arg\max_a \theta_a \cdot v` (:func:`choose_arm`);
* **update** once the batch's labels are known: :math:`\text{stats} \leftarrow 0.9\,
  \text{stats} + \text{counts}`, ``counts[a, c]`` the batch's labels of class ``c`` acquired by
  arm ``a`` (:func:`update_stats`).

Deviation: the authors draw an arm for every point of the batch (the posterior does not change
within a batch, so these are independent draws) and let each arm's procedure add its next
point; here one draw picks the arm of the whole batch, so the batch is one candidate's own
batch (its diversity or greedy rule intact) and the candidates run under ``lax.switch``
(traced once, one program; under ``vmap`` over seeds every branch is evaluated). The
update is the authors' with every label of the batch credited to that arm.

**Memory across rounds** (:attr:`jaxal.context.Round.memory`): the bandit's ``stats``
``[A, C]``, the arm of the last batch and its pool indices (whose labels the next round reads
from :attr:`jaxal.context.Round.labels`), the pulls per arm ``[A]`` and the arm of every
round ``[R]`` (``-1``: not yet). The update for a batch is applied when the next round
starts, which is when the authors' code applies it too (after the batch, before the next
draw).

Shapes: ``A`` arms (candidate strategies), ``C`` classes, ``N`` pool points, ``B`` batch, ``R``
rounds.

Reference: J. Zhang, J. Katz-Samuels, R. Nowak, "Algorithm Selection for Deep Active
Learning with Imbalanced Datasets", NeurIPS 2023 (code: github.com/jifanz/TAILOR).
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from jaxal.context import MissingSource, Round
from jaxal.typing import Key

__all__ = [
    "DECAY",
    "Tailor",
    "choose_arm",
    "init_stats",
    "reward_weights",
    "update_stats",
]

DECAY = 0.9
"""The authors' discount of the arms' statistics per batch."""


def reward_weights(labels_N: Int[Array, " N"], num_classes: int) -> Float[Array, " C"]:
    r"""The class-diversity reward :math:`v_c` of a label of class ``c``, ``[C]``.

    :math:`v_c = 1 / w_c` with :math:`w_c = \max(1, n_c)`, negated when :math:`w_c / L > 1/2`,
    with :math:`n_c` the labelled points of class ``c`` and ``L`` all labelled points
    (``labels_N``: ``-1`` for unlabelled points, as :attr:`jaxal.context.Round.labels`); the
    authors compare the clipped :math:`w_c`, so with ``L = 1`` every class is negative.

    Example:
      >>> reward_weights(jnp.array([0, 0, 0, 1, -1]), 3).tolist()
      [-0.333..., 1.0, 1.0]
    """
    onehot_N_C = labels_N[:, None] == jnp.arange(num_classes)[None, :]
    n_C = jnp.sum(onehot_N_C, axis=0).astype(jnp.float32)
    total = jnp.maximum(jnp.sum(labels_N >= 0), 1)
    w_C = jnp.maximum(n_C, 1.0)
    return jnp.where(w_C / total > 0.5, -1.0, 1.0) / w_C


def init_stats(num_arms: int, num_classes: int) -> Float[Array, "A C"]:
    """The arms' statistics before any label: ones (a ``Dir(2, ..., 2)`` posterior)."""
    return jnp.ones((num_arms, num_classes), jnp.float32)


def choose_arm(stats_A_C: Float[Array, "A C"], v_C: Float[Array, " C"], *, key: Key) -> Array:
    r"""Thompson sampling: :math:`\arg\max_a \theta_a \cdot v` with
    :math:`\theta_a \sim \text{Dir}(\text{stats}_a + 1)` drawn with ``key`` (int32 scalar)."""
    theta_A_C = jax.random.dirichlet(key, stats_A_C + 1.0)
    return jnp.argmax(theta_A_C @ v_C).astype(jnp.int32)


def update_stats(
    stats_A_C: Float[Array, "A C"],
    arm_B: Int[Array, " B"],
    label_B: Int[Array, " B"],
    *,
    decay: float = DECAY,
) -> Float[Array, "A C"]:
    r""":math:`\text{decay} \cdot \text{stats} + \text{counts}`, ``counts[a, c]`` the points of the
    batch acquired by arm ``a`` whose label is ``c`` (rows with ``arm < 0`` or ``label < 0`` add
    nothing)."""
    valid_B = (arm_B >= 0) & (label_B >= 0)
    counts_A_C = (
        jnp.zeros_like(stats_A_C)
        .at[jnp.maximum(arm_B, 0), jnp.maximum(label_B, 0)]
        .add(valid_B.astype(stats_A_C.dtype))
    )
    return decay * stats_A_C + counts_A_C


@dataclasses.dataclass(frozen=True)
class Tailor:
    """The TAILOR strategy over named candidate strategies (see the module docstring).

    Build it with :func:`jaxal.strategies.tailor`, which checks the candidates. Hashable
    (a static argument of the jitted round); equal candidate lists share compilations.

    Args:
      candidates: ``((name, strategy), ...)``, at least one; stateless strategies.
      decay: discount of the statistics per batch (the authors' 0.9).
    """

    candidates: tuple[tuple[str, Callable[[Round, int], Array]], ...]
    decay: float = DECAY

    @property
    def names(self) -> tuple[str, ...]:
        """The candidates' names, in arm order."""
        return tuple(name for name, _ in self.candidates)

    def init_memory(
        self, *, num_points: int, num_classes: int | None, rounds: int, b: int
    ) -> dict[str, Array]:
        """The bandit before the first round (see the module docstring)."""
        if num_classes is None:
            raise ValueError("TAILOR needs a classification dataset (num_classes)")
        A = len(self.candidates)
        return {
            "stats": init_stats(A, num_classes),
            "arm": jnp.asarray(-1, jnp.int32),
            "index": jnp.full((b,), num_points, jnp.int32),
            "pulls": jnp.zeros((A,), jnp.int32),
            "arms": jnp.full((max(rounds, 1),), -1, jnp.int32),
        }

    def __call__(self, r: Round, b: int) -> Array:
        N, C = r.pool.shape[1:]  # computed here, shared by every branch below
        memory: Any = r.memory
        if memory is None:
            memory = self.init_memory(num_points=N, num_classes=C, rounds=1, b=b)
        try:
            labels_N = r.labels
        except MissingSource:  # a round without labels (a replay): no class is known yet
            labels_N = jnp.full((N,), -1, jnp.int32)
        label_B = labels_N.at[memory["index"]].get(mode="fill", fill_value=-1)
        arm_B = jnp.broadcast_to(memory["arm"], label_B.shape)
        stats_A_C = update_stats(memory["stats"], arm_B, label_B, decay=self.decay)
        stats_A_C = jnp.where(memory["arm"] >= 0, stats_A_C, memory["stats"])
        arm = choose_arm(stats_A_C, reward_weights(labels_N, C), key=jax.random.fold_in(r.key, 1))

        def branch(strategy):
            return lambda: strategy(r.fork(), b).astype(jnp.int32)

        index_B = jax.lax.switch(arm, [branch(strategy) for _, strategy in self.candidates])
        done = jnp.sum(memory["pulls"])
        r.remember(
            {
                "stats": stats_A_C,
                "arm": arm,
                "index": index_B,
                "pulls": memory["pulls"].at[arm].add(1),
                "arms": memory["arms"].at[done].set(arm, mode="drop"),
            }
        )
        return index_B
