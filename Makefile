# jaxal: `make demo` and `make test` are the two set-up commands (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

demo: $(PY)
	$(PIP) install -q -e .
	$(PY) experiments/demo.py --out results/demo

# One BLAS and one Eigen thread per pytest worker (-n 2 already fills the cores): OpenBLAS's
# spinning threads slow LAPACK a hundredfold on a shared machine, and XLA:CPU's multi-threaded
# Eigen pool can wedge on large vmap-ed programs (a hang seen once here; PyAutoFit#1528 too).
test: $(PY)
	$(PIP) install -q -e '.[dev]'
	$(PY) -m ruff check .
	OPENBLAS_NUM_THREADS=1 XLA_FLAGS="$$XLA_FLAGS --xla_cpu_multi_thread_eigen=false" \
		$(PY) -m pytest -n 2 -q --nbmake tests notebooks

bench: $(PY)
	$(PIP) install -q -e '.[dev,peers]'
	$(PY) benchmarks/run.py --out results/bench

clean:
	rm -rf $(VENV) results .pytest_cache
