#!/usr/bin/env bash
# Make sure PostgreSQL, Redis and NATS (with JetStream) answer on their local ports:
# start them when installed but stopped, install them (Debian packages) when missing.
# Idempotent; safe to run before every `make run` / `make test`.
set -euo pipefail

log() { echo "[ensure-services] $*"; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && exec 3>&- ; }
wait_port() {
  for _ in $(seq 1 60); do port_open "$1" "$2" && return 0; sleep 0.5; done
  log "ERROR: $3 did not come up on $1:$2"; return 1
}
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

PG_HOST=${PG_HOST:-127.0.0.1}; PG_PORT=${PG_PORT:-5432}
if ! port_open "$PG_HOST" "$PG_PORT"; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL"; apt_install postgresql postgresql-contrib
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    # Local development and CI only: trust loopback connections (no passwords in the repo).
    hba=/etc/postgresql/$ver/main/pg_hba.conf
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  log "starting PostgreSQL $ver"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  wait_port "$PG_HOST" "$PG_PORT" PostgreSQL
fi
log "PostgreSQL up on $PG_HOST:$PG_PORT"
# The concurrency tests open 100+ connections at once; the Debian default is 100.
if [ "$PG_HOST" = 127.0.0.1 ] && command -v psql >/dev/null; then
  maxc=$(psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -Atc "show max_connections" 2>/dev/null || echo 0)
  if [ "${maxc:-0}" -lt 300 ] 2>/dev/null; then
    log "raising PostgreSQL max_connections from $maxc to 300 (restart)"
    psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -qc "ALTER SYSTEM SET max_connections = 300"
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    pg_ctlcluster --skip-systemctl-redirect "$ver" main restart
    wait_port "$PG_HOST" "$PG_PORT" PostgreSQL
  fi
fi

if ! port_open 127.0.0.1 6379; then
  command -v redis-server >/dev/null || { log "installing Redis"; apt_install redis-server; }
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 127.0.0.1 6379 Redis
fi
log "Redis up on 127.0.0.1:6379"

if ! port_open 127.0.0.1 4222; then
  [ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null || { log "installing NATS"; apt_install nats-server; }
  bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  log "starting NATS with JetStream"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec "$bin" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port 127.0.0.1 4222 NATS
fi
log "NATS up on 127.0.0.1:4222"
