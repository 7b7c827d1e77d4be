#!/usr/bin/env bash
# `make image-smoke`: run the built image as Kubernetes runs it (non-root 10001, read-only
# root, only /tmp writable, all capabilities dropped, NUMBERING_ENV=production) against the
# local PostgreSQL/Redis/NATS: `migrate` exits 0, `web` answers /livez and /readyz, `grpc`
# answers grpc_health_probe over mTLS exactly as deploy/k8s/grpc.yaml calls it, no log line is
# plain text or shows a number in full, and both stop cleanly on SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=${IMAGE:-localhost/numbering-service:dev}
# crun cannot create containers under this machine's hybrid cgroup hierarchy, and the
# sandbox refuses raising RLIMIT_NPROC/NOFILE: runc with explicit limits works (ADR 1800).
PODMAN=(podman --runtime "${PODMAN_RUNTIME:-runc}")
SECURE=(--network host --read-only --tmpfs /tmp:rw,size=128m,mode=1777 --user 10001:10001 --cap-drop ALL
        --security-opt no-new-privileges --ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
log() { echo "[image-smoke] $*"; }
fail() { log "FAILED: $*"; exit 1; }
free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WEB_PORT=$(free_port); GRPC_PORT=$(free_port)
SMOKE=$(mktemp -d /tmp/numbering-image-smoke.XXXXXX)
NAME=numbering-smoke-$$
cleanup() {
  for c in "$NAME-web" "$NAME-grpc"; do "${PODMAN[@]}" rm -f -t 5 "$c" >/dev/null 2>&1 || true; done
  rm -rf "$SMOKE"
}
trap cleanup EXIT
# Production needs real key material: a throwaway PKI (gRPC mTLS) and JWKS, readable by 10001.
.venv/bin/python -m grpc_server.devcerts "$SMOKE/grpc" >/dev/null
.venv/bin/python -c "from pathlib import Path; from core.api.devkeys import ensure_dev_keys; ensure_dev_keys(Path('$SMOKE/jwt'))"
chmod -R a+rX "$SMOKE"
ENV=(-e NUMBERING_ENV=production -e DJANGO_SECRET_KEY="smoke-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
     -e DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost
     -e DATABASE_URL="${DATABASE_URL:-postgres://numbering_app@127.0.0.1:5432/numbering}"
     -e DATABASE_OWNER_URL="${DATABASE_OWNER_URL:-postgres://numbering_owner@127.0.0.1:5432/numbering}"
     -e REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}" -e NATS_URL="${NATS_URL:-nats://127.0.0.1:4223}"
     -e CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:${REDIS_BROKER_PORT:-6380}/${REDIS_URL##*/}}"
     -e JWT_JWKS_FILE=/smoke/jwt/jwks.json -e JWT_ISSUER=numbering-smoke
     -e SIGNING_PROVIDER=vault -e VAULT_ADDR=http://127.0.0.1:1
     -e WEB_BIND="127.0.0.1:$WEB_PORT" -e GRPC_PORT="$GRPC_PORT" -e GRPC_WORKERS=1 -e GRPC_METRICS_PORT=0
     -e GRPC_TLS_CERT_FILE=/smoke/grpc/server.pem -e GRPC_TLS_KEY_FILE=/smoke/grpc/server.key
     -e GRPC_TLS_CLIENT_CA_FILE=/smoke/grpc/ca.pem -v "$SMOKE:/smoke:ro")

log "image $IMAGE: user $("${PODMAN[@]}" run --rm "${SECURE[@]}" --entrypoint id "$IMAGE" -u)"
"${PODMAN[@]}" run --rm "${SECURE[@]}" --entrypoint sh "$IMAGE" -c 'touch /app/x 2>/dev/null' \
  && fail "the root filesystem is writable"
log "root filesystem is read-only; /app not writable"

log "migrate"
"${PODMAN[@]}" run --rm "${SECURE[@]}" "${ENV[@]}" "$IMAGE" migrate -v 0 || fail "migrate exited non-zero"

log "starting web (:$WEB_PORT) and grpc (:$GRPC_PORT)"
"${PODMAN[@]}" run -d --name "$NAME-web" "${SECURE[@]}" "${ENV[@]}" "$IMAGE" web >/dev/null
"${PODMAN[@]}" run -d --name "$NAME-grpc" "${SECURE[@]}" "${ENV[@]}" "$IMAGE" grpc >/dev/null
ok=
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$WEB_PORT/readyz" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.5
done
[ -n "$ok" ] || { "${PODMAN[@]}" logs "$NAME-web" | tail -20; fail "web /readyz did not answer 200"; }
curl -fsS "http://127.0.0.1:$WEB_PORT/livez" >/dev/null || fail "web /livez"
log "web: /livez and /readyz answer 200 ($(curl -fsS "http://127.0.0.1:$WEB_PORT/readyz"))"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WEB_PORT/api/admin/v1/numbers/+93791234567/")
[ "$code" = 401 ] || fail "an unauthenticated API call answered $code, not 401"

probe=(grpc_health_probe "-addr=127.0.0.1:$GRPC_PORT" -service=numbering.v1.NumberingService -tls
       -tls-ca-cert=/smoke/grpc/ca.pem -tls-client-cert=/smoke/grpc/sms-orchestrator.pem
       -tls-client-key=/smoke/grpc/sms-orchestrator.key -tls-server-name=localhost
       -connect-timeout=1s -rpc-timeout=1s)
ok=
for _ in $(seq 1 60); do
  if "${PODMAN[@]}" exec "$NAME-grpc" "${probe[@]}" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.5
done
[ -n "$ok" ] || { "${PODMAN[@]}" logs "$NAME-grpc" | tail -20; fail "grpc_health_probe never answered SERVING"; }
log "grpc: $("${PODMAN[@]}" exec "$NAME-grpc" "${probe[@]}")"

for c in web grpc; do
  "${PODMAN[@]}" stop -t 40 "$NAME-$c" >/dev/null
  status=$("${PODMAN[@]}" inspect "$NAME-$c" --format '{{.State.ExitCode}}')
  logs=$("${PODMAN[@]}" logs "$NAME-$c" 2>&1)
  [ "$status" = 0 ] || { echo "$logs" | tail -20; fail "$c exited $status after SIGTERM"; }
  echo "$logs" | grep -v '^{' | grep . && fail "$c wrote plain-text log lines (above)"
  echo "$logs" | grep -E '93791234567|0791234567' && fail "$c logged a number in full"
  log "$c: stopped on SIGTERM with exit 0; $(echo "$logs" | grep -c .) log lines, all JSON, numbers masked"
done
log "OK"
