# syntax=docker/dockerfile:1.7
# numbering-service: one image for every process (deploy/entrypoint.sh PROCESS).
#
#   podman build -t numbering-service .        (or `make image`, which builds the base locally)
#   podman run --rm numbering-service web      (grpc, worker, beat, relay, consumers, expiry, migrate)
#
# Base: Debian bookworm (its python3 is 3.11, the version the project pins), pinned by digest.
# `make image` passes BASE_IMAGE=localhost/numbering-base:bookworm, a debootstrap of the same
# release, because no registry is reachable from the build machine (ADR 1800).
ARG BASE_IMAGE=docker.io/library/debian:bookworm-20251229@sha256:4216e8fe27fdd803d2822d08ed9de39825a41a47e34c32b71a23ac074f91eaf4

# --- build: the virtualenv from the pinned constraints, compiled protos checked ------------
FROM ${BASE_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints.txt ./
# Runtime dependencies only (no [dev]), every version from constraints.txt; the project itself
# is not a distribution (no build backend needed). A network whose TLS is intercepted can hand
# its CA bundle in as the build secret `pip_ca` (make image does); it is never stored in a layer.
RUN --mount=type=secret,id=pip_ca \
    if [ -s /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
 && python3 -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install -c constraints.txt -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt
COPY . .
# The generated gRPC code must be what the proto produces (the same check as the test).
RUN /opt/venv/bin/python grpc_server/codegen.py /tmp/gen \
 && diff -r -x __pycache__ /tmp/gen grpc_server/gen \
 && rm -rf /tmp/gen
# Static files and bytecode are built here: the runtime root filesystem is read-only.
RUN NUMBERING_DEV_DIR=/tmp/build-dev /opt/venv/bin/python manage.py collectstatic --no-input -v 0 \
 && rm -rf /tmp/build-dev .dev \
 && /opt/venv/bin/python -m compileall -q /app /opt/venv \
 && install -m 0755 deploy/image/grpc_health_probe /opt/venv/bin/grpc_health_probe

# --- runtime -------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 numbering \
 && useradd --system --uid 10001 --gid numbering --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin numbering
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
# Read-only root: nothing writes under /app; HOME, temp files, prometheus multiprocess files
# and the beat schedule live on the /tmp volume the manifests mount.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    NUMBERING_DEV_DIR=/tmp/numbering-dev \
    NUMBERING_ENV=production
USER 10001:10001
EXPOSE 8000 50051 9464
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["web"]
