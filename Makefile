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
# The suite in two processes (pytest-xdist; each worker has its own test databases and Redis database):
# measured 2026-12-02 on this 2-core machine, 254-299 s against 332-386 s serial. Override to run serially
# or a part: make pytest PYTEST_ARGS="tests/participants -x".
PYTEST_ARGS ?= -n 2

.PHONY: install run migrate demo test preflight lint security audit typecheck pytest messages bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py generate_keys --if-missing
	$(BIN)/python manage.py generate_keys --add-missing
	for db in default notes casefiles; do $(BIN)/python manage.py migrate --database=$$db --no-input -v0 || exit 1; done

demo: migrate
	$(RUN_ENV) $(BIN)/python manage.py seed_demo

run: demo
	@echo ""
	@echo "Preventicons runs at http://127.0.0.1:$(PORT)/  (staff login: http://127.0.0.1:$(PORT)/account/login/)"
	@echo "Demo logins are printed above by seed_demo. Stop with Ctrl-C."
	@echo ""
	$(RUN_ENV) PORT=$(PORT) $(BIN)/honcho start -f Procfile.dev

lint: install security audit
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# bandit, the security lint, over the apps (migrations are generated). B101 is skipped project-wide in
# pyproject.toml ([tool.bandit]), with its reason. Any other finding is fixed or waived at its line with its
# reason (`# nosec BXXX  # why`); its "nosec encountered" notes on the other nodes of such a line are no finding.
security: install
	$(BIN)/bandit -q -c pyproject.toml -r preventicons participants scores casefiles notary -x '*/migrations/*'

# pip-audit: the installed packages (not the project itself) against known vulnerabilities, through
# PyPI's JSON API (`--vulnerability-service pypi`: OSV is not reachable from this project's machines).
# A known vulnerability fails the build. Where the service cannot be reached, or answers for none of the
# packages, it prints a WARNING and goes on: the suite must not turn red because a network it does not
# control is down. Measured 2026-12-02: this workplace's package index answers project pages but not the
# per-version JSON pip-audit asks for, so every package comes back "not found" and only the warning shows;
# on a machine that reaches pypi.org the same target audits them all.
AUDIT_JSON := $(VENV)/pip-audit.json
define AUDIT_GATE
import json, sys
path, status = sys.argv[1], int(sys.argv[2])
try:
    with open(path) as report:
        dependencies = json.load(report)["dependencies"]
except (OSError, ValueError, KeyError):
    dependencies = []
vulnerable = [d for d in dependencies if d.get("vulns")]
audited = [d for d in dependencies if "skip_reason" not in d]
for d in vulnerable:
    ids = ", ".join(v["id"] for v in d["vulns"])
    print(f"pip-audit: {d['name']} {d['version']} has known vulnerabilities: {ids}")
if vulnerable:
    sys.exit(1)
if not audited:
    print(f"WARNING: pip-audit checked none of {len(dependencies)} packages (exit {status}): the vulnerability"
          " service was unreachable or knew none of them, so nothing was audited")
    sys.exit(0)
print(f"pip-audit: {len(audited)} packages audited, no known vulnerabilities")
endef
export AUDIT_GATE

audit: install
	@rm -f $(AUDIT_JSON); status=0; \
	timeout 300 $(BIN)/pip-audit --skip-editable --vulnerability-service pypi --timeout 20 \
		--progress-spinner off --format json --output $(AUDIT_JSON) >/dev/null 2>&1 || status=$$?; \
	$(BIN)/python -c "$$AUDIT_GATE" $(AUDIT_JSON) $$status

typecheck: install
	$(BIN)/mypy .

pytest: install
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)

# Before anything else: PostgreSQL, Redis, Chromium and gettext, each missing one named with the command that
# installs or starts it (.ci/preflight.py), so a machine without them fails in seconds, not in the suite.
preflight: install
	@$(TEST_ENV) $(BIN)/python .ci/preflight.py

test: preflight lint typecheck pytest

messages: install
	$(BIN)/python manage.py makemessages -l nl --no-obsolete --ignore=.venv --ignore=var --ignore=tests --ignore=bench
	$(BIN)/python manage.py compilemessages --ignore=.venv

bench: install
	$(TEST_ENV) $(BIN)/python -m bench

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
