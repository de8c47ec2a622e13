"""Household checks: is anything known at this address? Matched locally; answered with counts, never with
who lives there.

An address is matched by UPRN when both sides have one; otherwise by postcode (or, when the postcode is
missing or mistyped, by sector and street) and the premises: house number, letter, flat, house name.
A different house number never matches. The same number with one side naming a unit and the other not, or
units numbered differently ("Flat 2, 14 High St" against "14b High Street"), is POSSIBLE: the same
building, perhaps not the same home.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from adapters.core.index import MatchIndex
from adapters.core.normalise import fold, number_key, postcode_key
from adapters.core.source import Contact
from protos.lateral.v1 import common_pb2

_WORDS = re.compile(r"[^a-z0-9]+")
_NUMBER = re.compile(r"^(\d+)([a-z]?)$")
_UNIT = {"flat", "apartment", "apt", "unit", "room", "maisonette"}
_STREET = {
    "st": "street",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "ln": "lane",
    "dr": "drive",
    "cl": "close",
    "ct": "court",
    "cres": "crescent",
    "gdns": "gardens",
    "pl": "place",
    "sq": "square",
    "tce": "terrace",
    "wy": "way",
}
_STREET_TYPES = {*_STREET.values(), "row", "walk", "grove", "hill", "park", "view", "mews", "green", "rise"}
# Words many house names share: "Rose Cottage" and "Ivy Cottage" are different houses.
_GENERIC = {"house", "cottage", "farm", "lodge", "barn", "villa", "the", "old", "new", "bungalow", "hall"}
Same = Literal["same", "maybe", "different"]


@dataclass(frozen=True)
class Premises:
    number: str = ""
    letter: str = ""
    flat: str = ""
    name: frozenset[str] = frozenset()
    street: frozenset[str] = frozenset()


def premises(text: str) -> Premises:
    """The parts of an address line that say which home it is: "Flat 2, 14 High St" -> number 14, flat 2,
    street {high, street}; "Rose Cottage, Mill Lane" -> name {rose, cottage}, street {mill, lane}."""
    words = [_STREET.get(w, w) for w in _WORDS.split(fold(text)) if w]
    number = letter = flat = ""
    before: list[str] = []
    after: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in _UNIT and i + 1 < len(words):
            flat = words[i + 1]
            i += 2
            continue
        match = _NUMBER.match(word)
        if match and not number:
            number, letter = match.group(1), match.group(2)
        elif number:
            after.append(word)
        else:
            before.append(word)
        i += 1
    if number:
        return Premises(number, letter, flat, frozenset(before), frozenset(after))
    return _named(text, flat)


def _named(text: str, flat: str) -> Premises:
    """An address without a house number: a house name, then the street ("Rose Cottage, Mill Lane").
    Commas separate them when present; otherwise the street is the street-type word and the word before."""
    segments = [[_STREET.get(w, w) for w in _WORDS.split(fold(part)) if w] for part in text.split(",")]
    segments = [[w for w in seg if not (seg and w in _UNIT)] for seg in segments if seg]
    words = [w for seg in segments for w in seg]
    if flat:
        words = [w for w in words if w != flat]
    if len(segments) > 1:
        for i in range(len(segments) - 1, -1, -1):
            if any(w in _STREET_TYPES for w in segments[i]) and i > 0:
                name = {w for seg in segments[:i] for w in seg if w != flat}
                return Premises(name=frozenset(name), street=frozenset(segments[i]), flat=flat)
    last = max((j for j, w in enumerate(words) if w in _STREET_TYPES), default=-1)
    if last <= 0:
        return Premises(name=frozenset(words), flat=flat)
    start = last - 1
    return Premises(name=frozenset(words[:start]), street=frozenset(words[start : last + 1]), flat=flat)


def _street_words(p: Premises) -> frozenset[str]:
    return p.street - _STREET_TYPES


def same_premises(a: Premises, b: Premises) -> Same:
    street_a, street_b = _street_words(a), _street_words(b)
    if street_a and street_b and not street_a & street_b:
        return "different"
    if a.number and b.number:
        if a.number != b.number:
            return "different"
        unit_a, unit_b = a.flat or a.letter, b.flat or b.letter
        if unit_a == unit_b:
            return "same"
        if not unit_a or not unit_b:
            return "maybe"  # the building, or one home in it
        if bool(a.flat) != bool(b.flat):
            return "maybe"  # "Flat 2" and "14b": units numbered two ways
        return "different"
    if not a.number and not b.number:
        distinct_a, distinct_b = a.name - _GENERIC, b.name - _GENERIC
        same_name = (distinct_a == distinct_b) if (distinct_a or distinct_b) else (a.name == b.name)
        if a.name and b.name and same_name:
            return "same" if (a.flat or "") == (b.flat or "") else "maybe"
        return "different"
    return "maybe" if street_a & street_b else "different"  # a named house and a numbered one, same street


@dataclass(frozen=True)
class HouseholdMatch:
    outcome: common_pb2.Outcome.ValueType
    rows: tuple[int, ...] = ()


class AddressIndex:
    """The agency's records by UPRN, postcode and sector (built once per match index, on first use)."""

    def __init__(self, index: MatchIndex) -> None:
        self.index = index

    @cached_property
    def _streets(self) -> dict[frozenset[str], list[int]]:
        """Rows by street, for an address given without a postcode (parsed once, on first need)."""
        streets: dict[frozenset[str], list[int]] = defaultdict(list)
        for row, address in enumerate(self.index.address):
            if not self.index.deleted[row] and address:
                streets[premises(address).street].append(row)
        return streets

    @cached_property
    def _by(self) -> tuple[dict[int, list[int]], dict[str, list[int]], dict[str, list[int]]]:
        uprns: dict[int, list[int]] = defaultdict(list)
        postcodes: dict[str, list[int]] = defaultdict(list)
        sectors: dict[str, list[int]] = defaultdict(list)
        for row, postcode in enumerate(self.index.postcode):
            if self.index.deleted[row]:
                continue
            if self.index.uprn[row]:
                uprns[int(self.index.uprn[row])].append(row)
            if postcode:
                postcodes[postcode].append(row)
                sectors[postcode[:-2]].append(row)
        return uprns, postcodes, sectors

    def match(self, address: common_pb2.Address) -> HouseholdMatch:
        uprns, postcodes, sectors = self._by
        uprn = number_key(address.uprn.strip())
        if uprn and uprn in uprns:
            return HouseholdMatch(common_pb2.OUTCOME_KNOWN, tuple(uprns[uprn]))
        wanted = premises(" ".join(address.lines))
        postcode = postcode_key(address.postcode)
        if " " in postcode and len(postcode) >= 6 and postcode in postcodes:
            candidates = postcodes[postcode]
        elif postcode[:-2] in sectors or (" " in postcode and len(postcode) < 6 and postcode in sectors):
            # A mistyped or partial postcode: the sector, with the street required to agree below.
            nearby = sectors.get(postcode[:-2], sectors.get(postcode, []))
            candidates = [r for r in nearby if premises(self.index.address[r]).street & wanted.street]
        elif not postcode and wanted.street:
            candidates = self._streets.get(wanted.street, [])  # no postcode: the street, and the premises
        else:
            return HouseholdMatch(common_pb2.OUTCOME_NOT_KNOWN)
        same, maybe = [], []
        for row in candidates:
            verdict = same_premises(wanted, premises(self.index.address[row]))
            if verdict == "same":
                same.append(row)
            elif verdict == "maybe":
                maybe.append(row)
        if same:
            return HouseholdMatch(common_pb2.OUTCOME_KNOWN, tuple(same))
        if maybe:
            return HouseholdMatch(common_pb2.OUTCOME_POSSIBLE, tuple(maybe))
        return HouseholdMatch(common_pb2.OUTCOME_NOT_KNOWN)


