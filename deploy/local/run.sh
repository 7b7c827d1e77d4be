#!/usr/bin/env bash
# `make run`: the service with demo data, every process under honcho (Procfile).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.base}
export WEB_PORT=${WEB_PORT:-8000}
$BIN/python manage.py collectstatic --no-input -v 0
# JetStream streams and durable consumers must exist before the relay and consumers start.
$BIN/python manage.py provision_streams
# Optional steps land with their features; each is skipped until its command exists.
for cmd in ensure_dev_superuser seed_demo; do
  if $BIN/python manage.py help "$cmd" >/dev/null 2>&1; then $BIN/python manage.py "$cmd"; fi
done
echo
echo "numbering-service web:   http://127.0.0.1:${WEB_PORT}/  (admin: http://127.0.0.1:${WEB_PORT}/admin/)"
echo "                 metrics: http://127.0.0.1:${WEB_PORT}/metrics   health: /livez /readyz"
echo "background metrics: relay :${OUTBOX_RELAY_METRICS_PORT:-9101}  consumers :${EVENT_CONSUMERS_METRICS_PORT:-9102}" \
     " expiry listener :${RESERVATION_EXPIRY_METRICS_PORT:-9103}  worker :${CELERY_WORKER_METRICS_PORT:-9104}  cache-sync :${LEASE_CACHE_SYNC_METRICS_PORT:-9105}"
source deploy/local/grpc_env.sh
echo
# The local S3 server (in memory) and the export bucket: started here too, in case
# run.sh is used without make setup.
bash deploy/local/s3.sh
$BIN/python manage.py provision_export_bucket
exec $BIN/honcho start -f Procfile
