# numbering-service. Every target is idempotent.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
export DJANGO_SETTINGS_MODULE ?= config.settings.base

.PHONY: help setup venv services db migrate run test lint format test-rules test-rules

help:
	@echo "make run    - set up everything and run the service with demo data"
	@echo "make test   - set up everything and run the full test suite (coverage enforced)"
	@echo "make setup  - venv, dependencies, PostgreSQL/Redis/NATS, roles, database, migrations"
	@echo "make lint   - ruff + mypy"

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

test: venv services browser test-rules
	@$(PYTHON) deploy/local/bootstrap_db.py
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/pytest $(PYTEST_ARGS)
	@$(PYTHON) deploy/local/check_coverage.py .coverage.json

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

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
.PHONY: proto bench
proto: venv
	$(PYTHON) grpc_server/codegen.py
# ValidateLease benchmark (not part of `make test`): BENCH_ARGS="--rates 5000,7500 --duration 20"
bench: venv services
	$(PYTHON) bench/validate_lease/run.py $(BENCH_ARGS)

# --- three-region HA stack and failover drill (issue 14, ADR 1400) ---
# Loopback ports 15432-15434 (PostgreSQL), 18008-18010 (Patroni), 12379-12384 (etcd),
# 14222-14224 (NATS); data in HA_DIR (/tmp/numbering-ha). `make run` stays single-node.
.PHONY: ha-install ha-up ha-down ha-status drill-failover drill-failover-short
ha-install:
	@bash deploy/local-ha/install.sh
ha-up: venv ha-install
	@$(PY) deploy/local-ha/ha.py up $(HA_ARGS)
ha-down:
	@$(PY) deploy/local-ha/ha.py down $(HA_ARGS)
ha-status:
	@$(PY) deploy/local-ha/ha.py status
# `make test` runs the short drill (tests/ha): the stack's packages must be there.
test: ha-install
# Full drill (not in `make test`): kill -9, SIGSTOP > leader TTL, region isolation, each
# DRILL_ROUNDS times; then the planted-bug run (async replication must lose acked writes).
DRILL_ROUNDS ?= 5
drill-failover: venv ha-install
	$(PYTHON) bench/failover_drill/run.py --rounds $(DRILL_ROUNDS) $(DRILL_ARGS)
	$(PYTHON) bench/failover_drill/run.py --planted-bug --rounds 3
drill-failover-short: venv ha-install
	$(PYTHON) bench/failover_drill/run.py --short
