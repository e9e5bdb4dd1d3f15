"""Multi-host BALD: one jitted top-b selection over a pool sharded across several processes.

Every process calls :func:`jax.distributed.initialize` (coordinator address, number of
processes, its own id), builds one global :class:`jax.sharding.Mesh` over the devices of all
processes and creates the pool ``log_probs [K, N, C]`` sharded along ``N`` with
:func:`jax.make_array_from_callback`: each process generates only the rows of its own devices
(in a real run it would load them, e.g. from its part of a ``.npy`` file). One jitted program
then computes ``jaxal.scores.bald`` and ``jaxal.select.top_k``; XLA inserts the cross-process
collectives (gloo on CPU, NCCL on GPU). Process 0 prints the indices and writes
``results.json``. There is no networking code here beyond ``jax.distributed``.

The pool is padded to a multiple of the device count (``jaxal.chunked.bucket_size``) with
unavailable uniform points, so any ``N`` shards evenly. Pool point ``n`` is generated from
``(seed, n // BLOCK)`` only, so the data do not depend on how the pool is split: ``--check``
makes process 0 also select on the whole pool on one device and record whether the indices
are equal.

On one CPU machine, two processes with four devices each (one command spawns them):

    python experiments/multihost_bald.py --launch-local 2 --cpu-devices 4 --check

or by hand, one shell per process (``--cpu-devices 4`` is the same as
``XLA_FLAGS=--xla_force_host_platform_device_count=4``)::

    python experiments/multihost_bald.py --coordinator 127.0.0.1:12355 --num-processes 2 \\
        --process-id 0 --cpu-devices 4 &
    python experiments/multihost_bald.py --coordinator 127.0.0.1:12355 --num-processes 2 \\
        --process-id 1 --cpu-devices 4

On a cluster run one process per host; leave out ``--coordinator``, ``--num-processes`` and
``--process-id`` where ``jax.distributed.initialize()`` detects them (SLURM, Open MPI, Cloud
TPU), else pass the first host's address on every host.
"""

import json
import os
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
import typer
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import jaxal

BLOCK = 1024
"""Pool points generated from one seed; the data do not depend on the split into shards."""


