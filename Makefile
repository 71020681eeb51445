# Two commands a new user needs:  `make up`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: up test install bench clean

$(BIN)/govfleet-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/govfleet-installed

## Start the whole fleet: Temporal dev server + UI, PostgreSQL, workers, API, tracker simulator.
up: install
	$(BIN)/govfleet up

## Run the whole test suite (pure tests and integration tests against real servers).
test: install
	$(BIN)/python -m pytest

## Run every benchmark and write bench/results.json.
bench: install
	$(BIN)/govfleet bench

clean:
	rm -rf $(VENV) .govfleet
