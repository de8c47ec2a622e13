"""Looking up the synthetic ground truth behind an example, to say what an agency should answer."""

from __future__ import annotations

import datetime as dt

from adapters.core.records import SeedPerson
from lateral.demo import Prepared
from lateral.demo.examples import Example
from synth import Person


def person_of(prepared: Prepared, example: Example) -> Person:
    a = example.args
    return next(
        p
        for p in prepared.data.population.people()
        if p.given_names[0] == a["given-name"]
        and p.family_name == a["family-name"]
        and p.date_of_birth.isoformat() == a["dob"]
    )


def records_of(prepared: Prepared, agency: str, person: Person) -> list[SeedPerson]:
    records = prepared.data.records[agency]
    ids = {row.record_id for row in records.truth if row.person_id == person.person_id}
    return [r for r in records.people if r.record_id in ids]


def expected_activity(
    records: list[SeedPerson], *, since: dt.date, hidden: frozenset[str] = frozenset()
) -> tuple[list[str], str, int]:
    """What a KNOWN answer releases: categories most recent first, latest date, count; of the activity
    since the look-back date and outside the categories the agreement hides."""
    events = sorted(
        (e for r in records for e in r.events if e.date >= since and e.category not in hidden),
        key=lambda e: e.date,
        reverse=True,
    )
    latest: dt.date = events[0].date
    return list(dict.fromkeys(e.category for e in events)), latest.isoformat(), len(events)
