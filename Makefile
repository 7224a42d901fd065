# shopgraph: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run serve test lint format schema bench clean

install: $(STAMP)

$(STAMP): pyproject.toml tests/node/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The graphql-http audit test runs in Node (skipped where there is no Node, outside CI).
	if command -v npm >/dev/null; then npm ci --prefix tests/node --no-audit --no-fund --loglevel=error; fi
	touch $(STAMP)

## run: install, migrate, seed the demo shop, serve GraphiQL on http://127.0.0.1:8000/graphql
run: install
	$(BIN)/shopgraph migrate
	$(BIN)/shopgraph seed
	$(BIN)/shopgraph serve

serve: install
	$(BIN)/shopgraph serve

## lint: ruff, ruff format --check, mypy
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## test: lint, then the whole suite (also against PostgreSQL/Redis when SHOPGRAPH_TEST_* URLs are set)
test: lint
	$(BIN)/pytest

## schema: write schema.graphql from the code
schema: install
	$(BIN)/shopgraph export-schema schema.graphql

## bench: the benchmark suite on PostgreSQL (by hand, not in CI; see bench/README.md)
bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache shopgraph.db shopgraph.db-*
