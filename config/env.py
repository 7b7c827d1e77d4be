"""Typed access to environment variables that fails loudly.

Every setting of the service comes from the environment (12-factor). A value that is
present but malformed raises ImproperlyConfigured naming the variable, so a typo in a
deployment stops the process at start instead of running with a silent default.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"{name} is required but not set")
        return default
    return value


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} is above the maximum {maximum}")
    return value


# libpq options a DATABASE_URL may carry in its query string (anything else is refused, so a
# typo does not silently drop e.g. target_session_attrs).
DATABASE_URL_OPTIONS = frozenset(
    {
        "target_session_attrs",
        "connect_timeout",
        "load_balance_hosts",
        "tcp_user_timeout",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "sslmode",
        "application_name",
    }
)


def parse_database_url(name: str, url: str, *, writable: bool = True) -> dict[str, object]:
    """Turn postgres://user:pass@host:port/db?opt=v into a Django DATABASES entry.

    A libpq multi-host URL (postgres://u@h1:p1,h2:p2,h3:p3/db?target_session_attrs=read-write)
    becomes HOST "h1,h2,h3" and PORT "p1,p2,p3", which libpq tries in order (ADR 1400). A
    `writable` multi-host URL must ask for the read-write server."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(f"{name}={url!r}: scheme must be postgres:// or postgresql://")
    database = unquote(parsed.path.lstrip("/"))
    if not database:
        raise ImproperlyConfigured(f"{name}={url!r}: the database name is missing")
    if not parsed.username:
        raise ImproperlyConfigured(f"{name}={url!r}: the user name is missing")
    hostlist = parsed.netloc.rpartition("@")[2]
    hosts, ports = [], []
    for item in hostlist.split(","):
        host, _, port = item.rpartition(":") if not item.endswith("]") else (item, "", "")
        if not host:  # no colon: a bare host name
            host, port = item, ""
        if port and not port.isdigit():
            raise ImproperlyConfigured(f"{name}={url!r}: the port is not a number")
        if port and not 0 < int(port) < 65536:
            raise ImproperlyConfigured(f"{name}={url!r}: the port is not a number between 1 and 65535")
        hosts.append(unquote(host.strip("[]")) or "127.0.0.1")
        ports.append(port or "5432")
    options: dict[str, str] = {}
    for key, values in parse_qs(parsed.query, keep_blank_values=True).items():
        if key not in DATABASE_URL_OPTIONS:
            raise ImproperlyConfigured(
                f"{name}={url!r}: unknown option {key!r}; allowed: {', '.join(sorted(DATABASE_URL_OPTIONS))}"
            )
        options[key] = values[-1]
    if writable and len(hosts) > 1 and options.get("target_session_attrs") not in {"read-write", "primary"}:
        raise ImproperlyConfigured(
            f"{name}={url!r}: a multi-host URL needs target_session_attrs=read-write (or primary), "
            "or a write could land on a replica"
        )
    entry: dict[str, object] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": database,
        "USER": unquote(parsed.username),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": ",".join(hosts),
        "PORT": ",".join(ports),
    }
    if options:
        entry["OPTIONS"] = options
    return entry


def env_float(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if value != value:  # NaN
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number")
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} is above the maximum {maximum}")
    return value
