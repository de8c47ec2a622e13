"""The synthetic population: determinism, valid identifiers, complete truth, overlaps and error rates."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter

import pytest

from policy import is_valid_nhs_number
from synth import AGENCIES, SynthConfig, SyntheticData, generate
from synth.config import CoverageRates, ErrorRates
from synth.measure import error_rates, overlaps

TODAY = dt.date(2026, 11, 21)


@pytest.fixture(scope="module")
def town() -> SyntheticData:
    """50,000 people: large enough to measure rates against what was asked."""
    return generate(SynthConfig(people=50_000, seed=11), TODAY)


def tolerance(p: float, n: int) -> float:
    """Four standard errors of a proportion, and never under one percentage point."""
    return max(0.01, 4 * math.sqrt(p * (1 - p) / n))


def test_same_seed_same_data_and_another_seed_other_data() -> None:
    first = generate(SynthConfig(people=3000, seed=5), TODAY)
    again = generate(SynthConfig(people=3000, seed=5), TODAY)
    other = generate(SynthConfig(people=3000, seed=6), TODAY)
    assert list(first.population.people()) == list(again.population.people())
    assert all(first.records[a].people == again.records[a].people for a in AGENCIES)
    assert all(first.records[a].truth == again.records[a].truth for a in AGENCIES)
    assert list(first.population.people()) != list(other.population.people())


def test_population_size_and_households(town: SyntheticData) -> None:
    people = list(town.population.people())
    assert len(people) == 50_000
    assert len({p.person_id for p in people}) == 50_000
    sizes = Counter(len(h.members) for h in town.population.households)
    assert 0.25 < sizes[1] / len(town.population.households) < 0.35
    for household in town.population.households:
        assert len({p.address for p in household.members}) == 1


def test_every_nhs_number_is_valid_and_unique(town: SyntheticData) -> None:
    numbers = [p.nhs_number for p in town.population.people()]
    assert all(is_valid_nhs_number(n) for n in numbers)
    assert len(set(numbers)) == len(numbers)
    recorded = [r.nhs_number for a in AGENCIES for r in town.records[a].people if r.nhs_number]
    assert recorded
    assert all(is_valid_nhs_number(n) for n in recorded)


def test_postcodes_are_valid_format_and_cluster_in_a_few_districts(town: SyntheticData) -> None:
    from policy import normalise_postcode

    postcodes = [p.address.postcode for p in town.population.people()]
    assert all(normalise_postcode(pc) == pc for pc in postcodes)
    districts = Counter(pc.split()[0] for pc in postcodes)
    assert set(districts) == {"NT1", "NT2", "NT3", "NT4", "NT5", "NT6"}


def test_age_structure_has_children_and_old_people(town: SyntheticData) -> None:
    ages = [p.age_on(TODAY) for p in town.population.people()]
    children = sum(a < 18 for a in ages) / len(ages)
    old = sum(a >= 65 for a in ages) / len(ages)
    assert 0.18 < children < 0.32
    assert 0.12 < old < 0.25
    assert max(ages) <= 100
    assert all(p.date_of_birth <= TODAY for p in town.population.people())


def test_origins_follow_the_mix_and_names_keep_their_letters(town: SyntheticData) -> None:
    people = list(town.population.people())
    origins = Counter(p.origin for p in people)
    mix = town.population.config.origins.model_dump()
    for origin, share in mix.items():
        assert abs(origins[origin] / len(people) - share) < 0.03, origin
    polish_women = [p for p in people if p.origin == "polish" and p.gender == "female"]
    assert not any(p.family_name.endswith("ski") for p in polish_women)
    assert any(not p.family_name.isascii() or not p.given_names[0].isascii() for p in people)


def test_hard_cases_exist_twins_and_namesakes(town: SyntheticData) -> None:
    people = {p.person_id: p for p in town.population.people()}
    twins = [p for p in people.values() if p.twin_of]
    namesakes = [p for p in people.values() if p.namesake_of]
    assert twins
    assert namesakes
    for twin in twins:
        other = people[twin.twin_of]
        assert (twin.date_of_birth, twin.household_id, twin.family_name) == (
            other.date_of_birth,
            other.household_id,
            other.family_name,
        )
    for son in namesakes:
        father = people[son.namesake_of]
        assert son.given_names == father.given_names
        assert son.household_id == father.household_id
        assert father.age_on(TODAY) - son.age_on(TODAY) >= 18


def test_ground_truth_is_complete(town: SyntheticData) -> None:
    people = {p.person_id for p in town.population.people()}
    for agency in AGENCIES:
        records = town.records[agency]
        assert [r.record_id for r in records.people] == list(range(1, len(records.people) + 1))
        assert [t.record_id for t in records.truth] == [r.record_id for r in records.people]
        assert {t.person_id for t in records.truth} <= people
        known = {pid for pid, agencies in town.coverage.activity.items() if agency in agencies}
        assert {t.person_id for t in records.truth} == known
        # Record ids are shuffled: they say nothing about who the person is.
        same = sum(t.record_id == t.person_id for t in records.truth)
        assert same < 0.01 * len(records.truth) + 3


def test_overlaps_follow_the_published_figures(town: SyntheticData) -> None:
    asked = town.population.config.coverage
    measured = overlaps(town)
    assert abs(measured["police_given_csc_child"] - asked.police_given_csc_child) < 0.06
    assert abs(measured["police_given_asc_adult"] - asked.police_given_asc_adult) < 0.06
    assert abs(measured["fire_csc_family_household"] - asked.fire_csc_family_household) < 0.08
    assert abs(measured["fire_other_household"] - asked.fire_other_household) < 0.01
    # Fire activity concentrates at the addresses of CSC families.
    assert measured["fire_csc_family_household"] > 8 * measured["fire_other_household"]
    assert measured["known_to_four"] >= 20


def test_configured_overlaps_are_honoured() -> None:
    config = SynthConfig(
        people=50_000, seed=3, coverage=CoverageRates(police_given_csc_child=0.8, police_given_asc_adult=0.1)
    )
    measured = overlaps(generate(config, TODAY))
    assert abs(measured["police_given_csc_child"] - 0.8) < 0.05
    assert abs(measured["police_given_asc_adult"] - 0.1) < 0.05


def test_error_rates_match_what_was_asked(town: SyntheticData) -> None:
    checked = 0
    for agency in AGENCIES:
        asked = town.population.config.error_rates(agency)
        for name, (applicable, applied) in error_rates(town, agency).items():
            if applicable < 300:
                continue
            rate = getattr(asked, name)
            assert abs(applied / applicable - rate) <= tolerance(rate, applicable), (agency, name)
            checked += 1
    assert checked >= 50


def test_configured_error_rates_are_honoured() -> None:
    config = SynthConfig(people=20_000, seed=4, errors={"nhs": ErrorRates(nickname=0.5, typo_keyboard=0.2)})
    measured = error_rates(generate(config, TODAY), "nhs")
    for name, rate in (("nickname", 0.5), ("typo_keyboard", 0.2)):
        applicable, applied = measured[name]
        assert abs(applied / applicable - rate) <= tolerance(rate, applicable)


def test_activity_uses_each_agencys_vocabulary(town: SyntheticData) -> None:
    from adapters.presets import PRESETS

    for agency in AGENCIES:
        vocabulary = set(PRESETS[agency].codes.categories)
        used = {e.category for r in town.records[agency].people for e in r.events}
        assert used, agency
        assert used <= vocabulary, agency
        assert all(e.date <= TODAY for r in town.records[agency].people for e in r.events)
