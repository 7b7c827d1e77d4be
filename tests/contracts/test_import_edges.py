"""Less common import paths: tampered storage, odd signatures, blocks, pools, BOM, failures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from contracts.imports import csv_path, import_create, import_file, import_set_mode, run_import
from contracts.imports import rows as import_rows
from contracts.imports import run as import_run
from contracts.models import InventoryImport, SigningKey
from core.errors import ValidationError
from numbering.models import Number
from tests.contracts.conftest import HEADER, install_key, msisdn_rows, sign_csv
from tests.factories import BlockFactory

pytestmark = pytest.mark.django_db


def _run(issuer, signed, actor, **kw):
    return import_file(issuer_code=issuer, csv_file=signed.csv, signature=signed.signature, actor=actor, **kw)


def test_a_file_changed_in_storage_after_upload_is_refused(roshan, system):
    signed = sign_csv(HEADER + msisdn_rows(3))
    imp = import_create(issuer_code="ROSHAN", csv_file=signed.csv, signature=signed.signature, actor=system)
    csv_path(imp).write_bytes(signed.csv + b"+93791111111,MSISDN,,X\n")
    outcome = run_import(imp.pk)
    assert outcome.status == "REJECTED" and "SHA-256 mismatch" in outcome.message
    assert not Number.objects.exists()


def test_an_oversized_signature_is_refused(roshan, system):
    outcome = _run("ROSHAN", type(sign_csv(GOOD))(GOOD.encode(), b"x" * 4096), system)
    assert outcome.status == "REJECTED" and "4096 bytes is not an RSA signature" in outcome.message


GOOD = HEADER + msisdn_rows(3)


def test_all_keys_expired_and_signature_by_a_stranger_names_every_key(roshan, system):
    SigningKey.objects.update(valid_to=timezone.now() - timedelta(hours=1))
    outcome = _run("ROSHAN", sign_csv(GOOD, key="stranger"), system)
    assert "has no valid signing key" in outcome.message and "expired at" in outcome.message


def test_set_mode_refuses_unknown_modes(roshan, system):
    imp = import_create(issuer_code="ROSHAN", csv_file=b"x", signature=b"y", actor=system)
    with pytest.raises(ValidationError, match="mode: 'fast'"):
        import_set_mode(import_id=imp.pk, mode="fast")


def test_regulator_rows_must_be_short_codes_with_known_tiers_and_matching_blocks(atra, pools, system):
    BlockFactory(issuer=atra, name="LEGACY", kind="MSISDN")
    body = (
        "number,kind,vanity_tier,block,pool\n"
        "+93791234567,MSISDN,,ATRA-X,\n"  # row 2: ATRA cannot import MSISDNs
        "777,SHORT_CODE,DIAMOND,ATRA-X,\n"  # row 3: unknown tier
        "4040,SHORT_CODE,,LEGACY,\n"  # row 4: block of another kind
        "4041,SHORT_CODE,,ATRA-X,VANITY_SHORT_CODES\n"  # row 5: standard code into the vanity pool
        "888,SHORT_CODE,GOLD,ATRA-V,GOVERNMENT_RESERVED\n"  # row 6: government pool is MSISDN
        "4042,SHORT_CODE,,ATRA-X,\n"  # row 7: fine
    )
    outcome = _run("ATRA", sign_csv(body, key="atra"), system, mode="valid-rows")
    messages = {e["row"]: e["message"] for e in outcome.report}
    assert "may only import SHORT_CODEs" in messages[2]
    assert "'DIAMOND' must be empty or one of" in messages[3]
    assert "block 'LEGACY' holds MSISDNs, not SHORT_CODEs" in messages[4]
    assert "pool VANITY_SHORT_CODES is a vanity pool" in messages[5]
    assert "holds MSISDNs, not SHORT_CODEs" in messages[6]
    assert outcome.accepted == 1


def test_a_file_may_name_only_so_many_blocks(roshan, system, monkeypatch):
    monkeypatch.setattr(import_rows, "MAX_BLOCKS_PER_FILE", 2)
    body = HEADER + "".join(f"+9379000000{i},MSISDN,,B{i}\n" for i in range(3))
    outcome = _run("ROSHAN", sign_csv(body), system, mode="valid-rows")
    assert outcome.accepted == 2 and "at most 2 blocks" in outcome.report[0]["message"]


def test_a_utf8_bom_is_tolerated(roshan, system):
    outcome = _run("ROSHAN", sign_csv(b"\xef\xbb\xbf" + GOOD.encode()), system)
    assert outcome.committed and outcome.accepted == 3


def test_a_header_only_file_is_refused_as_empty(roshan, system):
    outcome = _run("ROSHAN", sign_csv(HEADER), system, mode="valid-rows")
    assert outcome.status == "REJECTED" and "none of the 0 row(s)" in outcome.message


def test_an_unexpected_error_marks_the_import_failed_and_imports_nothing(roshan, system, monkeypatch):
    def boom(**kw):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(import_run, "numbers_add_imported", boom)
    signed = sign_csv(GOOD)
    imp = import_create(issuer_code="ROSHAN", csv_file=signed.csv, signature=signed.signature, actor=system)
    with pytest.raises(RuntimeError):
        run_import(imp.pk)
    imp.refresh_from_db()
    assert imp.status == "FAILED" and "disk on fire" in imp.error
    assert not Number.objects.exists()


def test_rotation_two_valid_keys_either_verifies(roshan, system):
    install_key(roshan, "roshan-next")
    assert _run("ROSHAN", sign_csv(GOOD, key="roshan-next"), system).committed
    assert InventoryImport.objects.get().key_fingerprint != roshan.signing_keys.order_by("id").first().fingerprint
