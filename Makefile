# One-command entry points. `make test` and `make study` set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2

.PHONY: setup test test-slow test-all lint study bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules
	cd . && PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --lint --cores 1

test: lint
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/pytest -q -m "not slow"

# The end-to-end tests: the tiny study, reruns, accuracy bands, a real SLURM when one runs.
test-slow: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/pytest -q -m slow --durations=15

test-all: test test-slow

study: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --cores $(CORES) all

bench: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python bench/run_all.py

clean:
	rm -rf results/*/ .snakemake logs
