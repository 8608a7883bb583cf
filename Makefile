# Two commands for a fresh machine: `make demo` (the main job) and `make test`.
# Each creates the virtual environment when it is missing.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU wheel of torch 2.13.0 lies here on this project's machines; pip looks there too.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)

.PHONY: demo demo-env test test-slow lint bench mutation mutation-rerun clean

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(FIND_LINKS) -c constraints.txt -e ".[dev,train,distributed]"
	touch $(STAMP)

# The main job: train the small preset (a few minutes), print the trained policy against random,
# heuristic and equilibrium banks, and say where the TensorBoard logs are.
demo: $(STAMP)
	$(BIN)/rudra train configs/train/ppo_shared_small.yaml

# The environment's own dynamics: one rollout of masked-random banks, printed step by step.
demo-env: $(STAMP)
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

# Mutation testing of rudra_env/core/ (every module, whatever its name) and
# rudra_env/contagion.py with mutmut 3 (the `mutation` extra; settings in pyproject.toml,
# [tool.mutmut]). mutmut copies rudra_env/ into mutants/, mutates it there, and runs on each
# mutant only the tests that reached the mutated function, fastest first, stopping at the first
# failure. Then benchmarks/mutation_report.py prints killed/total and writes every survivor
# (file:line and diff) to $(MUTATION_REPORT); the target fails below MUTATION_MIN percent.
#   make mutation                                  all ~5,300 mutants; about 1 s each on
#                                                  2 cores: a full run takes about an hour
#   make mutation MUTANTS='rudra_env.contagion*'   one module (mutant names are dotted paths;
#                                                  'rudra_env.core.state.*' for a core one)
#   make mutation MUTATION_JOBS=4                  more workers (default 2)
# Resumable: an interrupted or repeated run keeps the verdicts in mutants/ and reruns only the
# mutants of functions whose code changed; `rm -rf mutants` starts afresh. After adding tests,
# `make mutation-rerun` reruns just the mutants that were not killed. Both first delete
# mutmut's map of which tests reach which function (mutants/mutmut-stats.json; rebuilt in a few
# minutes): mutmut extends it only for new tests, so after a code change it would call new
# functions "reached by no test" and miss kills by existing tests. One mutant by hand:
# `.venv/bin/mutmut show NAME` (its diff), `.venv/bin/mutmut run NAME` (rerun it).
MUTATION_MIN ?= 90
MUTATION_JOBS ?= 2
MUTANTS ?=
MUTATION_REPORT ?= benchmarks/results/mutation.md
MUTATION_STAMP := $(VENV)/.installed-mutation

$(MUTATION_STAMP): $(STAMP)
	$(BIN)/pip install --quiet $(FIND_LINKS) -c constraints.txt -e ".[mutation]"
	touch $(MUTATION_STAMP)

mutation: $(MUTATION_STAMP)
	rm -f mutants/mutmut-stats.json
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
		nice -n 19 $(BIN)/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS)
	$(BIN)/python benchmarks/mutation_report.py --min $(MUTATION_MIN) --out $(MUTATION_REPORT)

mutation-rerun: $(MUTATION_STAMP)
	rm -f mutants/mutmut-stats.json
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
		nice -n 19 $(BIN)/mutmut run --max-children $(MUTATION_JOBS) \
		$$($(BIN)/python benchmarks/mutation_report.py --not-killed)
	$(BIN)/python benchmarks/mutation_report.py --min $(MUTATION_MIN) --out $(MUTATION_REPORT)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache mutants
