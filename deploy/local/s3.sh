#!/usr/bin/env bash
# The local S3-compatible server (moto, in memory) for development: started on S3_DEV_PORT
# (default 4569) unless something already answers there. Idempotent. Production uses AWS
# S3 with the bucket of deploy/s3/ (ADR 0701).
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=${S3_DEV_PORT:-4569}
PY=.venv/bin/python
up() { "$PY" -c "import socket; socket.create_connection(('127.0.0.1', ${PORT}), 1)" >/dev/null 2>&1; }
if up; then
  echo "[s3] local S3 server already answering on 127.0.0.1:${PORT}"
  exit 0
fi
mkdir -p .dev/log
# setsid + nohup: the server outlives this script (make setup), like PostgreSQL does.
setsid nohup "$PY" -m moto.server -H 127.0.0.1 -p "$PORT" >>.dev/log/s3.log 2>&1 < /dev/null &
echo $! > .dev/s3.pid
for _ in $(seq 1 50); do
  if up; then echo "[s3] local S3 server (moto) started on 127.0.0.1:${PORT} (pid $(cat .dev/s3.pid), log .dev/log/s3.log)"; exit 0; fi
  sleep 0.2
done
echo "[s3] local S3 server did not start on 127.0.0.1:${PORT}; see .dev/log/s3.log" >&2
exit 1
