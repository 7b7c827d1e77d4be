"""Number input over REST (issue 16, ADR 1600): URL-encoded Persian and Arabic-Indic digits in
the path, in filters and in bodies are read by core.formats and answered in ASCII."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from numbering.models import Number
from tests.api.conftest import Api, make_token
from tests.factories import NumberFactory


def _fixed_line_example() -> str:
    example = phonenumbers.example_number_for_type("AF", PhoneNumberType.FIXED_LINE)
    assert example is not None
    return f"0{example.national_number}"


@pytest.mark.django_db
def test_rest_path_and_filters_accept_url_encoded_persian_digits_and_answer_ascii(api: Api, alice: Any) -> None:
    NumberFactory(number="+93791234567")
    tok = make_token("tenant.admin", alice, sub="alice-admin")
    for typed in ("۰۷۹۱۲۳۴۵۶۷", "٠٠٩٣٧٩١٢٣٤٥٦٧", "+937۹1234567", "0093791234567"):
        one = api.get(f"/api/tenant/v1/numbers/{quote(typed, safe='')}/", tok)
        assert one.status == 200, (typed, one.json)
        assert one.json["number"] == "+93791234567"
    listed = api.get("/api/tenant/v1/numbers/available/", tok, {"number": "۰۷۹ ۱۲۳ ۴۵۶۷"})
    assert listed.status == 200 and [n["number"] for n in listed.json["results"]] == ["+93791234567"]
    reserved = api.post("/api/tenant/v1/reservations/", tok, {"number": "٠٧٩١٢٣٤٥٦٧"})
    assert reserved.status == 201, reserved.json
    assert Number.objects.get(number="+93791234567").state == "RESERVED"
    assert Number.objects.count() == 1  # no second "number" beside the ASCII one


@pytest.mark.django_db
def test_rest_refuses_a_fixed_line_number_naming_the_field_and_the_rule(api: Api, alice: Any) -> None:
    tok = make_token("tenant.admin", alice, sub="alice-admin")
    refused = api.post("/api/tenant/v1/reservations/", tok, {"number": _fixed_line_example()})
    assert refused.status == 400, refused.json
    text = str(refused.json)
    assert "number" in text and "fixed-line" in text and "libphonenumber, region AF" in text


@pytest.mark.django_db
def test_the_rest_schema_describes_number_input(api: Api) -> None:
    schema = api.get("/api/schema/", None, {"format": "json"})
    assert schema.status == 200
    text = schema.body.decode()
    assert "Persian" in text and "libphonenumber" in text
