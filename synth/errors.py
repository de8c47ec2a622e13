"""The recording-error model: how one agency's record of a person differs from the person.

Each error has a test of whether it can apply (decided on the true person, so rates are measurable) and an
edit of the draft record. Edits never produce an invalid value: dates stay real and past, postcodes keep
their format.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from synth.names import nicknames_of, transliteration_variants
from synth.places import UNIT_LETTERS, Address
from synth.population import Person

NHS_HOLDERS = frozenset({"nhs", "socialcare"})


@dataclass
class Draft:
    """An agency's record of a person while errors are applied to it."""

    given_names: list[str]
    family_name: str
    date_of_birth: dt.date | None
    gender: str
    address: Address
    nhs_number: str
    aliases: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # How often a record made before a marriage has since noted the new name as an alias.
    alias_kept: float = 0.0

    @classmethod
    def of(cls, person: Person, agency: str) -> Draft:
        return cls(
            list(person.given_names),
            person.family_name,
            person.date_of_birth,
            person.gender,
            person.address,
            person.nhs_number if agency in NHS_HOLDERS else "",
        )


_KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_KEYBOARD):
    for _c, _ch in enumerate(_row):
        near = _row[max(0, _c - 1) : _c] + _row[_c + 1 : _c + 2]
        for _other in (_r - 1, _r + 1):
            if 0 <= _other < len(_KEYBOARD):
                near += _KEYBOARD[_other][max(0, _c - 1) : _c + 1]
        _NEIGHBOURS[_ch] = near
