#!/usr/bin/env bash
# `make run`: the service with demo data, every process under honcho (Procfile).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.base}
export WEB_PORT=${WEB_PORT:-8000}
# On exit, stop what this run started; say what stays up and why.
honcho=
started_s3=
cleanup() {
  status=$?
  set +e
  echo
  if [ -n "$honcho" ]; then
    kill -TERM "$honcho" 2>/dev/null
    wait "$honcho" 2>/dev/null
    echo "[run] stopped: every Procfile process (honcho)"
  fi
  if [ -n "$started_s3" ] && kill "$started_s3" 2>/dev/null; then
    rm -f "${S3_DEV_PIDFILE:-.dev/s3.pid}"
    echo "[run] stopped: the local S3 server this run started (pid $started_s3; its buckets were in memory)"
  elif [ -z "$started_s3" ]; then
    echo "[run] left running: the local S3 server on :${S3_DEV_PORT:-4569} (it was already running before this run)"
  fi
  echo "[run] left running: PostgreSQL :5432, Redis cache :6379, Redis broker :${REDIS_BROKER_PORT:-6380}, NATS :${NATS_AUTH_PORT:-4223} (with auth) —"
  echo "      system services shared by every checkout and by make test (deploy/local/ensure_services.sh)"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
$BIN/python manage.py collectstatic --no-input -v 0
# JetStream streams and durable consumers must exist before the relay and consumers start.
$BIN/python manage.py provision_streams
# Optional steps land with their features; each is skipped until its command exists.
for cmd in ensure_dev_superuser seed_demo; do
  if $BIN/python manage.py help "$cmd" >/dev/null 2>&1; then $BIN/python manage.py "$cmd"; fi
done
echo
echo "numbering-service web:   http://127.0.0.1:${WEB_PORT}/  (admin: http://127.0.0.1:${WEB_PORT}/admin/)"
echo "                 metrics: http://127.0.0.1:${WEB_METRICS_PORT:-9105}/metrics   health: /livez /readyz"
echo "background metrics: relay :${OUTBOX_RELAY_METRICS_PORT:-9101}  consumers :${EVENT_CONSUMERS_METRICS_PORT:-9102}" \
     " expiry listener :${RESERVATION_EXPIRY_METRICS_PORT:-9103}  worker :${CELERY_WORKER_METRICS_PORT:-9104}  cache-sync :${LEASE_CACHE_SYNC_METRICS_PORT:-9106}"
source deploy/local/grpc_env.sh
echo
# The local S3 server (in memory) and the export bucket: started here too, in case
# run.sh is used without make setup.
s3_out=$(bash deploy/local/s3.sh) || { echo "$s3_out"; exit 1; }
echo "$s3_out"
case "$s3_out" in *"started on"*) started_s3=$(cat "${S3_DEV_PIDFILE:-.dev/s3.pid}") ;; esac
$BIN/python manage.py provision_export_bucket

# In the background so the traps run at once; honcho stops its processes on SIGTERM.
$BIN/honcho start -f Procfile &
honcho=$!
wait "$honcho"
