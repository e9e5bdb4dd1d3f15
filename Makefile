# jaxal: `make demo`, `make test` and `make docs` are the set-up commands (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test test-slow docs bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

demo: $(PY)
	$(PIP) install -q -e .
	$(PY) experiments/demo.py --out results/demo

# One BLAS and one Eigen thread per pytest worker (-n 2 already fills the cores): OpenBLAS's
# spinning threads slow LAPACK a hundredfold on a shared machine, and XLA:CPU's multi-threaded
# Eigen pool can wedge on large vmap-ed programs (a hang seen once here; PyAutoFit#1528 too).
#
# `make test` runs lint, types and every test not marked slow; `make test-slow` the slow ones,
# measured and listed in tests/slow.txt (tests/tiers.py); CI (.ci/run) runs both.
PYTEST := OPENBLAS_NUM_THREADS=1 XLA_FLAGS="$$XLA_FLAGS --xla_cpu_multi_thread_eigen=false" \
	$(PY) -m pytest -n 2 -q --nbmake --doctest-modules tests notebooks jaxal

test: $(PY)
	$(PIP) install -q -e '.[dev]'
	$(PY) -m ruff check .
	$(PY) -m pyright --pythonpath $(PY) jaxal
	$(PYTEST) -m "not slow"

test-slow: $(PY)
	$(PIP) install -q -e '.[dev]'
	$(PYTEST) -m slow

# The documentation site (mkdocs.yml, docs/): API reference from the docstrings, guides,
# notebooks rendered as stored (not executed), into build/site; --strict fails on any warning,
# such as a broken link or cross-reference.
docs: $(PY)
	$(PIP) install -q -e '.[docs]'
	$(PY) -m mkdocs build --strict

bench: $(PY)
	$(PIP) install -q -e '.[dev,peers]'
	$(PY) benchmarks/run.py --out results/bench

clean:
	rm -rf $(VENV) results build .pytest_cache
