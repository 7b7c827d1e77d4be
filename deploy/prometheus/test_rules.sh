#!/usr/bin/env bash
# Check and unit-test the Prometheus rules (deploy/prometheus/rules, tests in
# deploy/prometheus/tests). Installs promtool from the Debian package `prometheus` when it
# is missing (apt-get update once, then install); the prometheus server itself is never
# started by this script.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v promtool >/dev/null 2>&1; then
    echo "[test-rules] promtool not found: installing the Debian package 'prometheus' (promtool only is used)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # policy-rc.d / no systemd in containers keeps the service from starting; we never start it.
    $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

promtool check rules rules/*.yml
promtool test rules tests/*.yml

# Every query of the Grafana dashboard must at least parse: wrap them as recording rules.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 - ../grafana/numbering-service.json "$tmp/dashboard.rules.yml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard-queries\n    rules:\n")
    for i, e in enumerate(exprs):
        out.write(f"      - record: dashboard_query_{i}\n        expr: {json.dumps(e)}\n")
print(f"[test-rules] {len(exprs)} dashboard queries")
PY
promtool check rules "$tmp/dashboard.rules.yml"
