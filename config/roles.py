"""The roles of DESIGN §3.2. JWT `roles` claims and Django staff groups use these names.

The role × endpoint matrix lives with the REST API; this module only names the roles so
that every surface (REST, Django admin groups, audit) spells them the same way.
"""

from __future__ import annotations

NUMBERING_ADMIN = "numbering.admin"
COMMERCE_OPS = "commerce.ops"
COMPLIANCE_OFFICER = "compliance.officer"
AUDITOR = "auditor"
REGULATOR_EXPORTER = "regulator.exporter"
TENANT_ADMIN = "tenant.admin"
TENANT_VIEWER = "tenant.viewer"
# A machine role (client-credentials token of regulator-portal-service, issue 17): reads
# regulator exports and nothing else; no Django staff group, never a tenant.
REGULATOR_PORTAL = "regulator.portal"

STAFF_ROLES = (NUMBERING_ADMIN, COMMERCE_OPS, COMPLIANCE_OFFICER, AUDITOR, REGULATOR_EXPORTER)
SERVICE_ROLES = (REGULATOR_PORTAL,)
TENANT_ROLES = (TENANT_ADMIN, TENANT_VIEWER)
PLATFORM_ROLES = STAFF_ROLES + SERVICE_ROLES  # the roles a token without tenant_id may carry
ALL_ROLES = PLATFORM_ROLES + TENANT_ROLES
