"""The refusal for a number the tenant scope hides (issue 13 item 6, ADR 1352 "gRPC").

A service acting for a tenant (customer-portal-bff) now works under that tenant's RLS scope,
on the tenant role: another tenant's RESERVED or ASSIGNED number is invisible to it. The
gRPC contract still answers WRONG_TENANT or FAILED_PRECONDITION for such a number, not
NOT_FOUND, and classifying the refusal needs the row's state (and version, for CONFLICT).

`numbering_hidden_number_facts(number)` returns exactly those two columns of one number,
and nothing else (no holder, no dates): a SECURITY DEFINER function owned by the owner
role, run with platform scope for its own duration only (set, then put back), executable by the
platform group (the app role) and the tenant role, and by no one else. Forward-compatible: a new function only.
"""

from __future__ import annotations

from django.db import migrations

PLATFORM_GROUP = "numbering_platform"  # the app and owner roles are members (bootstrap_db)
TENANT_ROLE = "numbering_tenant"

FORWARD = f"""
CREATE OR REPLACE FUNCTION numbering_hidden_number_facts(p_number text)
  RETURNS TABLE (state varchar, version bigint)
  LANGUAGE plpgsql STABLE SECURITY DEFINER
  SET search_path = public, pg_temp
AS $$
DECLARE
  previous text := current_setting('app.scope', true);
BEGIN
  PERFORM set_config('app.scope', 'platform', true);
  RETURN QUERY SELECT n.state, n.version FROM numbering_number n WHERE n.number = p_number;
  PERFORM set_config('app.scope', coalesce(previous, ''), true);
END $$;
REVOKE ALL ON FUNCTION numbering_hidden_number_facts(text) FROM PUBLIC;
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['{PLATFORM_GROUP}', '{TENANT_ROLE}', current_user] LOOP
    IF to_regrole(r) IS NOT NULL THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION numbering_hidden_number_facts(text) TO %I', r);
    END IF;
  END LOOP;
END $$;
"""

REVERSE = "DROP FUNCTION IF EXISTS numbering_hidden_number_facts(text);"


class Migration(migrations.Migration):
    forward_compatible = True
    dependencies = [("numbering", "0012_search_indexes")]
    operations = [migrations.RunSQL(FORWARD, REVERSE)]
