from __future__ import annotations

import pytest

from core import errors
from core.formats import MSISDN, SHORT_CODE, parse_number


@pytest.mark.parametrize(
    ("raw", "number", "kind"),
    [
        ("+93791234567", "+93791234567", MSISDN),
        ("93791234567", "+93791234567", MSISDN),
        ("0791234567", "+93791234567", MSISDN),
        (" 079-123 4567 ", "+93791234567", MSISDN),
        ("(0)70 123 4567".replace("(0)", "0"), "+93701234567", MSISDN),
        ("4040", "4040", SHORT_CODE),
        ("123", "123", SHORT_CODE),
        ("99999", "99999", SHORT_CODE),
    ],
)
def test_accepted_formats_normalise_to_the_stored_form(raw: str, number: str, kind: str) -> None:
    parsed = parse_number(raw)
    assert (parsed.number, parsed.kind) == (number, kind)


def test_the_operator_prefix_of_an_msisdn() -> None:
    assert parse_number("0791234567").prefix == "79"
    assert parse_number("4040").prefix == ""


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "+93691234567",
        "+9379123456",
        "+937912345678",
        "0691234567",
        "12",
        "123456",
        "0404",
        "=1+1",
        "+44791234567",
        None,
        791234567,
    ],
)
def test_anything_else_is_refused_naming_the_value_and_the_rule(raw: object) -> None:
    with pytest.raises(errors.ValidationError) as refused:
        parse_number(raw, field="msisdn")
    assert refused.value.field == "msisdn"
    assert "msisdn:" in refused.value.message and "short code" in refused.value.message
