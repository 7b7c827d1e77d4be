from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from config import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("livez", health.livez, name="livez"),
    path("readyz", health.readyz, name="readyz"),
    # /metrics is not served here: config/web_metrics.py serves it on its own bind (issue 13).
]

# REST APIs, OpenAPI schema and docs (issue 4).
urlpatterns += [path("", include("config.api.urls"))]
