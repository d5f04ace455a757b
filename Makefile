# pacskit — `make run` starts it, `make test` installs what the tests need and runs them all.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Test files run on parallel workers, each file on one worker (its module-scoped peers are
# started once); most tests wait on peers and subprocesses, so 3 workers fill 2 cores.
WORKERS ?= 3
PYTEST := $(BIN)/python -m pytest -n $(WORKERS) --dist loadfile

.PHONY: run test unit integration peers bench lint typecheck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q src/pacskit  # as pip install does: no compiling at each start
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/run.py

peers:
	bash scripts/install-peers.sh

test: $(STAMP) peers
	$(PYTEST) tests/unit tests/integration -q -ra --durations=15

unit: $(STAMP)
	$(PYTEST) tests/unit -q

integration: $(STAMP) peers
	$(PYTEST) tests/integration -q -ra

bench: $(STAMP) peers
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests bench

# The typing ratchet (tests/unit/test_typing.py) checks only the modules declared clean;
# this shows every module's errors (docs/typing.md).
typecheck: $(STAMP)
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
