# Two commands: `make run` (the main job) and `make test` (the whole suite).
# Each creates or updates the local virtualenv (.venv) by itself.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean

$(STAMP): pyproject.toml scripts/bootstrap_venv.py
	$(PYTHON) scripts/bootstrap_venv.py $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/plexichat-logs serve --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_store.py
	$(BIN)/python benchmarks/bench_retention.py
	$(BIN)/python benchmarks/bench_verify.py
	$(BIN)/python benchmarks/bench_metrics.py
	$(BIN)/python benchmarks/bench_api.py
	$(BIN)/python benchmarks/bench_tail.py --write

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .coverage logs
