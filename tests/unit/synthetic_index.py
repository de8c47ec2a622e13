"""Agency records from the synthetic generator as an in-memory index (no database: pure logic tests)."""

from __future__ import annotations

from collections.abc import Iterable

from adapters.core.index import MatchIndex
from adapters.core.records import SeedPerson
from adapters.core.source import SourceAlias, SourceEvent, SourcePerson, SourceSnapshot


def snapshot_of(records: Iterable[SeedPerson]) -> SourceSnapshot:
    snapshot = SourceSnapshot()
    for r in records:
        key = str(r.record_id)
        snapshot.add_person(
            SourcePerson(
                record_key=key,
                given_names=r.given_names,
                family_name=r.family_name,
                date_of_birth=r.date_of_birth,
                gender=r.gender if r.gender != "not_known" else None,
                address=r.address_line,
                postcode=r.postcode,
                uprn=r.uprn,
                nhs_number=r.nhs_number,
                restricted=r.restricted,
            )
        )
        for given, family in r.other_names:
            snapshot.add_alias(SourceAlias(key, tuple(given.split()), family))
        for e in r.events:
            snapshot.add_event(SourceEvent(key, e.date, e.category, e.restricted))
    return snapshot


def index_of(records: Iterable[SeedPerson]) -> MatchIndex:
    return MatchIndex.build(snapshot_of(records))
