"""Building the match index from source rows, at the rate a million-record agency needs to start quickly.

A build handles every row of the agency's database, so the Python run per row is what it costs (fetching
the rows is a small part of it). So:

- The reader hands over whole batches of rows as columns (`add_people`, `add_events`; see columns.py),
  which are stored with C-level maps and extends rather than an append per field per row.
- Each distinct given-names text, family name, postcode and date is normalised once per build and the
  result reused (a million records hold a few thousand distinct names).
- Blocking keys are combined column-wise in numpy at the end; a row stores only the value hashes they are
  built from.

One row at a time (`add_person`, `add_event`) remains for snapshots, refreshes and any batch holding a row
to skip, and gives the same index.
"""

from __future__ import annotations

import datetime as dt
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import compress, repeat
from operator import itemgetter
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from adapters.core.columns import EventColumns, PeopleColumns, looked_up
from adapters.core.index import BLOCKS, Events, MatchIndex, block_keys, name_blocks, short_hash, value_hash
from adapters.core.normalise import (
    GENDERS,
    date_key,
    family_key,
    formal_names,
    given_tokens,
    name_tokens,
    nhs_key,
    number_key,
    phonetic,
    postcode_key,
)
from adapters.core.source import Contact, SourceAlias, SourceEvent, SourcePerson

# Watermark types whose values are totally ordered, so the newest of a batch is simply its max.
_ORDERED = (str, int, dt.datetime, dt.date)


def _hashes(values: list[str]) -> npt.NDArray[np.uint32]:
    """short_hash of every value, computed once per distinct value."""
    known = {v: short_hash(v) for v in set(values)}
    return np.fromiter(map(known.__getitem__, values), dtype=np.uint32, count=len(values))


class _Given(NamedTuple):
    """What a record's given names contribute, worked out once per distinct given names."""

    tokens: tuple[str, ...]
    first_sound: str
    formal_hash: int  # value_hash of the first formal form of the first given name; 0 for none
    further_formal_hashes: tuple[int, ...]  # the other formal forms (nicknames resolved), keyed as extras


class _Family(NamedTuple):
    key: str
    parts: tuple[str, ...]
    sound: str
    sound_hash: int


def _given(tokens: tuple[str, ...]) -> _Given:
    first = tokens[0] if tokens else ""
    formals = formal_names(first) if first else ()
    return _Given(
        tokens,
        phonetic(first),
        value_hash(formals[0]) if formals else 0,
        tuple(value_hash(formal) for formal in formals[1:]),
    )


def _given_of_text(given_names: str) -> _Given:
    """A given-names column's text: its names separated by white space (SourcePerson.given_names would be
    its split)."""
    return _given(given_tokens(tuple(given_names.split())))


def _family(name: str) -> _Family:
    key = family_key(name)
    sound = phonetic(key)
    return _Family(key, name_tokens(name), sound, value_hash(sound))


def _postcode(text: str) -> tuple[str, int]:
    """The canonical postcode, and the hash its blocking key is built from when it is a full one."""
    canonical = sys.intern(postcode_key(text))
    return canonical, value_hash(canonical) if " " in canonical else 0


def _names_hash(sounds: tuple[str, str]) -> int:
    """The hash of the "names" key's text (family and first given name sounds); 0 without a family sound."""
    family, first = sounds
    return value_hash(f"{family}|{first}") if family else 0


def _uprn(text: str) -> int:
    return number_key(text) if text else 0


def _nhs(text: str) -> int:
    return number_key(nhs_key(text)) if text else 0


# Fields of the memoised tuples, taken column-wise.
_TOKENS, _FIRST_SOUND, _FORMAL_HASH, _FURTHER = (itemgetter(i) for i in range(4))
_KEY, _PARTS, _SOUND, _SOUND_HASH = (itemgetter(i) for i in range(4))
_CANONICAL, _POSTCODE_HASH = itemgetter(0), itemgetter(1)


