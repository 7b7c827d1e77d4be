"""Settings for numbering-service. Everything comes from the environment.

NUMBERING_ENV selects the profile: ``dev`` (default; generates local secrets under
.dev/), ``test`` or ``production`` (every secret required, nothing generated).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured

from config import db_network
from config.env import env_bool, env_float, env_int, env_str, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DEV_DIR = Path(env_str("NUMBERING_DEV_DIR", str(BASE_DIR / ".dev")))

NUMBERING_ENV = env_str("NUMBERING_ENV", "dev")
if NUMBERING_ENV not in {"dev", "test", "production"}:
    raise ImproperlyConfigured(f"NUMBERING_ENV={NUMBERING_ENV!r} must be one of dev, test, production")
PRODUCTION = NUMBERING_ENV == "production"


def _dev_secret_key() -> str:
    """A per-checkout secret for local runs, generated once and kept out of git."""
    path = DEV_DIR / "secret_key"
    if not path.exists():
        DEV_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


if PRODUCTION:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY")
else:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY", "") or _dev_secret_key()

DEBUG = env_bool("DJANGO_DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off when NUMBERING_ENV=production")
# Pact provider states (issue 17, ADR 1700): test-only, routes POST /_pact/provider-states,
# through which the Pact verifier puts the provider into an interaction's state.
PACT_PROVIDER_STATES_ENABLED = env_bool("PACT_PROVIDER_STATES_ENABLED", default=False)
if PRODUCTION and PACT_PROVIDER_STATES_ENABLED:
    raise ImproperlyConfigured("PACT_PROVIDER_STATES_ENABLED must be off when NUMBERING_ENV=production")
ALLOWED_HOSTS = [
    h.strip() for h in env_str("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_prometheus",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI from pinned local static files, not a CDN (issue 13 item 10)
    "core",
    "contracts",
    "pools",
    "numbering",
    "audit",
    "exports",
    "events",
    "grpc_server",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.request_context.RequestIdMiddleware",
    "core.upload_limit.UploadSizeLimitMiddleware",  # before anything reads a multipart body
    "core.tenant_db.TenantRoleMiddleware",  # /api/tenant/ runs as the tenant DB role (ADR 1352)
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "config.admin_scope.AdminPlatformScopeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases -------------------------------------------------------------------------
# Two roles (ADR 0002): migrations run as the owner; the service connects as
# numbering_app, which owns no table and cannot bypass row-level security. "owner" is
# listed first on purpose: Django's test runner creates and migrates a shared test
# database through the first alias of the group, and only the owner may do that.
DATABASE_URL = env_str("DATABASE_URL", "postgres://numbering_app@127.0.0.1:5432/numbering")
DATABASE_OWNER_URL = env_str("DATABASE_OWNER_URL", "postgres://numbering_owner@127.0.0.1:5432/numbering")
_statement_timeout_ms = env_int("DATABASE_STATEMENT_TIMEOUT_MS", 15000, minimum=0)
_owner = parse_database_url("DATABASE_OWNER_URL", DATABASE_OWNER_URL)
_app = parse_database_url("DATABASE_URL", DATABASE_URL)
if _owner["NAME"] != _app["NAME"] or _owner["HOST"] != _app["HOST"] or _owner["PORT"] != _app["PORT"]:
    raise ImproperlyConfigured("DATABASE_URL and DATABASE_OWNER_URL must point at the same database")
if _owner["USER"] == _app["USER"]:
    raise ImproperlyConfigured("DATABASE_URL and DATABASE_OWNER_URL must use different roles")
_app.update(
    {
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {**_app.get("OPTIONS", {}), "options": f"-c statement_timeout={_statement_timeout_ms}"},  # type: ignore[dict-item]
    }
)
# Server-side parameter binding, so that psycopg prepares the hot statements (after
# DATABASE_PREPARE_THRESHOLD executions) — ADR 1100. On by default in the gRPC mutation pool
# (GRPC_POOL=mutations), whose few statements run thousands of times per connection: ~10 %
# less of its CPU and ~40 % less of PostgreSQL's per transition (ADR 1100 amendment of
# 2026-12-03). Possible because the connections are direct (ADR 1503: no PgBouncer, which
# keeps prepared statements only from 1.21 with max_prepared_statements set).
if env_bool("DATABASE_SERVER_SIDE_BINDING", default=env_str("GRPC_POOL", "all") == "mutations"):
    _app["OPTIONS"].update(  # type: ignore[union-attr,attr-defined]
        {"server_side_binding": True, "prepare_threshold": env_int("DATABASE_PREPARE_THRESHOLD", 5, minimum=0)}
    )
DATABASES = {"owner": _owner, "default": _app}
# The restricted tenant role (issue 13 item 6, ADR 1352): tenant-scoped requests (the tenant
# portal /api/tenant/v1/, gRPC mutations of tenant-acting CNs) run on this connection, as a
# login role that is NOT a member of numbering_platform, so an injected
# set_config('app.scope', 'platform') reveals nothing. Outside production it defaults to
# DATABASE_URL's database as numbering_tenant (deploy/local/bootstrap_db.py creates it);
# in production it is switched on by setting DATABASE_TENANT_URL.
DATABASE_TENANT_URL = env_str("DATABASE_TENANT_URL", "")
if DATABASE_TENANT_URL or not PRODUCTION:
    if DATABASE_TENANT_URL:
        _tenant = parse_database_url("DATABASE_TENANT_URL", DATABASE_TENANT_URL)
        _tenant.update({k: _app[k] for k in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")})
        # The app connection's statement timeout and parameter binding (the tenant role's
        # mutations run on the same path).
        _app_options: dict[str, Any] = _app["OPTIONS"]  # type: ignore[assignment]
        _binding = {
            k: v for k, v in _app_options.items() if k in ("options", "server_side_binding", "prepare_threshold")
        }
        _tenant["OPTIONS"] = {**_tenant.get("OPTIONS", {}), **_binding}  # type: ignore[dict-item]
    else:  # the app's connection (hosts, libpq options, timeouts) as the tenant role
        _tenant = {**_app, "USER": "numbering_tenant", "PASSWORD": "", "OPTIONS": dict(_app["OPTIONS"])}  # type: ignore[call-overload]
    if (_tenant["NAME"], _tenant["HOST"], _tenant["PORT"]) != (_app["NAME"], _app["HOST"], _app["PORT"]):
        raise ImproperlyConfigured("DATABASE_TENANT_URL must point at the same database as DATABASE_URL")
    if _tenant["USER"] in (_app["USER"], _owner["USER"]):
        raise ImproperlyConfigured("DATABASE_TENANT_URL must use its own role (not the app or owner role)")
    DATABASES["tenant"] = _tenant
# On by default wherever the tenant alias exists, except under tests: a test's data lives in
# its own transaction on "default", invisible to another connection, so the tests that prove
# the switch turn it on with committed data (tests/core/test_tenant_role_requests.py).
TENANT_REQUESTS_ON_TENANT_ROLE = env_bool(
    "TENANT_REQUESTS_ON_TENANT_ROLE", default="tenant" in DATABASES and NUMBERING_ENV != "test"
)
if TENANT_REQUESTS_ON_TENANT_ROLE and "tenant" not in DATABASES:
    raise ImproperlyConfigured("TENANT_REQUESTS_ON_TENANT_ROLE needs DATABASE_TENANT_URL")
# Optional read replica (same app role, no RLS bypass) for the ValidateLease fallback read
# (DESIGN §3.1). Its answers lag the primary by the replication delay; the cache's version
# guard keeps a lagging fill from overwriting a newer entry.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    _replica = parse_database_url("DATABASE_REPLICA_URL", DATABASE_REPLICA_URL, writable=False)
    if _replica["USER"] == _owner["USER"]:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL must use the app role, not the owner role")
    _replica.update({k: _app[k] for k in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")})
    # Its own libpq options (e.g. target_session_attrs=standby), never the primary's read-write.
    _replica["OPTIONS"] = {**_replica.get("OPTIONS", {}), "options": _app["OPTIONS"]["options"]}  # type: ignore[dict-item,index]
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica
# Bounds on a PostgreSQL that stops answering at the network level (a partition, a dead host,
# a frozen server): without them libpq waits for a connection as long as the kernel retries
# SYNs (~2 min) and for an answer as long as TCP retransmits (~15 min), and every thread that
# touches the database hangs that long (ADR 1504; the postgres-partition drill). A URL's own
# options win (the HA URL sets tighter ones).
DATABASE_CONNECT_TIMEOUT_SECONDS = env_int("DATABASE_CONNECT_TIMEOUT_SECONDS", 3, minimum=1, maximum=60)
DATABASE_TCP_USER_TIMEOUT_MS = env_int(
    "DATABASE_TCP_USER_TIMEOUT_MS",
    db_network.DEFAULT_TCP_USER_TIMEOUT_MS,
    minimum=db_network.TCP_USER_TIMEOUT_MS_BOUNDS[0],
    maximum=db_network.TCP_USER_TIMEOUT_MS_BOUNDS[1],
)
DATABASE_NETWORK_OPTIONS = {
    "connect_timeout": str(DATABASE_CONNECT_TIMEOUT_SECONDS),
    # Unacknowledged data (a query sent, a keepalive probe) for this long drops the connection.
    "tcp_user_timeout": str(DATABASE_TCP_USER_TIMEOUT_MS),
    # Probes on an idle connection (one waiting for a slow answer included) find a dead peer.
    "keepalives": "1",
    "keepalives_idle": str(db_network.KEEPALIVE_IDLE_SECONDS),
    "keepalives_interval": str(db_network.KEEPALIVE_INTERVAL_SECONDS),
    "keepalives_count": str(db_network.KEEPALIVE_COUNT),
}
# The server's side of the same bounds, for its socket of each session: a session whose
# client vanished in a partition is ended (its advisory locks freed: the outbox relay's
# partitions, the jobs' locks) within ~11 s instead of the kernel's 2 h keepalive default.
# Found by the postgres-partition drill: the relay reconnected after the heal and could not
# take its partitions back from its own dead session.
DATABASE_SERVER_NETWORK_OPTIONS = (
    f"-c tcp_keepalives_idle={db_network.KEEPALIVE_IDLE_SECONDS}"
    f" -c tcp_keepalives_interval={db_network.KEEPALIVE_INTERVAL_SECONDS}"
    f" -c tcp_keepalives_count={db_network.KEEPALIVE_COUNT} -c tcp_user_timeout={DATABASE_TCP_USER_TIMEOUT_MS}"
)
for _database in DATABASES.values():
    _options = {**DATABASE_NETWORK_OPTIONS, **_database.get("OPTIONS", {})}  # type: ignore[dict-item]
    _options["options"] = f"{_options.get('options', '')} {DATABASE_SERVER_NETWORK_OPTIONS}".strip()
    _database["OPTIONS"] = _options
LEASE_READ_ALIAS = "replica" if DATABASE_REPLICA_URL else "default"
DATABASE_ROUTERS: list[str] = []
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
MIGRATION_DATABASE_ALIAS = "owner"

# --- Redis, NATS -----------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# The project's NATS runs with users and per-subject permissions (deploy/nats/nats-server.conf,
# issue 13 item 5, ADRs 1353 and 1355); locally on its own port 4223, started by
# deploy/local/ensure_services.sh. Each process connects as its own user:
#   NATS_RELAY_URL     the outbox relay (publishes numbering.>)
#   NATS_CONSUMER_URL  the event consumers (pull + ack only)
#   NATS_OPS_URL       provision_streams (the JetStream API)
# each defaulting to NATS_URL. Outside production a URL without credentials gets that user's
# password from NATS_DEV_CREDENTIALS, the file ensure_services.sh generates (never committed).
NATS_URL = env_str("NATS_URL", "nats://127.0.0.1:4223")
NATS_DEV_CREDENTIALS = Path(env_str("NATS_DEV_CREDENTIALS", "/var/lib/numbering-nats/credentials.env"))


def _nats_url_for(user: str) -> str:
    url = env_str(f"NATS_{user.upper()}_URL", NATS_URL)
    scheme, _, rest = url.partition("://")
    if PRODUCTION or "@" in rest.split("/", 1)[0]:
        return url
    try:
        lines = NATS_DEV_CREDENTIALS.read_text().splitlines()
    except OSError:
        return url
    creds = dict(line.split("=", 1) for line in lines if "=" in line)
    password = creds.get(f"NATS_{user.upper()}_PASSWORD", "").strip()
    return f"{scheme}://{user}:{quote(password, safe='')}@{rest}" if password else url


NATS_RELAY_URL = _nats_url_for("relay")
NATS_CONSUMER_URL = _nats_url_for("consumer")
NATS_OPS_URL = _nats_url_for("ops")
for _name, _value, _schemes in (
    ("REDIS_URL", REDIS_URL, ("redis://", "rediss://", "unix://")),
    ("NATS_URL", NATS_URL, ("nats://", "tls://")),
    ("NATS_RELAY_URL", NATS_RELAY_URL, ("nats://", "tls://")),
    ("NATS_CONSUMER_URL", NATS_CONSUMER_URL, ("nats://", "tls://")),
    ("NATS_OPS_URL", NATS_OPS_URL, ("nats://", "tls://")),
):
    if not _value.startswith(_schemes):
        # Never echo a URL that may hold a password.
        raise ImproperlyConfigured(f"{_name} must start with one of {', '.join(_schemes)}")

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "numbering",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
            # A Redis outage must not fail a request that only wanted the cache.
            "IGNORE_EXCEPTIONS": True,
        },
    }
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

# --- Domain knobs ------------------------------------------------------------------------
AUDIT_CHAINS = env_int("AUDIT_CHAINS", 4, minimum=1, maximum=256)
OUTBOX_PARTITIONS = env_int("OUTBOX_PARTITIONS", 16, minimum=1, maximum=1024)
IDEMPOTENCY_TTL_SECONDS = env_int("IDEMPOTENCY_TTL_SECONDS", 86400, minimum=60)
LEASE_CACHE_PREFIX = env_str("LEASE_CACHE_PREFIX", "numbering:lease:")

# --- i18n / time -------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
# Schedules are in Kabul time; everything is stored in UTC (USE_TZ).
TIME_ZONE = env_str("TIME_ZONE", "Asia/Kabul")
try:
    import zoneinfo

    zoneinfo.ZoneInfo(TIME_ZONE)
except Exception:  # noqa: BLE001 - any failure means the value is unusable
    raise ImproperlyConfigured(f"TIME_ZONE={TIME_ZONE!r} is not a known IANA time zone") from None
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Security ------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # `manage.py check --deploy` passes (issue 13 item 10; tests/test_deploy_check.py). The
    # probes and the scrape reach the pod over plain HTTP, so they are not redirected.
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^livez$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)

# --- Logging -------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "mask_numbers": {"()": "core.logging.MaskNumbersFilter"},
        "request_id": {"()": "core.logging.RequestIdFilter"},
    },
    "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id", "mask_numbers"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Django's defaults give these loggers plain-text handlers of their own (unmasked, not
        # JSON) when DEBUG is on; send them through the one console handler instead.
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
    },
}

# --- Regulator exports, WORM storage, signing keys, audit checkpoints (issue 7) ------------
# S3 API with Object Lock. Empty S3_ENDPOINT_URL = AWS itself; in dev/test the project runs a
# local S3-compatible server (moto, deploy/local/s3.sh) on S3_DEV_PORT.
S3_DEV_PORT = env_int("S3_DEV_PORT", 4569, minimum=1, maximum=65535)
S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL", "" if PRODUCTION else f"http://127.0.0.1:{S3_DEV_PORT}")
if S3_ENDPOINT_URL and not S3_ENDPOINT_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"S3_ENDPOINT_URL={S3_ENDPOINT_URL!r} must start with http:// or https://")
S3_REGION = env_str("S3_REGION", "us-east-1")
# Empty in production = boto3's default chain (IRSA / instance role). The local server
# accepts anything, so dev/test use a fixed non-secret placeholder.
S3_ACCESS_KEY_ID = env_str("S3_ACCESS_KEY_ID", "" if PRODUCTION else "local-dev")
S3_SECRET_ACCESS_KEY = env_str("S3_SECRET_ACCESS_KEY", "" if PRODUCTION else "local-dev")
S3_CONNECT_TIMEOUT_SECONDS = env_int("S3_CONNECT_TIMEOUT_SECONDS", 5, minimum=1, maximum=120)
S3_MAX_ATTEMPTS = env_int("S3_MAX_ATTEMPTS", 3, minimum=1, maximum=10)
EXPORT_BUCKET = env_str("EXPORT_BUCKET", f"ghasi-regulator-exports-{'prod' if PRODUCTION else 'dev'}")
EXPORT_PREFIX = env_str("EXPORT_PREFIX", "regulator-exports").strip("/")
EXPORT_RETENTION_YEARS = env_int("EXPORT_RETENTION_YEARS", 7, minimum=1, maximum=100)
EXPORT_TMP_DIR = env_str("EXPORT_TMP_DIR", "") or None  # None = the system temp dir
# Signing key provider for manifests and checkpoints: "local" (dev key generated under
# .dev/keys/export/ on first run) or "vault" (Vault Transit; VAULT_TOKEN from env).
SIGNING_PROVIDER = env_str("SIGNING_PROVIDER", "vault" if PRODUCTION else "local")
if SIGNING_PROVIDER not in {"local", "vault"}:
    raise ImproperlyConfigured(f"SIGNING_PROVIDER={SIGNING_PROVIDER!r} must be local or vault")
if PRODUCTION and SIGNING_PROVIDER == "local":
    raise ImproperlyConfigured("SIGNING_PROVIDER=local is for development; use vault when NUMBERING_ENV=production")
EXPORT_LOCAL_KEY_DIR = Path(env_str("EXPORT_LOCAL_KEY_DIR", str(DEV_DIR / "keys" / "export")))
VAULT_ADDR = env_str("VAULT_ADDR", "" if SIGNING_PROVIDER == "local" else None)
VAULT_TOKEN = env_str("VAULT_TOKEN", "")
VAULT_TRANSIT_MOUNT = env_str("VAULT_TRANSIT_MOUNT", "transit")
VAULT_TRANSIT_KEY = env_str("VAULT_TRANSIT_KEY", "numbering-export")
VAULT_TIMEOUT_SECONDS = env_int("VAULT_TIMEOUT_SECONDS", 10, minimum=1, maximum=120)
# Signed checkpoints of the audit chain heads after each clean verify (DESIGN §6). Off by
# default under tests, so a suite never compares its database with a dev bucket.
AUDIT_CHECKPOINTS = env_bool("AUDIT_CHECKPOINTS", default=NUMBERING_ENV != "test")
AUDIT_CHECKPOINT_PREFIX = env_str("AUDIT_CHECKPOINT_PREFIX", "audit-checkpoints").strip("/")
# Retention (DESIGN §6, ADR 1630): monthly partitions, AUDIT_HOT_MONTHS in PostgreSQL, then
# signed hash-linked segments on the WORM bucket (COMPLIANCE, AUDIT_ARCHIVE_RETENTION_YEARS).
AUDIT_HOT_MONTHS = env_int("AUDIT_HOT_MONTHS", 13, minimum=2, maximum=120)
AUDIT_ARCHIVE_RETENTION_YEARS = env_int("AUDIT_ARCHIVE_RETENTION_YEARS", 7, minimum=1, maximum=100)
AUDIT_ARCHIVE_PREFIX = env_str("AUDIT_ARCHIVE_PREFIX", "audit-archive").strip("/")
AUDIT_PARTITIONS_AHEAD = env_int("AUDIT_PARTITIONS_AHEAD", 3, minimum=1, maximum=24)

# --- inventory imports, demo data, admin (issue 5) ----------------------------------------
# Where uploaded CSVs and detached signatures are kept between the wizard's steps and for
# the worker that commits them (a shared volume in production).
INVENTORY_IMPORT_DIR = Path(env_str("INVENTORY_IMPORT_DIR", str(DEV_DIR / "imports")))
# Refuse larger uploads outright (bytes; default 64 MiB ≈ 2.5 million rows).
INVENTORY_IMPORT_MAX_BYTES = env_int("INVENTORY_IMPORT_MAX_BYTES", 64 * 1024 * 1024, minimum=1024)
# Rows validated and copied to PostgreSQL per batch (bounds the importer's memory).
INVENTORY_IMPORT_BATCH_ROWS = env_int("INVENTORY_IMPORT_BATCH_ROWS", 5000, minimum=100, maximum=100_000)
# Problem rows kept in an import's stored report (counts are always exact).
INVENTORY_IMPORT_REPORT_LIMIT = env_int("INVENTORY_IMPORT_REPORT_LIMIT", 1000, minimum=10)
# true: uploads and commits (REST and the admin wizard) are queued to Celery (task
# contracts.run_import) by contracts.services.import_dispatch, which runs them in the
# request when the broker refuses; false: they run in the request (development without a worker).
INVENTORY_IMPORT_ASYNC = env_bool("INVENTORY_IMPORT_ASYNC", default=False)
# How long stored uploads (CSV + signature) are kept (issue 13 item 10, ADR 1354): committed
# ones for INVENTORY_IMPORT_RETENTION_DAYS after completion (disputes with the issuer), every
# other one — refused, failed, dry-run only, abandoned, duplicate — for
# INVENTORY_IMPORT_UNCOMMITTED_RETENTION_DAYS. The record, SHA-256 and report stay forever.
INVENTORY_IMPORT_RETENTION_DAYS = env_int("INVENTORY_IMPORT_RETENTION_DAYS", 90, minimum=1)
INVENTORY_IMPORT_UNCOMMITTED_RETENTION_DAYS = env_int("INVENTORY_IMPORT_UNCOMMITTED_RETENTION_DAYS", 7, minimum=1)

# Issuer signing keys (issue 13 item 2, ADR 1350): how far in the past a new key's valid_from
# may lie (clock skew), and the longest lifetime a key may have (valid_to - valid_from).
SIGNING_KEY_CLOCK_SKEW_SECONDS = env_int("SIGNING_KEY_CLOCK_SKEW_SECONDS", 300, minimum=0, maximum=3600)
SIGNING_KEY_MAX_LIFETIME_DAYS = env_int("SIGNING_KEY_MAX_LIFETIME_DAYS", 730, minimum=1, maximum=3650)

# --- REST API: JWT auth, DRF, OpenAPI (issue 4) ---------------------------------------------
# JWT_JWKS_URL or JWT_JWKS_FILE: where the RS256 verification keys come from (one is required
#   in production; dev/test default to the JWKS of the generated dev key in .dev/jwt/).
# JWT_ISSUER (default "numbering-service-dev" outside production, required in production),
# JWT_AUDIENCE (default "numbering-service"), JWT_LEEWAY_SECONDS (clock skew, default 10),
# JWT_JWKS_CACHE_SECONDS (how long a fetched JWKS is trusted, default 300).
# API_PAGE_SIZE (default 50) and API_MAX_PAGE_SIZE (default 500) bound list pages.
JWT_JWKS_URL = env_str("JWT_JWKS_URL", "")
JWT_JWKS_FILE = env_str("JWT_JWKS_FILE", "")
JWT_DEV_DIR = DEV_DIR / "jwt"
if PRODUCTION:
    if not (JWT_JWKS_URL or JWT_JWKS_FILE):
        raise ImproperlyConfigured("JWT_JWKS_URL or JWT_JWKS_FILE is required when NUMBERING_ENV=production")
    JWT_ISSUER = env_str("JWT_ISSUER")
elif not (JWT_JWKS_URL or JWT_JWKS_FILE):
    from core.api.devkeys import ensure_dev_keys

    JWT_JWKS_FILE = str(ensure_dev_keys(JWT_DEV_DIR).jwks_path)
    JWT_ISSUER = env_str("JWT_ISSUER", "numbering-service-dev")
else:
    JWT_ISSUER = env_str("JWT_ISSUER", "numbering-service-dev")
if JWT_JWKS_URL and not JWT_JWKS_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(f"JWT_JWKS_URL={JWT_JWKS_URL!r} must be an http(s) URL")
if PRODUCTION and JWT_JWKS_URL.startswith("http://"):
    raise ImproperlyConfigured("JWT_JWKS_URL must use https:// when NUMBERING_ENV=production")
JWT_AUDIENCE = env_str("JWT_AUDIENCE", "numbering-service")
JWT_LEEWAY_SECONDS = env_int("JWT_LEEWAY_SECONDS", 10, minimum=0, maximum=300)
JWT_JWKS_CACHE_SECONDS = env_int("JWT_JWKS_CACHE_SECONDS", 300, minimum=0)
# An unknown kid buys at most one JWKS refetch per JWT_JWKS_MIN_REFETCH_SECONDS and is then
# refused from memory for JWT_JWKS_NEGATIVE_CACHE_SECONDS (issue 13 item 4).
JWT_JWKS_MIN_REFETCH_SECONDS = env_int("JWT_JWKS_MIN_REFETCH_SECONDS", 30, minimum=0)
JWT_JWKS_NEGATIVE_CACHE_SECONDS = env_int("JWT_JWKS_NEGATIVE_CACHE_SECONDS", 300, minimum=0)
# The longest a token may live (exp - iat and exp - now), default 24 h (issue 13 item 9).
JWT_MAX_LIFETIME_SECONDS = env_int("JWT_MAX_LIFETIME_SECONDS", 86400, minimum=60)
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 50, minimum=1, maximum=1000)
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", 500, minimum=1, maximum=5000)
# TIER_PRICE_CACHE_SECONDS (5; 0 = read every time): how old the approved price schedule a
# search page shows prices from may be. A decision taken in this process is seen at once,
# one taken in another process within this bound; what a reservation or lease records is
# always read from the database (ADR 1650, 2026-12-03 amendment).
TIER_PRICE_CACHE_SECONDS = env_int("TIER_PRICE_CACHE_SECONDS", 5, minimum=0, maximum=300)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.api.auth.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.permissions.RolePermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.StableCursorPagination",
    "PAGE_SIZE": API_PAGE_SIZE,
    "EXCEPTION_HANDLER": "core.api.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.ProblemAutoSchema",
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
}
SPECTACULAR_SETTINGS = {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "TITLE": "numbering-service API",
    "DESCRIPTION": (
        "Admin (`/api/admin/v1/`, staff roles) and tenant-portal (`/api/tenant/v1/`, tenant roles) REST APIs. "
        "Every endpoint needs an RS256 bearer JWT (claims `sub`, `roles`, `tenant_id` for tenant users). "
        "Errors are RFC 7807 `application/problem+json` with a stable `code`. State-changing POSTs accept an "
        "`Idempotency-Key` header (scoped to the token subject; a replay returns the first response byte for "
        "byte). Signed inventory imports (multipart CSV + detached signature → 202, progress, per-row report) "
        "are under `/api/admin/v1/imports/`; regulator exports (trigger a period, download, verify) and the "
        "ad-hoc inventory CSV under `/api/admin/v1/exports/`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "NumberKindEnum": "numbering.models.Number.Kind",
        "IssuerKindEnum": "contracts.models.Issuer.Kind",
        "ContractKindEnum": "contracts.models.Contract.Kind",
        "ImportStatusEnum": "contracts.models.InventoryImport.Status",
        "ImportModeEnum": "contracts.models.InventoryImport.Mode",
        "RegulatorExportStatusEnum": "exports.models.RegulatorExport.Status",
        "ContractStatusEnum": "contracts.models.Contract.Status",
        "TenantStatusEnum": "pools.models.Tenant.Status",
    },
}

# --- background work and events (issue 6) ---------------------------------------------------
# Celery: Redis broker; the beat schedule lives in config/celery.py. The broker is a Redis
# SERVER of its own, run with maxmemory-policy noeviction, while the cache's server evicts
# (ADR 1801): eviction policy is per server, not per database index, so a broker on the
# cache's server could lose queued tasks to cache pressure. Outside production the default
# is the local broker server (deploy/local/ensure_services.sh, port REDIS_BROKER_PORT 6380)
# with the database index of REDIS_URL, so parallel checkouts stay apart.
REDIS_BROKER_PORT = env_int("REDIS_BROKER_PORT", 6380, minimum=1, maximum=65535)


def _server_of(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return (parts.hostname or parts.path, parts.port or 6379)


def _dev_broker_url(redis_url: str) -> str:
    from urllib.parse import urlsplit

    database = urlsplit(redis_url).path.strip("/") or "0"
    return f"redis://127.0.0.1:{REDIS_BROKER_PORT}/{database}"


CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", None if PRODUCTION else _dev_broker_url(REDIS_URL))
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) and _server_of(CELERY_BROKER_URL) == _server_of(REDIS_URL):
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL must name a different Redis server than REDIS_URL: the cache's server evicts keys"
        " and eviction policy is per server, so queued tasks would be lost to cache pressure (ADR 1801)"
    )
# A task whose worker died before acknowledging it (acks_late: the inventory import) is
# delivered again after this many seconds; a live worker holding a task (or an ETA/countdown)
# longer than this gets it redelivered too, so every acks_late task is idempotent and no
# countdown exceeds it (exports.tasks caps its backoff below it). ADR 1502.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 900, minimum=10, maximum=24 * 3600)
# Kombu looks for such tasks every 10 s but scans only every 10th look by default (100 s);
# every look costs one ZRANGE on a small sorted set, so scan each time.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = "Asia/Kabul"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Prometheus ports of the long-running processes (0 = do not serve metrics).
# Where the background processes serve /metrics: loopback in development, every interface in
# production so Prometheus can scrape the pod (NetworkPolicy limits who may).
METRICS_BIND_ADDRESS = env_str("METRICS_BIND_ADDRESS", "0.0.0.0" if PRODUCTION else "127.0.0.1")  # noqa: S104
# The web process's /metrics (config/web_metrics.py); 0 = off. Never on the public web port.
WEB_METRICS_PORT = env_int("WEB_METRICS_PORT", 9105, minimum=0, maximum=65535)
# How often the web process reads its PostgreSQL gauges (a scrape serves the last reading: ADR 1506).
WEB_METRICS_READ_SECONDS = env_float("WEB_METRICS_READ_SECONDS", 10.0, minimum=0.5, maximum=300.0)
CELERY_WORKER_METRICS_PORT = env_int("CELERY_WORKER_METRICS_PORT", 9104, minimum=0, maximum=65535)
OUTBOX_RELAY_METRICS_PORT = env_int("OUTBOX_RELAY_METRICS_PORT", 9101, minimum=0, maximum=65535)
EVENT_CONSUMERS_METRICS_PORT = env_int("EVENT_CONSUMERS_METRICS_PORT", 9102, minimum=0, maximum=65535)
RESERVATION_EXPIRY_METRICS_PORT = env_int("RESERVATION_EXPIRY_METRICS_PORT", 9103, minimum=0, maximum=65535)
# Outbox relay (ADR 0601): rows per publish batch, polling fallback when no NOTIFY arrives,
# seconds to wait for a JetStream ack, longest back-off of a failing partition.
OUTBOX_RELAY_BATCH = env_int("OUTBOX_RELAY_BATCH", 200, minimum=1, maximum=10000)
OUTBOX_RELAY_POLL_SECONDS = env_int("OUTBOX_RELAY_POLL_SECONDS", 2, minimum=1, maximum=300)
OUTBOX_RELAY_ACK_TIMEOUT_SECONDS = env_int("OUTBOX_RELAY_ACK_TIMEOUT_SECONDS", 5, minimum=1, maximum=120)
OUTBOX_RELAY_MAX_BACKOFF_SECONDS = env_int("OUTBOX_RELAY_MAX_BACKOFF_SECONDS", 30, minimum=1, maximum=3600)
# Streams (ADR 0602): replicas of the streams we own; COMPLIANCE/TENANT only outside production.
NATS_STREAM_REPLICAS = env_int("NATS_STREAM_REPLICAS", 1, minimum=1, maximum=5)
NATS_PROVISION_DEV_STREAMS = env_bool("NATS_PROVISION_DEV_STREAMS", default=not PRODUCTION)
# Event consumers: numbers recalled per transaction, deliveries before a failing message is given up.
EVENT_RECALL_BATCH = env_int("EVENT_RECALL_BATCH", 100, minimum=1, maximum=10000)
# Contract termination (issue 16, ADR 1611): batches of EVENT_RECALL_BATCH numbers retired (and,
# on the end date, recalled) inside the terminate request; the hourly contracts_enforce job does the rest.
CONTRACT_WIND_DOWN_INLINE_BATCHES = env_int("CONTRACT_WIND_DOWN_INLINE_BATCHES", 10, minimum=0, maximum=1000)
EVENT_CONSUMER_MAX_DELIVERIES = env_int("EVENT_CONSUMER_MAX_DELIVERIES", 50, minimum=1)
# Consumed events must be signed by their subject's publisher (issue 13 item 5, ADR 1353):
# EVENT_PUBLISHER_KEYS is JSON {"compliance-service": "<key>", "tenant-service": "<key>"}.
EVENT_SIGNATURES_REQUIRED = env_bool("EVENT_SIGNATURES_REQUIRED", default=True)
try:
    EVENT_PUBLISHER_KEYS: dict[str, str] = json.loads(env_str("EVENT_PUBLISHER_KEYS", "{}") or "{}")
except ValueError:
    raise ImproperlyConfigured('EVENT_PUBLISHER_KEYS must be JSON {"<publisher>": "<key>", ...}') from None
if not isinstance(EVENT_PUBLISHER_KEYS, dict) or not all(
    isinstance(k, str) and isinstance(v, str) and v for k, v in EVENT_PUBLISHER_KEYS.items()
):
    raise ImproperlyConfigured('EVENT_PUBLISHER_KEYS must be JSON {"<publisher>": "<non-empty key>", ...}')
# Reservation TTL keys (ADR 0603) watched by the expiry listener.
RESERVATION_TTL_PREFIX = env_str("RESERVATION_TTL_PREFIX", "numbering:reservation:")
# Sweeps: rows per run, the lease renewal window, anomaly thresholds (per window).
SWEEP_BATCH = env_int("SWEEP_BATCH", 500, minimum=1, maximum=100000)
LEASE_RENEWAL_WINDOW_DAYS = env_int("LEASE_RENEWAL_WINDOW_DAYS", 7, minimum=1, maximum=365)
ANOMALY_WRONG_TENANT_PER_MINUTE = env_int("ANOMALY_WRONG_TENANT_PER_MINUTE", 30, minimum=1)
ANOMALY_CONFLICT_PER_MINUTE = env_int("ANOMALY_CONFLICT_PER_MINUTE", 30, minimum=1)
ANOMALY_CHURN_WINDOW_MINUTES = env_int("ANOMALY_CHURN_WINDOW_MINUTES", 10, minimum=1, maximum=1440)
ANOMALY_CHURN_PER_WINDOW = env_int("ANOMALY_CHURN_PER_WINDOW", 200, minimum=1)

# --- gRPC sidecar (issue 3) ----------------------------------------------------------------
# GRPC_PORT (50051): the port every worker binds with SO_REUSEPORT.
# GRPC_TLS_CERT_FILE / GRPC_TLS_KEY_FILE / GRPC_TLS_CLIENT_CA_FILE (unset): all three set →
#   mTLS required (client certificate signed by the CA, CN on the allowlist). Set some but
#   not all → refuse to start.
# GRPC_INSECURE (0): plaintext for local development and benchmarks only; ignored (never
#   served) when the TLS files are configured; refused when NUMBERING_ENV=production.
# GRPC_CLIENT_PERMISSIONS (unset = DESIGN §3.1 matrix): JSON {"<CN>": ["ValidateLease", ...]}.
# GRPC_METRICS_PORT (9464; 0 = off): Prometheus endpoint of the gRPC processes.
# GRPC_WORKERS (0 = CPU count): worker processes sharing the port.
# GRPC_GRACE_SECONDS (30): SIGTERM drain budget for in-flight calls.
# GRPC_DB_THREADS (8): threads per worker for calls that touch PostgreSQL.
# LEASE_LOCAL_CACHE_SECONDS (30): the longest an in-process ValidateLease entry is trusted
#   without hearing from Redis; invalidations normally arrive by pub/sub within milliseconds
#   (ADR 0300). LEASE_LOCAL_CACHE_MAX_ENTRIES (200000), LEASE_NEGATIVE_CACHE_SECONDS (5) for
#   numbers we do not know. LEASE_REDIS_TIMEOUT_MS (100), LEASE_REDIS_BREAKER_SECONDS (5),
#   LEASE_DB_STATEMENT_TIMEOUT_MS (250) bound the hot path's waits. LEASE_REDIS_MAX_CONNECTIONS
#   (16) bounds each worker's Redis connections; misses beyond it queue (ADR 1508).
GRPC_PORT = env_int("GRPC_PORT", 50051, minimum=0, maximum=65535)
GRPC_TLS_CERT_FILE = env_str("GRPC_TLS_CERT_FILE", "")
GRPC_TLS_KEY_FILE = env_str("GRPC_TLS_KEY_FILE", "")
GRPC_TLS_CLIENT_CA_FILE = env_str("GRPC_TLS_CLIENT_CA_FILE", "")
_grpc_tls = [GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE, GRPC_TLS_CLIENT_CA_FILE]
if any(_grpc_tls) and not all(_grpc_tls):
    raise ImproperlyConfigured(
        "GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE and GRPC_TLS_CLIENT_CA_FILE must be set together (mTLS)"
    )
GRPC_TLS = all(_grpc_tls)
GRPC_INSECURE = env_bool("GRPC_INSECURE", default=False)
if PRODUCTION and GRPC_INSECURE:
    raise ImproperlyConfigured("GRPC_INSECURE must be off when NUMBERING_ENV=production")
GRPC_CLIENT_PERMISSIONS_JSON = env_str("GRPC_CLIENT_PERMISSIONS", "")
# GRPC_POOL (all): which methods this gRPC process serves — `hot` (ValidateLease, Lookup),
# `mutations` (everything else, and Lookup) or `all`; production and `make run` run a hot
# pool and a mutation pool as separate processes (issue 11, ADR 1101).
GRPC_POOL = env_str("GRPC_POOL", "all")
if GRPC_POOL not in ("all", "hot", "mutations"):
    raise ImproperlyConfigured(f"GRPC_POOL={GRPC_POOL!r} must be one of: all, hot, mutations")
GRPC_METRICS_PORT = env_int("GRPC_METRICS_PORT", 9464, minimum=0, maximum=65535)
GRPC_WORKERS = env_int("GRPC_WORKERS", 0, minimum=0, maximum=256)
GRPC_GRACE_SECONDS = env_int("GRPC_GRACE_SECONDS", 30, minimum=0, maximum=300)
GRPC_DB_THREADS = env_int("GRPC_DB_THREADS", 8, minimum=1, maximum=256)
LEASE_LOCAL_CACHE_SECONDS = env_int("LEASE_LOCAL_CACHE_SECONDS", 30, minimum=0, maximum=3600)
LEASE_LOCAL_CACHE_MAX_ENTRIES = env_int("LEASE_LOCAL_CACHE_MAX_ENTRIES", 200000, minimum=0)
LEASE_NEGATIVE_CACHE_SECONDS = env_int("LEASE_NEGATIVE_CACHE_SECONDS", 5, minimum=0, maximum=300)
LEASE_REDIS_TIMEOUT_MS = env_int("LEASE_REDIS_TIMEOUT_MS", 100, minimum=1, maximum=10000)
LEASE_REDIS_MAX_CONNECTIONS = env_int("LEASE_REDIS_MAX_CONNECTIONS", 16, minimum=1, maximum=10000)
LEASE_REDIS_BREAKER_SECONDS = env_int("LEASE_REDIS_BREAKER_SECONDS", 5, minimum=1, maximum=300)
LEASE_DB_STATEMENT_TIMEOUT_MS = env_int("LEASE_DB_STATEMENT_TIMEOUT_MS", 250, minimum=1, maximum=60000)
# How long a gRPC call waits for PostgreSQL before it answers UNAVAILABLE (never past the
# caller's deadline): the hot path's fallback read, and every other call's unit of work
# (ADR 1504). The statement timeouts bound a slow query; these bound a silent database.
LEASE_DB_WAIT_MS = env_int("LEASE_DB_WAIT_MS", 1000, minimum=10, maximum=60000)
GRPC_DB_WAIT_SECONDS = env_float("GRPC_DB_WAIT_SECONDS", 5.0, minimum=0.1, maximum=60.0)
# The durable lease-cache path (ADR 1200): the cache-sync heartbeats every
# LEASE_CACHE_HEARTBEAT_MS (200); a worker trusts its local entries and Redis for
# LEASE_CACHE_TRUST_MS (1000) after a heartbeat of its epoch (the outage bound), re-reads
# the epoch from PostgreSQL every LEASE_CACHE_EPOCH_CHECK_SECONDS (5).
LEASE_CACHE_HEARTBEAT_MS = env_int("LEASE_CACHE_HEARTBEAT_MS", 200, minimum=10, maximum=10000)
LEASE_CACHE_TRUST_MS = env_int("LEASE_CACHE_TRUST_MS", 1000, minimum=50, maximum=60000)
LEASE_CACHE_EPOCH_CHECK_SECONDS = env_int("LEASE_CACHE_EPOCH_CHECK_SECONDS", 5, minimum=1, maximum=3600)
LEASE_CACHE_SYNC_BATCH = env_int("LEASE_CACHE_SYNC_BATCH", 500, minimum=1, maximum=100000)
LEASE_CACHE_SYNC_REDIS_TIMEOUT_MS = env_int("LEASE_CACHE_SYNC_REDIS_TIMEOUT_MS", 500, minimum=10, maximum=60000)
LEASE_CACHE_SYNC_METRICS_PORT = env_int("LEASE_CACHE_SYNC_METRICS_PORT", 9106, minimum=0, maximum=65535)
LEASE_CACHE_RECONCILE_SAMPLE = env_int("LEASE_CACHE_RECONCILE_SAMPLE", 1000, minimum=1, maximum=1000000)

# --- tracing (OpenTelemetry, ADR 1000) ---
# Off unless an OTLP endpoint is configured: nothing tries to reach a collector by default.
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "")  # e.g. http://otel-collector:4318
OTEL_ENABLED = env_bool("OTEL_ENABLED", default=bool(OTEL_EXPORTER_OTLP_ENDPOINT))
if OTEL_ENABLED and not OTEL_EXPORTER_OTLP_ENDPOINT:
    raise ImproperlyConfigured("OTEL_ENABLED=1 needs OTEL_EXPORTER_OTLP_ENDPOINT (the collector's OTLP/HTTP URL)")
OTEL_SERVICE_NAME = env_str("OTEL_SERVICE_NAME", "numbering-service")
# Parent-based ratio sampler: a caller's sampling decision wins; new traces are kept at this ratio.
OTEL_TRACES_SAMPLER_ARG = env_float("OTEL_TRACES_SAMPLER_ARG", 0.05, minimum=0.0, maximum=1.0)
