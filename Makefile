# Two commands a new user needs:  `make up`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: up test test-fast check install bench clean

$(BIN)/govfleet-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/govfleet-installed

## Start the whole fleet: Temporal dev server + UI, PostgreSQL, workers, API, tracker simulator.
up: install
	$(BIN)/govfleet up

## Run the whole test suite (pure tests and integration tests against real servers), in
## TEST_JOBS parallel sessions (pytest-xdist; each its own dev server and databases), a test
## file per session at a time. Most of a test's time is spent waiting on servers and timers, so
## more sessions than cores pay off; TEST_JOBS=0 runs it in this one process.
TEST_JOBS ?= 3
test: install
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile

## The fast tier: pure tests and workflow tests with activities replaced (no PostgreSQL, no dev server).
test-fast: install
	$(BIN)/python -m pytest -m "unit or workflows" tests/unit tests/workflows

## Style, types and layering: ruff (lint, format), basedpyright, import-linter (docs/architecture.md).
## Runs every check and fails if any failed.
check: install
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	$(BIN)/basedpyright --pythonpath $(BIN)/python || status=1; \
	$(BIN)/lint-imports --no-cache || status=1; \
	exit $$status

## Run every benchmark and write bench/results.json.
bench: install
	$(BIN)/govfleet bench

clean:
	rm -rf $(VENV) .govfleet
