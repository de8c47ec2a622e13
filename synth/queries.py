"""Query sets for evaluating an agency's matching: a CSV in `lateral adapter match` input format and a
truth file saying, per query, what the right answer is and what makes it hard."""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters.core.dryrun import INPUT_COLUMNS
from synth.output import SyntheticData
from synth.places import AddressBook
from synth.population import Person

# The queries are the admin's dry-run input: one format, defined there.
QUERY_COLUMNS = INPUT_COLUMNS
TRUTH_COLUMNS = ("query_id", "expected", "person_id", "record_ids", "tag")
HARD_NEGATIVES = ("twin", "sibling", "namesake", "doppelganger")


@dataclass(frozen=True)
class Query:
    query_id: str
    given_name: str
    family_name: str
    date_of_birth: str
    gender: str
    address: str
    postcode: str
    nhs_number: str
    # KNOWN or NOT_KNOWN; person_id 0 is someone outside the population.
    expected: str
    person_id: int
    record_ids: tuple[int, ...]
    # "clean", the recording errors on the agency's records (";"-joined), "unknown" or "hard_negative:<kind>".
    tag: str


def _query(
    rng: random.Random,
    number: int,
    person: Person,
    expected: str,
    record_ids: Sequence[int],
    tag: str,
    *,
    address_line: str | None = None,
    postcode: str | None = None,
    person_id: int | None = None,
) -> Query:
    """What a MASH worker would type: the person's current details, some left out."""
    return Query(
        query_id=f"q{number:07d}",
        given_name=" ".join(person.given_names),
        family_name=person.family_name,
        date_of_birth=person.date_of_birth.isoformat(),
        gender="" if rng.random() < 0.2 else person.gender,
        # A lookalike elsewhere always comes with that address: without it nothing could tell them apart.
        address=address_line or (person.address.line if rng.random() < 0.5 else ""),
        postcode=postcode or ("" if rng.random() < 0.15 else person.address.postcode),
        nhs_number=person.nhs_number if rng.random() < 0.4 and person_id is None else "",
        expected=expected,
        person_id=person.person_id if person_id is None else person_id,
        record_ids=tuple(record_ids),
        tag=tag,
    )


def make_queries(data: SyntheticData, agency: str, count: int, seed: int = 1) -> list[Query]:
    """About half people the agency knows, 40% people it does not, 10% hard negatives.

    Hard negatives are people the agency does not know who look like someone it does: a twin, a sibling at
    the same address, a parent or son with the same names, and the same name and date of birth in the other
    town (someone outside the population).
    """
    rng = random.Random(f"{data.population.config.seed}:queries:{agency}:{seed}")
    records = data.records[agency]
    by_person = records.records_of()
    errors: dict[int, list[str]] = {}
    for row in records.truth:
        errors.setdefault(row.person_id, []).extend(row.errors)
    people = list(data.population.people())
    index = {p.person_id: p for p in people}
    known_people = sorted(by_person)
    unknown_people = [p for p in people if p.person_id not in by_person]

    negatives: dict[str, list[Person]] = {kind: [] for kind in HARD_NEGATIVES}
    households: dict[int, list[Person]] = {}
    for p in people:
        households.setdefault(p.household_id, []).append(p)
    for p in unknown_people:
        if p.twin_of and p.twin_of in by_person:
            negatives["twin"].append(p)
        if p.namesake_of and p.namesake_of in by_person:
            negatives["namesake"].append(p)
        others = [o for o in households[p.household_id] if o.person_id != p.person_id]
        if any(o.family_name == p.family_name and o.person_id in by_person for o in others):
            negatives["sibling"].append(p)
    for person_id in known_people:
        namesake = index[person_id]
        if namesake.namesake_of and namesake.namesake_of not in by_person:
            negatives["namesake"].append(index[namesake.namesake_of])
        twin = next((q for q in households[namesake.household_id] if q.twin_of == person_id), None)
        if twin is not None and twin.person_id not in by_person:
            negatives["twin"].append(twin)

    n_known, n_hard = count // 2, count // 10
    n_unknown = count - n_known - n_hard
    queries: list[Query] = []
    for person_id in rng.sample(known_people, min(n_known, len(known_people))):
        tag = ";".join(dict.fromkeys(errors.get(person_id, []))) or "clean"
        queries.append(_query(rng, len(queries) + 1, index[person_id], "KNOWN", by_person[person_id], tag))
    per_kind = n_hard // len(HARD_NEGATIVES)
    elsewhere = AddressBook(rng, 2 * per_kind + 100)
    for kind in HARD_NEGATIVES:
        if kind == "doppelganger":
            for person_id in rng.sample(known_people, min(per_kind, len(known_people))):
                person = index[person_id]
                other = elsewhere.new(outside=person.address.town)
                queries.append(
                    _query(
                        rng,
                        len(queries) + 1,
                        person,
                        "NOT_KNOWN",
                        (),
                        f"hard_negative:{kind}",
                        address_line=other.line,
                        postcode=other.postcode,
                        person_id=0,
                    )
                )
            continue
        pool = list({p.person_id: p for p in negatives[kind]}.values())
        for person in rng.sample(pool, min(per_kind, len(pool))):
            queries.append(_query(rng, len(queries) + 1, person, "NOT_KNOWN", (), f"hard_negative:{kind}"))
    missing = n_unknown + n_hard - sum(q.tag.startswith("hard_negative") for q in queries)
    for person in rng.sample(unknown_people, min(missing, len(unknown_people))):
        queries.append(_query(rng, len(queries) + 1, person, "NOT_KNOWN", (), "unknown"))
    return queries


def write_queries(queries: Sequence[Query], queries_path: Path, truth_path: Path) -> None:
    """Writes the queries (adapter match input format) and, separately, their truth."""
    with queries_path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(QUERY_COLUMNS)
        for q in queries:
            out.writerow(
                (
                    q.query_id,
                    q.given_name,
                    q.family_name,
                    q.date_of_birth,
                    q.gender,
                    q.address,
                    q.postcode,
                    q.nhs_number,
                )
            )
    with truth_path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(TRUTH_COLUMNS)
        for q in queries:
            out.writerow((q.query_id, q.expected, q.person_id or "", ";".join(map(str, q.record_ids)), q.tag))
