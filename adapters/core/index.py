"""The local match index: normalised people in columns, blocking keys as sorted 64-bit hashes, and activity.

Memory matters at a million records: strings are interned (names repeat), numbers live in numpy arrays,
and each blocking key costs 12 bytes a record (hash and row) instead of a Python dict entry's ~150.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from adapters.core.normalise import (
    address_key,
    formal_names,
    phonetic,
)
from adapters.core.source import Contact, SourceSnapshot

# Blocking keys: any single recording error leaves at least one of them intact for the true record.
# Each key joins a name part to a date part specific enough that a block holds about the same handful of
# records in a million as in ten thousand: a common family name and a birth year alone gather hundreds.
BLOCKS = (
    "nhs",
    "uprn",
    "family_dob",
    "names_year",
    "names_monthday",
    "given_dob",
    "postcode_dob",
    "postcode_family",
    "postcode_given",
    "names",
)
Address = tuple[str, frozenset[str]]


_M64 = (1 << 64) - 1
_C0, _C1, _C2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


@lru_cache(maxsize=500_000)
def value_hash(text: str) -> int:
    """64 bits of a text value, the same in every process (str hashes are not); 0 for no value."""
    if not text:
        return 0
    data = text.encode()
    return (zlib.crc32(data) << 32) | zlib.adler32(data)


def _mix(a: int, b: int) -> int:
    """splitmix64's finaliser over a ^ b*golden: combines a value hash with a number."""
    x = (a ^ (b * _C0)) & _M64
    x = ((x ^ (x >> 30)) * _C1) & _M64
    x = ((x ^ (x >> 27)) * _C2) & _M64
    return x ^ (x >> 31)


