"""Normalisation for matching: the same person written two ways should give the same keys.

Everything here is cached: names repeat heavily in any population, so each distinct spelling is
normalised once per process.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import unicodedata
from functools import lru_cache

import jellyfish
from nicknames import NickNamer

from policy.identifiers import is_valid_nhs_number, normalise_nhs_number, normalise_postcode

TITLES = frozenset(
    {
        "mr",
        "mrs",
        "miss",
        "ms",
        "mx",
        "dr",
        "prof",
        "rev",
        "revd",
        "sir",
        "dame",
        "lord",
        "lady",
        "master",
        "fr",
        "sr",
    }
)
SUFFIXES = frozenset({"jr", "jnr", "junior", "snr", "senior", "ii", "iii", "iv"})
# Letters NFKD does not decompose.
_FOLD = str.maketrans({"ł": "l", "ø": "o", "ß": "ss", "đ": "d", "æ": "ae", "œ": "oe", "ı": "i", "þ": "th"})
_APOSTROPHES = re.compile(r"['’‘`]")
_SEPARATORS = re.compile(r"[^a-z0-9]+")
_STREET_WORDS = {
    "st": "street",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "ln": "lane",
    "cl": "close",
    "dr": "drive",
    "ct": "court",
    "cres": "crescent",
    "pl": "place",
    "gdns": "gardens",
    "sq": "square",
    "tce": "terrace",
}
_NUMBER = re.compile(r"^(\d+)([a-z]?)$")
_nicknamer = NickNamer()


def _without_marks(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@lru_cache(maxsize=500_000)
def fold(text: str) -> str:
    """Lower case without diacritics: "Zoë Łukasz" -> "zoe lukasz". Folding twice changes nothing."""
    # Folded again after decomposing: compatibility forms decompose to letters that fold further
    # ("ℌ" -> "H" -> "h", "ǿ" -> "ø" -> "o").
    return _without_marks(_without_marks(text.casefold()).casefold().translate(_FOLD))


@lru_cache(maxsize=500_000)
def family_key(text: str) -> str:
    """One key for a family name however split or joined: "Smith-Jones", "Smith Jones" -> "smithjones"."""
    return sys.intern("".join(name_tokens(text)))


@lru_cache(maxsize=500_000)
def name_tokens(text: str) -> tuple[str, ...]:
    """Words of a name: folded, apostrophes joined (O'Brien -> obrien), hyphens split, titles and suffixes
    dropped, and Mc written Mac (McLeod and MacLeod are one name)."""
    words = [w for w in _SEPARATORS.split(_APOSTROPHES.sub("", fold(text))) if w]
    # A title leads and a suffix trails, and neither is ever the whole name ("Lord" is a family name too).
    while len(words) > 1 and words[0] in TITLES:
        words.pop(0)
    while len(words) > 1 and words[-1] in SUFFIXES:
        words.pop()
    return tuple(sys.intern("mac" + w[2:] if w.startswith("mc") and len(w) > 3 else w) for w in words)


def given_tokens(given_names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Every given-name word in order ("Mary-Ann Louise" -> ("mary", "ann", "louise"))."""
    return _given_tokens(tuple(given_names))


@lru_cache(maxsize=500_000)
def _given_tokens(given_names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sys.intern(t) for g in given_names for t in name_tokens(g))


@lru_cache(maxsize=200_000)
def formal_names(given: str) -> tuple[str, ...]:
    """The formal names a given name may stand for, itself included ("bill" -> ("bill", "william", ...))."""
    return tuple(sorted({given, *_nicknamer.canonicals_of(given)}))


@lru_cache(maxsize=200_000)
def nickname_group(given: str) -> frozenset[str]:
    """Names that are one name by nickname in either direction ("william" <-> "bill", "liz" <-> "beth")."""
    group = {given, *_nicknamer.nicknames_of(given), *_nicknamer.canonicals_of(given)}
    for formal in _nicknamer.canonicals_of(given):
        group |= _nicknamer.nicknames_of(formal)
    return frozenset(group)


@lru_cache(maxsize=500_000)
def phonetic(word: str) -> str:
    """Metaphone code, so Thomas/Thomaz and Mohammed/Muhammad share one."""
    return jellyfish.metaphone(word) if word else ""


def nhs_key(text: str) -> str:
    """The NHS number's digits when it is valid, else empty (an invalid number must never match)."""
    return normalise_nhs_number(text) if text and is_valid_nhs_number(text) else ""


@lru_cache(maxsize=500_000)
def postcode_key(text: str) -> str:
    """A full postcode in canonical form ("NT1 4QT"), a partial one as its district or sector ("NT1",
    "NT1 4"), or empty."""
    if not text:
        return ""
    full = normalise_postcode(text)
    if full:
        return full
    # A sector keeps its space ("NT1 4"); without it "NT14" is a district.
    sector = re.fullmatch(r"([A-Z]{1,2}[0-9][A-Z0-9]?)\s+([0-9])", text.strip().upper())
    if sector:
        return f"{sector.group(1)} {sector.group(2)}"
    compact = re.sub(r"\s", "", text).upper()
    return compact if re.fullmatch(r"[A-Z]{1,2}[0-9][A-Z0-9]?", compact) else ""


@lru_cache(maxsize=100_000)
def address_key(text: str) -> tuple[str, frozenset[str]]:
    """The house number and the street's words ("Flat 2, 14 High St" -> ("14", {"high", "street"})).

    A flat number is not the house number; "14b" keeps its letter.
    """
    words = [_STREET_WORDS.get(w, w) for w in _SEPARATORS.split(fold(text)) if w]
    number, street = "", []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word in ("flat", "apartment", "apt", "unit"):
            skip_next = True
            continue
        if not number and _NUMBER.match(word):
            number = word
        elif not word.isdigit():
            street.append(word)
    return number, frozenset(street)


def number_key(text: str) -> int:
    """ASCII digits as a number (UPRNs, NHS numbers) for compact storage; 0 when there are none."""
    # isdigit alone admits "²", which int() refuses.
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else 0


def date_key(value: str | dt.date | None) -> int:
    """A date as the number YYYYMMDD, or 0 when there is none."""
    if value is None or value == "":
        return 0
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
    return day.year * 10_000 + day.month * 100 + day.day


GENDERS = {"female": 1, "male": 2, "other": 3}


def gender_key(gender: str | None) -> int:
    """1 female, 2 male, 3 other, 0 unknown."""
    return GENDERS.get(gender or "", 0)
