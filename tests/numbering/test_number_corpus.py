"""Numbers as people in Afghanistan type them (issue 16, ADR 1600).

The corpus is generated from libphonenumber's own metadata and example numbers for AF —
not written by hand — and every accepted form is varied the ways people type it: national
0-prefix, +93, 0093, bare 93, spaces/dashes/brackets, Persian (U+06F0–06F9) and
Arabic-Indic (U+0660–0669) digits, a mix, direction marks from RTL text. What is stored
is checked through a real PostgreSQL round-trip, and the CHECK constraint is checked by
raw SQL that bypasses the parser.
"""

from __future__ import annotations

import re

import phonenumbers
import pytest
from django.db import IntegrityError, connection, transaction
from phonenumbers import PhoneNumberType

from core import errors
from core.formats import MSISDN, MSISDN_STORED_SQL, SHORT_CODE, SHORT_CODE_STORED_SQL, parse_number
from numbering import selectors
from numbering.models import Number
from tests.factories import NumberFactory

PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
AF = phonenumbers.PhoneMetadata.metadata_for_region("AF")
assert AF is not None and AF.mobile is not None and AF.mobile.national_number_pattern


def _mobile_corpus() -> list[str]:
    """libphonenumber's AF mobile example, plus one number per two-digit range its mobile
    pattern holds (the operators' prefixes as the metadata knows them)."""
    example = phonenumbers.example_number_for_type("AF", PhoneNumberType.MOBILE)
    assert example is not None
    national = {str(example.national_number)}
    pattern = re.compile(AF.mobile.national_number_pattern)  # type: ignore[union-attr]
    for head in range(10, 100):
        candidate = f"{head}{1234567}"
        if pattern.fullmatch(candidate):
            national.add(candidate)
    return sorted(national)


MOBILE_NATIONAL = _mobile_corpus()


def variants(national: str) -> list[str]:
    """Every way people type one 9-digit national mobile number."""
    a, b, c = national[:2], national[2:5], national[5:]
    ascii_forms = [
        f"0{national}",
        f"+93{national}",
        f"0093{national}",
        f"93{national}",
        f"0{a} {b} {c}",
        f"0{a}-{b}-{c}",
        f"(0{a}) {b}-{c}",
        f"+93 {a} {b} {c}",
        f"+93 ({a}) {b} {c}",
        f"00 93 {a} {b} {c}",
        f"0{a}.{b}.{c}",
        f"  0{national}  ",
        f"\u200f0{national}",  # a right-to-left mark pasted from Dari/Pashto text
        f"\u00a0+93\u00a0{national}",  # no-break spaces
    ]
    forms = list(ascii_forms)
    for form in ascii_forms:
        forms.append(form.translate(PERSIAN))
        forms.append(form.translate(ARABIC_INDIC))
    half = len(f"0{national}") // 2
    forms.append(f"0{national}"[:half].translate(PERSIAN) + f"0{national}"[half:].translate(ARABIC_INDIC))
    forms.append(f"+93{national[:4]}" + national[4:].translate(PERSIAN))  # the issue's +937۹… case
    forms.append(f"+93{national[0]}" + national[1].translate(PERSIAN) + national[2:])
    return forms


ACCEPTED = [(form, f"+93{national}") for national in MOBILE_NATIONAL for form in variants(national)]


@pytest.mark.parametrize(("typed", "stored"), ACCEPTED)
def test_every_form_libphonenumber_reads_as_an_af_mobile_number_is_accepted_as_ascii_e164(
    typed: str, stored: str
) -> None:
    parsed = parse_number(typed, field="msisdn")
    assert (parsed.number, parsed.kind) == (stored, MSISDN)
    assert parsed.number.isascii() and re.fullmatch(MSISDN_STORED_SQL, parsed.number)


