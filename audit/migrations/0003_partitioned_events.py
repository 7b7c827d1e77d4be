"""Monthly partitions for the audit table, and the archive segment ledger (issue 16, ADR 1630).

PostgreSQL cannot ALTER a table into a partitioned one, and copying years of events under
an exclusive lock is not an option. So, in one transaction:

1. the old table is renamed `audit_auditevent_p_legacy` (its indexes and constraints get
   that prefix, its triggers move to the parent, its identity becomes a plain sequence);
2. a partitioned parent `audit_auditevent` (RANGE on occurred_at) is created with the same
   columns, PRIMARY KEY (id, occurred_at) (a partitioned table's unique keys must contain the
   partition key), UNIQUE (chain, seq, occurred_at), the same indexes, the append-only
   triggers, the same RLS policies and the same grants;
3. the old table is ATTACHED as the first partition FOR VALUES FROM (MINVALUE) TO (the
   first month after its newest row): no row moves; PostgreSQL scans it once to check the
   bound and reuses its matching indexes;
4. the next months' partitions are created (audit.partitions keeps them ahead afterwards).

The previous release keeps working: it INSERTs and SELECTs `audit_auditevent` with the same
columns and the id default; nothing references audit ids by foreign key (checkpoints name
(chain, seq)). Partitions themselves carry no grants: the app and tenant roles reach events
only through the parent, where the RLS policies apply.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.db import migrations, models
from psycopg import sql

LEGACY = "audit_auditevent_p_legacy"
AHEAD = 3


def _month_add(value: datetime, months: int) -> datetime:
    index = value.year * 12 + value.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    conn = schema_editor.connection.connection
    with conn.cursor() as cur:
        cur.execute("SELECT relkind FROM pg_class WHERE oid = 'audit_auditevent'::regclass")
        if cur.fetchone()[0] == "p":
            return  # already partitioned (a database restored from a newer dump)
        cur.execute("LOCK TABLE audit_auditevent IN ACCESS EXCLUSIVE MODE")
        cur.execute("SELECT coalesce(max(id), 0), max(occurred_at) FROM audit_auditevent")
        max_id, newest = cur.fetchone()
        now = datetime.now(UTC)
        bound = _month_add(max(now, newest or now), 1)
        # Who may do what today, and which policies guard it: the parent gets exactly these.
        cur.execute(
            "SELECT grantee, privilege_type FROM information_schema.role_table_grants"
            " WHERE table_name = 'audit_auditevent' AND grantee <> current_user"
        )
        grants = cur.fetchall()
        cur.execute(
            "SELECT policyname, permissive, roles::text[], cmd, qual, with_check FROM pg_policies"
            " WHERE tablename = 'audit_auditevent'"
        )
        policies = cur.fetchall()
        cur.execute("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'audit_auditevent'::regclass")
        rls, force_rls = cur.fetchone()

        cur.execute(f"ALTER TABLE audit_auditevent RENAME TO {LEGACY}")
        cur.execute(f"DROP TRIGGER IF EXISTS audit_no_update_delete ON {LEGACY}")
        cur.execute(f"DROP TRIGGER IF EXISTS audit_no_truncate ON {LEGACY}")
        # A partition's primary key is the parent's (id, occurred_at), built at ATTACH.
        cur.execute(f"ALTER TABLE {LEGACY} DROP CONSTRAINT audit_auditevent_pkey")
        cur.execute(f"ALTER TABLE {LEGACY} RENAME CONSTRAINT audit_chain_seq_unique TO {LEGACY}_chain_seq")
        for index in ("audit_object", "audit_tenant", "audit_occurred_at"):
            cur.execute(f"ALTER INDEX {index} RENAME TO {LEGACY}_{index.removeprefix('audit_')}")
        cur.execute(f"ALTER TABLE {LEGACY} ALTER COLUMN id DROP IDENTITY IF EXISTS")
        cur.execute("CREATE SEQUENCE audit_auditevent_id_seq AS bigint")
        cur.execute("SELECT setval('audit_auditevent_id_seq', %s, %s)", [max(max_id, 1), max_id > 0])

        cur.execute(
            f"CREATE TABLE audit_auditevent (LIKE {LEGACY} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            " PARTITION BY RANGE (occurred_at)"
        )
        cur.execute("ALTER TABLE audit_auditevent ALTER COLUMN id SET DEFAULT nextval('audit_auditevent_id_seq')")
        cur.execute("ALTER SEQUENCE audit_auditevent_id_seq OWNED BY audit_auditevent.id")
        cur.execute("ALTER TABLE audit_auditevent ADD CONSTRAINT audit_auditevent_pkey PRIMARY KEY (id, occurred_at)")
        cur.execute(
            "ALTER TABLE audit_auditevent ADD CONSTRAINT audit_chain_seq_at_unique UNIQUE (chain, seq, occurred_at)"
        )
        cur.execute("CREATE INDEX audit_object ON audit_auditevent (object_type, object_id, occurred_at)")
        cur.execute("CREATE INDEX audit_tenant ON audit_auditevent (tenant_id, occurred_at)")
        cur.execute("CREATE INDEX audit_occurred_at ON audit_auditevent (occurred_at)")
        cur.execute(
            "CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit_auditevent"
            " FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
        )
        cur.execute(
            "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_auditevent"
            " FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )
        if rls:
            cur.execute("ALTER TABLE audit_auditevent ENABLE ROW LEVEL SECURITY")
        if force_rls:
            cur.execute("ALTER TABLE audit_auditevent FORCE ROW LEVEL SECURITY")
        for name, permissive, roles, cmd, qual, with_check in policies:
            statement = sql.SQL("CREATE POLICY {} ON audit_auditevent AS {} FOR {} TO {}").format(
                sql.Identifier(name),
                sql.SQL(permissive),
                sql.SQL(cmd),
                sql.SQL(", ").join(sql.SQL("public") if r == "public" else sql.Identifier(r) for r in roles),
            )
            if qual:
                statement += sql.SQL(" USING ({})").format(sql.SQL(qual))
            if with_check:
                statement += sql.SQL(" WITH CHECK ({})").format(sql.SQL(with_check))
            cur.execute(statement)
        grantees = sorted({grantee for grantee, _ in grants})
        # A new table picks up the schema's default privileges (0008 grants UPDATE and DELETE
        # to the tenant role by default): start from none, then exactly what the old table had.
        cur.execute(
            "SELECT DISTINCT grantee FROM information_schema.role_table_grants"
            " WHERE table_name = 'audit_auditevent' AND grantee <> current_user"
        )
        for (grantee,) in cur.fetchall():
            cur.execute(sql.SQL("REVOKE ALL ON audit_auditevent FROM {}").format(sql.Identifier(grantee)))
        for grantee, privilege in grants:
            cur.execute(
                sql.SQL("GRANT {} ON audit_auditevent TO {}").format(sql.SQL(privilege), sql.Identifier(grantee))
            )
        for grantee in grantees:
            cur.execute(sql.SQL("GRANT USAGE ON SEQUENCE audit_auditevent_id_seq TO {}").format(sql.Identifier(grantee)))
            # Through the parent only (its RLS): a partition is never read or written directly.
            cur.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(LEGACY), sql.Identifier(grantee)))

        cur.execute(
            f"ALTER TABLE audit_auditevent ATTACH PARTITION {LEGACY} FOR VALUES FROM (MINVALUE) TO (%s)",
            [bound],
        )
        for offset in range(AHEAD + 1):
            start, end = _month_add(bound, offset), _month_add(bound, offset + 1)
            name = f"audit_auditevent_p{start:%Y%m}"
            cur.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF audit_auditevent FOR VALUES FROM (%s) TO (%s)").format(
                    sql.Identifier(name)
                ),
                [start, end],
            )
            cur.execute(
                "SELECT DISTINCT grantee FROM information_schema.role_table_grants"
                " WHERE table_name = %s AND grantee <> current_user",
                [name],
            )
            for (grantee,) in cur.fetchall():
                cur.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(name), sql.Identifier(grantee)))


def restrict_ledger(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Only the archive job (owner role) writes the segment ledger; the app role reads it
    (the number page, the verifier); the tenant role has no business with it."""
    with schema_editor.connection.connection.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT grantee FROM information_schema.role_table_grants"
            " WHERE table_name = 'audit_auditarchivesegment' AND grantee <> current_user"
        )
        for (grantee,) in cur.fetchall():
            cur.execute(sql.SQL("REVOKE ALL ON audit_auditarchivesegment FROM {}").format(sql.Identifier(grantee)))
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [settings.DATABASES["default"]["USER"]])
        if cur.fetchone():
            cur.execute(
                sql.SQL("GRANT SELECT ON audit_auditarchivesegment TO {}").format(
                    sql.Identifier(settings.DATABASES["default"]["USER"])
                )
            )


