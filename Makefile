# numbering-service. Every target is idempotent.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
export DJANGO_SETTINGS_MODULE ?= config.settings.base

.PHONY: help setup venv services db migrate run test check lint format test-rules

help:
	@echo "make run    - set up everything and run the service with demo data"
	@echo "make test   - set up everything and run the full test suite (coverage enforced)"
	@echo "make setup  - venv, dependencies, PostgreSQL/Redis/NATS, roles, database, migrations"
	@echo "make check  - layering (import-linter), ruff, ruff format, mypy (make test runs it)"

$(BIN)/.installed: pyproject.toml constraints.txt
	@test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -c constraints.txt -e ".[dev]"
	@touch $@

venv: $(BIN)/.installed

services:
	@bash deploy/local/ensure_services.sh

db: venv services
	@$(PYTHON) deploy/local/bootstrap_db.py

migrate: db
	@$(PYTHON) manage.py migrate --database owner --no-input -v 0
	@echo "[setup] database migrated"

setup: migrate

run: setup
	@bash deploy/local/run.sh

test: venv services browser test-rules check
	@$(PYTHON) deploy/local/bootstrap_db.py
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/pytest $(PYTEST_ARGS)
	@$(PYTHON) deploy/local/check_coverage.py .coverage.json

# The layers (pyproject [tool.importlinter], docs/architecture.md), lint, format, types.
check: venv
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

lint: check

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# --- local S3 server + export bucket (issue 7) ---
.PHONY: s3
s3: venv
	@bash deploy/local/s3.sh
	@$(PYTHON) manage.py provision_export_bucket
setup: s3

# Headless Chromium for the admin browser tests (Debian package; Playwright drives it,
# never `playwright install`). Idempotent: installs only when missing.
.PHONY: browser
browser:
	@test -x /usr/bin/chromium || { echo "[browser] installing chromium"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }
	@/usr/bin/chromium --version

# Prometheus alert/recording rules: promtool check + unit tests (installs promtool if missing).
test-rules:
	@bash deploy/prometheus/test_rules.sh

# --- gRPC (issue 3) ---
.PHONY: proto bench bench-cache
proto: venv
	$(PYTHON) grpc_server/codegen.py
# ValidateLease benchmark (not part of `make test`): BENCH_ARGS="--rates 5000,7500 --duration 20"
bench: venv services
	$(PYTHON) bench/validate_lease/run.py $(BENCH_ARGS)

# Lease-cache coherence bounds (issue 12, ADR 1200; not part of `make test`): propagation
# P50/P99 and post-outage convergence, against a private redis-server it starts itself.
bench-cache: venv services
	$(PYTHON) bench/cache_coherence/run.py $(BENCH_CACHE_ARGS)
