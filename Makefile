# Two commands for a fresh machine: `make run` (the platform with demo data, no servers needed) and
# `make test` (lint, types and the whole suite against PostgreSQL and Redis on 127.0.0.1).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PORT ?= 8000
# Links in the demo's e-mails and text messages point at the port `make run` serves on.
RUN_ENV := PREVENTICONS_SITE_URL=$${PREVENTICONS_SITE_URL:-http://127.0.0.1:$(PORT)}

# Test services: override any of these to point the suite elsewhere.
PG ?= postgres://postgres@127.0.0.1:5432
TEST_ENV := DATABASE_URL=$${DATABASE_URL:-$(PG)/preventicons_identity} \
	NOTES_DATABASE_URL=$${NOTES_DATABASE_URL:-$(PG)/preventicons_notes} \
	CASEFILES_DATABASE_URL=$${CASEFILES_DATABASE_URL:-$(PG)/preventicons_casefiles} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/14}

.PHONY: install run migrate demo test lint typecheck pytest messages bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py generate_keys --if-missing
	for db in default notes casefiles; do $(BIN)/python manage.py migrate --database=$$db --no-input -v0 || exit 1; done

demo: migrate
	$(RUN_ENV) $(BIN)/python manage.py seed_demo

run: demo
	@echo ""
	@echo "Preventicons runs at http://127.0.0.1:$(PORT)/  (staff login: http://127.0.0.1:$(PORT)/account/login/)"
	@echo "Demo logins are printed above by seed_demo. Stop with Ctrl-C."
	@echo ""
	$(RUN_ENV) PORT=$(PORT) $(BIN)/honcho start -f Procfile.dev

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy .

pytest: install
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

messages: install
	$(BIN)/python manage.py makemessages -l nl --no-obsolete --ignore=.venv --ignore=var --ignore=tests --ignore=bench
	$(BIN)/python manage.py compilemessages --ignore=.venv

bench: install
	$(TEST_ENV) $(BIN)/python -m bench

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
