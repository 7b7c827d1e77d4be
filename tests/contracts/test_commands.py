"""`add_signing_key` and `import_inventory`: exit codes and what they print."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from contracts import signing
from contracts.models import SigningKey
from contracts.services import signing_key_add, signing_key_revoke
from core.actors import Actor
from core.errors import NotFound, ValidationError
from numbering.models import Number
from tests.contracts.conftest import HEADER, msisdn_rows, private_key, sign_csv
from tests.factories import IssuerFactory

pytestmark = pytest.mark.django_db


def _pem(tmp_path, name="k"):
    path = tmp_path / f"{name}.pem"
    path.write_text(signing.public_pem(private_key(name)))
    return path


def test_add_signing_key_installs_key_with_fingerprint_and_window(tmp_path):
    IssuerFactory(code="MTN_AF", msisdn_prefixes=["76", "77"])
    out = StringIO()
    call_command(
        "add_signing_key",
        "--issuer",
        "mtn_af",
        "--pem",
        str(_pem(tmp_path, "mtn")),
        "--valid-from",
        "2999-01-01T00:00:00Z",
        "--valid-to",
        "3000-01-01T00:00:00+00:00",
        stdout=out,
    )
    key = SigningKey.objects.get()
    assert key.fingerprint == signing.fingerprint(private_key("mtn").public_key())
    assert key.valid_to.year == 3000 and key.fingerprint in out.getvalue()
    assert key.created_by == "system:manage.py add_signing_key" and key.approved_at is None
    assert AuditEvent.objects.filter(action="signing_key.add").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--issuer", "NOPE"], "unknown issuer code 'NOPE'"),
        (["--issuer", "ROSHAN", "--valid-from", "yesterday"], "--valid-from: 'yesterday' is not an ISO 8601"),
        (["--issuer", "ROSHAN", "--valid-from", "2026-01-01T00:00:00"], "valid_from: needs a time zone"),
        (
            ["--issuer", "ROSHAN", "--valid-from", "2999-02-01T00:00:00Z", "--valid-to", "2999-01-01T00:00:00Z"],
            "valid_to: must be after valid_from",
        ),
    ],
)
def test_add_signing_key_refuses_bad_input(tmp_path, args, message):
    IssuerFactory(code="ROSHAN")
    with pytest.raises(CommandError, match=message):
        call_command("add_signing_key", "--pem", str(_pem(tmp_path)), *args)
    assert not SigningKey.objects.exists()


def test_add_signing_key_refuses_non_pem_weak_and_duplicate_keys(tmp_path):
    IssuerFactory(code="ROSHAN")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(CommandError, match="not a PEM public key"):
        call_command("add_signing_key", "--issuer", "ROSHAN", "--pem", str(bad))
    weak = tmp_path / "weak.pem"
    weak.write_text(signing.public_pem(signing.generate_private_key(1024)))
    with pytest.raises(CommandError, match="1024 bits is too weak"):
        call_command("add_signing_key", "--issuer", "ROSHAN", "--pem", str(weak))
    with pytest.raises(CommandError, match="no such file"):
        call_command("add_signing_key", "--issuer", "ROSHAN", "--pem", str(tmp_path / "missing.pem"))
    call_command("add_signing_key", "--issuer", "ROSHAN", "--pem", str(_pem(tmp_path)), stdout=StringIO())
    with pytest.raises(CommandError, match="already installed for issuer ROSHAN"):
        call_command("add_signing_key", "--issuer", "ROSHAN", "--pem", str(_pem(tmp_path)))


def test_revoking_a_key_is_audited_and_idempotent():
    IssuerFactory(code="ROSHAN")
    actor = Actor.user("ops.olga")
    key = signing_key_add(issuer_code="ROSHAN", public_key_pem=signing.public_pem(private_key("r")), actor=actor)
    revoked = signing_key_revoke(fingerprint=key.fingerprint, actor=actor, reason="compromised")
    assert revoked.revoked_at is not None
    assert signing_key_revoke(fingerprint=key.fingerprint, actor=actor).revoked_at == revoked.revoked_at
    assert AuditEvent.objects.filter(action="signing_key.revoke").count() == 1
    with pytest.raises(NotFound):
        signing_key_revoke(fingerprint="0" * 64, actor=actor)
    with pytest.raises(ValidationError, match="only RSA"):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        pem = (
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        signing_key_add(issuer_code="ROSHAN", public_key_pem=pem.decode(), actor=actor)


def test_import_inventory_command_imports_and_prints_the_summary(roshan, tmp_files):
    csv_file, sig = tmp_files(sign_csv(HEADER + msisdn_rows(7)))
    out = StringIO()
    call_command("import_inventory", "--issuer", "ROSHAN", "--csv", str(csv_file), "--signature", str(sig), stdout=out)
    text = out.getvalue()
    assert "COMMITTED" in text and "imported 7" in text and "signature verified with key" in text
    assert Number.objects.count() == 7
    out = StringIO()
    call_command("import_inventory", "--issuer", "ROSHAN", "--csv", str(csv_file), "--signature", str(sig), stdout=out)
    assert "no-op" in out.getvalue() and Number.objects.count() == 7


def test_import_inventory_command_exits_nonzero_with_the_reason_and_rows(roshan, tmp_files):
    csv_file, sig = tmp_files(sign_csv(HEADER + msisdn_rows(2) + "+93731234567,MSISDN,,B\n"))
    out = StringIO()
    with pytest.raises(CommandError, match="nothing imported") as exc:
        call_command(
            "import_inventory", "--issuer", "ROSHAN", "--csv", str(csv_file), "--signature", str(sig), stdout=out
        )
    assert exc.value.returncode == 1
    assert "row 4: invalid: row 4, column number: +93731234567 is outside ROSHAN's prefixes" in out.getvalue()
    assert Number.objects.count() == 0


def test_import_inventory_command_dry_run_and_valid_rows(roshan, tmp_files):
    csv_file, sig = tmp_files(sign_csv(HEADER + msisdn_rows(2) + "x,MSISDN,,B\n"))
    base = ["import_inventory", "--issuer", "ROSHAN", "--csv", str(csv_file), "--signature", str(sig)]
    out = StringIO()
    call_command(*base, "--mode", "valid-rows", "--dry-run", stdout=out)
    assert "(dry run)" in out.getvalue() and Number.objects.count() == 0
    call_command(*base, "--mode", "valid-rows", "--max-report", "0", stdout=out)
    assert Number.objects.count() == 2 and "more problem row(s)" in out.getvalue()


def test_import_inventory_command_refuses_missing_files_and_unknown_issuer(roshan, tmp_files, tmp_path):
    csv_file, sig = tmp_files(sign_csv(HEADER))
    with pytest.raises(CommandError, match="--signature: no such file"):
        call_command("import_inventory", "--issuer", "ROSHAN", "--csv", str(csv_file), "--signature", "/nope")
    with pytest.raises(CommandError, match="unknown issuer code 'ZZZ'"):
        call_command("import_inventory", "--issuer", "ZZZ", "--csv", str(csv_file), "--signature", str(sig))
