"""The fields a linkage encoding is made of, normalised as the adapters' matcher normalises them, and the
features (q-grams and whole values) that go into the Bloom filter, each kind under its own key.

Kinds and why they are there:

- ``name``: padded bigrams of the first given name and of the family name (and of any other family name
  the record holds, such as a name before marriage). Given and family names share one kind, so a record
  with the two swapped encodes the same bigrams; the date of birth still separates "James Thomas" from
  "Thomas James".
- ``formal``: the first given name and its formal forms as whole words (``adapters.core.normalise.
  formal_names``), so "Bill" and "William" share the words "bill" and "william" though few bigrams.
- ``year``, ``month``, ``day``, ``day_month``: the date of birth in parts, so a wrong digit loses one part,
  not all; ``day_month`` is the unordered pair, kept by a day and month swapped.
- ``postcode``, ``sector``, ``district``: the full postcode and its coarser parts, so a typo in the unit
  or a move within the district keeps some agreement.
- ``gender``: weak evidence, but it separates twins of different sexes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from adapters.core.normalise import family_key, formal_names, gender_key, given_tokens, postcode_key
from adapters.core.records import SeedPerson

KINDS = ("name", "formal", "year", "month", "day", "day_month", "postcode", "sector", "district", "gender")
NAME_KINDS = frozenset({"name", "formal"})
PAD = "_"
# A nickname such as "al" has fifteen formal forms: all are kept (a nickname must meet its formal name),
# but they share a budget of positions (linkage.encoding.FORMAL_BUDGET) so they do not crowd the filter.
MAX_FORMAL = 20


@dataclass(frozen=True)
class RecordFields:
    """What an agency knows of a person, as linkage uses it.

    Attributes:
        given_names: given names in order; only the first is encoded (middle names are too often missing).
        family_name: the family name as recorded.
        other_names: other names the record holds (given names, family name), e.g. a name before marriage.
        date_of_birth: the date of birth, or None.
        gender: "female", "male", "other", or None / "not_known".
        postcode: the postcode as recorded (full or partial), or "".
    """

    given_names: tuple[str, ...]
    family_name: str
    other_names: tuple[tuple[tuple[str, ...], str], ...] = ()
    date_of_birth: dt.date | None = None
    gender: str | None = None
    postcode: str = ""

    @classmethod
    def of_seed(cls, person: SeedPerson) -> RecordFields:
        """The fields of a synthetic or demo record."""
        return cls(
            given_names=person.given_names,
            family_name=person.family_name,
            other_names=tuple((tuple(g.split()), f) for g, f in person.other_names),
            date_of_birth=person.date_of_birth,
            gender=person.gender,
            postcode=person.postcode,
        )


def qgrams(word: str, q: int = 2) -> tuple[str, ...]:
    """Padded q-grams of a word: "ann" -> ("_a", "an", "nn", "n_") for q=2; none for an empty word."""
    if not word:
        return ()
    padded = PAD * (q - 1) + word + PAD * (q - 1)
    return tuple(padded[i : i + q] for i in range(len(padded) - q + 1))


@lru_cache(maxsize=100_000)
def formal_forms(first: str) -> frozenset[str]:
    """The word itself and up to MAX_FORMAL - 1 of its formal forms, the nearest in length first (a
    stable choice)."""
    forms = sorted(formal_names(first), key=lambda f: (f != first, abs(len(f) - len(first)), f))
    return frozenset(forms[:MAX_FORMAL])


def features(fields: RecordFields, q: int = 2) -> dict[str, frozenset[str]]:
    """The record's features by kind (kinds it has nothing for are left out)."""
    out: dict[str, frozenset[str]] = {}
    given = given_tokens(fields.given_names)
    first = given[0] if given else ""
    families = {family_key(fields.family_name)} | {family_key(f) for _, f in fields.other_names}
    names = set(qgrams(first, q))
    for family in families:
        names.update(qgrams(family, q))
    if names:
        out["name"] = frozenset(names)
    if first:
        out["formal"] = formal_forms(first)
    born = fields.date_of_birth
    if born is not None:
        out["year"] = frozenset({str(born.year)})
        out["month"] = frozenset({str(born.month)})
        out["day"] = frozenset({str(born.day)})
        low, high = sorted((born.day, born.month))
        out["day_month"] = frozenset({f"{low}/{high}"})
    postcode = postcode_key(fields.postcode)
    if postcode:
        outward, _, inward = postcode.partition(" ")
        out["district"] = frozenset({outward})
        if inward:
            out["sector"] = frozenset({f"{outward} {inward[:1]}"})
        if len(inward) == 3:
            out["postcode"] = frozenset({postcode})
    gender = gender_key(fields.gender)
    if gender:
        out["gender"] = frozenset({str(gender)})
    return out
