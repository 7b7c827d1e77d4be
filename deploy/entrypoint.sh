#!/usr/bin/env bash
# The one way every process of numbering-service starts: the container image's ENTRYPOINT,
# the Procfile of `make run`, compose.yaml. Usage: entrypoint.sh PROCESS [extra args]
#   web        gunicorn (settings in gunicorn.conf.py: JSON, number-masked access log)
#   grpc       the gRPC server (manage.py grpcserver); GRPC_POOL says which methods (ADR 1101)
#   grpcwrite  the mutation pool: grpc with GRPC_POOL=mutations on GRPC_WRITE_PORT (50052)
#   worker     Celery worker            beat       Celery beat (singleton)
#   relay      outbox -> JetStream      consumers  JetStream event consumers
#   expiry     Redis TTL-key listener   migrate    schema migrations as the owner role
#   cachesync  outbox -> lease cache (ADR 1200)
#   manage     any manage.py command, e.g. `entrypoint.sh manage verify_export ...`
# Anything else is executed as given (a shell in the image: `entrypoint.sh bash`).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
# The checkout's .venv when there is one (make run), else the image's PATH (/opt/venv/bin).
if [ -x .venv/bin/python ]; then BIN=.venv/bin/; else BIN=; fi
process=${1:-}
if [ -z "$process" ]; then
  echo "usage: $0 web|grpc|grpcwrite|worker|beat|relay|consumers|expiry|cachesync|migrate|manage ARGS..." >&2
  exit 64
fi
shift
# Every JSON log line names its process (core/logging.py; Loki labels by it).
export NUMBERING_PROCESS=$process
case "$process" in
  web)       exec "${BIN}gunicorn" config.wsgi:application "$@" ;;
  grpc)      exec "${BIN}python" manage.py grpcserver "$@" ;;
  grpcwrite) export GRPC_POOL=mutations GRPC_PORT="${GRPC_WRITE_PORT:-50052}" \
               GRPC_METRICS_PORT="${GRPC_WRITE_METRICS_PORT:-9465}"
             exec "${BIN}python" manage.py grpcserver "$@" ;;
  worker)    exec "${BIN}celery" --app=config.celery:app --quiet worker --loglevel=INFO --pool=threads \
               --concurrency="${CELERY_WORKER_CONCURRENCY:-4}" --without-gossip --without-mingle \
               --hostname="numbering-worker@%h" "$@" ;;
  beat)      exec "${BIN}celery" --app=config.celery:app --quiet beat --loglevel=INFO \
               --schedule="${CELERY_BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}" "$@" ;;
  relay)     exec "${BIN}python" manage.py run_outbox_relay "$@" ;;
  consumers) exec "${BIN}python" manage.py run_event_consumers "$@" ;;
  expiry)    exec "${BIN}python" manage.py run_reservation_expiry_listener "$@" ;;
  cachesync) exec "${BIN}python" manage.py run_cache_sync "$@" ;;
  migrate)   exec "${BIN}python" manage.py migrate --database owner --no-input "$@" ;;
  manage)    exec "${BIN}python" manage.py "$@" ;;
  *)         export NUMBERING_PROCESS=; exec "$process" "$@" ;;
esac
