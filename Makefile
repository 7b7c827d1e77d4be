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
	@echo "make image  - build the container image with podman; make image-smoke runs it against the local services"
	@echo "make docs-ops - regenerate docs/ops/escalation-matrix.md from the alert rules"

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

# --- container image (issue 18, ADR 1800): podman, base made locally with debootstrap ---
.PHONY: image image-smoke
image:
	@bash deploy/image/build.sh
# Runs the image as k8s does (non-root, read-only root) against the local services.
image-smoke: image migrate
	@bash deploy/image/smoke.sh

# --- operator documents (issue 18): the escalation matrix is generated from the alert rules ---
.PHONY: docs-ops
docs-ops: venv
	$(PYTHON) deploy/prometheus/escalation_matrix.py
