#!/usr/bin/env bash
# `make run`: the service with demo data, every process under honcho (Procfile).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.base}
export WEB_PORT=${WEB_PORT:-8000}
$BIN/python manage.py collectstatic --no-input -v 0
$BIN/python manage.py ensure_dev_superuser
[ -f .dev/seed_demo.done ] || true
if $BIN/python manage.py help seed_demo >/dev/null 2>&1; then $BIN/python manage.py seed_demo; fi
echo
echo "numbering-service web:   http://127.0.0.1:${WEB_PORT}/  (admin: http://127.0.0.1:${WEB_PORT}/admin/)"
echo "                 metrics: http://127.0.0.1:${WEB_PORT}/metrics   health: /livez /readyz"
source deploy/local/grpc_env.sh
echo
exec $BIN/honcho start -f Procfile
