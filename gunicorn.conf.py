"""Gunicorn settings of the `web` process (deploy/entrypoint.sh web, the k8s web Deployment).

Gunicorn reads ./gunicorn.conf.py from its working directory (the repository root locally,
/app in the image) even when the command line does not name it, so the JSON, number-masking
logger below applies to every way the web process is started. Command-line flags (the k8s
manifest's args) override the defaults here.
"""

from __future__ import annotations

import os

# Everything logs through core/logging.py's formatter and masking filter (ADR 1800).
logger_class = "config.gunicorn_logging.JsonGunicornLogger"
accesslog = "-"
errorlog = "-"

bind = [os.environ.get("WEB_BIND", "0.0.0.0:8000")]  # noqa: S104 - a container listens on its pod IP
workers = int(os.environ.get("WEB_WORKERS", "1"))
threads = int(os.environ.get("WEB_THREADS", "8"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 25
# A read-only root filesystem: heartbeat files live on the /tmp emptyDir.
worker_tmp_dir = os.environ.get("WEB_WORKER_TMP_DIR", "/tmp")  # noqa: S108
# Proxies (Kong) terminate TLS; they may set X-Forwarded-* from inside the cluster only.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
