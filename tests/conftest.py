"""Test configuration: float64 available, strict rank promotion, CPU, seeded keys."""

import os
import zlib

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

DTYPES = [np.float32, np.float64]
"""Every public function is tested on both paths."""

TRANSFORMS = [pytest.param(lambda f: f, id="eager"), pytest.param(jax.jit, id="jit")]
"""Every public function is tested with and without ``jit``."""


@pytest.fixture
def seed(request) -> int:
    """A per-test seed, printed so a failure can be replayed."""
    value = zlib.crc32(request.node.nodeid.encode()) % (2**31)
    print(f"seed = {value}")
    return value


@pytest.fixture
def key(seed):
    return jax.random.key(seed)


@pytest.fixture
def rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)
