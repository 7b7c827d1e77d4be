"""The signed import pipeline (DESIGN §7): every refusal leaves the inventory untouched."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from contracts.imports import import_create, import_file, run_import
from contracts.models import InventoryImport, NumberBlock, SigningKey
from core.errors import ImportRefused
from core.models import OutboxEvent
from numbering.models import Number
from tests.contracts.conftest import HEADER, install_key, msisdn_rows, sign_csv
from tests.factories import NumberFactory

pytestmark = pytest.mark.django_db


def _run(issuer: str, signed: Any, actor: Any, **kw: Any) -> Any:
    return import_file(issuer_code=issuer, csv_file=signed.csv, signature=signed.signature, actor=actor, **kw)


def test_valid_file_imports_every_number_available_in_its_pool_and_block(roshan, pools, system):
    outcome = _run("ROSHAN", sign_csv(HEADER + msisdn_rows(20)), system)
    assert outcome.ok and outcome.committed, outcome.message
    assert (outcome.accepted, outcome.rejected, outcome.duplicates) == (20, 0, 0)
    numbers = Number.objects.filter(issuer=roshan)
    assert numbers.count() == 20
    assert set(numbers.values_list("state", flat=True)) == {"AVAILABLE"}
    assert set(numbers.values_list("pool__code", flat=True)) == {"GENERAL_MSISDN"}
    block = NumberBlock.objects.get(issuer=roshan, name="R-2026-01")
    assert (block.range_start, block.range_end) == ("+93790000000", "+93790000019")
    imp = InventoryImport.objects.get(pk=outcome.import_id)
    assert imp.status == "COMMITTED" and imp.key_fingerprint == roshan.signing_keys.get().fingerprint
    assert block.inventory_import_id == imp.pk
    event = OutboxEvent.objects.get(event_type="numbering.import.completed.v1")
    assert event.envelope["data"]["accepted"] == 20
    assert AuditEvent.objects.filter(action="inventory.import", object_id=f"import:{imp.pk}").exists()


def test_pkcs1v15_signature_is_accepted_too(roshan, system):
    outcome = _run("ROSHAN", sign_csv(HEADER + msisdn_rows(3), scheme="PKCS1v15"), system)
    assert outcome.committed, outcome.message


def test_atra_short_codes_and_vanity_tiers_land_in_their_pools(atra, pools, system):
    body = HEADER + "4040,SHORT_CODE,,ATRA-STD\n777,SHORT_CODE,GOLD,ATRA-VANITY\n800,SHORT_CODE,platinum,ATRA-VANITY\n"
    outcome = _run("ATRA", sign_csv(body, key="atra"), system)
    assert outcome.committed, outcome.message
    rows = {n.number: n for n in Number.objects.select_related("pool")}
    assert rows["4040"].pool.code == "STANDARD_SHORT_CODES" and not rows["4040"].vanity
    assert rows["777"].pool.code == "VANITY_SHORT_CODES" and rows["777"].vanity_tier == "GOLD"
    assert rows["800"].vanity_tier == "PLATINUM"


def test_pool_column_routes_rows_to_the_government_pool(roshan, pools, system):
    body = (
        "number,kind,vanity_tier,block,pool\n+93791111111,MSISDN,,GOV,GOVERNMENT_RESERVED\n+93791111112,MSISDN,,GOV,\n"
    )
    outcome = _run("ROSHAN", sign_csv(body), system)
    assert outcome.committed, outcome.message
    assert Number.objects.get(number="+93791111111").pool.code == "GOVERNMENT_RESERVED"
    assert Number.objects.get(number="+93791111112").pool.code == "GENERAL_MSISDN"


def test_unknown_issuer_is_refused_before_anything_is_stored(roshan, system, inventory_snapshot):
    before = inventory_snapshot()
    with pytest.raises(ImportRefused, match="unknown issuer code 'NOPE'"):
        _run("NOPE", sign_csv(HEADER + msisdn_rows(2)), system)
    assert inventory_snapshot() == before
    assert not InventoryImport.objects.exists()


def _expired(issuer: Any) -> None:
    SigningKey.objects.filter(issuer=issuer).update(
        valid_from=timezone.now() - timedelta(days=30), valid_to=timezone.now() - timedelta(days=1)
    )


def _revoked(issuer: Any) -> None:
    SigningKey.objects.filter(issuer=issuer).update(revoked_at=timezone.now())


def _no_key(issuer: Any) -> None:
    SigningKey.objects.filter(issuer=issuer).delete()


def _future(issuer: Any) -> None:
    SigningKey.objects.filter(issuer=issuer).update(valid_from=timezone.now() + timedelta(days=1))


GOOD = HEADER + msisdn_rows(5)


@pytest.mark.parametrize(
    ("case", "prepare", "make", "expected"),
    [
        ("no key installed", _no_key, lambda: sign_csv(GOOD), "has no signing key installed"),
        ("expired key", _expired, lambda: sign_csv(GOOD), "which is expired at"),
        ("revoked key", _revoked, lambda: sign_csv(GOOD), "which is revoked at"),
        ("key not yet valid", _future, lambda: sign_csv(GOOD), "not valid before"),
        ("wrong issuer's key", None, lambda: sign_csv(GOOD, key="atra"), "does not verify"),
        (
            "one flipped byte",
            None,
            lambda: (lambda s: type(s)(s.csv.replace(b"+93790000003", b"+93790000004"), s.signature))(sign_csv(GOOD)),
            "does not verify",
        ),
        (
            "truncated signature",
            None,
            lambda: (lambda s: type(s)(s.csv, s.signature[:-1]))(sign_csv(GOOD)),
            "does not verify",
        ),
        ("empty signature", None, lambda: (lambda s: type(s)(s.csv, b""))(sign_csv(GOOD)), "signature is empty"),
    ],
)
def test_signature_refusals_leave_the_inventory_untouched(
    roshan, atra, system, inventory_snapshot, case, prepare, make, expected
):
    if prepare:
        prepare(roshan)
    before = inventory_snapshot()
    outcome = _run("ROSHAN", make(), system)
    assert not outcome.ok and outcome.status == "REJECTED", case
    assert expected in outcome.message, outcome.message
    assert inventory_snapshot() == before
    assert InventoryImport.objects.get(pk=outcome.import_id).error


def test_expired_key_with_a_rotated_valid_key_still_verifies_the_new_signature(roshan, system):
    _expired(roshan)
    install_key(roshan, "roshan-2027")
    outcome = _run("ROSHAN", sign_csv(GOOD, key="roshan-2027"), system)
    assert outcome.committed, outcome.message


ROW_CASES = [
    ("outside prefixes", "+93731234567,MSISDN,,B1\n", "column number: +93731234567 is outside ROSHAN's prefixes"),
    ("not a number", "hello,MSISDN,,B1\n", "column number: 'hello' is not a valid number"),
    ("too few columns", "+93791234567,MSISDN\n", "expected 4 columns"),
    ("too many columns", "+93791234567,MSISDN,,B1,GENERAL_MSISDN,x\n", "expected 4 columns"),
    ("wrong kind", "+93791234567,SHORT_CODE,,B1\n", "column kind: SHORT_CODE does not match"),
    ("unknown kind", "+93791234567,LONG,,B1\n", "column kind: 'LONG' must be MSISDN or SHORT_CODE"),
    ("short code from MNO", "4040,SHORT_CODE,,B1\n", "may only import MSISDNs"),
    ("tier on MSISDN", "+93791234567,MSISDN,GOLD,B1\n", "column vanity_tier: only short codes"),
    ("empty block", "+93791234567,MSISDN,,\n", "column block:"),
    ("formula =", "=1+1,MSISDN,,B1\n", "column number: '=' at the start"),
    ("formula + not E.164", "+1234,MSISDN,,B1\n", "column number: '+' at the start"),
    ("formula + in block", "+93791234567,MSISDN,,+B1\n", "column block: '+' at the start"),
    ("formula -", "-93791234567,MSISDN,,B1\n", "column number: '-' at the start"),
    ("formula @", "+93791234567,MSISDN,,@SUM(A1)\n", "column block: '@' at the start"),
    ("formula tab", "\t0791234567,MSISDN,,B1\n", "column number: '\\t' at the start"),
    ("formula CR", '"\r0791234567",MSISDN,,B1\n', "column number: '\\r' at the start"),
    ("formula in kind", "+93791234567,=MSISDN,,B1\n", "column kind: '=' at the start"),
    # Issue 16: the file format stays strict — ASCII digits, no separators — so nothing
    # non-ASCII is ever stored from a file, and libphonenumber's rule still applies.
    ("Persian digits", "۰۷۹۱۲۳۴۵۶۷,MSISDN,,B1\n", "column number: '۰۷۹۱۲۳۴۵۶۷' is not a valid number; an MNO/ATRA"),
    ("Arabic-Indic digits", "٩٣٧٩١٢٣٤٥٦٧,MSISDN,,B1\n", "holds ASCII digits only"),
    ("a Persian digit inside", "+937۹1234567,MSISDN,,B1\n", "column number: '+' at the start"),
    ("separators", "079 123 4567,MSISDN,,B1\n", "holds ASCII digits only, no separators"),
    ("00 prefix", "0093791234567,MSISDN,,B1\n", "holds ASCII digits only"),
    ("fixed line", "93202234567,MSISDN,,B1\n", "a fixed-line number"),
    ("no AF range", "0691234567,MSISDN,,B1\n", "no Afghan range"),
]


@pytest.mark.parametrize(("case", "bad_row", "expected"), ROW_CASES, ids=[c[0] for c in ROW_CASES])
def test_invalid_rows_refuse_the_whole_file_in_all_or_nothing_mode(
    roshan, system, inventory_snapshot, case, bad_row, expected
):
    before = inventory_snapshot()
    body = HEADER + msisdn_rows(3) + bad_row + msisdn_rows(2, start=100)
    outcome = _run("ROSHAN", sign_csv(body), system)
    assert outcome.status == "REJECTED" and not outcome.ok
    assert "nothing imported" in outcome.message
    assert (outcome.rejected, outcome.duplicates) == (1, 0)
    [entry] = outcome.report
    assert entry["row"] == 5 and entry["result"] == "invalid"
    assert expected in entry["message"], entry["message"]
    assert entry["message"].startswith("row 5")
    assert inventory_snapshot() == before


def test_duplicates_within_the_file_are_reported_as_duplicates(roshan, system, inventory_snapshot):
    before = inventory_snapshot()
    body = HEADER + msisdn_rows(3) + "0790000001,MSISDN,,R-2026-01\n"
    outcome = _run("ROSHAN", sign_csv(body), system)
    assert outcome.status == "REJECTED" and (outcome.rejected, outcome.duplicates) == (0, 1)
    assert outcome.report == [
        {
            "row": 5,
            "result": "duplicate",
            "value": "+93790000001",
            "message": "row 5, column number: duplicate of row 3 in this file",
        }
    ]
    assert inventory_snapshot() == before


def test_duplicates_against_the_inventory_are_reported_as_duplicates(roshan, system, inventory_snapshot):
    NumberFactory(number="+93790000002", issuer=roshan)
    before = inventory_snapshot()
    outcome = _run("ROSHAN", sign_csv(HEADER + msisdn_rows(4)), system)
    assert outcome.status == "REJECTED" and outcome.duplicates == 1
    assert outcome.report[0]["message"] == "row 4, column number: +93790000002 is already in the inventory"
    assert inventory_snapshot() == before


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("number,type,vanity_tier,block\n", "row 1, column 2: expected header 'kind', found 'type'"),
        ("number,kind,vanity_tier\n", "row 1, column 4: expected header 'block', found None"),
        ("number,kind,vanity_tier,block,extra\n", "row 1, column 5: unexpected header 'extra'"),
        ("", "row 1: the file is empty"),
    ],
)
def test_wrong_header_is_refused_naming_row_and_column(roshan, system, inventory_snapshot, header, expected):
    before = inventory_snapshot()
    outcome = _run("ROSHAN", sign_csv(header + (msisdn_rows(2) if header else "")), system, mode="valid-rows")
    assert outcome.status == "REJECTED" and expected in outcome.message, outcome.message
    assert inventory_snapshot() == before


def test_non_utf8_file_is_refused_naming_the_row(roshan, system, inventory_snapshot):
    before = inventory_snapshot()
    body = (HEADER + msisdn_rows(2)).encode() + b"+93791234567,MSISDN,,Bl\xe9\n"
    outcome = _run("ROSHAN", sign_csv(body), system, mode="valid-rows")
    assert outcome.status == "REJECTED" and "row 4: not UTF-8" in outcome.message
    assert inventory_snapshot() == before


def test_malformed_quoting_is_refused_naming_the_row(roshan, system, inventory_snapshot):
    before = inventory_snapshot()
    outcome = _run(
        "ROSHAN", sign_csv(HEADER + msisdn_rows(2) + '"+93791234567"x,MSISDN,,B\n'), system, mode="valid-rows"
    )
    assert outcome.status == "REJECTED" and "row 4: malformed CSV" in outcome.message
    assert inventory_snapshot() == before


def test_valid_rows_mode_imports_exactly_the_valid_rows(roshan, system):
    NumberFactory(number="+93790000050", issuer=roshan)
    body = (
        HEADER
        + msisdn_rows(3)  # rows 2-4 valid
        + "+93731234567,MSISDN,,R-2026-01\n"  # row 5 outside prefixes
        + "=HYPERLINK(1),MSISDN,,R-2026-01\n"  # row 6 formula
        + "+93790000001,MSISDN,,R-2026-01\n"  # row 7 duplicate of row 3
        + "+93790000050,MSISDN,,R-2026-01\n"  # row 8 already in inventory
        + "0720000009,MSISDN,,R-2026-01\n"  # row 9 valid (national format, prefix 72)
    )
    outcome = _run("ROSHAN", sign_csv(body), system, mode="valid-rows")
    assert outcome.committed, outcome.message
    assert (outcome.accepted, outcome.rejected, outcome.duplicates) == (4, 2, 2)
    assert [(e["row"], e["result"]) for e in outcome.report] == [
        (5, "invalid"),
        (6, "invalid"),
        (7, "duplicate"),
        (8, "duplicate"),
    ]
    imported = set(Number.objects.filter(block__name="R-2026-01").values_list("number", flat=True))
    assert imported == {"+93790000000", "+93790000001", "+93790000002", "+93720000009"}


def test_the_same_file_twice_is_a_noop_that_says_so(roshan, system, inventory_snapshot):
    signed = sign_csv(HEADER + msisdn_rows(5))
    first = _run("ROSHAN", signed, system)
    assert first.committed
    before = inventory_snapshot()
    second = _run("ROSHAN", signed, system)
    assert second.ok and second.noop and not second.committed
    assert second.status == "ALREADY_IMPORTED"
    assert f"already imported as import {first.import_id}" in second.message
    assert inventory_snapshot() == before


def test_running_a_committed_import_again_is_a_noop(roshan, system, inventory_snapshot):
    first = _run("ROSHAN", sign_csv(HEADER + msisdn_rows(2)), system)
    before = inventory_snapshot()
    again = run_import(first.import_id)
    assert again.noop and again.ok and inventory_snapshot() == before


def test_dry_run_validates_without_importing(roshan, system, inventory_snapshot):
    before = inventory_snapshot()
    outcome = _run("ROSHAN", sign_csv(HEADER + msisdn_rows(5)), system, dry_run=True)
    assert outcome.ok and outcome.dry_run and outcome.accepted == 5
    assert inventory_snapshot() == before
    # ...and the same upload can then be committed.
    assert run_import(outcome.import_id).committed


def test_a_rejected_all_or_nothing_preview_can_be_committed_in_valid_rows_mode(roshan, system):
    body = HEADER + msisdn_rows(3) + "garbage,MSISDN,,B\n"
    preview = _run("ROSHAN", sign_csv(body), system, dry_run=True)
    assert not preview.ok and preview.rejected == 1
    outcome = run_import(preview.import_id, mode="valid-rows")
    assert outcome.committed and outcome.accepted == 3


def test_a_file_with_only_bad_rows_is_refused_in_valid_rows_mode(roshan, system, inventory_snapshot):
    before = inventory_snapshot()
    outcome = _run("ROSHAN", sign_csv(HEADER + "nope,MSISDN,,B\n"), system, mode="valid-rows")
    assert outcome.status == "REJECTED" and "none of the 1 row(s) is valid" in outcome.message
    assert inventory_snapshot() == before


def test_existing_block_of_another_kind_refuses_the_row(atra, system):
    assert _run("ATRA", sign_csv(HEADER + "4040,SHORT_CODE,,SHARED\n", key="atra"), system).committed
    outcome = _run("ATRA", sign_csv(HEADER + "4041,SHORT_CODE,,SHARED\n", key="atra"), system)
    assert outcome.committed  # same kind: the block grows
    assert NumberBlock.objects.get(name="SHARED").range_end == "4041"


def test_unknown_or_mismatched_pool_is_refused(roshan, system):
    body = (
        "number,kind,vanity_tier,block,pool\n+93791111111,MSISDN,,B,NOPE\n+93791111112,MSISDN,,B,STANDARD_SHORT_CODES\n"
    )
    outcome = _run("ROSHAN", sign_csv(body), system, mode="valid-rows")
    messages = [e["message"] for e in outcome.report]
    assert "'NOPE' is not an inventory pool" in messages[0]
    assert "holds SHORT_CODEs, not MSISDNs" in messages[1]


def test_unknown_mode_is_refused(roshan, system):
    with pytest.raises(ImportRefused, match="mode"):
        import_create(issuer_code="ROSHAN", csv_file=b"x", signature=b"y", actor=system, mode="some")


def test_oversized_file_is_refused(roshan, system, settings):
    settings.INVENTORY_IMPORT_MAX_BYTES = 1024
    with pytest.raises(ImportRefused, match="larger than 1024 bytes"):
        import_create(issuer_code="ROSHAN", csv_file=b"x" * 5000, signature=b"y", actor=system)
    assert not InventoryImport.objects.exists()


def test_progress_counts_every_row(roshan, system, settings):
    settings.INVENTORY_IMPORT_BATCH_ROWS = 100
    outcome = _run("ROSHAN", sign_csv(HEADER + msisdn_rows(250)), system)
    imp = InventoryImport.objects.get(pk=outcome.import_id)
    assert (imp.processed_rows, imp.total_rows, imp.accepted_count) == (250, 250, 250)


def test_valid_rows_mode_skips_non_ascii_rows_and_stores_only_ascii(roshan, system):
    body = HEADER + msisdn_rows(2) + "۰۷۹۱۲۳۴۵۶۷,MSISDN,,R-2026-01\n" + "٠٧٩١٢٣٤٥٦٨,MSISDN,,R-2026-01\n"
    outcome = _run("ROSHAN", sign_csv(body), system, mode="valid-rows")
    assert outcome.committed and (outcome.accepted, outcome.rejected) == (2, 2), outcome.message
    stored = list(Number.objects.values_list("number", flat=True))
    assert len(stored) == 2 and all(n.isascii() for n in stored)