_OCR = (
    ("rn", "m"),
    ("m", "rn"),
    ("cl", "d"),
    ("d", "cl"),
    ("li", "h"),
    ("h", "li"),
    ("vv", "w"),
    ("w", "vv"),
    ("l", "i"),
    ("i", "l"),
    ("e", "c"),
    ("o", "a"),
)
_PHONETIC = (
    ("ph", "f"),
    ("f", "ph"),
    ("ck", "k"),
    ("ee", "ea"),
    ("ea", "ee"),
    ("ie", "y"),
    ("y", "ie"),
    ("ou", "ow"),
    ("s", "z"),
    ("z", "s"),
    ("ai", "ay"),
    ("c", "k"),
    ("k", "c"),
    ("tt", "t"),
    ("ll", "l"),
    ("nn", "n"),
    ("mm", "m"),
    ("ss", "s"),
    ("ah", "a"),
    ("th", "t"),
)
# Letters that do not decompose under NFKD.
_FOLD = str.maketrans(
    {"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "ß": "ss", "Đ": "D", "đ": "d", "Æ": "AE", "æ": "ae"}
)


def strip_diacritics(text: str) -> str:
    """Zoë -> Zoe, Łukasz -> Lukasz."""
    return "".join(
        c for c in unicodedata.normalize("NFKD", text.translate(_FOLD)) if not unicodedata.combining(c)
    )


def _keep_case(original: str, edited: str) -> str:
    return edited[:1].upper() + edited[1:] if original[:1].isupper() else edited


def _substitute(rng: random.Random, name: str, rules: tuple[tuple[str, str], ...]) -> str:
    lower = name.lower()
    options = [(a, b) for a, b in rules if a in lower]
    if not options:
        return _keyboard(rng, name)
    a, b = rng.choice(options)
    at = rng.choice([i for i in range(len(lower)) if lower.startswith(a, i)])
    return _keep_case(name, lower[:at] + b + lower[at + len(a) :])


def _keyboard(rng: random.Random, name: str) -> str:
    lower = name.lower()
    positions = [i for i, c in enumerate(lower) if c in _NEIGHBOURS]
    if not positions:
        return name + "e"
    at = rng.choice(positions)
    return _keep_case(name, lower[:at] + rng.choice(_NEIGHBOURS[lower[at]]) + lower[at + 1 :])


def _typo(rules: tuple[tuple[str, str], ...] | None) -> Callable[[random.Random, Draft, Person], None]:
    def apply(rng: random.Random, draft: Draft, person: Person) -> None:
        def edit(name: str) -> str:
            return _keyboard(rng, name) if rules is None else _substitute(rng, name, rules)

        if rng.random() < 0.5:
            draft.family_name = edit(draft.family_name)
        else:
            draft.given_names[0] = edit(draft.given_names[0])

    return apply


def _marriage(rng: random.Random, draft: Draft, person: Person) -> None:
    # Recorded before the marriage and the move; sometimes the agency has since noted the new name.
    draft.family_name = person.birth_family_name
    draft.address = person.previous_address
    if rng.random() < draft.alias_kept:
        draft.aliases.append((" ".join(person.given_names), person.family_name))


def _hyphen(rng: random.Random, draft: Draft, person: Person) -> None:
    parts = person.family_name.replace("-", " ").split()
    draft.family_name = rng.choice((" ".join(parts), "".join(parts), parts[0], parts[-1]))


def _nickname(rng: random.Random, draft: Draft, person: Person) -> None:
    draft.given_names[0] = rng.choice(nicknames_of(person.given_names[0]))


def _transliterate(rng: random.Random, draft: Draft, person: Person) -> None:
    variants = transliteration_variants()
    names = [i for i, g in enumerate(draft.given_names) if g in variants]
    if names and (draft.family_name not in variants or rng.random() < 0.5):
        i = rng.choice(names)
        draft.given_names[i] = rng.choice(variants[draft.given_names[i]])
    elif draft.family_name in variants:
        draft.family_name = rng.choice(variants[draft.family_name])


def _swap(rng: random.Random, draft: Draft, person: Person) -> None:
    draft.given_names, draft.family_name = [draft.family_name], draft.given_names[0]


def _dob_swap(rng: random.Random, draft: Draft, person: Person) -> None:
    born = person.date_of_birth
    draft.date_of_birth = born.replace(month=born.day, day=born.month)


def _dob_digit(rng: random.Random, draft: Draft, person: Person) -> None:
    born = draft.date_of_birth or person.date_of_birth
    text = born.isoformat()
    for _ in range(50):
        at = rng.choice((2, 3, 5, 6, 8, 9))  # never the century
        candidate = text[:at] + str(rng.randrange(10)) + text[at + 1 :]
        try:
            day = dt.date.fromisoformat(candidate)
        except ValueError:
            continue
        if day != born and day <= dt.date.today():
            draft.date_of_birth = day
            return
    draft.date_of_birth = born + dt.timedelta(days=1 if born < dt.date.today() else -1)


def _postcode_typo(rng: random.Random, draft: Draft, person: Person) -> None:
    outward, inward = draft.address.postcode.split()
    chars = list(inward)
    at = rng.randrange(3)
    if at == 0:
        chars[0] = rng.choice([d for d in "0123456789" if d != chars[0]])
    else:
        chars[at] = rng.choice([c for c in UNIT_LETTERS if c != chars[at]])
    address = draft.address
    draft.address = Address(address.line, address.town, f"{outward} {''.join(chars)}", address.uprn)


def _clear(name: str, value: object) -> Callable[[random.Random, Draft, Person], None]:
    def apply(rng: random.Random, draft: Draft, person: Person) -> None:
        setattr(draft, name, value)

    return apply


def _no_postcode(rng: random.Random, draft: Draft, person: Person) -> None:
    draft.address = Address(draft.address.line, draft.address.town, "", draft.address.uprn)


def _stale(rng: random.Random, draft: Draft, person: Person) -> None:
    draft.address = person.previous_address


def _names(person: Person) -> list[str]:
    return [*person.given_names, person.family_name]


Applies = Callable[[Person, str], bool]
ERRORS: dict[str, tuple[Applies, Callable[[random.Random, Draft, Person], None]]] = {
    "marriage": (lambda p, a: p.birth_family_name != p.family_name, _marriage),
    "hyphen_split_join": (lambda p, a: "-" in p.family_name or " " in p.family_name, _hyphen),
    "diacritics_dropped": (
        lambda p, a: any(strip_diacritics(n) != n for n in _names(p)),
        lambda r, d, p: _drop(d),
    ),
    "transliteration": (lambda p, a: any(n in transliteration_variants() for n in _names(p)), _transliterate),
    "nickname": (lambda p, a: bool(nicknames_of(p.given_names[0])), _nickname),
    "name_swap": (lambda p, a: True, _swap),
    "typo_keyboard": (lambda p, a: True, _typo(None)),
    "typo_ocr": (lambda p, a: True, _typo(_OCR)),
    "typo_phonetic": (lambda p, a: True, _typo(_PHONETIC)),
    "dob_day_month_swap": (
        lambda p, a: p.date_of_birth.day <= 12 and p.date_of_birth.day != p.date_of_birth.month,
        _dob_swap,
    ),
    "dob_digit": (lambda p, a: True, _dob_digit),
    "missing_date_of_birth": (lambda p, a: True, _clear("date_of_birth", None)),
    "missing_nhs_number": (lambda p, a: a in NHS_HOLDERS, _clear("nhs_number", "")),
    "missing_gender": (lambda p, a: True, _clear("gender", "not_known")),
    "stale_address": (lambda p, a: True, _stale),
    "postcode_typo": (lambda p, a: True, _postcode_typo),
    "missing_postcode": (lambda p, a: True, _no_postcode),
}


def _drop(draft: Draft) -> None:
    draft.given_names = [strip_diacritics(g) for g in draft.given_names]
    draft.family_name = strip_diacritics(draft.family_name)


def record_of(
    person: Person, agency: str, rates: dict[str, float], rng: random.Random, alias_kept: float
) -> Draft:
    """The agency's record of a person, with errors drawn at the given rates (error type -> rate)."""
    draft = Draft.of(person, agency)
    draft.alias_kept = alias_kept
    for name, (applies, apply) in ERRORS.items():
        rate = rates[name]
        if rate and applies(person, agency) and rng.random() < rate:
            apply(rng, draft, person)
            draft.errors.append(name)
    return draft
