"""Input validation at jaxal's public boundary, and opt-in checks under ``jit``.

Every public jaxal function validates its inputs before tracing:

* **shapes, ranks and dtypes** are static, so they are checked always, under ``jit`` and
  ``vmap`` too (a wrong shape is a ``ValueError``, a wrong dtype a ``TypeError``);
* **values** (NaN, ``+inf``, probabilities that do not sum to one, negative variances,
  a batch larger than the available points) can only be checked on concrete arrays. Called
  eagerly, jaxal raises ``ValueError``; inside ``jit``/``vmap`` these checks are skipped
  (``on_trace="skip"``) and the result is undefined for invalid input.

To keep the value checks inside compiled code, call the functions of this module yourself
(their default ``on_trace="checkify"`` emits :func:`jax.experimental.checkify.check`) and
wrap the function with :func:`checked`::

    @jaxal.check.checked
    @jax.jit
    def acquire(log_probs):
        jaxal.check.log_probs(log_probs)
        return jaxal.select.top_k(jaxal.scores.bald(log_probs), 10)

``jax.jit(checked(f))`` works as well: the check's result then leaves the compiled program
through :func:`jax.debug.callback` and fails the call with XLA's
:class:`jax.errors.JaxRuntimeError`, whose message carries the check's.

A log-probability of ``-inf`` is a valid probability 0 and is accepted everywhere.

**Batches under tracing.** A batch size ``b`` larger than the number of available points is
a ``ValueError`` when the mask is concrete. Under ``jit``/``vmap`` the mask's count is not
known while tracing, so every selection instead fills the positions it cannot fill with the
sentinel ``N`` (one past the last pool index, see :func:`picks`): ``indices < N`` marks the
valid picks, scatters such as ``mask.at[indices].set(True)`` drop the sentinel, and no
unavailable point is ever returned.
"""

from collections.abc import Callable
from typing import Literal

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from jaxal.typing import Array, ArrayLike

NORMALISATION_ATOL = 1e-3
"""Largest accepted ``|sum_c p(c) - 1|`` for each sample and point of ``log_probs``."""

OnTrace = Literal["checkify", "skip"]

__all__ = [
    "NORMALISATION_ATOL",
    "available",
    "batch_size",
    "boolean_mask",
    "checked",
    "finite",
    "float_array",
    "fraction",
    "gaussian",
    "integer",
    "is_concrete",
    "key",
    "log_probs",
    "nonnegative",
    "picks",
    "points",
    "require",
    "scalar",
    "scores",
]


def is_concrete(*xs) -> bool:
    """True when no argument is a tracer, i.e. values can be inspected now."""
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def require(ok: Array, message: str, on_trace: OnTrace = "checkify") -> None:
    """Raise ``ValueError(message)`` if ``ok`` is false; under tracing follow ``on_trace``."""
    if is_concrete(ok):
        if not bool(ok):
            raise ValueError(message)
    elif on_trace == "checkify":
        checkify.check(ok, message)


def float_array(x: ArrayLike, name: str) -> Array:
    """``x`` as a jax array of a floating dtype; ``TypeError`` naming ``name`` otherwise."""
    if x is None:
        raise TypeError(f"{name} is None; expected an array")
    if not isinstance(x, jax.Array):
        try:
            x = jnp.asarray(x)
        except TypeError as error:
            raise TypeError(f"{name} must be an array; got {type(x).__name__}") from error
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating dtype; got {x.dtype}")
    return x


def points(x: ArrayLike, name: str = "phi") -> Array:
    """A ``[N, D]`` matrix of points (features, embeddings or inputs): floating, rank 2,
    ``N >= 1``, finite. Shapes and dtypes are checked always; finiteness when concrete."""
    x = float_array(x, name)
    if x.ndim != 2:
        raise ValueError(
            f"{name} must have shape [N, D] (rank 2, one row per point); got {x.shape}"
        )
    if x.shape[0] < 1:
        raise ValueError(f"{name} is empty (N = 0 rows); it needs at least one point")
    return finite(x, name, on_trace="skip")


@jax.jit
def _log_probs_stats(log_probs: Array) -> tuple[Array, Array, Array]:
    has_nan = jnp.isnan(log_probs).any()
    has_posinf = jnp.isposinf(log_probs).any()
    total_N = jnp.sum(jnp.exp(log_probs), axis=-1)
    normalisation_error = jnp.max(jnp.abs(total_N - 1.0))
    return has_nan, has_posinf, normalisation_error


