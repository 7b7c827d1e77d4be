#!/usr/bin/env bash
# Print the local NATS users' passwords (issue 13 item 5, ADR 1355) as NAME=value lines, for
# docker compose:  bash deploy/local/nats_credentials.sh > .env   (.env is git-ignored).
# Takes them from the project's local NATS (ensure_services.sh writes them) when readable,
# else generates new random ones (letter-led: nats-server reads a digit-led value as a number). Nothing here is a committed secret.
set -euo pipefail
creds=${NATS_AUTH_DIR:-/var/lib/numbering-nats}/credentials.env
if [ -r "$creds" ]; then cat "$creds"; exit 0; fi
for u in RELAY CONSUMER COMPLIANCE TENANT OPS; do
  echo "NATS_${u}_PASSWORD=pw$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
done
