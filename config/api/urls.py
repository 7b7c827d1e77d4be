"""Routes of the admin and tenant REST APIs, the OpenAPI schema and the docs page.

Other apps add endpoints here: register a viewset on `admin` / `tenant`, or append a
path to `admin_paths` / `tenant_paths` (they are matched before the routers' routes).
"""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from audit.apis import AuditEventViewSet, AuditVerifyView
from contracts.apis import (
    BlockViewSet,
    ContractViewSet,
    ImportViewSet,
    IssuerSigningKeyApproveView,
    IssuerSigningKeyRevokeView,
    IssuerSigningKeysView,
    IssuerViewSet,
)
from core.api.views import api_not_found
from exports.apis import (
    InventoryCsvView,
    RegulatorExportDownloadView,
    RegulatorExportVerifyView,
    RegulatorExportViewSet,
)
from numbering.apis.admin import (
    AdminLeaseViewSet,
    AdminNumberViewSet,
    QuarantinePolicyViewSet,
    TierPriceChangeViewSet,
    VanityTierViewSet,
)
from numbering.apis.tenant import TenantLeaseViewSet, TenantNumberViewSet, TenantPoolView, TenantReservationViewSet
from pools.apis import InventoryPoolViewSet, TenantPoolViewSet, TenantViewSet

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
admin.register("vanity-tiers", VanityTierViewSet, basename="admin-vanity-tier")
admin.register("tier-price-changes", TierPriceChangeViewSet, basename="admin-tier-price-change")
admin.register("audit/events", AuditEventViewSet, basename="admin-audit-event")
admin.register("imports", ImportViewSet, basename="admin-import")
admin.register("exports", RegulatorExportViewSet, basename="admin-export")

admin_paths = [
    path("audit/verify/", AuditVerifyView.as_view(), name="admin-audit-verify"),
    # Before the exports router's exports/{id}/ so "inventory.csv" is not read as an id.
    path("exports/inventory.csv", InventoryCsvView.as_view(), name="admin-exports-inventory-csv"),
    path("exports/<str:pk>/download/", RegulatorExportDownloadView.as_view(), name="admin-export-download"),
    path("exports/<str:pk>/verify/", RegulatorExportVerifyView.as_view(), name="admin-export-verify"),
    path("issuers/<str:pk>/signing-keys/", IssuerSigningKeysView.as_view(), name="admin-issuer-signing-keys"),
    path(
        "issuers/<str:pk>/signing-keys/<str:fingerprint>/approve/",
        IssuerSigningKeyApproveView.as_view(),
        name="admin-issuer-signing-key-approve",
    ),
    path(
        "issuers/<str:pk>/signing-keys/<str:fingerprint>/revoke/",
        IssuerSigningKeyRevokeView.as_view(),
        name="admin-issuer-signing-key-revoke",
    ),
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
