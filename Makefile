# Two commands for a fresh machine: `make demo` (the main job) and `make test`.
# Each creates the virtual environment when it is missing.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU wheel of torch 2.13.0 lies here on this project's machines; pip looks there too.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)

.PHONY: demo test test-slow lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(FIND_LINKS) -c constraints.txt -e ".[dev,train]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m rudra_env.demo --config configs/env/small.yaml --seed 0

test: $(STAMP)
	$(BIN)/ruff check rudra_env agents training tests benchmarks
	$(BIN)/ruff format --check rudra_env agents training tests benchmarks
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check rudra_env agents training tests benchmarks
	$(BIN)/ruff format --check rudra_env agents training tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/env_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
