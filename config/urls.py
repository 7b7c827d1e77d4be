from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from config import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("livez", health.livez, name="livez"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("django_prometheus.urls")),
]

# REST APIs, OpenAPI schema and docs (issue 4).
urlpatterns += [path("", include("config.api.urls"))]
