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

STAFF_ROLES = (NUMBERING_ADMIN, COMMERCE_OPS, COMPLIANCE_OFFICER, AUDITOR, REGULATOR_EXPORTER)
TENANT_ROLES = (TENANT_ADMIN, TENANT_VIEWER)
ALL_ROLES = STAFF_ROLES + TENANT_ROLES
