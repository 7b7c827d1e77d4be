#!/usr/bin/env bash
# The local S3-compatible server (moto, in memory) for development, on S3_DEV_PORT (default
# 4569). Idempotent. Production uses AWS S3 with the bucket of deploy/s3/ (ADR 0701).
#
# Health is a real S3 call (ListBuckets), never just an open port: a moto left behind by a
# checkout that was since deleted answers 500 to everything. A broken server that we started
# (its pid in S3_DEV_PIDFILE, or a `moto.server ... -p PORT` command line) is stopped and
# replaced; anything else on the port is reported with its pid and command, and left alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=${S3_DEV_PORT:-4569}
PIDFILE=${S3_DEV_PIDFILE:-.dev/s3.pid}
LOG=${S3_DEV_LOG:-.dev/log/s3.log}
PY=.venv/bin/python
say() { echo "[s3] $*"; }

# Prints nothing and exits 0 when S3 answers ListBuckets; else prints why.
s3_error() {
  "$PY" - "$PORT" <<'PYEOF'
import sys

import boto3
from botocore.config import Config

port = sys.argv[1]
client = boto3.client(
    "s3",
    endpoint_url=f"http://127.0.0.1:{port}",
    aws_access_key_id="local-dev",
    aws_secret_access_key="local-dev",  # noqa: S106 - the local server accepts anything
    region_name="us-east-1",
    config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
)
try:
    client.list_buckets()
except Exception as exc:  # noqa: BLE001 - any failure means unhealthy; say which
    print(f"{type(exc).__name__}: {exc}")
    sys.exit(1)
PYEOF
}
listening() { "$PY" -c "import socket; socket.create_connection(('127.0.0.1', ${PORT}), 1)" >/dev/null 2>&1; }
listener_pid() {
  # The pid bound to the port (ss from iproute2 when present, else a /proc scan for our moto).
  if command -v ss >/dev/null; then
    ss -Htlnp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
  fi
}
ours() {  # is pid $1 a local S3 server this script started?
  local pid=$1 cmd
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  [ -f "$PIDFILE" ] && [ "$(cat "$PIDFILE")" = "$pid" ] && return 0
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline")
  [[ "$cmd" == *"moto.server"*"-p $PORT"* ]]
}

if listening; then
  if ! why=$(s3_error); then
    pid=$(listener_pid || true)
    [ -z "$pid" ] && [ -f "$PIDFILE" ] && pid=$(cat "$PIDFILE")
    if ours "$pid"; then
      say "the local S3 server on 127.0.0.1:${PORT} (pid $pid, ours) is broken: $why"
      say "stopping it and starting a fresh one"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$PIDFILE"
      for _ in $(seq 1 50); do listening || break; sleep 0.1; done
    else
      cmd=$([ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || echo unknown)
      say "ERROR: something listens on 127.0.0.1:${PORT} but is not a working S3: $why" >&2
      say "       listener: pid ${pid:-unknown} ($cmd) — not started by this script, left alone." >&2
      say "       Stop it, or set S3_DEV_PORT to a free port, and rerun." >&2
      exit 1
    fi
  else
    say "local S3 server healthy on 127.0.0.1:${PORT} (ListBuckets answered)"
    exit 0
  fi
fi
mkdir -p "$(dirname "$LOG")" "$(dirname "$PIDFILE")"
# setsid + nohup: the server outlives this script (make setup); `make run` stops it on exit
# when it was the one that started it (deploy/local/run.sh).
setsid nohup "$PY" -m moto.server -H 127.0.0.1 -p "$PORT" >>"$LOG" 2>&1 </dev/null &
echo $! >"$PIDFILE"
for _ in $(seq 1 100); do
  if listening && s3_error >/dev/null; then
    say "local S3 server (moto) started on 127.0.0.1:${PORT} (pid $(cat "$PIDFILE"), log $LOG)"
    exit 0
  fi
  sleep 0.2
done
say "ERROR: the local S3 server did not become healthy on 127.0.0.1:${PORT}: $(s3_error || true); see $LOG" >&2
exit 1
