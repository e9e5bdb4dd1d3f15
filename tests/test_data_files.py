"""Tests for jaxal.data's local-file loaders on tiny generated IDX and npz files."""

import gzip
import struct

import jax.numpy as jnp
import numpy as np
import pytest

from jaxal import data

IDX_STEMS = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
IDX_LOADERS = [data.mnist, data.fashion_mnist]


def write_idx(file, array, *, compress):
    """The IDX format: two zero bytes, type 0x08 (uint8), ndim, big-endian uint32 sizes, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        file = file.with_name(file.name + ".gz")
        payload = gzip.compress(payload)
    file.write_bytes(payload)


def write_mnist_like(directory, rng, *, compress, num_train=5, num_test=3):
    arrays = [
        rng.integers(0, 256, (num_train, 28, 28)),
        rng.integers(0, 10, num_train),
        rng.integers(0, 256, (num_test, 28, 28)),
        rng.integers(0, 10, num_test),
    ]
    for stem, array in zip(IDX_STEMS, arrays, strict=True):
        write_idx(directory / stem, array, compress=compress)
    return arrays


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("loader", IDX_LOADERS)
def test_idx_loaders_read_flatten_and_scale(tmp_path, rng, loader, compress):
    x_train, y_train, x_test, y_test = write_mnist_like(tmp_path, rng, compress=compress)
    ds = loader(tmp_path)
    assert ds.x_pool.shape == (5, 784) and ds.x_test.shape == (3, 784)
    assert ds.x_pool.dtype == jnp.float32 and ds.y_pool.dtype == jnp.int32
    assert ds.num_classes == 10
    np.testing.assert_allclose(ds.x_pool, x_train.reshape(5, 784) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.x_test[2], x_test[2].ravel() / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_pool, y_train)
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert 0.0 <= float(ds.x_pool.min()) and float(ds.x_pool.max()) <= 1.0


def test_idx_loader_accepts_a_mix_of_plain_and_gz(tmp_path, rng):
    arrays = write_mnist_like(tmp_path, rng, compress=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", arrays[3], compress=False)
    np.testing.assert_array_equal(data.mnist(str(tmp_path)).y_test, arrays[3])


@pytest.mark.parametrize("loader", IDX_LOADERS)
def test_idx_loader_names_every_expected_file_when_absent(tmp_path, loader):
    with pytest.raises(FileNotFoundError) as error:
        loader(tmp_path)
    message = str(error.value)
    assert all(f"{stem}[.gz]" in message for stem in IDX_STEMS)
    assert str(tmp_path) in message and "never downloads" in message


def test_idx_loader_lists_only_the_missing_files(tmp_path, rng):
    write_mnist_like(tmp_path, rng, compress=False)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="missing: t10k-images-idx3-ubyte\\. jaxal"):
        data.fashion_mnist(tmp_path)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda raw: b"\x00\x00\x0d" + raw[3:],  # float32 type code, not uint8
        lambda raw: raw[:-1],  # truncated data
    ],
    ids=["bad-magic", "truncated"],
)
def test_idx_loader_rejects_malformed_files(tmp_path, rng, corrupt):
    write_mnist_like(tmp_path, rng, compress=False)
    file = tmp_path / "train-images-idx3-ubyte"
    file.write_bytes(corrupt(file.read_bytes()))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        data.mnist(tmp_path)


def write_cifar_like(directory, rng, **overrides):
    arrays = {
        "x_train": rng.integers(0, 256, (4, 32, 32, 3)).astype(np.uint8),
        "y_train": rng.integers(0, 10, (4, 1)),
        "x_test": rng.integers(0, 256, (2, 32, 32, 3)).astype(np.uint8),
        "y_test": rng.integers(0, 10, (2, 1)),
    }
    arrays.update(overrides)
    np.savez(directory / "cifar10.npz", **{k: v for k, v in arrays.items() if v is not None})
    return arrays


def test_cifar10_reads_flattens_and_scales(tmp_path, rng):
    arrays = write_cifar_like(tmp_path, rng)
    ds = data.cifar10(tmp_path)
    assert ds.x_pool.shape == (4, 3072) and ds.x_test.shape == (2, 3072)
    assert ds.x_pool.dtype == jnp.float32 and ds.y_pool.dtype == jnp.int32
    assert ds.y_pool.shape == (4,) and ds.num_classes == 10
    np.testing.assert_allclose(ds.x_pool, arrays["x_train"].reshape(4, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, arrays["y_test"][:, 0])


def test_cifar10_names_the_expected_file_when_absent(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        data.cifar10(tmp_path)
    message = str(error.value)
    assert "cifar10.npz" in message and str(tmp_path) in message
    assert "never downloads" in message


def test_cifar10_rejects_missing_keys_and_float_pixels(tmp_path, rng):
    write_cifar_like(tmp_path, rng, y_test=None)
    with pytest.raises(ValueError, match="y_test"):
        data.cifar10(tmp_path)
    write_cifar_like(tmp_path, rng, x_test=np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(TypeError, match="x_test.*uint8"):
        data.cifar10(tmp_path)


# ---------------------------------------------------------------------------------------------
# Damaged or inconsistent files: ValueError naming the file


def test_idx_loader_names_a_truncated_gz_file(tmp_path, rng):
    write_mnist_like(tmp_path, rng, compress=True)
    file = tmp_path / "train-images-idx3-ubyte.gz"
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz' is truncated or corrupt"):
        data.mnist(tmp_path)


@pytest.mark.parametrize(
    ("stem", "array", "match"),
    [
        ("train-labels-idx1-ubyte", np.zeros(4), "train-labels.* 4 labels but .*train-images"),
        ("t10k-labels-idx1-ubyte", np.zeros(4), "t10k-labels.* 4 labels but .*t10k-images"),
        ("t10k-images-idx3-ubyte", np.zeros((3, 27, 27)), r"t10k-images.*\(27, 27\).*train-images"),
        ("train-labels-idx1-ubyte", np.full(5, 10), "train-labels.* labels in 10..10"),
    ],
    ids=["train-counts", "test-counts", "test-shape", "label-range"],
)
def test_idx_loader_names_inconsistent_files(tmp_path, rng, stem, array, match):
    write_mnist_like(tmp_path, rng, compress=False)
    write_idx(tmp_path / stem, array, compress=False)
    with pytest.raises(ValueError, match=match):
        data.mnist(tmp_path)


def test_cifar10_names_a_truncated_archive(tmp_path, rng):
    write_cifar_like(tmp_path, rng)
    file = tmp_path / "cifar10.npz"
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cifar10\.npz' is truncated or corrupt"):
        data.cifar10(tmp_path)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            dict(y_train=np.zeros((3, 1), np.int64)),
            "y_train in .*cifar10.npz.* 3 labels but x_train",
        ),
        (dict(x_test=np.zeros((2, 16, 16, 3), np.uint8)), r"x_test in .*\(16, 16, 3\).*x_train"),
        (dict(y_test=np.zeros((2, 2), np.int64)), r"y_test in .*labels \[N\] or \[N, 1\]"),
    ],
    ids=["counts", "test-shape", "label-shape"],
)
def test_cifar10_names_inconsistent_arrays(tmp_path, rng, overrides, match):
    write_cifar_like(tmp_path, rng, **overrides)
    with pytest.raises(ValueError, match=match):
        data.cifar10(tmp_path)
