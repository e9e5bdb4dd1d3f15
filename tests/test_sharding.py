"""Scores and selections on a pool sharded along N over 8 CPU devices equal one device's.

``--xla_force_host_platform_device_count`` must be set before jax starts, so the check runs
in a fresh interpreter; one subprocess holds every check to pay the start-up cost once.
"""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_rank_promotion", "raise")
    import jaxal
    from tests.reference import random_log_probs

    assert jax.device_count() == 8, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("pool",))
    log_probs = random_log_probs(np.random.default_rng(0), 10, 8 * 64, 4)
    local = jax.device_put(log_probs, jax.devices()[0])
    sharded = jax.device_put(log_probs, NamedSharding(mesh, P(None, "pool", None)))
    key = jax.random.key(0)

    def run(log_probs):
        scores = jaxal.scores.bald(log_probs)
        return (
            scores,
            jaxal.select.top_k(scores, 10),
            jaxal.select.stochastic(scores, 10, key=key),
            jaxal.select.batchbald(log_probs, 4),
        )

    expected = jax.jit(run)(local)
    got = jax.jit(run)(sharded)
    print("bald sharding:", got[0].sharding)
    assert got[0].sharding.spec == P("pool"), got[0].sharding
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-12, atol=1e-12)
    for name, g, e in zip(["top_k", "stochastic"], got[1:3], expected[1:3]):
        np.testing.assert_array_equal(g, e, err_msg=name)
    (indices, joint_mi), (expected_indices, expected_joint_mi) = got[3], expected[3]
    np.testing.assert_array_equal(indices, expected_indices, err_msg="batchbald")
    np.testing.assert_allclose(joint_mi, expected_joint_mi, rtol=1e-12)
    print("ok")
    """
)


def test_sharded_pool_matches_one_device():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": root,
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True, text=True
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ok" in result.stdout