def household_finding(
    match: HouseholdMatch,
    index: MatchIndex,
    contact: Contact,
    since: dt.date,
    hidden: frozenset[str],
) -> common_pb2.Finding:
    """What an agency says about a household: categories, latest date, activity and how many distinct people,
    never who. A restricted record or activity makes it WITHHELD."""
    agency_contact = common_pb2.Contact(
        name=contact.name, role=contact.role, phone=contact.phone, email=contact.email
    )
    if match.outcome != common_pb2.OUTCOME_KNOWN:
        resolving = [common_pb2.ATTRIBUTE_ADDRESS] if match.outcome == common_pb2.OUTCOME_POSSIBLE else []
        return common_pb2.Finding(
            outcome=match.outcome, contact=agency_contact, resolving_attributes=resolving
        )
    events = index.events
    floor = since.toordinal()
    positions = sorted(
        (
            i
            for row in match.rows
            for i in events.of(row)
            if int(events.dates[i]) >= floor and events.category_names[events.categories[i]] not in hidden
        ),
        key=lambda i: int(events.dates[i]),
        reverse=True,
    )
    if any(index.restricted[r] for r in match.rows) or any(events.restricted[i] for i in positions):
        return common_pb2.Finding(outcome=common_pb2.OUTCOME_WITHHELD, contact=agency_contact)
    return common_pb2.Finding(
        outcome=common_pb2.OUTCOME_KNOWN,
        categories=list(dict.fromkeys(events.category_names[events.categories[i]] for i in positions)),
        latest_activity_date=dt.date.fromordinal(int(events.dates[positions[0]])).isoformat()
        if positions
        else "",
        activity_count=len(positions),
        people_count=len({index.keys[r] for r in match.rows}),
        contact=agency_contact,
    )
