"""The local match index: normalised people with blocking keys, and their activity, held in memory."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from adapters.core.normalise import date_key, first_given_key, name_key, nhs_key, postcode_key
from adapters.core.source import SourceEvent, SourceSnapshot


@dataclass(frozen=True, slots=True)
class IndexedPerson:
    record_key: str
    given: str
    family: str
    date_of_birth: dt.date | None
    postcode: str
    nhs_number: str
    restricted: bool


@dataclass
class MatchIndex:
    """People by blocking key. Built once from a snapshot; replaced whole when refreshed."""

    people: dict[str, IndexedPerson] = field(default_factory=dict)
    by_name: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    by_nhs: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # Activity per record key, most recent first.
    events: dict[str, list[SourceEvent]] = field(default_factory=dict)
    record_count: int = 0
    activity_count: int = 0
    watermark: str = ""
    built_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @classmethod
    def build(cls, snapshot: SourceSnapshot) -> MatchIndex:
        """Builds the index from one read of the source."""
        index = cls(
            record_count=len(snapshot.people),
            activity_count=len(snapshot.events),
            watermark=snapshot.watermark,
        )
        for person in snapshot.people:
            indexed = IndexedPerson(
                record_key=person.record_key,
                given=first_given_key(person.given_names),
                family=name_key(person.family_name),
                date_of_birth=date_key(person.date_of_birth),
                postcode=postcode_key(person.postcode),
                nhs_number=nhs_key(person.nhs_number),
                restricted=person.restricted,
            )
            # Duplicate rows for one key (a person at two addresses) keep the first; their names index alike.
            index.people.setdefault(person.record_key, indexed)
            index.by_name[(indexed.family, indexed.given)].add(person.record_key)
            if indexed.nhs_number:
                index.by_nhs[indexed.nhs_number].add(person.record_key)
        for alias in snapshot.aliases:
            if alias.record_key in index.people:
                index.by_name[(name_key(alias.family_name), first_given_key(alias.given_names))].add(
                    alias.record_key
                )
        grouped: dict[str, list[SourceEvent]] = defaultdict(list)
        for event in snapshot.events:
            if event.record_key in index.people:
                grouped[event.record_key].append(event)
        index.events = {
            key: sorted(evts, key=lambda e: e.activity_date, reverse=True) for key, evts in grouped.items()
        }
        return index

    @property
    def person_count(self) -> int:
        return len(self.people)
