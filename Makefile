# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bench lint install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

.env: | $(VENV)/.installed
	$(BIN)/python scripts/make_dev_env.py .env

## Serve the app on the embedded default (SQLite, in-memory channel layer) with demo data.
run: install .env
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo --url http://$(HOST):$(PORT)
	$(BIN)/python -m supportgroups.serve -b $(HOST) -p $(PORT) supportgroups.asgi:application

## Run everything: lint, then the whole suite on throwaway PostgreSQL, Redis and headless Chromium.
test: install-test
	bash scripts/install-test-deps.sh
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m tests.harness $(PYTEST_ARGS)

## Benchmarks (ratios against baselines measured in the same run).
bench: install-test
	bash scripts/install-test-deps.sh
	$(BIN)/python -m bench $(BENCH_ARGS)

## Style, formatting and the layers contract (which app may import which; pyproject.toml).
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
