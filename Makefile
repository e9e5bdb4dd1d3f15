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

test: $(PY)
	$(PIP) install -q -e '.[dev]'
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 -q --nbmake tests notebooks

bench: $(PY)
	$(PIP) install -q -e '.[dev,peers]'
	$(PY) benchmarks/run.py --out results/bench

clean:
	rm -rf $(VENV) results .pytest_cache