def pool_slice(start: int, stop: int, *, K: int, C: int, seed: int) -> np.ndarray:
    """Rows ``[start, stop)`` of the pool: ``[K, stop - start, C]`` float32 log-probs.

    ``log_softmax(2 * randn(1, n, C) + randn(K, n, C))`` per block of ``BLOCK`` points, block
    ``j`` drawn from ``default_rng((seed, j))``: any slice equals the same slice of the whole.
    """
    blocks = []
    for j in range(start // BLOCK, -(-stop // BLOCK)):
        rng = np.random.default_rng((seed, j))
        logits = 2.0 * rng.standard_normal((1, BLOCK, C)) + rng.standard_normal((K, BLOCK, C))
        logits -= logits.max(-1, keepdims=True)
        blocks.append(logits - np.log(np.exp(logits).sum(-1, keepdims=True)))
    offset = (start // BLOCK) * BLOCK
    pool = np.concatenate(blocks, axis=1) if blocks else np.zeros((K, 0, C))
    return pool[:, start - offset : stop - offset].astype(np.float32)


def padded_rows(start: int, stop: int, *, N: int, K: int, C: int, seed: int) -> np.ndarray:
    """Rows ``[start, stop)`` of the pool padded beyond ``N`` with uniform ``log(1 / C)``."""
    rows = np.full((K, stop - start, C), -np.log(C), np.float32)
    n = max(0, min(stop, N) - start)
    rows[:, :n] = pool_slice(start, start + n, K=K, C=C, seed=seed)
    return rows


def bald_top_k(log_probs_K_P_C: jax.Array, *, N: int, b: int) -> tuple[jax.Array, jax.Array]:
    """``(indices [b], scores [b])``: the ``b`` best BALD scores among the first ``N`` points."""
    scores_P = jaxal.scores.bald(log_probs_K_P_C)
    available_P = jnp.arange(log_probs_K_P_C.shape[1]) < N
    indices_B = jaxal.select.top_k(scores_P, b, available=available_P)
    return indices_B, scores_P[indices_B]


def select(
    coordinator: str | None,
    num_processes: int | None,
    process_id: int | None,
    *,
    N: int,
    K: int,
    C: int,
    b: int,
    seed: int,
    check: bool,
) -> dict | None:
    """Join the distributed run, select on the sharded pool; process 0 returns the record."""
    jax.distributed.initialize(coordinator, num_processes, process_id)
    devices = jax.devices()  # every device of every process
    mesh = Mesh(np.array(devices), ("pool",))
    padded_N = jaxal.chunked.bucket_size(N, multiple=len(devices))
    sharding = NamedSharding(mesh, PartitionSpec(None, "pool", None))
    loaded = []

    def load(index: tuple[slice, ...]) -> np.ndarray:  # called once per local device
        start, stop, _ = index[1].indices(padded_N)
        loaded.append((start, stop))
        return padded_rows(start, stop, N=N, K=K, C=C, seed=seed)

    log_probs = jax.make_array_from_callback((K, padded_N, C), sharding, load)
    acquire = jax.jit(
        partial(bald_top_k, N=N, b=b), out_shardings=NamedSharding(mesh, PartitionSpec())
    )  # replicated outputs: every process can read them
    start = time.perf_counter()
    indices_B, scores_B = jax.block_until_ready(acquire(log_probs))
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(acquire(log_probs))
    run_s = time.perf_counter() - start
    print(
        f"process {jax.process_index()}/{jax.process_count()}: generated pool rows "
        f"{sorted(loaded)} for devices {[d.id for d in jax.local_devices()]}",
        flush=True,
    )
    if jax.process_index() != 0:
        return None
    record = {
        "N": N,
        "K": K,
        "C": C,
        "b": b,
        "seed": seed,
        "padded_N": padded_N,
        "num_processes": jax.process_count(),
        "devices": len(devices),
        "local_devices": jax.local_device_count(),
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "rows_per_device": padded_N // len(devices),
        "first_call_s": first_s,
        "run_s": run_s,
        "indices": [int(i) for i in indices_B],
        "scores": [float(s) for s in scores_B],
    }
    if check:  # the whole pool on this process's first device, no sharding
        whole = jax.device_put(pool_slice(0, N, K=K, C=C, seed=seed), jax.local_devices()[0])
        expected_B, _ = jax.jit(partial(bald_top_k, N=N, b=b))(whole)
        record["single_device_indices"] = [int(i) for i in expected_B]
        record["equals_single_device"] = record["indices"] == record["single_device_indices"]
    return record


def free_port() -> int:
    """A TCP port on localhost that is free now (for the local coordinator)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_local(num_processes: int, forwarded: list[str], timeout_s: float) -> int:
    """Run ``num_processes`` copies of this script on this machine; return the worst exit code.

    If one process fails, the others (which would wait for it) are terminated.
    """
    coordinator = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--coordinator", coordinator]
            + ["--num-processes", str(num_processes), "--process-id", str(i), *forwarded],
            env=env,
        )
        for i in range(num_processes)
    ]
    deadline = time.monotonic() + timeout_s
    codes: list[int | None] = [None] * num_processes
    while None in codes:
        codes = [child.poll() for child in children]
        if any(code not in (None, 0) for code in codes) or time.monotonic() > deadline:
            print(f"stopping the processes: exit codes {codes}", file=sys.stderr)
            for child in children:
                if child.poll() is None:
                    child.terminate()
            codes = [child.wait() for child in children]
            break
        time.sleep(0.05)
    return max(abs(code) for code in codes)


def main(
    out: Annotated[Path, typer.Option(help="output directory")] = Path("results/multihost"),
    launch_local_: Annotated[
        int, typer.Option("--launch-local", help="spawn this many processes here and exit")
    ] = 0,
    coordinator: Annotated[str | None, typer.Option(help="host:port of process 0")] = None,
    num_processes: Annotated[int | None, typer.Option(help="processes in the run")] = None,
    process_id: Annotated[int | None, typer.Option(help="this process, 0-based")] = None,
    cpu_devices: Annotated[int | None, typer.Option(help="CPU devices per process")] = None,
    n: Annotated[int, typer.Option("--n", help="pool points N")] = 100_000,
    k: Annotated[int, typer.Option("--k", help="posterior samples K")] = 20,
    c: Annotated[int, typer.Option("--c", help="classes C")] = 10,
    b: Annotated[int, typer.Option("--b", help="batch size")] = 10,
    seed: Annotated[int, typer.Option(help="data seed")] = 0,
    check: Annotated[bool, typer.Option(help="process 0 also selects on one device")] = False,
    timeout_s: Annotated[float, typer.Option(help="--launch-local: give up after")] = 300,
) -> None:
    if launch_local_:
        forwarded = [f"--out={out}", f"--n={n}", f"--k={k}", f"--c={c}", f"--b={b}"]
        forwarded += [f"--seed={seed}", "--check" if check else "--no-check"]
        if cpu_devices is not None:
            forwarded.append(f"--cpu-devices={cpu_devices}")
        raise typer.Exit(launch_local(launch_local_, forwarded, timeout_s))
    if cpu_devices is not None:
        jax.config.update("jax_num_cpu_devices", cpu_devices)
    record = select(
        coordinator, num_processes, process_id, N=n, K=k, C=c, b=b, seed=seed, check=check
    )
    if record is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
        print(json.dumps({key: record[key] for key in record if key != "scores"}), flush=True)
    jax.distributed.shutdown()
    if record is not None and record.get("equals_single_device") is False:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
