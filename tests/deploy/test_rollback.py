"""Rollback safety (docs/ops/rollback-plan.md): the previous release must run on the new schema.

1. Static, always: every migration after the release marked in
   deploy/release/previous-release.json only ADDS (new tables, nullable columns or columns
   with a database default, indexes). Anything that drops, renames or tightens, or raw SQL
   not explicitly declared forward-compatible, fails here with the migration and operation.
2. Live, when the marked commit is in the local git history: that commit's code (extracted
   with `git archive`) imports its models against the test database migrated to HEAD and
   reads every column of every model, as the old pods would after a rollback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from django.db import migrations, models
from django.db.migrations.loader import MigrationLoader

from tests.grpc_server.conftest import subprocess_db_env

ROOT = Path(__file__).resolve().parents[2]
MARKER = json.loads((ROOT / "deploy" / "release" / "previous-release.json").read_text())
APPS = ("audit", "contracts", "core", "events", "exports", "numbering", "pools")


def _field_is_additive(field: models.Field[Any, Any]) -> bool:
    """Old code that does not know the column must still be able to INSERT rows."""
    return bool(field.null or field.db_default is not models.NOT_PROVIDED or field.primary_key)


def problems_of(migration: Any) -> list[str]:
    """Why this migration would break the previous release's code (empty: additive only)."""
    declared_safe = getattr(migration, "forward_compatible", False)
    found: list[str] = []
    for op in migration.operations:
        where = f"{migration.app_label}.{migration.name}: {type(op).__name__}"
        if isinstance(op, migrations.CreateModel | migrations.AddIndex | migrations.AddConstraint):
            if isinstance(op, migrations.AddConstraint) and not declared_safe:
                found.append(f"{where} {op.constraint.name}: a new constraint can refuse the old code's writes")
            continue
        if isinstance(op, migrations.AddField):
            if not _field_is_additive(op.field):
                found.append(f"{where} {op.model_name}.{op.name} is NOT NULL without a database default (db_default)")
            continue
        if isinstance(op, migrations.RunSQL | migrations.RunPython):
            if not declared_safe:
                found.append(f"{where} cannot be inspected: declare `forward_compatible = True` on the migration")
            continue
        if isinstance(op, migrations.SeparateDatabaseAndState) and not op.database_operations:
            continue
        found.append(f"{where} is not additive (drops, renames or alters what the previous release uses)")
    return found


def migrations_after_release() -> list[Any]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    released: set[tuple[str, str]] = set()
    for app, last in MARKER["migrations"].items():
        released |= set(loader.graph.forwards_plan((app, last)))
    return [
        loader.graph.nodes[key]
        for key in loader.graph.leaf_nodes()
        for key in loader.graph.forwards_plan(key)
        if key[0] in APPS and key not in released
    ]


def test_every_app_is_marked_and_the_marked_migrations_exist() -> None:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    # An app born after the release (core, events) has no mark: all its migrations are checked.
    assert set(MARKER["migrations"]) <= set(APPS)
    for app, name in MARKER["migrations"].items():
        assert (app, name) in loader.graph.nodes, f"{app}.{name} of the release marker does not exist"


def test_every_migration_after_the_previous_release_is_additive() -> None:
    found = [p for migration in migrations_after_release() for p in problems_of(migration)]
    assert found == [], "\n".join(found)


def _migration(*operations: Any, safe: bool = False) -> Any:
    migration = migrations.Migration("0099_test", "numbering")
    migration.operations = list(operations)
    if safe:
        migration.forward_compatible = True  # type: ignore[attr-defined]
    return migration


@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        (migrations.RemoveField("number", "vanity"), "not additive"),
        (migrations.RenameField("number", "tier", "grade"), "not additive"),
        (migrations.DeleteModel("numberblock"), "not additive"),
        (migrations.AlterField("number", "tier", models.CharField(max_length=4)), "not additive"),
        (migrations.AddField("number", "region", models.CharField(max_length=8, default="KBL")), "NOT NULL"),
        (migrations.RunSQL("ALTER TABLE numbering_number DROP COLUMN tier"), "cannot be inspected"),
        (
            migrations.AddConstraint("number", models.CheckConstraint(condition=models.Q(tier__gt=""), name="t")),
            "new constraint",
        ),
    ],
)
def test_the_check_refuses_what_would_break_the_old_code(operation: Any, reason: str) -> None:
    (problem,) = problems_of(_migration(operation))
    assert reason in problem


def test_the_check_accepts_additive_changes() -> None:
    ok = _migration(
        migrations.AddField("number", "region", models.CharField(max_length=8, null=True)),
        migrations.AddField("number", "score", models.IntegerField(db_default=0)),
        migrations.AddIndex("number", models.Index(fields=["tier"], name="number_tier_idx")),
        migrations.CreateModel("Note", [("id", models.BigAutoField(primary_key=True))]),
    )
    assert problems_of(ok) == []
    assert problems_of(_migration(migrations.RunSQL("CREATE INDEX x ON y (z)"), safe=True)) == []


def test_the_check_would_have_caught_a_real_non_additive_migration() -> None:
    # exports 0002 added `totals` and `triggered_by` NOT NULL with only a Python default: a pod
    # of the release before it inserting a RegulatorExport would hit a NOT NULL violation.
    loader = MigrationLoader(None, ignore_no_migrations=True)
    found = problems_of(loader.graph.nodes[("exports", "0002_regulator_export_run_details")])
    assert any("regulatorexport.totals is NOT NULL" in p for p in found), found
    assert any("regulatorexport.triggered_by is NOT NULL" in p for p in found), found
    assert not any(".generated_at " in p or ".uploaded_at " in p for p in found), "nullable columns are additive"


SMOKE = """
import django
django.setup()
from django.apps import apps
count = 0
for model in apps.get_models():
    if model._meta.app_label in {apps_}:
        list(model.objects.using("owner").all()[:1])  # SELECT of every column the old code knows
        count += 1
print("models read:", count)
"""


@pytest.mark.django_db(transaction=False)
def test_the_previous_release_reads_every_model_on_the_new_schema(tmp_path: Path) -> None:
    commit = MARKER["commit"]
    known = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, check=False)  # noqa: S607
    if known.returncode != 0:
        pytest.skip(f"release {commit[:10]} is not in this clone's history (shallow clone); the static check ran")
    archive = subprocess.run(  # noqa: S603
        ["git", "archive", "--format=tar", commit],
        cwd=ROOT,
        capture_output=True,
        check=True,  # noqa: S607
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(tmp_path, filter="data")
    env = {**subprocess_db_env(), "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", SMOKE.replace("{apps_}", repr(set(APPS)))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "models read:" in result.stdout and int(result.stdout.split(":")[-1]) >= 10
