"""Routes of the admin and tenant REST APIs, the OpenAPI schema and the docs page.

Other apps add endpoints here: register a viewset on `admin` / `tenant`, or append a
path to `admin_paths` / `tenant_paths`. Stubs (config.api.stubs) hold the routes of
features still being built; replace the stub's entry with the real view.
"""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from audit.apis import AuditEventViewSet, AuditVerifyView
from config.api.stubs import not_implemented_view
from config.api.views import api_not_found
from contracts.apis import BlockViewSet, ContractViewSet, IssuerViewSet
from numbering.apis.admin import AdminLeaseViewSet, AdminNumberViewSet, QuarantinePolicyViewSet
from numbering.apis.tenant import TenantLeaseViewSet, TenantNumberViewSet, TenantPoolView, TenantReservationViewSet
from pools.apis import InventoryPoolViewSet, TenantPoolViewSet, TenantViewSet

IMPORTS_MSG = "Inventory imports (signed CSV upload, progress, per-row report) land with the import/export issue."
EXPORTS_MSG = "Regulator and ad-hoc exports (list, trigger a period, download) land with the import/export issue."
KEYS_MSG = "Issuer signing keys land with the import/export issue."

ImportsView = not_implemented_view(
    "Imports", IMPORTS_MSG, {"get": "admin.imports.read", "post": "admin.imports.write"}, "admin: imports"
)
ImportDetailView = not_implemented_view("Import detail", IMPORTS_MSG, {"get": "admin.imports.read"}, "admin: imports")
ExportsView = not_implemented_view(
    "Exports", EXPORTS_MSG, {"get": "admin.exports.read", "post": "admin.exports.write"}, "admin: exports"
)
ExportDetailView = not_implemented_view("Export detail", EXPORTS_MSG, {"get": "admin.exports.read"}, "admin: exports")
ExportDownloadView = not_implemented_view(
    "Export download", EXPORTS_MSG, {"get": "admin.exports.read"}, "admin: exports"
)
SigningKeysView = not_implemented_view(
    "Issuer signing keys",
    KEYS_MSG,
    {"get": "admin.signing_keys.read", "post": "admin.signing_keys.write"},
    "admin: issuers and contracts",
)

admin = SimpleRouter()
admin.register("issuers", IssuerViewSet, basename="admin-issuer")
admin.register("contracts", ContractViewSet, basename="admin-contract")
admin.register("blocks", BlockViewSet, basename="admin-block")
admin.register("numbers", AdminNumberViewSet, basename="admin-number")
admin.register("inventory-pools", InventoryPoolViewSet, basename="admin-inventory-pool")
admin.register("tenant-pools", TenantPoolViewSet, basename="admin-tenant-pool")
admin.register("tenants", TenantViewSet, basename="admin-tenant")
admin.register("leases", AdminLeaseViewSet, basename="admin-lease")
admin.register("quarantine-policies", QuarantinePolicyViewSet, basename="admin-quarantine-policy")
admin.register("audit/events", AuditEventViewSet, basename="admin-audit-event")

admin_paths = [
    path("audit/verify/", AuditVerifyView.as_view(), name="admin-audit-verify"),
    path("imports/", ImportsView.as_view(), name="admin-imports"),
    path("imports/<str:pk>/", ImportDetailView.as_view(), name="admin-import-detail"),
    path("exports/", ExportsView.as_view(), name="admin-exports"),
    path("exports/<str:pk>/", ExportDetailView.as_view(), name="admin-export-detail"),
    path("exports/<str:pk>/download/", ExportDownloadView.as_view(), name="admin-export-download"),
    path("issuers/<str:pk>/signing-keys/", SigningKeysView.as_view(), name="admin-issuer-signing-keys"),
]

tenant = SimpleRouter()
tenant.register("numbers", TenantNumberViewSet, basename="tenant-number")
tenant.register("reservations", TenantReservationViewSet, basename="tenant-reservation")
tenant.register("leases", TenantLeaseViewSet, basename="tenant-lease")

tenant_paths = [
    path("pool/", TenantPoolView.as_view(), name="tenant-pool"),
]

urlpatterns = [
    path("api/admin/v1/", include(admin_paths + admin.urls)),
    path("api/tenant/v1/", include(tenant_paths + tenant.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Last: any other /api/ path is a problem+json 404. Register new API routes above (or in
    # config/urls.py *before* this module's include), or this catch-all shadows them.
    re_path(r"^api/", api_not_found),
]
