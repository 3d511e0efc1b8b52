# Two commands that work on a fresh machine with only Python:
#   make demo   set up .venv and run a short variant comparison on built-in data
#   make test   set up .venv and run the linters and the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# torch is pinned here only (setup.cfg keeps an honest range): the CPU build of
# 2.13.0 is what this project's machines carry; a newer torch would pull GBs of CUDA.
TORCH  ?= torch==2.13.0
EXTRAS ?= test,geo,dask,postgres,docs,tracking,safe,uncertainty,vision

.PHONY: venv demo test lint docs bench clean

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]" "$(TORCH)"
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/skestimators demo

lint: venv
	$(BIN)/ruff check skestimators tests benchmarks docs

# One torch/OpenMP thread per xdist worker: two workers on two cores, never 2x2.
# The docs build (warnings as errors, gallery examples executed) is part of the tests.
test: venv lint
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(MAKE) docs
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadgroup

docs: venv
	$(MAKE) -C docs html SPHINXBUILD=$(abspath $(BIN))/sphinx-build

bench: venv
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) build dist *.egg-info docs/_build docs/auto_examples docs/generated
