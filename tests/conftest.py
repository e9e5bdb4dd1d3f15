"""Test configuration: float64 available, strict rank promotion, CPU, seeded keys.

jaxtyping checks the annotations of every function in ``jaxal`` at run time, with beartype
(``--jaxtyping-packages`` in pyproject.toml's ``addopts``): a shape or dtype that contradicts a
signature fails the test. Jitted functions are checked once per trace.
"""

import os
import zlib

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One BLAS thread per test process: pytest-xdist already runs one process per core, and
# OpenBLAS's spinning threads slow LAPACK (eigh of 510 x 510: 3.3 s instead of 0.02 s) when
# processes share the cores. Effective only if set before numpy loads (the Makefile sets it).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# XLA:CPU's multi-threaded Eigen pool can wedge on large vmap-ed programs (a round of the loop
# hung once in CI, idle, in block_until_ready); one thread per process avoids it.
if "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
    ).strip()

import jax  # noqa: E402
import jaxtyping  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

from jaxal import cli  # noqa: E402
from tests import tiers  # noqa: E402

# typer hands a command taking `ctx: typer.Context` (its documented idiom) the plain click
# Context, not an instance of the annotated subclass: that one signature is not checked.
cli.run.__no_type_check__ = True  # pyright: ignore[reportFunctionMemberAccess]

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


@pytest.fixture(autouse=True)
def _unchecked(request):
    """``@pytest.mark.unchecked``: jaxtyping's run-time checks off for the test, which feeds
    wrong shapes or dtypes on purpose to test jaxal's own error messages."""
    if request.node.get_closest_marker("unchecked") is None:
        yield
        return
    before = jaxtyping.config.jaxtyping_disable
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        jaxtyping.config.update("jaxtyping_disable", before)


def pytest_collection_modifyitems(config, items):
    """Mark ``slow`` the tests listed in ``tests/slow.txt`` (:mod:`tests.tiers`): ``make test``
    skips them, ``make test-slow`` and CI run them."""
    slow = tiers.listed()
    for item in items:
        if tiers.group_of(item.nodeid) in slow:
            item.add_marker(pytest.mark.slow)