def test_the_corpus_covers_the_issue_cases_and_every_demo_operator_prefix() -> None:
    typed = {form for form, _ in ACCEPTED}
    assert {"+937۹1234567", "۰۷۹۱۲۳۴۵۶۷", "٠٧٩١٢٣٤٥٦٧", "0093791234567"} <= typed
    prefixes = {n[:2] for n in MOBILE_NATIONAL}
    assert {"70", "71", "72", "73", "74", "76", "77", "78", "79"} <= prefixes  # DESIGN §2 demo prefixes
    assert len(ACCEPTED) > 400


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("4040", "4040"), ("۴۰۴۰", "4040"), ("٤٠٤٠", "4040"), ("123", "123"), ("۹۹۹۹۹", "99999"), ("40 40", "4040")],
)
def test_short_codes_keep_their_own_rule_in_any_script(typed: str, stored: str) -> None:
    assert parse_number(typed) == parse_number(stored)
    assert (parse_number(typed).number, parse_number(typed).kind) == (stored, SHORT_CODE)


def _fixed_line_example() -> str:
    example = phonenumbers.example_number_for_type("AF", PhoneNumberType.FIXED_LINE)
    assert example is not None
    return f"0{example.national_number}"


def _foreign(region: str) -> str:
    example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    assert example is not None
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


REFUSED = [
    ("too short", "079123456", "too short"),
    ("too short, Persian", "۰۷۹۱۲۳۴۵۶", "too short"),
    ("too long", "07912345678", "too long"),
    ("too long after +93", "+937912345678", "too long"),
    ("fixed line (libphonenumber's AF example)", _fixed_line_example(), "fixed-line"),
    ("fixed line, Arabic-Indic", _fixed_line_example().translate(ARABIC_INDIC), "fixed-line"),
    ("no AF range", "+93691234567", "no Afghan range"),
    ("Iran (Persian digits)", _foreign("IR").translate(PERSIAN), "foreign country code (IR)"),
    ("Pakistan", _foreign("PK"), "foreign country code (PK)"),
    ("UK via 00", "00" + _foreign("GB")[1:], "foreign country code (GB)"),
    ("letters as keypad", "079ABCDEFG", "'A'"),
    ("extension", "0791234567 ext 5", "'e'"),
    ("tel: URI", "tel:0791234567", "'t'"),
    ("superscript digit", "079123456²", "'²'"),
    ("formula", "=1+1", "'='"),
    ("two plus signs", "++93791234567", "'+'"),
    ("short code starting with 0", "0404", "too short"),
    ("plus then 0", "+0791234567", "libphonenumber cannot read it"),
    ("far too long", "0" * 30, "libphonenumber cannot read it"),
]


@pytest.mark.parametrize(("case", "typed", "reason"), REFUSED, ids=[c[0] for c in REFUSED])
def test_anything_else_is_refused_naming_the_field_the_reason_and_the_rule(case: str, typed: str, reason: str) -> None:
    with pytest.raises(errors.ValidationError) as refused:
        parse_number(typed, field="msisdn")
    message = refused.value.message
    assert refused.value.field == "msisdn" and message.startswith("msisdn: ")
    assert reason in message, message
    assert "valid Afghan mobile number (libphonenumber, region AF)" in message and "short code" in message


def test_the_migration_keeps_frozen_copies_of_the_stored_shapes() -> None:
    from importlib import import_module

    migration = import_module("numbering.migrations.0011_ascii_number_check")
    assert (migration.MSISDN_STORED_SQL, migration.SHORT_CODE_STORED_SQL) == (MSISDN_STORED_SQL, SHORT_CODE_STORED_SQL)


# --- real PostgreSQL ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_variant_of_a_number_is_one_row_and_it_is_stored_in_ascii() -> None:
    national = MOBILE_NATIONAL[0]
    forms = variants(national)
    row = NumberFactory(number=parse_number(forms[-1]).number)
    for form in forms:
        assert Number.objects.get(number=parse_number(form).number).pk == row.pk
    with connection.cursor() as cur:
        cur.execute("SELECT number, number ~ '^[\\x01-\\x7f]*$' FROM numbering_number WHERE id = %s", [row.pk])
        stored, is_ascii = cur.fetchone()
    assert (stored, is_ascii) == (f"+93{national}", True)


