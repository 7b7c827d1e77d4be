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
	@echo "make image  - build the container image with podman; make image-smoke runs it against the local services"
	@echo "make pacts | pact-verify | pact-break-demo - consumer contracts (docs/contracts.md)"
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
	@$(PYTHON) manage.py ensure_audit_partitions
	@echo "[setup] database migrated"

setup: migrate

run: setup
	@bash deploy/local/run.sh

SERVER_BINDING_TESTS = tests/numbering/test_statement_budget.py tests/numbering/test_concurrency.py \
	tests/numbering/test_services.py tests/numbering/test_transitions.py tests/grpc_server/test_rpcs.py \
	tests/grpc_server/test_tenant_binding.py tests/grpc_server/test_extend_reservation.py tests/cache/test_after_commit.py
test: venv services browser test-rules check
	@$(PYTHON) deploy/local/bootstrap_db.py
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/pytest $(PYTEST_ARGS)
	@$(PYTHON) deploy/local/check_coverage.py .coverage.json
	# The write path again as the mutation pool runs it: parameters bound server-side, the
	# statements prepared (ADR 1100 amendment of 2026-12-03).
	DATABASE_SERVER_SIDE_BINDING=1 DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/pytest -q --no-cov $(SERVER_BINDING_TESTS)

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
.PHONY: proto bench bench-cache bench-write bench-stream
proto: venv
	$(PYTHON) grpc_server/codegen.py
# ValidateLease benchmark (not part of `make test`): BENCH_ARGS="--rates 5000,7500 --duration 20"
bench: venv services
	$(PYTHON) bench/validate_lease/run.py $(BENCH_ARGS)
# Unary vs ValidateLeases vs ValidateLeaseStream, server CPU per validation (ADR 1110)
bench-stream: venv services
	$(PYTHON) bench/validate_stream/run.py $(BENCH_STREAM_ARGS)

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

# --- consumer contracts (issue 17, docs/contracts.md) ---
# `make test` runs all of this; these targets run one part on its own.
.PHONY: pacts pact-verify pact-break-demo
PACT_PYTEST := DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/pytest --no-cov -p no:cacheprovider -q
# Consumer tests: rewrite pacts/<consumer>-numbering-service.json (commit the result).
pacts: venv
	$(PACT_PYTEST) tests/pacts/consumers
# Provider verification of every committed pact against live gunicorn + grpcserver (mTLS).
pact-verify: venv services
	@$(PYTHON) deploy/local/bootstrap_db.py
	$(PACT_PYTEST) tests/pacts/provider -k "honours or broker"
# The break demos: rename data.lease_id in the events / change a ValidateLease reason, and
# watch billing's / sms-orchestrator's pact fail by name (the verifier output is printed).
pact-break-demo: venv services
	@$(PYTHON) deploy/local/bootstrap_db.py
	$(PACT_PYTEST) tests/pacts/provider -k "renaming or changing" -rA

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

# The readiness mix (issue 11; not part of `make test`, which runs a 4-second version in
# tests/bench): open-loop ValidateLease + gRPC and REST mutations at MIX_ARGS, e.g.
#   make bench-mix MIX_ARGS="--rate 2000 --duration 1800 --split --record"
#   make bench-mix MIX_ARGS="--rate 600 --duration 60 --compare"   # one pool vs split, one run
.PHONY: bench-mix
bench-mix: venv services
	$(PYTHON) bench/lifecycle_mix/run.py $(MIX_ARGS)

# Chaos drills under the mix (issue 15, bench/chaos/run.py): private Redis/NATS, a real
# Prometheus with the project's rules (`for:` ÷ 30), PASS/FAIL with numbers; DRILL_ARGS="--record"
# appends to bench/RESULTS.md. `make test` runs 20-second versions (tests/bench).
CHAOS_DRILLS := drill-redis-outage drill-nats-outage drill-relay-kill drill-grpc-worker-kill drill-celery-worker-kill drill-redis-memory-pressure
# Not in `drills` (it brings up the three-region stack, ~3 min): make drill-postgres-failover
.PHONY: $(CHAOS_DRILLS) drills
drill-redis-outage drill-nats-outage drill-relay-kill drill-grpc-worker-kill drill-celery-worker-kill drill-redis-memory-pressure: venv services
	$(PYTHON) bench/chaos/run.py $(@:drill-%=%) $(DRILL_ARGS)
.PHONY: drill-postgres-failover drill-postgres-partition drill-replica-lag
drill-postgres-failover: venv ha-install
	$(PYTHON) bench/chaos/run.py postgres-failover $(DRILL_ARGS)
# One standby of the three-region stack stops replaying under load: NumberingCrossRegionLag
# fires on the real postgres_exporter metric and clears (writes go on: quorum commit).
drill-replica-lag: venv ha-install
	$(PYTHON) bench/chaos/run.py replica-lag --rate 100 $(DRILL_ARGS)
# PostgreSQL silent behind iptables DROP on the service's own forwarder port (ADR 1504, ~10 min:
# the latency alerts clear only once the fault leaves their 5-minute windows). ha-install
# brings iptables.
drill-postgres-partition: venv services ha-install
	$(PYTHON) bench/chaos/run.py postgres-partition --settle 420 $(DRILL_ARGS)
drills: $(CHAOS_DRILLS) drill-postgres-partition

# Lease-cache coherence bounds (issue 12, ADR 1200; not part of `make test`): propagation
# P50/P99 and post-outage convergence, against a private redis-server it starts itself.
bench-cache: venv services
	$(PYTHON) bench/cache_coherence/run.py $(BENCH_CACHE_ARGS)

# Search and reserve-by-criteria on 1,000,000 numbers (issue 11 item 5, ADR 1120; not part of
# `make test`, which pins the plans in tests/numbering/test_search_plans.py): its own database,
# seeded once (~25 s; --reuse keeps it), gunicorn only. SEARCH_ARGS="--rate 300 --duration 60 --reuse"
.PHONY: bench-search
bench-search: venv services
	$(PYTHON) bench/search_1m/run.py $(SEARCH_ARGS)

# The search code's own CPU per request, in-process (after bench-search has seeded).
.PHONY: bench-search-inprocess
bench-search-inprocess: venv services
	$(PYTHON) bench/search_1m/inprocess.py $(SEARCH_INPROCESS_ARGS)

# Write-path cost (issue 11 item 2, ADR 1100; not part of `make test`): CPU ms and SQL
# statements per Reserve/Assign/Release transition, in-process and through the gRPC server.
# BENCH_WRITE_ARGS="--cycles 300 --grpc-seconds 20 --clients 8 --record LABEL"
bench-write: venv services
	$(PYTHON) bench/write_path/run.py $(BENCH_WRITE_ARGS)
