"""Query sets: the right mix, each query's truth consistent with the agency's records."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from synth import SynthConfig, SyntheticData, generate, make_queries
from synth.queries import HARD_NEGATIVES

TODAY = dt.date(2026, 11, 21)


@pytest.fixture(scope="module")
def town() -> SyntheticData:
    return generate(SynthConfig(people=30_000, seed=8), TODAY)


@pytest.mark.parametrize("agency", ["police", "socialcare"])
def test_mix_of_known_unknown_and_hard_negatives(town: SyntheticData, agency: str) -> None:
    queries = make_queries(town, agency, 1000, seed=3)
    assert len(queries) == 1000
    assert len({q.query_id for q in queries}) == 1000
    kinds = Counter("known" if q.expected == "KNOWN" else q.tag.split(":")[0] for q in queries)
    assert kinds["known"] == 500
    assert kinds["unknown"] + kinds["hard_negative"] == 500
    assert kinds["hard_negative"] >= 50
    assert {q.tag.split(":")[1] for q in queries if q.tag.startswith("hard_negative")} >= {
        "sibling",
        "doppelganger",
    }


def test_truth_agrees_with_the_agency_records(town: SyntheticData) -> None:
    agency = "police"
    queries = make_queries(town, agency, 1000)
    truth = {row.record_id: row for row in town.records[agency].truth}
    known_people = {row.person_id for row in truth.values()}
    people = {p.person_id: p for p in town.population.people()}
    for q in queries:
        if q.expected == "KNOWN":
            assert q.record_ids
            assert {truth[r].person_id for r in q.record_ids} == {q.person_id}
            errors = {e for r in q.record_ids for e in truth[r].errors}
            assert q.tag == (";".join(sorted(errors, key=q.tag.split(";").index)) if errors else "clean")
            person = people[q.person_id]
            assert (q.family_name, q.date_of_birth) == (person.family_name, person.date_of_birth.isoformat())
        else:
            assert q.record_ids == ()
            assert q.person_id == 0 or q.person_id not in known_people


def test_hard_negatives_look_like_someone_known(town: SyntheticData) -> None:
    agency = "nhs"
    queries = make_queries(town, agency, 4000)
    people = {p.person_id: p for p in town.population.people()}
    known = {row.person_id for row in town.records[agency].truth}
    kinds = Counter(q.tag for q in queries if q.tag.startswith("hard_negative"))
    assert set(kinds) == {f"hard_negative:{k}" for k in HARD_NEGATIVES}
    for q in queries:
        if q.tag == "hard_negative:twin":
            assert people[people[q.person_id].twin_of].person_id in known or any(
                p.twin_of == q.person_id and p.person_id in known for p in people.values()
            )
        if q.tag == "hard_negative:doppelganger":
            lookalike = [
                p
                for p in people.values()
                if (p.family_name, p.date_of_birth.isoformat()) == (q.family_name, q.date_of_birth)
                and p.person_id in known
            ]
            assert lookalike
            assert all(q.postcode[:3] != p.address.postcode[:3] or not q.postcode for p in lookalike)
            assert q.nhs_number == ""


def test_same_seed_same_queries(town: SyntheticData) -> None:
    assert make_queries(town, "fire", 300, seed=9) == make_queries(town, "fire", 300, seed=9)
    assert make_queries(town, "fire", 300, seed=9) != make_queries(town, "fire", 300, seed=10)
