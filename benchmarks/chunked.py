"""Benchmark chunked BALD over a memory-mapped pool of a million points on this machine's CPU.

The pool is ``log_probs`` ``[K, N, C] = [20, 1,000,000, 10]`` float32 (0.8 GB), written by a
child process to a ``.npy`` in a temporary directory and opened with
``np.load(path, mmap_mode="r")``; :func:`jaxal.chunked.score` scores it ``65,536`` points at a
time. A warm-up call on one chunk compiles the score first, so the timed call is compile-free.

Memory, read in this process only (the writer is a child, so its pages do not count):

* ``peak_rss_extra_mib``: ``ru_maxrss`` after minus before the timed call. It includes the
  file-backed pages of the mapping that were read (clean page cache, reclaimable, shared);
* ``peak_anon_extra_mib``: the peak of ``RssAnon`` (``/proc/self/status``, sampled every
  5 ms) minus its value before: the memory the process itself allocated (chunks, scores).

Usage::

    .venv/bin/python benchmarks/chunked.py --out results/bench

Writes ``<out>/chunked.json`` and prints it.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import jax
import numpy as np

import jaxal

K, N, C, CHUNK_SIZE = 20, 1_000_000, 10, 65_536

WRITER = """
import sys
import numpy as np
K, N, C, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(K, N, C))
for start in range(0, N, 100_000):
    n = min(100_000, N - start)
    logits = 2.0 * rng.standard_normal((1, n, C)) + rng.standard_normal((K, n, C))
    logits -= logits.max(-1, keepdims=True)
    out[:, start : start + n] = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    out.flush()
"""


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def rss_anon_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class AnonPeak(threading.Thread):
    """Samples ``RssAnon`` every 5 ms until stopped; ``peak`` holds the largest value."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.done = rss_anon_mib(), threading.Event()

    def run(self):
        while not self.done.wait(0.005):
            self.peak = max(self.peak, rss_anon_mib())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "pool.npy")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", WRITER, str(K), str(N), str(C), path], check=True)
        write_s = time.perf_counter() - start
        pool = np.load(path, mmap_mode="r")
        jaxal.chunked.score(jaxal.scores.bald, pool[:, :CHUNK_SIZE], chunk_size=CHUNK_SIZE)

        rss_before, anon_before = max_rss_mib(), rss_anon_mib()
        sampler = AnonPeak()
        sampler.start()
        start = time.perf_counter()
        scores_N = jaxal.chunked.score(jaxal.scores.bald, pool, chunk_size=CHUNK_SIZE)
        run_s = time.perf_counter() - start
        sampler.done.set()
        sampler.join()
        rss_after = max_rss_mib()
        file_mib = os.path.getsize(path) / 2**20

    assert scores_N.shape == (N,) and np.isfinite(scores_N).all()
    record = {
        "score": "bald",
        "K": K,
        "N": N,
        "C": C,
        "dtype": "float32",
        "chunk_size": CHUNK_SIZE,
        "file_mib": round(file_mib, 1),
        "write_s": round(write_s, 2),
        "run_s": round(run_s, 3),
        "points_per_s": round(N / run_s),
        "max_rss_before_mib": round(rss_before, 1),
        "max_rss_after_mib": round(rss_after, 1),
        "peak_rss_extra_mib": round(rss_after - rss_before, 1),
        "peak_anon_extra_mib": round(sampler.peak - anon_before, 1),
        "chunk_mib": round(K * CHUNK_SIZE * C * 4 / 2**20, 1),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "chunked.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
