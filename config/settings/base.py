"""Settings for numbering-service. Everything comes from the environment.

NUMBERING_ENV selects the profile: ``dev`` (default; generates local secrets under
.dev/), ``test`` or ``production`` (every secret required, nothing generated).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_str, parse_database_url

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
ALLOWED_HOSTS = [h.strip() for h in env_str("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]

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
    "contracts",
    "pools",
    "numbering",
    "audit",
    "exports",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "config.request_context.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
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
        "OPTIONS": {"options": f"-c statement_timeout={_statement_timeout_ms}"},
    }
)
DATABASES = {"owner": _owner, "default": _app}
DATABASE_ROUTERS: list[str] = []
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
MIGRATION_DATABASE_ALIAS = "owner"

# --- Redis, NATS -----------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = env_str("NATS_URL", "nats://127.0.0.1:4222")
for _name, _value, _schemes in (
    ("REDIS_URL", REDIS_URL, ("redis://", "rediss://", "unix://")),
    ("NATS_URL", NATS_URL, ("nats://", "tls://")),
):
    if not _value.startswith(_schemes):
        raise ImproperlyConfigured(f"{_name}={_value!r} must start with one of {', '.join(_schemes)}")

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

# --- Logging -------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "mask_numbers": {"()": "config.logging.MaskNumbersFilter"},
        "request_id": {"()": "config.logging.RequestIdFilter"},
    },
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
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
    },
}

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
#   LEASE_DB_STATEMENT_TIMEOUT_MS (250) bound the hot path's waits.
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
GRPC_METRICS_PORT = env_int("GRPC_METRICS_PORT", 9464, minimum=0, maximum=65535)
GRPC_WORKERS = env_int("GRPC_WORKERS", 0, minimum=0, maximum=256)
GRPC_GRACE_SECONDS = env_int("GRPC_GRACE_SECONDS", 30, minimum=0, maximum=300)
GRPC_DB_THREADS = env_int("GRPC_DB_THREADS", 8, minimum=1, maximum=256)
LEASE_LOCAL_CACHE_SECONDS = env_int("LEASE_LOCAL_CACHE_SECONDS", 30, minimum=0, maximum=3600)
LEASE_LOCAL_CACHE_MAX_ENTRIES = env_int("LEASE_LOCAL_CACHE_MAX_ENTRIES", 200000, minimum=0)
LEASE_NEGATIVE_CACHE_SECONDS = env_int("LEASE_NEGATIVE_CACHE_SECONDS", 5, minimum=0, maximum=300)
LEASE_REDIS_TIMEOUT_MS = env_int("LEASE_REDIS_TIMEOUT_MS", 100, minimum=1, maximum=10000)
LEASE_REDIS_BREAKER_SECONDS = env_int("LEASE_REDIS_BREAKER_SECONDS", 5, minimum=1, maximum=300)
LEASE_DB_STATEMENT_TIMEOUT_MS = env_int("LEASE_DB_STATEMENT_TIMEOUT_MS", 250, minimum=1, maximum=60000)