def _mix_np(a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """_mix over whole columns (uint64 arithmetic wraps, as the masks do above)."""
    with np.errstate(over="ignore"):
        x = a ^ (b * np.uint64(_C0))
        x = (x ^ (x >> np.uint64(30))) * np.uint64(_C1)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(_C2)
        mixed: npt.NDArray[np.uint64] = x ^ (x >> np.uint64(31))
        return mixed


_KIND = {kind: value_hash(f"kind:{kind}") for kind in BLOCKS}


def block_key(kind: str, text: str, number: int) -> int:
    """A blocking key: the kind, a text part (a name sound, a formal name, a postcode) and a number (a year,
    a date, an identifier). Text parts are hashed once per distinct value; the combining is arithmetic, so
    a whole index's keys are computed column-wise at the end of a build."""
    return _mix(_mix(_KIND[kind], value_hash(text)), number)


def block_keys(
    kind: str, texts: npt.NDArray[np.uint64], numbers: npt.NDArray[np.uint64]
) -> npt.NDArray[np.uint64]:
    kinds = np.full(len(texts), _KIND[kind], dtype=np.uint64)
    return _mix_np(_mix_np(kinds, texts), numbers)


def name_blocks(
    given: tuple[str, ...], family: str, dob: int, postcode: str
) -> Iterable[tuple[str, str, int]]:
    """The name-based keys of one name (an alias) of a record with this date of birth and postcode."""
    family_sound = phonetic(family)
    first = given[0] if given else ""
    located = " " in postcode  # a full postcode: a partial one would gather a district
    if located and family_sound:
        yield "postcode_family", postcode, value_hash(family_sound)
    if located and first:
        for formal in formal_names(first):
            yield "postcode_given", postcode, value_hash(formal)
    if family_sound:
        names = f"{family_sound}|{phonetic(first)}"
        yield "names", names, 0
        if dob:
            yield "family_dob", family_sound, dob
            yield "names_year", names, dob // 10_000
            yield "names_monthday", names, dob % 10_000
    if dob and first:
        for formal in formal_names(first):
            yield "given_dob", formal, dob


@dataclass
class Events:
    """Activity in columns, grouped by record row: offsets[row]..offsets[row + 1]."""

    offsets: npt.NDArray[np.int64]
    dates: npt.NDArray[np.int32]  # proleptic ordinals
    categories: npt.NDArray[np.int16]
    restricted: npt.NDArray[np.bool_]
    contacts: npt.NDArray[np.int32]  # -1: none
    category_names: list[str]
    contact_table: list[Contact]

    def of(self, row: int) -> range:
        return range(int(self.offsets[row]), int(self.offsets[row + 1]))


@dataclass
class MatchIndex:
    """Read-only once built; a refresh builds a new one and swaps it in."""

    keys: list[str]
    given: list[tuple[str, ...]]
    family: list[str]
    family_parts: list[tuple[str, ...]]
    dob: npt.NDArray[np.int32]
    gender: npt.NDArray[np.int8]
    postcode: list[str]
    address: list[str]  # as recorded; normalised (address_key) only when a candidate is scored
    uprn: npt.NDArray[np.int64]  # 0: none
    nhs: npt.NDArray[np.int64]  # 0: none
    restricted: npt.NDArray[np.bool_]
    # 32-bit hashes of family name, first given name and postcode, for a vectorised first cut of candidates.
    family_hash: npt.NDArray[np.uint32]
    given_hash: npt.NDArray[np.uint32]
    postcode_hash: npt.NDArray[np.uint32]
    aliases: dict[int, list[tuple[tuple[str, ...], str]]]
    events: Events
    blocks: dict[str, tuple[npt.NDArray[np.uint64], npt.NDArray[np.int32]]]
    family_counts: Counter[str]
    given_counts: Counter[str]
    postcode_counts: Counter[str]
    # Further given names (middle names): their own frequencies, for the term-frequency adjustment.
    middle_counts: Counter[str]
    # Record key -> its current row; rows replaced by a refresh are marked deleted, never reused.
    row_of: dict[str, int] = field(default_factory=dict)
    deleted: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    any_deleted: bool = False
    # The highest change watermark read from each mapping ("people", "events"), in the source's own type.
    watermarks: dict[str, object] = field(default_factory=dict)
    built_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    refreshed_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def record_count(self) -> int:
        return len(self.row_of)

    @property
    def person_count(self) -> int:
        return len(self.row_of)

    @property
    def watermark(self) -> str:
        return ", ".join(f"{name} {value}" for name, value in sorted(self.watermarks.items()))

    @property
    def activity_count(self) -> int:
        live = ~self.deleted
        counts = np.diff(self.events.offsets)
        return int(counts[live].sum()) if len(counts) else 0

    def address_of(self, row: int) -> Address:
        return address_key(self.address[row])

    def lookup(self, kind: str, text: str, number: int = 0) -> npt.NDArray[np.int32]:
        """Rows with this blocking key (see block_key; a hash collision only adds a candidate)."""
        hashes, rows = self.blocks[kind]
        h = block_key(kind, text, number)
        # Both bounds in one call: where h starts and where h + 1 would.
        start, end = np.searchsorted(hashes, np.array([h, min(h + 1, 2**64 - 1)], dtype=np.uint64))
        return rows[start:end]

    @classmethod
    def build(cls, snapshot: SourceSnapshot) -> MatchIndex:
        """Builds an index from an in-memory snapshot (tests; the adapter streams from its database)."""
        from adapters.core.builder import IndexBuilder  # builder.py builds on this module

        builder = IndexBuilder()
        for person in snapshot.people:
            builder.add_person(person)
        for alias in snapshot.aliases:
            builder.add_alias(alias)
        for event in snapshot.events:
            builder.add_event(event)
        builder.note_watermark(snapshot.watermark or None, "people")
        builder.skipped.update(snapshot.skipped)
        return builder.finish()


def short_hash(value: str) -> int:
    """32 bits of a value, 0 for none: enough to rank candidates, never to decide."""
    return zlib.crc32(value.encode()) if value else 0


def merge(base: MatchIndex, delta: MatchIndex, changed: Iterable[str]) -> MatchIndex:
    """A new index: base with the changed records' old rows deleted and delta's rows appended.

    Base is not modified (queries may be using it while this runs); lists are copied, arrays concatenated.
    """
    n = len(base.keys)
    deleted = base.deleted.copy()
    row_of = dict(base.row_of)
    family_counts, given_counts, postcode_counts, middle_counts = (
        Counter(base.family_counts),
        Counter(base.given_counts),
        Counter(base.postcode_counts),
        Counter(base.middle_counts),
    )
    for key in changed:
        row = row_of.pop(key, None)
        if row is not None and not deleted[row]:
            deleted[row] = True
            family_counts[base.family[row]] -= 1
            if base.given[row]:
                given_counts[base.given[row][0]] -= 1
                middle_counts.subtract(base.given[row][1:])
            if base.postcode[row]:
                postcode_counts[base.postcode[row]] -= 1
    for key, row in delta.row_of.items():
        row_of[key] = n + row
    family_counts.update(delta.family_counts)
    given_counts.update(delta.given_counts)
    postcode_counts.update(delta.postcode_counts)
    middle_counts.update(delta.middle_counts)
    blocks = {}
    for kind in BLOCKS:
        hashes = np.concatenate([base.blocks[kind][0], delta.blocks[kind][0]])
        rows = np.concatenate([base.blocks[kind][1], delta.blocks[kind][1] + np.int32(n)])
        order = np.argsort(hashes, kind="stable")
        blocks[kind] = (hashes[order], rows[order])
    categories = list(base.events.category_names)
    category_ids = {name: i for i, name in enumerate(categories)}
    for name in delta.events.category_names:
        category_ids.setdefault(name, len(categories))
        if len(categories) < len(category_ids):
            categories.append(name)
    remap_categories = np.array([category_ids[c] for c in delta.events.category_names] or [0], dtype=np.int16)
    contacts = list(base.events.contact_table)
    contact_ids = {c: i for i, c in enumerate(contacts)}
    for contact in delta.events.contact_table:
        if contact not in contact_ids:
            contact_ids[contact] = len(contacts)
            contacts.append(contact)
    remap_contacts = np.array([contact_ids[c] for c in delta.events.contact_table] + [-1], dtype=np.int32)
    be, de = base.events, delta.events
    events = Events(
        offsets=np.concatenate([be.offsets[:-1], be.offsets[-1] + de.offsets]),
        dates=np.concatenate([be.dates, de.dates]),
        categories=np.concatenate([be.categories, remap_categories[de.categories]])
        if len(de.categories)
        else be.categories.copy(),
        restricted=np.concatenate([be.restricted, de.restricted]),
        contacts=np.concatenate([be.contacts, remap_contacts[de.contacts]])
        if len(de.contacts)
        else be.contacts.copy(),
        category_names=categories,
        contact_table=contacts,
    )
    aliases = dict(base.aliases)
    aliases.update({n + row: names for row, names in delta.aliases.items()})
    return MatchIndex(
        keys=base.keys + delta.keys,
        given=base.given + delta.given,
        family=base.family + delta.family,
        family_parts=base.family_parts + delta.family_parts,
        dob=np.concatenate([base.dob, delta.dob]),
        gender=np.concatenate([base.gender, delta.gender]),
        postcode=base.postcode + delta.postcode,
        address=base.address + delta.address,
        uprn=np.concatenate([base.uprn, delta.uprn]),
        nhs=np.concatenate([base.nhs, delta.nhs]),
        restricted=np.concatenate([base.restricted, delta.restricted]),
        family_hash=np.concatenate([base.family_hash, delta.family_hash]),
        given_hash=np.concatenate([base.given_hash, delta.given_hash]),
        postcode_hash=np.concatenate([base.postcode_hash, delta.postcode_hash]),
        aliases=aliases,
        events=events,
        blocks=blocks,
        family_counts=+family_counts,
        given_counts=+given_counts,
        postcode_counts=+postcode_counts,
        middle_counts=+middle_counts,
        row_of=row_of,
        deleted=np.concatenate([deleted, np.zeros(len(delta.keys), dtype=np.bool_)]),
        any_deleted=bool(deleted.any()),
        watermarks={**base.watermarks, **delta.watermarks},
        built_at=base.built_at,
        skipped=base.skipped + delta.skipped,
    )