class IndexBuilder:
    """Receives source rows one by one (as the database yields them) and builds the index."""

    def __init__(self, progress: Callable[[str, int], None] = lambda stage, n: None) -> None:
        self._progress = progress
        self.keys: list[str] = []
        self.rows: dict[str, int] = {}
        self.given: list[tuple[str, ...]] = []
        self.family: list[str] = []
        self.family_parts: list[tuple[str, ...]] = []
        self.dob = array("i")
        self.gender = array("b")
        self.postcode: list[str] = []
        self.address: list[str] = []
        self.uprn = array("q")
        self.nhs = array("q")
        self.restricted = bytearray()
        self.aliases: dict[int, list[tuple[tuple[str, ...], str]]] = {}
        # Per record, the value hashes the keys are built from at the end (see block_key).
        self._names_h, self._family_h, self._formal_h, self._postcode_h = (
            array("Q"),
            array("Q"),
            array("Q"),
            array("Q"),
        )
        # Keys that do not fit the columns (further formal names, aliases): text hash, number and row.
        self._extra: dict[str, tuple[array[int], array[int], array[int]]] = {
            k: (array("Q"), array("Q"), array("i")) for k in BLOCKS
        }
        self._events: tuple[array[int], array[int], array[int], bytearray, array[int]] = (
            array("i"),
            array("i"),
            array("h"),
            bytearray(),
            array("i"),
        )
        self._categories: dict[str, int] = {}
        self._contacts: dict[Contact, int] = {}
        self._watermarks: dict[str, object] = {}
        self.skipped: Counter[str] = Counter()
        # Normalised once per distinct value (see the module docstring).
        self._given_by_text: dict[str, _Given] = {}
        self._given_by_tokens: dict[tuple[str, ...], _Given] = {}
        self._family_by_name: dict[str, _Family] = {}
        self._postcode_by_text: dict[str, tuple[str, int]] = {}
        self._dob_keys: dict[dt.date | None, int] = {None: 0}

    def _add_extra(self, row: int, blocks: Iterable[tuple[str, str, int]]) -> None:
        for kind, text, number in blocks:
            texts, numbers, rows = self._extra[kind]
            texts.append(value_hash(text))
            numbers.append(number)
            rows.append(row)

    def _add_further_formal(
        self, row: int, formal_hashes: tuple[int, ...], dob: int, postcode_h: int
    ) -> None:
        """The keys of a given name's further formal forms (nicknames resolved), beside the first's."""
        count = len(formal_hashes)
        if dob:
            texts, numbers, rows = self._extra["given_dob"]
            texts.extend(formal_hashes)
            numbers.extend(repeat(dob, count))
            rows.extend(repeat(row, count))
        if postcode_h:
            texts, numbers, rows = self._extra["postcode_given"]
            texts.extend(repeat(postcode_h, count))
            numbers.extend(formal_hashes)
            rows.extend(repeat(row, count))

    def add_person(self, person: SourcePerson) -> None:
        tokens = person.given_names
        given = self._given_by_tokens.get(tokens)
        if given is None:
            given = self._given_by_tokens[tokens] = _given(given_tokens(tokens))
        self._add(
            person.record_key,
            given,
            person.family_name,
            person.date_of_birth,
            person.gender,
            person.address,
            person.postcode,
            person.uprn,
            person.nhs_number,
            person.restricted,
        )

    def add_people(self, people: PeopleColumns) -> None:
        """A batch of person rows, column by column (the reader's fast way: see columns.py)."""
        keys, n = people.record_key, len(people.record_key)
        if len(set(keys)) < n or not self.rows.keys().isdisjoint(keys):
            # A second row for a record key: one by one, so that the first is kept and the rest counted.
            for key, given, *values in zip(*people, strict=True):
                self._add(key, self._given_text(given), *values)
            return
        start = len(self.keys)
        self.rows.update(zip(keys, range(start, start + n), strict=True))
        self.keys.extend(keys)
        given = looked_up(self._given_by_text, people.given_names, _given_of_text)
        family = looked_up(self._family_by_name, people.family_name, _family)
        dob = looked_up(self._dob_keys, people.date_of_birth, date_key)
        postcode = looked_up(self._postcode_by_text, people.postcode, _postcode)
        self.given.extend(map(_TOKENS, given))
        self.family.extend(map(_KEY, family))
        self.family_parts.extend(map(_PARTS, family))
        self.dob.extend(dob)
        # As gender_key: no gender, or one without a code, is 0.
        self.gender.extend(map(GENDERS.get, people.gender, repeat(0)))  # type: ignore[arg-type]
        self.postcode.extend(map(_CANONICAL, postcode))
        self.address.extend(map(sys.intern, people.address))
        self.uprn.extend(map(_uprn, people.uprn) if any(people.uprn) else repeat(0, n))
        self.nhs.extend(map(_nhs, people.nhs_number) if any(people.nhs_number) else repeat(0, n))
        self.restricted.extend(people.restricted)
        # Memoised for this batch only: a build holds hundreds of thousands of pairs, and value_hash
        # remembers them already (a memo for the whole build cost 40 MB at a million records).
        pairs = list(zip(map(_SOUND, family), map(_FIRST_SOUND, given), strict=True))
        self._names_h.extend(looked_up({}, pairs, _names_hash))
        self._family_h.extend(map(_SOUND_HASH, family))
        self._formal_h.extend(map(_FORMAL_HASH, given))
        self._postcode_h.extend(map(_POSTCODE_HASH, postcode))
        further = list(map(_FURTHER, given))
        postcode_h = self._postcode_h[start:]
        for row, hashes, day, at in compress(
            zip(range(start, start + n), further, dob, postcode_h, strict=True), further
        ):
            self._add_further_formal(row, hashes, day, at)
        for _ in range((start + n) // 50_000 - start // 50_000):
            self._progress("people", 50_000)

    def _given_text(self, given_names: str) -> _Given:
        given = self._given_by_text.get(given_names)
        if given is None:
            given = self._given_by_text[given_names] = _given_of_text(given_names)
        return given

    def _add(
        self,
        key: str,
        given: _Given,
        family_name: str,
        date_of_birth: dt.date | None,
        gender: str | None,
        address: str,
        postcode_text: str,
        uprn: str,
        nhs_number: str,
        restricted: bool,
    ) -> None:
        if key in self.rows:
            self.skipped["a second row for one record key (the first is kept)"] += 1
            return
        row = len(self.keys)
        self.rows[key] = row
        self.keys.append(key)
        family = self._family_by_name.get(family_name)
        if family is None:
            family = self._family_by_name[family_name] = _family(family_name)
        dob = self._dob_keys.get(date_of_birth)
        if dob is None:
            dob = self._dob_keys[date_of_birth] = date_key(date_of_birth)
        postcode = self._postcode_by_text.get(postcode_text)
        if postcode is None:
            postcode = self._postcode_by_text[postcode_text] = _postcode(postcode_text)
        self.given.append(given.tokens)
        self.family.append(family.key)
        self.family_parts.append(family.parts)
        self.dob.append(dob)
        self.gender.append(GENDERS.get(gender or "", 0))
        self.postcode.append(postcode[0])
        # Normalised only when a candidate is scored: most records never are.
        self.address.append(sys.intern(address))
        self.uprn.append(_uprn(uprn))
        self.nhs.append(_nhs(nhs_number))
        self.restricted.append(restricted)
        self._names_h.append(_names_hash((family.sound, given.first_sound)))
        self._family_h.append(family.sound_hash)
        self._formal_h.append(given.formal_hash)
        self._postcode_h.append(postcode[1])
        if given.further_formal_hashes:
            self._add_further_formal(row, given.further_formal_hashes, dob, postcode[1])
        if row % 50_000 == 49_999:
            self._progress("people", 50_000)

    def add_alias(self, alias: SourceAlias) -> None:
        row = self.rows.get(alias.record_key)
        if row is None:
            self.skipped["alias of an unknown record key"] += 1
            return
        given = given_tokens(alias.given_names)
        family = family_key(alias.family_name)
        self.aliases.setdefault(row, []).append((given, family))
        self._add_extra(row, name_blocks(given, family, self.dob[row], self.postcode[row]))

    def add_event(self, event: SourceEvent) -> None:
        row = self.rows.get(event.record_key)
        if row is None:
            self.skipped["activity of an unknown record key"] += 1
            return
        rows, dates, categories, restricted, contacts = self._events
        rows.append(row)
        dates.append(event.activity_date.toordinal())
        categories.append(self._categories.setdefault(event.category, len(self._categories)))
        restricted.append(event.restricted)
        contacts.append(
            -1 if event.contact is None else self._contacts.setdefault(event.contact, len(self._contacts))
        )
        if len(rows) % 100_000 == 0:
            self._progress("activity", 100_000)

    def add_events(self, events: EventColumns) -> None:
        """A batch of activity rows, column by column (the reader's fast way: see columns.py)."""
        owners = list(map(self.rows.get, events.record_key))
        if None in owners:
            # Activity of an unknown record key: one by one, so that it is counted in order.
            for values in zip(*events, strict=True):
                self.add_event(SourceEvent(*values))
            return
        rows, dates, categories, restricted, contacts = self._events
        start, n = len(rows), len(owners)
        rows.extend(owners)  # type: ignore[arg-type]
        dates.extend(map(dt.date.toordinal, events.activity_date))
        # Ids in order of first appearance, as one by one.
        for category in dict.fromkeys(events.category):
            self._categories.setdefault(category, len(self._categories))
        categories.extend(map(self._categories.__getitem__, events.category))
        restricted.extend(events.restricted)
        if events.contact.count(None) == n:
            contacts.extend(repeat(-1, n))
        else:
            for contact in dict.fromkeys(events.contact):
                if contact is not None:
                    self._contacts.setdefault(contact, len(self._contacts))
            contacts.extend(-1 if c is None else self._contacts[c] for c in events.contact)
        for _ in range((start + n) // 100_000 - start // 100_000):
            self._progress("activity", 100_000)

    def note_watermark(self, value: object, mapping: str = "people") -> None:
        """Keeps the highest change watermark per mapping, compared in its own type (an id as a number)."""
        if value is None or value == "":
            return
        current = self._watermarks.get(mapping)
        try:
            newer = current is None or value > current  # type: ignore[operator]
        except TypeError:
            newer = str(value) > str(current)
        if newer:
            self._watermarks[mapping] = value

    def note_watermarks(self, values: list[object], mapping: str) -> None:
        """note_watermark for each value in turn, in one step when they are all of one ordered type (and of
        the type already noted): then the newest is their max."""
        kinds = set(map(type, values))
        kinds.discard(type(None))
        if len(kinds) == 1:
            kind = kinds.pop()
            current = self._watermarks.get(mapping)
            if kind in _ORDERED and (current is None or type(current) is kind):
                try:
                    newest = max(v for v in values if v is not None)  # type: ignore[type-var]
                except TypeError:  # datetimes with and without a time zone
                    pass
                else:
                    self.note_watermark(newest, mapping)
                    return
        for value in values:
            self.note_watermark(value, mapping)

    def _blocks(self, n: int) -> dict[str, tuple[npt.NDArray[np.uint64], npt.NDArray[np.int32]]]:
        """Every blocking key, column-wise, sorted by key for searchsorted."""

        def column(values: array[int], dtype: type = np.uint64) -> npt.NDArray[np.uint64]:
            if not values:
                return np.zeros(0, dtype=np.uint64)
            return np.frombuffer(values, dtype=dtype).astype(np.uint64)

        dob = column(self.dob, np.int32)
        names_h, family_h, formal_h, postcode_h = (
            column(self._names_h),
            column(self._family_h),
            column(self._formal_h),
            column(self._postcode_h),
        )
        nhs, uprn = column(self.nhs, np.int64), column(self.uprn, np.int64)
        zero = np.zeros(n, dtype=np.uint64)
        has_dob = dob != 0
        parts = {
            "names": (names_h != 0, names_h, zero),
            "family_dob": ((family_h != 0) & has_dob, family_h, dob),
            "names_year": ((names_h != 0) & has_dob, names_h, dob // np.uint64(10_000)),
            "names_monthday": ((names_h != 0) & has_dob, names_h, dob % np.uint64(10_000)),
            "given_dob": ((formal_h != 0) & has_dob, formal_h, dob),
            "postcode_family": ((postcode_h != 0) & (family_h != 0), postcode_h, family_h),
            "postcode_given": ((postcode_h != 0) & (formal_h != 0), postcode_h, formal_h),
            "postcode_dob": ((postcode_h != 0) & has_dob, postcode_h, dob),
            "nhs": (nhs != 0, zero, nhs),
            "uprn": (uprn != 0, zero, uprn),
        }
        rows = np.arange(n, dtype=np.int32)
        blocks = {}
        for kind, (mask, texts, numbers) in parts.items():
            extra_texts, extra_numbers, extra_rows = self._extra[kind]
            keys = np.concatenate(
                [
                    block_keys(kind, texts[mask], numbers[mask]),
                    block_keys(kind, column(extra_texts), column(extra_numbers)),
                ]
            )
            owners = np.concatenate(
                [
                    rows[mask],
                    np.frombuffer(extra_rows, dtype=np.int32) if extra_rows else np.zeros(0, dtype=np.int32),
                ]
            )
            order = np.argsort(keys, kind="stable")
            blocks[kind] = (keys[order], owners[order])
        return blocks

    def finish(self) -> MatchIndex:
        # The memos have done their work; freed before the key arrays are built, where memory peaks.
        for memo in (
            self._given_by_text,
            self._given_by_tokens,
            self._family_by_name,
            self._postcode_by_text,
        ):
            memo.clear()
        n = len(self.keys)
        blocks = self._blocks(n)
        rows_a, dates_a, cats_a, restricted_a, contacts_a = self._events
        ev_rows = np.frombuffer(rows_a, dtype=np.int32) if rows_a else np.zeros(0, dtype=np.int32)
        order = np.argsort(ev_rows, kind="stable")
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(ev_rows, minlength=n), out=offsets[1:])

        def column(values: array[int] | bytearray, dtype: type) -> npt.NDArray:  # type: ignore[type-arg]
            return (
                np.frombuffer(values, dtype=dtype)[order].copy() if len(values) else np.zeros(0, dtype=dtype)
            )

        events = Events(
            offsets=offsets,
            dates=column(dates_a, np.int32),
            categories=column(cats_a, np.int16),
            restricted=column(restricted_a, np.bool_),
            contacts=column(contacts_a, np.int32),
            category_names=list(self._categories),
            contact_table=list(self._contacts),
        )
        return MatchIndex(
            keys=self.keys,
            given=self.given,
            family=self.family,
            family_parts=self.family_parts,
            dob=np.frombuffer(self.dob, dtype=np.int32).copy() if n else np.zeros(0, dtype=np.int32),
            gender=np.frombuffer(self.gender, dtype=np.int8).copy() if n else np.zeros(0, dtype=np.int8),
            postcode=self.postcode,
            address=self.address,
            uprn=np.frombuffer(self.uprn, dtype=np.int64).copy() if n else np.zeros(0, dtype=np.int64),
            nhs=np.frombuffer(self.nhs, dtype=np.int64).copy() if n else np.zeros(0, dtype=np.int64),
            restricted=np.frombuffer(bytes(self.restricted), dtype=np.bool_).copy(),
            family_hash=_hashes(self.family),
            given_hash=_hashes([g[0] if g else "" for g in self.given]),
            postcode_hash=_hashes(self.postcode),
            aliases=self.aliases,
            events=events,
            blocks=blocks,
            family_counts=Counter(self.family),
            given_counts=Counter(g[0] for g in self.given if g),
            postcode_counts=Counter(p for p in self.postcode if p),
            middle_counts=Counter(name for g in self.given for name in g[1:]),
            row_of=self.rows,
            deleted=np.zeros(n, dtype=np.bool_),
            watermarks=dict(self._watermarks),
            skipped=self.skipped,
        )