class Migration(migrations.Migration):
    # Declared forward-compatible (ADR 1803, ADR 1630): the previous release sees the same
    # table name, columns, id default, triggers, RLS and grants; only the keys widened.
    forward_compatible = True

    dependencies = [("audit", "0002_append_only"), ("numbering", "0008_platform_role_rls")]

    operations = [
        migrations.RunPython(forward, migrations.RunPython.noop, elidable=False),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="auditevent", name="audit_chain_seq_unique"),
                migrations.AddConstraint(
                    model_name="auditevent",
                    constraint=models.UniqueConstraint(
                        fields=("chain", "seq", "occurred_at"), name="audit_chain_seq_at_unique"
                    ),
                ),
            ]
        ),
        migrations.CreateModel(
            name="AuditArchiveSegment",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("partition", models.CharField(max_length=63, unique=True)),
                ("period_start", models.DateTimeField()),
                ("period_end", models.DateTimeField()),
                ("object_key", models.CharField(max_length=512)),
                ("version_id", models.CharField(max_length=256)),
                ("manifest_key", models.CharField(max_length=512)),
                ("manifest_version_id", models.CharField(max_length=256)),
                ("sha256", models.CharField(max_length=64)),
                ("manifest_sha256", models.CharField(max_length=64)),
                ("prev_manifest_sha256", models.CharField(max_length=64)),
                ("events", models.BigIntegerField()),
                ("chains", models.JSONField()),
                ("key_id", models.CharField(max_length=200)),
                ("signature", models.TextField()),
                ("retain_until", models.DateTimeField()),
                ("archived_at", models.DateTimeField()),
                ("dropped_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={"ordering": ["period_start"]},
        ),
        migrations.RunPython(restrict_ledger, migrations.RunPython.noop, elidable=False),
    ]
