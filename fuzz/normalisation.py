"""Fuzz target for the normalisation that matching relies on (adapters/core/normalise.py).

Any string goes in, from an agency's database or from a request; what must hold:
- no normaliser raises, except date_key, which raises ValueError for text that is not an ISO date;
- fold is idempotent and leaves no combining marks, and upper or lower case makes no difference to it;
- name tokens are lower-case ASCII words, stable when re-tokenised; the family key is their concatenation;
- postcode_key gives "", a district, a sector or a full postcode in canonical form, and is idempotent;
- nhs_key gives "" or ten ASCII digits with a valid check digit;
- number_key gives the number of 1 to 18 ASCII digits, 0 for anything else.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from adapters.core.normalise import (
    address_key,
    date_key,
    family_key,
    fold,
    gender_key,
    given_tokens,
    name_tokens,
    nhs_key,
    nickname_group,
    number_key,
    phonetic,
    postcode_key,
)
from fuzz.draw import Draw
from policy.identifiers import is_valid_nhs_number

_TOKEN = re.compile(r"[a-z0-9]+")
_DISTRICT = r"[A-Z]{1,2}[0-9][A-Z0-9]?"
POSTCODE_KEY = re.compile(rf"{_DISTRICT}( [0-9]([A-Z]{{2}})?)?")
_NUMBER = re.compile(r"[0-9]+[a-z]?")


def check_fold(text: str) -> None:
    folded = fold(text)
    assert fold(folded) == folded, "fold is not idempotent"
    assert not any(unicodedata.combining(c) for c in folded), "fold left a combining mark"
    assert fold(text.upper()) == fold(text.lower()) == folded, "fold depends on case"


def check_names(text: str) -> None:
    tokens = name_tokens(text)
    assert all(_TOKEN.fullmatch(t) for t in tokens), "a name token is not lower-case ASCII"
    assert name_tokens(" ".join(tokens)) == tokens, "name tokens change when re-tokenised"
    assert family_key(text) == "".join(tokens)
    assert given_tokens([text, text]) == tokens + tokens
    for token in tokens[:3]:
        assert token in nickname_group(token)
        sound = phonetic(token)
        assert isinstance(sound, str)
        assert sound == sound.upper()


def check_postcode(text: str) -> None:
    key = postcode_key(text)
    assert key == "" or POSTCODE_KEY.fullmatch(key), "postcode_key is not canonical"
    assert postcode_key(key) == key, "postcode_key is not idempotent"


def check_identifiers(text: str) -> None:
    nhs = nhs_key(text)
    assert nhs == "" or (re.fullmatch(r"[0-9]{10}", nhs) and is_valid_nhs_number(nhs))
    number = number_key(text)
    if re.fullmatch(r"[0-9]{1,18}", text):
        assert number == int(text)
    else:
        assert number == 0, "number_key read a number from text that is not ASCII digits"
    assert gender_key(text) in (0, 1, 2, 3)


def check_address(text: str) -> None:
    number, street = address_key(text)
    assert number == "" or _NUMBER.fullmatch(number)
    assert all(_TOKEN.fullmatch(w) and not w.isdigit() for w in street)


def check_date(text: str) -> None:
    try:
        key = date_key(text)
    except ValueError:
        assert text, "date_key refused the empty string"
        return
    if not text:
        assert key == 0
        return
    day = dt.date.fromisoformat(text)
    assert key == day.year * 10_000 + day.month * 100 + day.day


def check_text(text: str) -> None:
    """Every property of the module docstring, for one string."""
    check_fold(text)
    check_names(text)
    check_postcode(text)
    check_identifiers(text)
    check_address(text)
    check_date(text)


def normalise(data: bytes) -> None:
    """Target: one string (UTF-8 when the first byte is even, else drawn character by character)."""
    if not data:
        return
    text = data[1:].decode("utf-8", "replace") if data[0] % 2 == 0 else Draw(data[1:]).text(200)
    check_text(text)
