# pacskit — `make run` starts it, `make test` installs what the tests need and runs them all.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test unit integration peers bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/run.py

peers:
	bash scripts/install-peers.sh

test: $(STAMP) peers
	$(BIN)/python -m pytest tests/unit tests/integration -q -ra

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

integration: $(STAMP) peers
	$(BIN)/python -m pytest tests/integration -q -ra

bench: $(STAMP) peers
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests bench

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
