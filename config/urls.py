from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("livez", health.livez, name="livez"),
    path("readyz", health.readyz, name="readyz"),
    # /metrics is not served here: config/web_metrics.py serves it on its own bind (issue 13).
]

# Pact provider states (issue 17): test-only, absent unless the setting is on (ADR 1700).
if settings.PACT_PROVIDER_STATES_ENABLED:
    from config.provider_states import provider_states

    urlpatterns += [path("_pact/provider-states", provider_states, name="pact-provider-states")]

# REST APIs, OpenAPI schema and docs (issue 4).
urlpatterns += [path("", include("config.api.urls"))]

# Development only: the web process runs under gunicorn (deploy/entrypoint.sh web), which,
# unlike runserver, serves no static files; with DEBUG on, Django serves the admin's assets.
# Production never has DEBUG (settings refuse it) and serves collected files elsewhere.
if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()

# A SuspiciousOperation (a forged Host header, …) answers problem+json under /api/.
handler400 = "core.api.views.bad_request"
