"""Each agency's records of the people it knows, with recording errors, and the ground truth that links
every record to its person. The truth never goes into an agency database."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from adapters.core.records import SeedEvent, SeedPerson
from synth.config import AGENCIES, ERROR_TYPES
from synth.coverage import Coverage
from synth.errors import Draft, record_of
from synth.population import Person, Population


@dataclass(frozen=True, slots=True)
class TruthRow:
    agency: str
    record_id: int
    person_id: int
    errors: tuple[str, ...]


@dataclass
class AgencyRecords:
    agency: str
    people: list[SeedPerson] = field(default_factory=list)
    truth: list[TruthRow] = field(default_factory=list)

    def records_of(self) -> dict[int, list[int]]:
        """person id -> record ids at this agency."""
        out: dict[int, list[int]] = {}
        for row in self.truth:
            out.setdefault(row.person_id, []).append(row.record_id)
        return out


def _seed(draft: Draft, record_id: int, events: tuple[SeedEvent, ...]) -> SeedPerson:
    return SeedPerson(
        record_id=record_id,
        given_names=tuple(draft.given_names),
        family_name=draft.family_name,
        date_of_birth=draft.date_of_birth,
        gender=draft.gender,
        address_line=draft.address.line,
        town=draft.address.town,
        postcode=draft.address.postcode,
        uprn=draft.address.uprn,
        nhs_number=draft.nhs_number,
        other_names=tuple(draft.aliases),
        events=events,
    )


def build_records(population: Population, coverage: Coverage) -> dict[str, AgencyRecords]:
    """Every agency's records, in a shuffled order with record ids 1..n (ids say nothing about people)."""
    config = population.config
    people = {p.person_id: p for p in population.people()}
    out: dict[str, AgencyRecords] = {}
    for agency in AGENCIES:
        rng = random.Random(f"{config.seed}:records:{agency}")
        rates_model = config.error_rates(agency)
        rates = {name: getattr(rates_model, name) for name in ERROR_TYPES}
        drafts: list[tuple[Draft, Person, tuple[SeedEvent, ...]]] = []
        for person_id, known in coverage.activity.items():
            events = known.get(agency)
            if events is None:
                continue
            person = people[person_id]
            if len(events) > 1 and rng.random() < config.coverage.duplicate_record:
                # Recorded twice, each record holding part of the activity.
                cut = rng.randint(1, len(events) - 1)
                for part in (events[:cut], events[cut:]):
                    drafts.append(
                        (record_of(person, agency, rates, rng, rates_model.alias_kept), person, part)
                    )
            else:
                drafts.append((record_of(person, agency, rates, rng, rates_model.alias_kept), person, events))
        rng.shuffle(drafts)
        records = AgencyRecords(agency)
        for record_id, (draft, person, events) in enumerate(drafts, start=1):
            records.people.append(_seed(draft, record_id, events))
            records.truth.append(TruthRow(agency, record_id, person.person_id, tuple(draft.errors)))
        out[agency] = records
    return out