@pytest.mark.django_db
def test_the_check_constraint_refuses_a_raw_non_ascii_insert_and_is_validated() -> None:
    template = NumberFactory()
    columns = "kind, issuer_id, pool_id, vanity, vanity_tier, is_test, state, version, state_changed_at, created_at"
    values = "%s, issuer_id, pool_id, false, '', false, 'AVAILABLE', 1, now(), now()"
    for number, kind in [
        ("+937۹1234567", "MSISDN"),  # the issue's second "number"
        ("+93٧٩1234567", "MSISDN"),
        ("۴۰۴۰", "SHORT_CODE"),
        ("+44791234567", "MSISDN"),
        ("0791234567", "MSISDN"),
        ("4040", "MSISDN"),  # shape of the other kind
        ("+93791234567", "SHORT_CODE"),
    ]:
        with pytest.raises(IntegrityError, match="number_ascii_msisdn_or_short_code"):
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(
                    f"INSERT INTO numbering_number (number, {columns}) "  # noqa: S608 — constants only
                    f"SELECT %s, {values} FROM numbering_number WHERE id = %s",
                    [number, kind, template.pk],
                )
    with connection.cursor() as cur:
        cur.execute(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'number_ascii_msisdn_or_short_code' "
            "AND conrelid = 'numbering_number'::regclass"
        )
        assert cur.fetchone() == (True,)


@pytest.mark.django_db
def test_staff_search_and_filters_read_persian_and_arabic_indic_digits() -> None:
    NumberFactory(number="+93791234567")
    NumberFactory(number="+93791299999")
    qs = Number.objects.all()

    def found(term: str) -> set[str]:
        return set(selectors.number_search(qs, term).values_list("number", flat=True))

    assert found("۰۷۹۱۲۳۴۵۶۷") == {"+93791234567"}
    assert found("٠٠٩٣٧٩١٢٣٤٥٦٧") == {"+93791234567"}
    assert found("+937۹1234567") == {"+93791234567"}
    assert found("۰۷۹۱۲") == {"+93791234567", "+93791299999"}  # a prefix
    assert set(qs.filter(selectors.pattern_q("*۹۹۹۹۹")).values_list("number", flat=True)) == {"+93791299999"}


def test_the_migration_stops_on_a_stored_non_ascii_row_and_validates_once_it_is_fixed(committed: None) -> None:
    """A production table may hold the issue's row (the old parser let it in). Run as the
    table's owner, as migrations are, in one transaction rolled back at the end (DDL is
    transactional in PostgreSQL), so the test database keeps its validated constraint."""
    from importlib import import_module

    import psycopg

    from tests.conftest import owner_dsn
    from tests.grpc_server.conftest import as_platform

    migration = import_module("numbering.migrations.0011_ascii_number_check")
    row = as_platform(lambda: NumberFactory())
    conn = psycopg.connect(owner_dsn(), autocommit=False)
    try:
        cur = conn.cursor()
        # The migration runs each step in its own transaction; in this one transaction the
        # deferred cache-sync triggers must fire per statement for ALTER TABLE to run after UPDATE.
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute(migration.DROP)  # the table as the previous release left it
        cur.execute("UPDATE numbering_number SET number = '+937۹1234567' WHERE id = %s", [row.pk])
        cur.execute(migration.ADD_NOT_VALID)
        cur.execute(migration.ADD_NOT_VALID)  # idempotent: a rerun after the runbook
        with pytest.raises(psycopg.errors.CheckViolation, match="number_ascii_msisdn_or_short_code"):
            with conn.transaction():  # the NOT VALID constraint already guards every write
                cur.execute("UPDATE numbering_number SET number = '+937۸1234567' WHERE id = %s", [row.pk])
        with pytest.raises(psycopg.errors.RaiseException, match=r"1 number row\(s\) are not ASCII.*non-ascii-numbers"):
            with conn.transaction():
                cur.execute(migration.COUNT_THEN_VALIDATE)
        cur.execute("UPDATE numbering_number SET number = '+93791234567' WHERE id = %s", [row.pk])  # the runbook
        cur.execute(migration.COUNT_THEN_VALIDATE)
        cur.execute("SELECT convalidated FROM pg_constraint WHERE conname = %s", [migration.NAME])
        assert cur.fetchone() == (True,)
    finally:
        conn.rollback()
        conn.close()
