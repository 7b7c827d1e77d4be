"""Number formats (DESIGN §2): what a caller may type and what we store.

MSISDNs are stored as canonical E.164 (+93 followed by 9 digits starting with 7); input
may also be national (07XXXXXXXX) or 93XXXXXXXXX. Short codes are 3-5 digits. Anything
else is refused with a message naming the value and the rule.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from core.errors import ValidationError

MSISDN = "MSISDN"
SHORT_CODE = "SHORT_CODE"

# Every number pattern of the service lives here (logging's masking pattern finds numbers
# inside free text, a different job: core.logging).
_E164 = re.compile(r"^\+937\d{8}$")  # canonical Afghan mobile, as stored
_E164_ANY = re.compile(r"\+[1-9][0-9]{6,14}")  # any E.164 number (CSV cells, not stored)
_INTL = re.compile(r"^937\d{8}$")
_NATIONAL = re.compile(r"^07\d{8}$")
_SHORT = re.compile(r"^[1-9]\d{2,4}$")
_SEPARATORS = re.compile(r"[\s\-().]")

RULE = (
    "expected an Afghan mobile number as +937XXXXXXXX, 937XXXXXXXX or 07XXXXXXXX "
    "(9 digits after +93, starting with 7), or a short code of 3-5 digits not starting with 0"
)


@dataclass(frozen=True)
class ParsedNumber:
    number: str
    kind: str

    @property
    def prefix(self) -> str:
        """The two-digit operator prefix of an MSISDN (+9379... -> '79'); '' for short codes."""
        return self.number[3:5] if self.kind == MSISDN else ""


def parse_number(value: object, *, field: str = "number") -> ParsedNumber:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field}: a number is required ({RULE})", field=field)
    raw = value.strip()
    compact = strip_separators(raw)
    if _E164.match(compact):
        return ParsedNumber(compact, MSISDN)
    if _INTL.match(compact):
        return ParsedNumber("+" + compact, MSISDN)
    if _NATIONAL.match(compact):
        return ParsedNumber("+93" + compact[1:], MSISDN)
    if _SHORT.match(compact):
        return ParsedNumber(compact, SHORT_CODE)
    shown = raw if len(raw) <= 32 else raw[:32] + "…"
    raise ValidationError(f"{field}: {shown!r} is not a valid number; {RULE}", field=field)


def normalize_number(value: object, *, field: str = "number") -> str:
    return parse_number(value, field=field).number


def parse_uuid(value: object, *, field: str) -> uuid.UUID:
    """An identifier input (tenant, lease, reservation): a UUID, or an error naming the field."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(f"{field}: {str(value)[:64]!r} is not a UUID", field=field) from None


def strip_separators(value: str) -> str:
    """Drop the spaces, dashes, dots and brackets people type inside numbers."""
    return _SEPARATORS.sub("", value)


def is_canonical_msisdn(value: str) -> bool:
    """Exactly the stored form of an Afghan mobile number (+937XXXXXXXX), nothing to normalise."""
    return bool(_E164.match(value))


def is_e164(value: str) -> bool:
    """Any E.164 number, whole (a CSV cell that starts with + but is a number, not a formula)."""
    return bool(_E164_ANY.fullmatch(value))


_MOBILE_PREFIX = re.compile(r"^7\d$")


def check_mobile_prefixes(values: object, *, field: str) -> list[str]:
    """Two-digit national mobile prefixes after +93 (an issuer's or a contract's), e.g. "79":
    ASCII digits, 7 then one digit, no repeats (DESIGN §2: AF mobile = +93 7X…)."""
    if not isinstance(values, list | tuple):
        raise ValidationError(f'{field}: must be a list of two-digit prefixes such as "79"', field=field)
    seen: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.isascii() or not _MOBILE_PREFIX.match(value):
            raise ValidationError(
                f'{field}: {str(value)[:8]!r} is not a mobile prefix (two ASCII digits starting with 7, e.g. "79")',
                field=field,
            )
        if value in seen:
            raise ValidationError(f"{field}: {value!r} is listed twice", field=field)
        seen.append(value)
    return seen
