# The two commands: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install lint bench postgres clean translations messages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) translations

## The portal's catalogues (hub/portal/translations/*/messages.po) compiled to .mo
translations: $(STAMP)
	$(BIN)/pybabel compile -d hub/portal/translations >/dev/null

## After changing visible strings: extract them and update the catalogues (then translate)
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k _lp:1c,2 --no-location --sort-output -o hub/portal/translations/messages.pot .
	$(BIN)/pybabel update -i hub/portal/translations/messages.pot -d hub/portal/translations --no-fuzzy-matching --ignore-obsolete

## Start the hub on the embedded default (SQLite under ./var/) at http://127.0.0.1:5000
run: $(STAMP) translations
	$(BIN)/hub db upgrade
	$(BIN)/hub run

## The whole suite: lint, import contract and type check first, then the tests on SQLite and
## on a PostgreSQL server installed and started if missing, the portal's browser tests in
## Debian's chromium, installed if missing.
## Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set: without it every `hub`
## process of the suite compiles the hub again, and pytest rewrites its plugins each run.
## Two pytest-xdist workers (PYTEST_WORKERS=0: one process), each with its own SQLite files
## and PostgreSQL server (tests/conftest.py), the browser tests all on one of them.
PYTEST_WORKERS ?= 2
test: $(STAMP) translations lint
	HUB_TEST_POSTGRES_URL="$$(bash scripts/test-postgres.sh)" HUB_REQUIRE_POSTGRES=1 \
		HUB_TEST_CHROMIUM="$$(bash scripts/test-browser.sh)" HUB_REQUIRE_BROWSER=1 \
		env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup \
		$(PYTEST_ARGS)

## Style, the import contract (pyproject.toml: imports run one way) and the type check
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

## Lifecycle throughput and latency against gunicorn+PostgreSQL and hub run+SQLite
bench: $(STAMP)
	$(BIN)/python bench/lifecycle.py

postgres:
	@bash scripts/test-postgres.sh

clean:
	rm -rf $(VENV) var *.egg-info
