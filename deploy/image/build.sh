#!/usr/bin/env bash
# `make image`: build the container image here with podman (ADR 1800).
# No registry is reachable from the build machines, so the Dockerfile's pinned base
# (debian:bookworm-<date>@sha256:...) is replaced by the same release made locally with
# debootstrap and imported once as localhost/numbering-base:bookworm. With a registry, plain
# `podman build .` / `docker build .` uses the pinned base instead.
# Needs root (rootful podman); installs podman, buildah, runc, debootstrap when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=${IMAGE:-localhost/numbering-service:dev}
BASE=${BASE:-localhost/numbering-base:bookworm}
WORK=${IMAGE_WORK_DIR:-/var/tmp/numbering-image}
log() { echo "[image] $*"; }
missing=()
for tool in podman buildah runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah runc debootstrap >/dev/null
fi
if ! podman image exists "$BASE"; then
  log "building the base $BASE with debootstrap (Debian bookworm, minbase)"
  rm -rf "$WORK/rootfs" && mkdir -p "$WORK"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
    || { log "debootstrap failed; see $WORK/debootstrap.log"; exit 1; }
  rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb
  tar -C "$WORK/rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  rm -rf "$WORK/rootfs"
fi
# The CA bundle pip trusts here goes in as a build secret (intercepting proxies), never a layer.
ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
# --isolation chroot: RUN steps need no OCI runtime (crun cannot start containers under this
# machine's hybrid cgroup hierarchy; see ADR 1800).
log "building $IMAGE"
podman build --isolation chroot --format docker --secret "id=pip_ca,src=$ca" \
  --build-arg "BASE_IMAGE=$BASE" -t "$IMAGE" -f Dockerfile .
log "built $IMAGE ($(podman image inspect "$IMAGE" --format '{{.Size}}') bytes)"
