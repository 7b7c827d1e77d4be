"""Number formats (DESIGN §2, ADR 1600): what a caller may type and what we store.

The one place that reads a number. MSISDNs are parsed with libphonenumber (`phonenumbers`)
for region AF and stored as ASCII E.164 (`+93791234567`): every form it reads as a valid
Afghan mobile number is accepted — `0791234567`, `93791234567`, `+93 79 123 4567`,
`0093791234567`, `(079) 123-4567`, in ASCII, Persian (۰–۹) or Arabic-Indic (٠–٩) digits or a
mix. Short codes keep their own rule: 3-5 digits not starting with 0 (any script's digits,
stored ASCII). Anything else is refused with a message naming the field, the value and the
rule. A database CHECK constraint (numbering 0009) is the last line behind this module.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import uuid
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from core.errors import ValidationError

MSISDN = "MSISDN"
SHORT_CODE = "SHORT_CODE"
REGION = "AF"
COUNTRY_CODE = 93

# Every number pattern of the service lives here (logging's masking pattern finds numbers
# inside free text, a different job: core.logging). [0-9], never \d: Python's \d matches
# every Unicode digit, and a Persian digit must never reach storage (issue 16).
_E164_AF = re.compile(r"^\+93[0-9]{9}$")  # the stored shape of an Afghan MSISDN
_E164_ANY = re.compile(r"\+[1-9][0-9]{6,14}")  # any E.164 number (CSV cells, not stored)
_SHORT = re.compile(r"^[1-9][0-9]{2,4}$")
# The stored shapes, as PostgreSQL regexes for the CHECK constraint number_ascii_msisdn_or_short_code
# (numbering.models, migration 0009): the same patterns as _E164_AF and _SHORT.
MSISDN_STORED_SQL = _E164_AF.pattern
SHORT_CODE_STORED_SQL = _SHORT.pattern
# What an MNO file may hold in its number column (docs/import-csv-format.md): ASCII only,
# no separators — a machine-written file, strict about its format.
_IMPORT_CELL = re.compile(r"^(?:\+93|93|0)[0-9]{9}$|^[1-9][0-9]{2,4}$")
# What people type between digits: spaces (any Unicode space, NBSP included), dashes, dots,
# slashes, brackets; and the invisible direction marks that RTL text (Dari, Pashto) carries
# into a copy-paste: LRM, RLM, ALM, the embeddings/overrides and the isolates.
_SEPARATORS = re.compile(r"[\s\-‐-―−./()]")
_BIDI_MARKS = re.compile(r"[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
_NATIONAL_DIGITS = 9  # every Afghan number, mobile or fixed, has 9 digits after +93 (or 0)
_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)

MSISDN_RULE = f"a valid Afghan mobile number (libphonenumber, region {REGION})"
SHORT_CODE_RULE = "a short code of 3-5 digits not starting with 0"
RULE = (
    f"expected {MSISDN_RULE} in any form people type — +93 79 123 4567, 0093…, 079…, 93…, with "
    f"spaces, dashes or brackets, in ASCII, Persian or Arabic-Indic digits — or {SHORT_CODE_RULE}"
)
# The one description of number input for the API schema, filters and forms.
INPUT_HELP = (
    "any form libphonenumber reads as a valid Afghan mobile number (region AF): +93 79 123 4567, "
    "0093 79…, 93 79…, 079…, with spaces, dashes or brackets, in ASCII, Persian (۰–۹) or "
    "Arabic-Indic (٠–٩) digits; or a short code of 3-5 digits. Stored and returned as ASCII E.164 "
    "(+93791234567) or ASCII digits (4040)"
)
IMPORT_RULE = (
    "an MNO/ATRA file holds ASCII digits only, no separators: +937XXXXXXXX, 937XXXXXXXX or "
    "07XXXXXXXX, or a short code of 3-5 digits not starting with 0 (docs/import-csv-format.md)"
)
_TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "a fixed-line number (only mobile numbers are leased)",
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.VOIP: "a VoIP number",
}


@dataclass(frozen=True)
class ParsedNumber:
    number: str
    kind: str

    @property
    def prefix(self) -> str:
        """The two-digit operator prefix of an MSISDN (+9379... -> '79'); '' for short codes."""
        return self.number[3:5] if self.kind == MSISDN else ""


def _shown(raw: str) -> str:
    return raw if len(raw) <= 32 else raw[:32] + "…"


def ascii_digits(value: str) -> str:
    """Every decimal digit of any script (Persian ۷, Arabic-Indic ٧, full-width ７ …) as its
    ASCII digit; everything else unchanged."""
    if value.isascii():
        return value
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in value)


def compact_number(value: str) -> str:
    """The typed number without separators and direction marks, in ASCII digits."""
    return ascii_digits(_BIDI_MARKS.sub("", _SEPARATORS.sub("", value)))


def parse_number(value: object, *, field: str = "number") -> ParsedNumber:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field}: a number is required ({RULE})", field=field)
    return _parse_text(value, field)


# Every lifecycle action parses its number, and libphonenumber is a tenth of a write's CPU:
# the answers for the last few thousand inputs are kept. Refusals raise, so they are never
# kept, and the cache is bounded whatever callers send.
@functools.lru_cache(maxsize=8192)
def _parse_text(value: str, field: str) -> ParsedNumber:
    raw = value.strip()
    compact = compact_number(raw)

    def refuse(reason: str) -> ValidationError:
        return ValidationError(f"{field}: {_shown(raw)!r} is not a valid number: {reason}; {RULE}", field=field)

    # Only digits and one leading +: libphonenumber would also read letters as a keypad
    # (079ABCDEFG), an extension (ext. 5) or a number inside text (tel:…); none is a number here.
    body = compact.removeprefix("+")
    if not body.isdigit() or not body.isascii():
        bad = next((ch for ch in body if not (ch.isascii() and ch.isdigit())), "+")
        raise refuse(f"{bad!r} (U+{ord(bad):04X}) is not a digit or a separator")
    if _SHORT.match(compact):
        return ParsedNumber(compact, SHORT_CODE)
    try:
        parsed = phonenumbers.parse(compact, REGION)
    except NumberParseException as exc:
        raise refuse(f"libphonenumber cannot read it ({getattr(exc, '_msg', exc)})") from None
    if parsed.country_code != COUNTRY_CODE:
        region = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
        where = region if region and region not in ("ZZ", "001") else "non-geographic"
        raise refuse(f"+{parsed.country_code} is a foreign country code ({where}), not Afghanistan's +93")
    if not phonenumbers.is_valid_number(parsed):
        digits = len(str(parsed.national_number))
        if digits != _NATIONAL_DIGITS:
            short_or_long = "too short" if digits < _NATIONAL_DIGITS else "too long"
            reason = f"{short_or_long}: {digits} digits where an Afghan mobile number has 9 after +93 (or 0)"
        else:
            reason = "no Afghan range of libphonenumber holds it"
        raise refuse(reason)
    number_type = phonenumbers.number_type(parsed)
    if number_type not in _MOBILE_TYPES:
        raise refuse(_TYPE_NAMES.get(number_type, "not a mobile number"))
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not _E164_AF.match(e164):  # libphonenumber's metadata changed shape: refuse, never store it
        raise refuse(f"{e164!r} is not +93 and 9 ASCII digits")
    return ParsedNumber(e164, MSISDN)


def parse_import_number(value: str, *, field: str = "number") -> ParsedNumber:
    """A number cell of an MNO/ATRA file: strict about the file's format (ASCII, no
    separators), then the same rule as every other input."""
    if not _IMPORT_CELL.match(value):
        raise ValidationError(f"{field}: {_shown(value)!r} is not a valid number; {IMPORT_RULE}", field=field)
    return parse_number(value, field=field)


def normalize_number(value: object, *, field: str = "number") -> str:
    return parse_number(value, field=field).number


def parse_uuid(value: object, *, field: str) -> uuid.UUID:
    """An identifier input (tenant, lease, reservation): a UUID, or an error naming the field."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(f"{field}: {str(value)[:64]!r} is not a UUID", field=field) from None


def strip_separators(value: str) -> str:
    """Drop the spaces, dashes, dots, slashes, brackets and direction marks people type inside
    numbers, and read every script's digits as ASCII (search terms and prefixes)."""
    return compact_number(value)


def is_canonical_msisdn(value: str) -> bool:
    """Exactly the stored form of an Afghan mobile number, nothing to normalise."""
    if not _E164_AF.match(value):
        return False
    try:
        return parse_number(value).number == value
    except ValidationError:
        return False


def is_e164(value: str) -> bool:
    """Any E.164 number, whole, in ASCII (a CSV cell that starts with + but is a number, not a formula)."""
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
