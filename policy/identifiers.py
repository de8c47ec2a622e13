"""UK identifiers: NHS numbers and postcodes."""

from __future__ import annotations

import re

_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")


def normalise_nhs_number(text: str) -> str:
    """Removes the spaces and hyphens people type inside NHS numbers ("943 476 5919")."""
    return re.sub(r"[\s-]", "", text)


def is_valid_nhs_number(text: str) -> bool:
    """True when text (normalised) is ten digits whose last is the modulus-11 check digit of the rest."""
    digits = normalise_nhs_number(text)
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def normalise_postcode(text: str) -> str | None:
    """Returns a full UK postcode in canonical form ("B1 1AA"), or None when text is not one."""
    compact = re.sub(r"\s", "", text).upper()
    match = _POSTCODE.match(compact)
    if not match:
        return None
    return f"{match.group(1)} {match.group(2)}"
