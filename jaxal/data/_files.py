"""MNIST, Fashion-MNIST and CIFAR-10 read from files the user already has (never downloaded)."""

import gzip
import os
import zipfile
import zlib
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from jaxal.data._registry import Dataset

_IDX_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR10_FILE = "cifar10.npz"
_CIFAR10_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _missing(dataset: str, directory: Path, expected: str, missing: list[str]) -> FileNotFoundError:
    return FileNotFoundError(
        f"{dataset} expects {expected} in directory {str(directory)!r}; missing: "
        f"{', '.join(missing)}. jaxal never downloads data: obtain the files yourself and pass "
        "the directory that holds them."
    )


def _idx_files(dataset: str, directory: Path) -> list[Path]:
    """The four IDX files in ``directory``, each plain or gzipped; raises if any is absent."""
    found = {}
    for stem in _IDX_STEMS:
        candidates = [directory / stem, directory / f"{stem}.gz"]
        found[stem] = next((file for file in candidates if file.is_file()), None)
    missing = [stem for stem, file in found.items() if file is None]
    if missing:
        expected = ", ".join(f"{stem}[.gz]" for stem in _IDX_STEMS)
        raise _missing(dataset, directory, expected, missing)
    return [found[stem] for stem in _IDX_STEMS]


def _corrupt(file: Path, error: Exception) -> ValueError:
    return ValueError(
        f"{str(file)!r} is truncated or corrupt ({error}); obtain a complete copy of the file"
    )


def _read_idx(file: Path) -> np.ndarray:
    """An unsigned-byte IDX array (magic ``0 0 0x08 ndim``, big-endian uint32 sizes, data)."""
    opener = gzip.open if file.suffix == ".gz" else open
    try:
        with opener(file, "rb") as stream:
            raw = stream.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise _corrupt(file, error) from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{str(file)!r} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int(size) for size in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    values = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"{str(file)!r} holds {values.size} bytes of data, header says {shape}")
    return values.reshape(shape)


def _image_dataset(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    sources: tuple[str, ...],
) -> Dataset:
    """uint8 images ``[N, ...]`` flattened to ``[N, D]`` float32 in ``[0, 1]``; int32 labels.

    Checks, with ``ValueError`` naming the array's source (``sources``, in argument order):
    images have a leading example axis; labels are ``[N]`` or ``[N, 1]`` integers in
    ``0..9``, one per image; test images have the training images' shape.
    """
    pairs = ((x_train, y_train, *sources[:2]), (x_test, y_test, *sources[2:]))
    for x, y, x_source, y_source in pairs:
        if x.ndim < 2:
            raise ValueError(f"{x_source} must hold images [N, ...]; got shape {x.shape}")
        if y.ndim != 1 and y.shape[1:] != (1,):
            raise ValueError(f"{y_source} must hold labels [N] or [N, 1]; got shape {y.shape}")
        if y.shape[0] != x.shape[0]:
            raise ValueError(
                f"{y_source} holds {y.shape[0]} labels but {x_source} holds {x.shape[0]} "
                "images; they must match one to one"
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"{y_source} must hold integer labels; got {y.dtype}")
        if y.size and not 0 <= y.min() <= y.max() <= 9:
            raise ValueError(
                f"{y_source} holds labels in {y.min()}..{y.max()}; the classes are 0..9"
            )
    if x_test.shape[1:] != x_train.shape[1:]:
        raise ValueError(
            f"{sources[2]} holds images of shape {x_test.shape[1:]} but {sources[0]} of "
            f"shape {x_train.shape[1:]}; test and training images must have one shape"
        )

    def pixels(x: np.ndarray) -> Array:
        return jnp.asarray(x.reshape(x.shape[0], -1), dtype=jnp.float32) / 255.0

    def labels(y: np.ndarray) -> Array:
        return jnp.asarray(y.reshape(-1), dtype=jnp.int32)

    return Dataset(pixels(x_train), labels(y_train), pixels(x_test), labels(y_test), 10)


def _idx_dataset(dataset: str, path: str | os.PathLike) -> Dataset:
    files = _idx_files(dataset, Path(path))
    sources = tuple(repr(str(file)) for file in files)
    return _image_dataset(*(_read_idx(file) for file in files), sources=sources)


def mnist(path: str | os.PathLike) -> Dataset:
    """MNIST read from the four standard IDX files in the directory ``path``.

    Expects ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
    and ``t10k-labels-idx1-ubyte``, each plain or gzipped (``.gz``); raises
    ``FileNotFoundError`` naming the missing ones, and ``ValueError`` naming the file for a
    truncated or corrupt file, label and image counts that differ, labels outside ``0..9`` or
    test images of another shape than the training images. The training set becomes the pool
    (60,000) and t10k the test set (10,000); no shuffling, so no key. Images ``28 x 28`` are
    flattened row-major to ``D = 784`` and scaled from ``0..255`` to ``[0, 1]``.

    Args:
      path: directory holding the files.

    Returns:
      A :class:`Dataset` with ``C = 10``.
    """
    return _idx_dataset("mnist", path)


def fashion_mnist(path: str | os.PathLike) -> Dataset:
    """Fashion-MNIST read from the directory ``path``; same file names and layout as :func:`mnist`.

    Args:
      path: directory holding ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
        ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``.

    Returns:
      A :class:`Dataset` with 60,000 pool and 10,000 test points, ``D = 784``, ``C = 10``.
    """
    return _idx_dataset("fashion_mnist", path)


def cifar10(path: str | os.PathLike) -> Dataset:
    """CIFAR-10 read from ``cifar10.npz`` in the directory ``path``.

    The archive must hold four arrays: ``x_train`` (uint8 ``[50000, 32, 32, 3]``, or any image
    layout with the examples first), ``y_train`` (``[50000]`` or ``[50000, 1]``), ``x_test`` and
    ``y_test`` (10,000 likewise). Keras' ``cifar10.load_data()`` arrays saved with
    ``np.savez("cifar10.npz", x_train=..., y_train=..., x_test=..., y_test=...)`` fit. Images
    are flattened in their stored order (``D = 3072``) and scaled from ``0..255`` to ``[0, 1]``;
    train is the pool, test the test set. A missing file raises ``FileNotFoundError``; a
    truncated or corrupt archive, missing arrays, label and image counts that differ, labels
    outside ``0..9`` or test images of another shape than the training images ``ValueError``;
    non-uint8 images or non-integer labels ``TypeError``.

    Args:
      path: directory holding ``cifar10.npz``.

    Returns:
      A :class:`Dataset` with ``C = 10``.
    """
    directory = Path(path)
    file = directory / _CIFAR10_FILE
    if not file.is_file():
        raise _missing("cifar10", directory, _CIFAR10_FILE, [_CIFAR10_FILE])
    try:
        with np.load(file) as archive:
            arrays = {name: archive[name] for name in _CIFAR10_KEYS if name in archive.files}
    except (zipfile.BadZipFile, EOFError, zlib.error, ValueError) as error:
        raise _corrupt(file, error) from None
    absent = [name for name in _CIFAR10_KEYS if name not in arrays]
    if absent:
        raise ValueError(f"{str(file)!r} must hold arrays {_CIFAR10_KEYS}; missing {absent}")
    for name in ("x_train", "x_test"):
        if arrays[name].dtype != np.uint8:
            raise TypeError(f"{name} in {str(file)!r} must be uint8; got {arrays[name].dtype}")
    sources = tuple(f"{name} in {str(file)!r}" for name in _CIFAR10_KEYS)
    return _image_dataset(*(arrays[name] for name in _CIFAR10_KEYS), sources=sources)
