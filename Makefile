# The two commands: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install lint bench postgres clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the hub on the embedded default (SQLite under ./var/) at http://127.0.0.1:5000
run: $(STAMP)
	$(BIN)/hub db upgrade
	$(BIN)/hub run

## The whole suite, on SQLite and on a PostgreSQL server installed and started if missing
test: $(STAMP)
	HUB_TEST_POSTGRES_URL="$$(bash scripts/test-postgres.sh)" HUB_REQUIRE_POSTGRES=1 \
		$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

## Lifecycle throughput and latency against gunicorn+PostgreSQL and hub run+SQLite
bench: $(STAMP)
	$(BIN)/python bench/lifecycle.py

postgres:
	@bash scripts/test-postgres.sh

clean:
	rm -rf $(VENV) var *.egg-info
