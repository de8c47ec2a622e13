"""Normalisation for matching: the same person written two ways should give the same keys."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from policy.identifiers import is_valid_nhs_number, normalise_nhs_number, normalise_postcode

_NOT_LETTER = re.compile(r"[^a-z0-9]")


def name_key(text: str) -> str:
    """Case, accents, spaces, hyphens and apostrophes folded away: "O'Brien-Smith" -> "obriensmith"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_LETTER.sub("", stripped)


def first_given_key(given_names: tuple[str, ...] | list[str]) -> str:
    """The key of the first given name ("Mary Ann" -> "mary"); empty when there is none."""
    for given in given_names:
        for token in given.split():
            key = name_key(token)
            if key:
                return key
    return ""


def nhs_key(text: str) -> str:
    """The NHS number's digits when it is valid, else empty (an invalid number must never match)."""
    return normalise_nhs_number(text) if text and is_valid_nhs_number(text) else ""


def postcode_key(text: str) -> str:
    """The canonical postcode, else empty."""
    return (normalise_postcode(text) or "") if text else ""


def date_key(value: str | dt.date | None) -> dt.date | None:
    """A date from an ISO string (already validated at the edge) or a date."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)
