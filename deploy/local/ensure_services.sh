#!/usr/bin/env bash
# Make sure PostgreSQL, Redis (cache), Redis (Celery broker) and NATS (with JetStream) are
# HEALTHY on their local ports, not merely listening: start them when installed but stopped,
# install them (Debian packages) when missing, and stop with a message naming the service and
# the check when something answers on the port but fails its health check (SELECT 1, PING,
# the broker's noeviction policy, NATS's INFO with JetStream). Services started here run as
# system daemons shared by every checkout (like PostgreSQL) and are left running on purpose.
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
log "PostgreSQL listening on $PG_HOST:$PG_PORT"
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

unhealthy() { log "ERROR: $1"; log "       fix or stop whatever listens there, then rerun (nothing was changed)"; exit 1; }

# PostgreSQL answers queries, not just connections.
if command -v pg_isready >/dev/null && ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 5; then
  unhealthy "PostgreSQL on $PG_HOST:$PG_PORT is listening but pg_isready says it does not accept connections"
fi
if [ "$PG_HOST" = 127.0.0.1 ] && command -v psql >/dev/null \
   && ! psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -Atc "SELECT 1" >/dev/null 2>&1; then
  unhealthy "PostgreSQL on $PG_HOST:$PG_PORT does not answer SELECT 1 as the postgres role"
fi

redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p "$1" PING 2>/dev/null)" = PONG ]; }
redis_policy() { redis-cli -h 127.0.0.1 -p "$1" CONFIG GET maxmemory-policy 2>/dev/null | sed -n 2p; }
# Redis roles (ADR 1801): the cache server (6379) evicts; the Celery broker is a server of its
# own (REDIS_BROKER_PORT, 6380) with noeviction, configured by deploy/redis/*.conf.
REDIS_DIR=$(cd "$(dirname "$0")/../redis" && pwd)
if ! port_open 127.0.0.1 6379; then
  command -v redis-server >/dev/null || { log "installing Redis"; apt_install redis-server; }
  log "starting Redis (cache role, $REDIS_DIR/cache.conf)"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server "$REDIS_DIR/cache.conf" --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log --pidfile /run/numbering-redis-cache.pid
  wait_port 127.0.0.1 6379 Redis
fi
command -v redis-cli >/dev/null || apt_install redis-tools
redis_ping 6379 || unhealthy "something listens on 127.0.0.1:6379 but does not answer Redis PING with PONG"
log "Redis (cache) healthy on 127.0.0.1:6379 (maxmemory-policy $(redis_policy 6379))"

BROKER_PORT=${REDIS_BROKER_PORT:-6380}
if ! port_open 127.0.0.1 "$BROKER_PORT"; then
  log "starting Redis (Celery broker role, $REDIS_DIR/broker.conf) on $BROKER_PORT"
  mkdir -p /var/lib/redis-broker /var/log/redis
  redis-server "$REDIS_DIR/broker.conf" --daemonize yes --bind 127.0.0.1 -::1 --port "$BROKER_PORT" \
    --dir /var/lib/redis-broker --logfile /var/log/redis/broker.log --pidfile /run/numbering-redis-broker.pid
  wait_port 127.0.0.1 "$BROKER_PORT" "Redis broker"
fi
redis_ping "$BROKER_PORT" || unhealthy "something listens on 127.0.0.1:$BROKER_PORT but does not answer Redis PING with PONG"
policy=$(redis_policy "$BROKER_PORT")
[ "$policy" = noeviction ] || unhealthy "the Celery broker Redis on $BROKER_PORT runs maxmemory-policy '$policy'; it must be noeviction (ADR 1801)"
log "Redis (Celery broker) healthy on 127.0.0.1:$BROKER_PORT (maxmemory-policy noeviction)"