def log_probs(
    x: ArrayLike,
    *,
    name: str = "log_probs",
    atol: float = NORMALISATION_ATOL,
    on_trace: OnTrace = "checkify",
) -> Array:
    """Validate ``[K, N, C]`` natural-log class probabilities and return them as a jax array.

    Checks: floating dtype; rank 3 with ``K, N, C >= 1``; no NaN; no ``+inf``; for every
    sample and point ``|sum_c exp(x) - 1| <= atol``. ``-inf`` (probability 0) is valid.
    """
    x = float_array(x, name)
    if x.ndim != 3:
        raise ValueError(
            f"{name} must have shape [K, N, C] (posterior samples, pool points, classes); "
            f"got shape {x.shape}. For a single posterior sample add a leading axis: x[None]."
        )
    K, N, C = x.shape
    if K < 1 or C < 1:
        raise ValueError(f"{name} needs at least one sample and one class; got shape {x.shape}")
    if N < 1:
        raise ValueError(f"{name} has an empty pool (N = 0); there is nothing to score")
    has_nan, has_posinf, normalisation_error = _log_probs_stats(x)
    require(~has_nan, f"{name} contains NaN; log-probabilities must be finite or -inf", on_trace)
    require(~has_posinf, f"{name} contains +inf; log-probabilities must be <= 0", on_trace)
    require(
        normalisation_error <= atol,
        f"{name} must be normalised log-probabilities over the last (class) axis: "
        f"sum_c exp({name}) deviates from 1 by more than {atol}. Apply "
        "jax.nn.log_softmax to logits first.",
        on_trace,
    )
    return x


def gaussian(
    mean: ArrayLike,
    var: ArrayLike,
    *,
    positive: bool = False,
    on_trace: OnTrace = "checkify",
) -> tuple[Array, Array]:
    """Validate per-sample Gaussian predictions ``mean``, ``var`` of shape ``[K, N]``.

    Checks: floating dtypes, equal rank-2 shapes, finite values, ``var >= 0`` (``var > 0``
    when ``positive``, as log-variances need).
    """
    mean = float_array(mean, "mean")
    var = float_array(var, "var")
    for name, x in (("mean", mean), ("var", var)):
        if x.ndim != 2:
            raise ValueError(f"{name} must have shape [K, N] (samples, points); got {x.shape}")
    if mean.shape != var.shape:
        raise ValueError(f"mean and var must have the same shape; got {mean.shape} and {var.shape}")
    if mean.shape[1] < 1:
        raise ValueError("mean and var have an empty pool (N = 0); there is nothing to score")
    require(jnp.isfinite(mean).all(), "mean contains NaN or inf", on_trace)
    require(jnp.isfinite(var).all(), "var contains NaN or inf", on_trace)
    if positive:
        require((var > 0).all(), "var must be > 0 (it enters a logarithm)", on_trace)
    else:
        require((var >= 0).all(), "var must be >= 0", on_trace)
    return mean, var


# The keyword layout of log_probs (name, options, on_trace); the checks themselves differ.
def scores(
    x: ArrayLike,
    *,
    name: str = "scores",
    nonnegative: bool = False,
    on_trace: OnTrace = "checkify",
) -> Array:
    """Validate acquisition scores: floating, shape ``[N]`` with ``N >= 1``, finite."""
    x = float_array(x, name)
    if x.ndim != 1:
        raise ValueError(f"{name} must have shape [N] (one score per pool point); got {x.shape}")
    if x.shape[0] < 1:
        raise ValueError(f"{name} is empty (N = 0): the pool is empty")
    require(jnp.isfinite(x).all(), f"{name} contains NaN or inf", on_trace)
    if nonnegative:
        require(
            (x >= 0).all(),
            f"{name} must be >= 0 for this mode (power sampling weights scores**beta)",
            on_trace,
        )
    return x


def boolean_mask(value: ArrayLike | None, num_points: int, name: str, *, default: bool) -> Array:
    """Validate a boolean ``[N]`` mask named ``name``; ``None`` is ``default`` everywhere."""
    if value is None:
        return jnp.full((num_points,), default)
    if not isinstance(value, jax.Array):
        value = jnp.asarray(value)
    if value.dtype != jnp.bool_:
        raise TypeError(f"{name} must be a boolean mask; got dtype {value.dtype}")
    if value.shape != (num_points,):
        raise ValueError(
            f"{name} must have shape [N] = ({num_points},), one flag per pool point; "
            f"got {value.shape}"
        )
    return value


def available(mask: ArrayLike | None, num_points: int, *, on_trace: OnTrace = "checkify") -> Array:
    """Validate a boolean ``[N]`` availability mask (``None`` means every point is available)."""
    mask = boolean_mask(mask, num_points, "available", default=True)
    require(
        mask.any(), "available has no True entry: the pool is empty or fully labelled", on_trace
    )
    return mask


def batch_size(b: int, mask: Array, *, on_trace: OnTrace = "checkify") -> int:
    """Validate the batch size ``b`` against the ``[N]`` availability ``mask``; return it as int.

    ``b`` must be a static Python integer (it fixes output shapes), ``1 <= b <= N`` and, when
    the mask is concrete, at most the number of available points.
    """
    if isinstance(b, bool) or not isinstance(b, int | np.integer):
        raise TypeError(f"b must be a Python int (a static batch size); got {type(b).__name__}")
    b = int(b)
    N = mask.shape[0]
    if b < 1:
        raise ValueError(f"b must be >= 1; got b = {b}")
    if b > N:
        raise ValueError(f"b = {b} is larger than the pool (N = {N})")
    num_available = jnp.sum(mask)
    if is_concrete(num_available):
        if int(num_available) < b:
            raise ValueError(
                f"b = {b} is larger than the number of available points ({int(num_available)})"
            )
    elif on_trace == "checkify":
        checkify.check(num_available >= b, "b is larger than the number of available points")
    return b


