#!/usr/bin/env bash
# Install what the three-region stack needs (issue 14), idempotently:
#   Debian: etcd-server (etcd 3.4), iptables (region isolation in the drill),
#           prometheus-postgres-exporter, nats-server, PostgreSQL 15 binaries;
#   PyPI:   Patroni 4.x and its deps, pinned in requirements.txt, in their own venv (HA_VENV);
#   users:  numbering-ha1..3, one per region, so the drill can cut a region's traffic with
#           iptables owner matches and each node's data dir belongs to its region.
set -euo pipefail
cd "$(dirname "$0")"
HA_VENV=${HA_VENV:-/opt/numbering-ha/venv}
log() { echo "[ha-install] $*"; }

need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v iptables >/dev/null || need+=(iptables)
command -v prometheus-postgres-exporter >/dev/null || need+=(prometheus-postgres-exporter)
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
/usr/bin/python3 -c "import ensurepip" 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=$( [ "$(id -u)" = 0 ] || echo sudo )
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  # No systemd in these containers: the packages' own services never start; ha.py runs them.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

for i in 1 2 3; do
  id "numbering-ha$i" >/dev/null 2>&1 || { log "adding user numbering-ha$i"; useradd --system --no-create-home --shell /usr/sbin/nologin "numbering-ha$i"; }
done

stamp="$HA_VENV/.requirements.sha256"
want="$(sha256sum requirements.txt | cut -d" " -f1) /usr/bin/python3"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "creating $HA_VENV (Patroni from PyPI)"
  mkdir -p "$(dirname "$HA_VENV")"
  # The system interpreter: the region users must be able to run it (not a per-user pyenv).
  rm -rf "$HA_VENV"
  /usr/bin/python3 -m venv "$HA_VENV"
  "$HA_VENV/bin/pip" install -q --upgrade pip
  "$HA_VENV/bin/pip" install -q -r requirements.txt
  echo "$want" > "$stamp"
  chmod -R a+rX "$(dirname "$HA_VENV")"
fi
"$HA_VENV/bin/patroni" --version