# NATS (issue 13 item 5, ADRs 1353/1355): the project runs its OWN nats-server with users and
# per-subject permissions (deploy/nats/nats-server.conf) on NATS_AUTH_PORT (4223) — not the
# machine's NATS on 4222, which may run without authentication. The dev passwords are generated
# here once, at random, into $NATS_AUTH_DIR/credentials.env (mode 600, never in the repo); the
# settings read it to give each process its own user (NATS_RELAY_URL, NATS_CONSUMER_URL, ...).
NATS_AUTH_PORT=${NATS_AUTH_PORT:-4223}
NATS_AUTH_DIR=${NATS_AUTH_DIR:-/var/lib/numbering-nats}
NATS_CONF_SRC=$(cd "$(dirname "$0")/../nats" && pwd)/nats-server.conf
NATS_USERS="RELAY CONSUMER COMPLIANCE TENANT OPS"
mkdir -p "$NATS_AUTH_DIR/store"
creds="$NATS_AUTH_DIR/credentials.env"
# nats-server parses a $VARIABLE's value as a config value: a password that starts with a digit
# ("5e3f...") reads as a number and the server refuses its config. So every password starts
# with letters; a file an older version wrote (bare hex) is replaced, and its server restarted.
if [ -s "$creds" ] && grep -qvE '^NATS_[A-Z]+_PASSWORD=pw[0-9a-f]{48}$' "$creds"; then
  log "replacing $creds: a password there does not start with a letter (nats-server would refuse it)"
  rm -f "$creds"
  start-stop-daemon --stop --oknodo --pidfile /run/numbering-nats.pid --retry TERM/10/KILL/5 >/dev/null 2>&1 || true
fi
if [ ! -s "$creds" ]; then
  log "generating local NATS passwords in $creds"
  ( umask 077; for u in $NATS_USERS; do
      echo "NATS_${u}_PASSWORD=pw$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"; done > "$creds.tmp" )
  mv "$creds.tmp" "$creds"
fi
chmod 600 "$creds"
# The server this script started follows deploy/nats/nats-server.conf: when the config changed,
# restart it (streams persist in the store). Not a SIGHUP reload: a reload applies the file
# alone and would switch off JetStream, which is enabled on the command line.
if [ -s /run/numbering-nats.pid ] && [ -e "$NATS_AUTH_DIR/nats-server.conf" ] \
   && ! cmp -s "$NATS_CONF_SRC" "$NATS_AUTH_DIR/nats-server.conf"; then
  log "restarting NATS on $NATS_AUTH_PORT: deploy/nats/nats-server.conf changed"
  start-stop-daemon --stop --oknodo --pidfile /run/numbering-nats.pid --retry TERM/10/KILL/5 >/dev/null
  for _ in $(seq 1 40); do port_open 127.0.0.1 "$NATS_AUTH_PORT" || break; sleep 0.25; done
fi
if ! port_open 127.0.0.1 "$NATS_AUTH_PORT"; then
  [ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null || { log "installing NATS"; apt_install nats-server; }
  bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  # A copy of the config, so the server does not depend on this checkout staying in place.
  cp "$NATS_CONF_SRC" "$NATS_AUTH_DIR/nats-server.conf"
  log "starting NATS with JetStream and authentication on $NATS_AUTH_PORT ($NATS_AUTH_DIR/nats-server.conf)"
  ( set -a; . "$creds"; set +a
    start-stop-daemon --start --oknodo --background --pidfile /run/numbering-nats.pid --make-pidfile \
      --exec "$(readlink -f "$bin")" -- -c "$NATS_AUTH_DIR/nats-server.conf" \
      -a 127.0.0.1 -p "$NATS_AUTH_PORT" -js -sd "$NATS_AUTH_DIR/store" -l /var/log/numbering-nats.log )
  wait_port 127.0.0.1 "$NATS_AUTH_PORT" NATS
fi
# A NATS server greets every connection with INFO {...}: JetStream on, authentication required.
nats_info=$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$NATS_AUTH_PORT; IFS= read -r line <&3; printf '%s' \"\$line\"" 2>/dev/null || true)
case "$nats_info" in
  INFO*'"jetstream":true'*) ;;
  INFO*) unhealthy "NATS on 127.0.0.1:$NATS_AUTH_PORT runs without JetStream (start it with -js)" ;;
  *) unhealthy "something listens on 127.0.0.1:$NATS_AUTH_PORT but does not greet like a NATS server (no INFO line)" ;;
esac
case "$nats_info" in
  *'"auth_required":true'*) ;;
  *) unhealthy "NATS on 127.0.0.1:$NATS_AUTH_PORT does not require authentication (it must run with deploy/nats/nats-server.conf)" ;;
esac
log "NATS healthy on 127.0.0.1:$NATS_AUTH_PORT (JetStream enabled, authentication and subject permissions)"