def finite(x: Array, name: str, *, on_trace: OnTrace = "checkify") -> Array:
    """Require every entry of ``x`` to be finite (no NaN, no ``±inf``); return ``x``."""
    require(
        jnp.isfinite(x).all(), f"{name} contains NaN or inf; every entry must be finite", on_trace
    )
    return x


def integer(value, name: str, *, low: int = 1) -> int:
    """``value`` as a Python int ``>= low``: these are static sizes and counts.

    Python and NumPy integers are accepted (not ``bool``); another type is a ``TypeError``, an
    integer below ``low`` a ``ValueError``, each naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int >= {low}; got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value!r}")
    return int(value)


def fraction(value, name: str, *, closed: bool = False) -> None:
    """Require a share ``0 < value < 1`` (``0 <= value <= 1`` when ``closed``) when concrete.

    A value outside (NaN included) is a ``ValueError`` naming ``name``; a traced value is not
    checked.
    """
    if not is_concrete(value):
        return
    inside = 0.0 <= float(value) <= 1.0 if closed else 0.0 < float(value) < 1.0
    if not inside:
        bounds = "[0, 1]" if closed else "(0, 1)"
        raise ValueError(f"{name} must be in {bounds}; got {value!r}")


def nonnegative(value, name: str) -> None:
    """Require ``value >= 0`` (a noise level or spread) when concrete.

    A negative value or NaN is a ``ValueError`` naming ``name``; a traced value is not checked.
    """
    if is_concrete(value) and not float(value) >= 0:
        raise ValueError(f"{name} must be >= 0; got {value!r}")


def scalar(value, name: str, *, dtype=None, positive: bool = True, what: str = "") -> Array:
    """``value`` as a real scalar jax array (of ``dtype``): finite and ``> 0`` (``>= 0``
    unless ``positive``) when concrete; a traced value is only checked for its shape.

    ``what`` describes the quantity in the messages, e.g. ``" (a noise variance)"``.
    """
    try:
        x = jnp.asarray(value, dtype)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a real scalar{what}; got {value!r}") from error
    if x.ndim != 0:
        raise ValueError(f"{name} must be a scalar{what}; got shape {x.shape}")
    if is_concrete(x) and not (jnp.isfinite(x) and (x > 0 if positive else x >= 0)):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be finite and {bound}{what}; got {float(x)}")
    return x


def key(value, name: str = "key") -> Array:
    """Validate a PRNG key: a typed key (``jax.random.key(0)``) or raw ``uint32`` key data
    (``[2]``, as ``jax.random.PRNGKey(0)``; ``[4]`` for the ``rbg`` implementations).

    ``None``, an int or any other array is a ``TypeError`` naming ``name`` and how to make one.
    """
    make = f"pass {name}=jax.random.key(seed) (or split one you hold with jax.random.split)"
    if not isinstance(value, jax.Array):
        raise TypeError(f"{name} must be a JAX PRNG key; got {type(value).__name__}. {make}")
    if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        if value.ndim != 0:
            raise TypeError(
                f"{name} must be a single PRNG key (shape ()); got an array of keys of shape "
                f"{value.shape}. Use one key, or jax.vmap over the keys"
            )
        return value
    if value.dtype == jnp.uint32 and value.shape in ((2,), (4,)):
        return value
    raise TypeError(
        f"{name} must be a JAX PRNG key; got an array of dtype {value.dtype} and shape "
        f"{value.shape}. {make}"
    )


def picks(indices: Array, available: Array) -> Array:
    """``[b]`` selected ``indices`` with the positions past the available count set to ``N``.

    Greedy and top-k selections pick available points first; once none is left (possible
    only under tracing, where :func:`batch_size` cannot see the mask's count) they would
    repeat a point or return an unavailable one. Those positions get the sentinel ``N``
    (``available.shape[0]``), out of range of the pool: ``indices < N`` marks the valid picks
    and ``mask.at[indices].set(True)`` drops the rest. For valid input nothing changes.
    """
    N = available.shape[0]
    position_B = jnp.arange(indices.shape[-1])
    return jnp.where(position_B < jnp.sum(available), indices, N).astype(indices.dtype)


def checked(fn: Callable) -> Callable:
    """Run ``fn`` under :func:`checkify.checkify` and raise if any check inside it failed.

    Both orders work: ``checked(jax.jit(f))`` raises checkify's ``JaxRuntimeError`` with the
    check's message after the call returns; ``jax.jit(checked(f))`` (or ``checked`` under
    ``vmap``) raises from a :func:`jax.debug.callback` when the compiled program runs, as
    :class:`jax.errors.JaxRuntimeError` whose message contains the check's.
    """

    def wrapper(*args, **kwargs):
        error, out = checkify.checkify(fn)(*args, **kwargs)
        if is_concrete(*jax.tree.leaves((args, kwargs))):
            error.throw()
        else:
            jax.debug.callback(lambda concrete: concrete.throw(), error)
        return out

    return wrapper
