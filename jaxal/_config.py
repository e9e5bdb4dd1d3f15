"""Values identified by their configuration, so rebuilt equal objects reuse compiled programs.

``jax.jit`` looks static arguments up by hash and equality, and traced functions by the
function object. Two ``optax.adam(1e-3)`` are different objects (NamedTuples of fresh
closures) and compare unequal, so passing a rebuilt optimizer as a static argument, or
building a posterior again, compiles everything again. :func:`fingerprint` gives such values
a hashable identity that depends only on what they compute; :class:`Static` carries a value
into ``jit`` as a static argument under that identity.
"""

import functools
import hashlib
import os
import types
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

import flax.linen as nn
import jax
import jax.core
import jax.numpy as jnp
import numpy as np

T = TypeVar("T")


class _Same:
    """Identity as a hashable key: equal only to a key of the very same object.

    It holds the object, so the object's ``id`` cannot be reused by another object while the
    key (e.g. a compiled program's cache entry) lives: never wrongly equal.
    """

    __slots__ = ("obj",)

    def __init__(self, obj: object):
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __repr__(self) -> str:
        return f"_Same({type(self.obj).__name__} at {id(self.obj):#x})"


_BY_VALUE = (type(None), bool, int, str, bytes, type(Ellipsis))
"""Hashable scalars identified by ``(type, value)`` (the type keeps ``1``, ``1.0`` and
``True`` apart: they trace to different dtypes)."""


def fingerprint(obj: Any) -> Hashable:
    """A hashable key that is equal for two objects that compute the same thing.

    Two objects get equal fingerprints when they are, recursively:

    * ``None``, bools, ints, strings, bytes of the same type and value; floats and complex
      numbers with the same bits (``0.0`` and ``-0.0`` differ, every NaN is the same);
    * tuples, lists, NamedTuples, dicts (in insertion order), sets and frozensets of the same
      type with equal fingerprints of their items (and keys); mutable containers count by
      their content when the fingerprint is taken;
    * numpy or jax arrays and numpy scalars of the same shape, dtype (and weak type) and
      bytes (compared by a BLAKE2b digest, so no copy is kept);
    * Python functions with the same ``__module__``, ``__qualname__`` and ``__code__`` (which
      covers the bytecode, constants and names), equal defaults and keyword defaults, equal
      closure cell contents, and equal values of the module globals the code reads (other
      than modules, which count by identity): a function rebuilt from the same source with
      the same captured values, e.g. the closures inside ``optax.adam(1e-3)``;
      ``functools.partial`` objects with equal function, arguments and keywords; bound
      methods with equal function and ``__self__``;
    * flax modules that are equal as flax compares them (same class and fields), when
      hashable;
    * classes, Python modules and anything else: only the very same object (identity).

    Cycles (a closure that refers to itself) are followed once; an empty closure cell counts
    as empty. Globals are read when the fingerprint is taken: as with ``jax.jit``, a
    function whose behaviour depends on mutable state it reaches through objects compared
    by identity is assumed not to change.

    Args:
      obj: any value.

    Returns:
      A hashable key; ``fingerprint(a) == fingerprint(b)`` only if ``a`` and ``b`` compute
      the same thing under the rules above, and equal fingerprints hash equal.
    """
    return _fingerprint(obj, {})


def _fingerprint(obj: Any, seen: dict[int, int]) -> Hashable:
    if isinstance(obj, _BY_VALUE):
        return (type(obj), obj)
    if isinstance(obj, float):
        return (type(obj), obj.hex())
    if isinstance(obj, complex):
        return (type(obj), obj.real.hex(), obj.imag.hex())
    if isinstance(obj, type | types.ModuleType):
        return _Same(obj)
    if isinstance(obj, np.ndarray | np.generic | jax.Array) and not isinstance(
        obj, jax.core.Tracer
    ):
        return _array(obj)
    if isinstance(obj, nn.Module):
        try:
            hash(obj)
        except TypeError:
            return _Same(obj)
        return ("flax", obj)
    if id(obj) in seen:  # a cycle: name the object by when it was first entered
        return ("cycle", seen[id(obj)])
    seen[id(obj)] = len(seen)
    try:
        return _composite(obj, seen)
    finally:
        del seen[id(obj)]


def _composite(obj: Any, seen: dict[int, int]) -> Hashable:
    def fp(value):
        return _fingerprint(value, seen)

    if isinstance(obj, tuple | list):
        return (type(obj), tuple(fp(item) for item in obj))
    if isinstance(obj, dict):
        return (type(obj), tuple((fp(k), fp(v)) for k, v in obj.items()))
    if isinstance(obj, set | frozenset):
        return (type(obj), frozenset(fp(item) for item in obj))
    if isinstance(obj, types.FunctionType):
        if _is_jaxtyping_checker(obj):  # it computes what it wraps (jaxtyping's import hook)
            return fp(obj.__wrapped__)
        return _function(obj, fp)
    if isinstance(obj, functools.partial):
        return (functools.partial, fp(obj.func), fp(obj.args), fp(obj.keywords))
    if isinstance(obj, types.MethodType):
        return (types.MethodType, fp(obj.__func__), fp(obj.__self__))
    return _Same(obj)


def _is_jaxtyping_checker(fn: types.FunctionType) -> bool:
    """Whether ``fn`` is jaxtyping's run-time type-checking wrapper of ``fn.__wrapped__``."""
    return hasattr(fn, "__wrapped__") and fn.__code__.co_filename.endswith(
        os.path.join("jaxtyping", "_decorator.py")
    )


def _cell(cell: types.CellType, fp) -> Hashable:
    try:
        contents = cell.cell_contents
    except ValueError:  # an empty cell: a variable not assigned (yet)
        return "empty cell"
    return fp(contents)


def _function(fn: types.FunctionType, fp) -> Hashable:
    cells = tuple(_cell(cell, fp) for cell in fn.__closure__ or ())
    return (
        types.FunctionType,
        fn.__module__,
        fn.__qualname__,
        fn.__code__,
        fp(fn.__defaults__),
        fp(fn.__kwdefaults__),
        cells,
        tuple((name, fp(fn.__globals__[name])) for name in _global_names(fn.__code__, fn)),
    )


def _global_names(code: types.CodeType, fn: types.FunctionType) -> list[str]:
    """The names ``code`` (and the code nested in it) reads from ``fn``'s module globals."""
    names = dict.fromkeys(name for name in code.co_names if name in fn.__globals__)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.update(dict.fromkeys(_global_names(const, fn)))
    return list(names)


def _array(x) -> Hashable:
    if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return ("key", str(jax.random.key_impl(x)), _array(jax.random.key_data(x)))
    try:
        host = np.ascontiguousarray(np.asarray(x))
    except Exception:  # e.g. an array sharded over processes: not readable here
        return _Same(x)
    if host.dtype == object:
        return _Same(x)
    digest = hashlib.blake2b(host.tobytes(), digest_size=16).digest()
    return ("array", host.shape, host.dtype.str, getattr(x, "weak_type", False), digest)


class Static(Generic[T]):
    """``value`` as a static ``jax.jit`` argument, equal to any ``Static`` of an equal
    :func:`fingerprint`, so equal rebuilt values (``optax.adam(1e-3)`` twice) share one
    compiled program.

    Attributes:
      value: the wrapped object (of the first call, when a compiled program is reused).
      key: ``fingerprint(value)``.
    """

    __slots__ = ("key", "value")

    def __init__(self, value: T):
        self.value = value
        self.key = fingerprint(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Static) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Static({self.value!r})"
