#!/usr/bin/env bash
# h2load (Debian nghttp2-client) for the ValidateLease benchmark; installed only if missing.
set -euo pipefail
command -v h2load >/dev/null && exit 0
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
echo "[bench] installing nghttp2-client (h2load)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nghttp2-client >/dev/null
