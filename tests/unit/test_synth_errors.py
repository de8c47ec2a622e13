"""Each recording error, applied alone, edits the record the way the error model says."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from policy import normalise_postcode
from synth import ERROR_TYPES, SynthConfig, generate
from synth.errors import ERRORS, Draft, record_of, strip_diacritics
from synth.names import nicknames_of, transliteration_variants
from synth.population import Person

TODAY = dt.date(2026, 11, 21)


@pytest.fixture(scope="module")
def people() -> list[Person]:
    return list(generate(SynthConfig(people=20_000, seed=2), TODAY).population.people())


def only(error: str, person: Person, agency: str = "socialcare", seed: int = 0) -> Draft:
    rates = dict.fromkeys(ERROR_TYPES, 0.0) | {error: 1.0}
    draft = record_of(person, agency, rates, random.Random(seed), alias_kept=1.0)
    assert draft.errors == [error]
    return draft


def applicable(error: str, people: list[Person], agency: str = "socialcare") -> list[Person]:
    found = [p for p in people if ERRORS[error][0](p, agency)]
    assert len(found) >= 5, error
    return found[:200]


def test_every_error_type_has_a_rule_and_keeps_order() -> None:
    assert tuple(ERRORS) == ERROR_TYPES


def test_no_error_means_an_exact_copy(people: list[Person]) -> None:
    person = people[0]
    draft = record_of(person, "nhs", dict.fromkeys(ERROR_TYPES, 0.0), random.Random(1), alias_kept=0.5)
    assert (draft.given_names, draft.family_name, draft.date_of_birth, draft.nhs_number, draft.errors) == (
        list(person.given_names),
        person.family_name,
        person.date_of_birth,
        person.nhs_number,
        [],
    )


def test_typos_change_one_name_a_little(people: list[Person]) -> None:
    for error in ("typo_keyboard", "typo_ocr", "typo_phonetic"):
        for seed, person in enumerate(people[:200]):
            draft = only(error, person, seed=seed)
            changed = [
                (a, b)
                for a, b in (
                    (draft.family_name, person.family_name),
                    (draft.given_names[0], person.given_names[0]),
                )
                if a != b
            ]
            assert len(changed) <= 1
            if changed:
                edited, original = changed[0]
                assert abs(len(edited) - len(original)) <= 1, (error, edited, original)


def test_nickname_comes_from_the_nickname_data(people: list[Person]) -> None:
    for person in applicable("nickname", people):
        draft = only("nickname", person)
        assert draft.given_names[0] in nicknames_of(person.given_names[0])


def test_name_swap(people: list[Person]) -> None:
    person = people[5]
    draft = only("name_swap", person)
    assert (draft.given_names, draft.family_name) == ([person.family_name], person.given_names[0])


def test_hyphenated_names_split_or_joined(people: list[Person]) -> None:
    for person in applicable("hyphen_split_join", people):
        parts = person.family_name.split("-")
        assert only("hyphen_split_join", person).family_name in {
            " ".join(parts),
            "".join(parts),
            parts[0],
            parts[-1],
        }


def test_marriage_keeps_the_birth_name_and_old_address_with_the_new_name_as_alias(
    people: list[Person],
) -> None:
    for person in applicable("marriage", people):
        draft = only("marriage", person)
        assert draft.family_name == person.birth_family_name != person.family_name
        assert draft.address == person.previous_address != person.address
        assert draft.aliases == [(" ".join(person.given_names), person.family_name)]


def test_date_of_birth_errors_stay_real_and_past(people: list[Person]) -> None:
    for person in applicable("dob_day_month_swap", people):
        draft = only("dob_day_month_swap", person)
        born = person.date_of_birth
        assert draft.date_of_birth == dt.date(born.year, born.day, born.month)
    for seed, person in enumerate(people[:300]):
        draft = only("dob_digit", person, seed=seed)
        assert draft.date_of_birth is not None
        assert draft.date_of_birth != person.date_of_birth
        assert draft.date_of_birth <= dt.date.today()
        differing = [
            a != b
            for a, b in zip(draft.date_of_birth.isoformat(), person.date_of_birth.isoformat(), strict=False)
        ]
        assert sum(differing) == 1


def test_postcode_typo_keeps_the_format_and_changes_one_character(people: list[Person]) -> None:
    for seed, person in enumerate(people[:300]):
        postcode = only("postcode_typo", person, seed=seed).address.postcode
        assert normalise_postcode(postcode) == postcode
        assert sum(a != b for a, b in zip(postcode, person.address.postcode, strict=True)) == 1


def test_missing_fields_and_stale_address(people: list[Person]) -> None:
    person = people[7]
    assert only("missing_date_of_birth", person).date_of_birth is None
    assert only("missing_nhs_number", person).nhs_number == ""
    assert only("missing_postcode", person).address.postcode == ""
    assert only("missing_gender", person).gender == "not_known"
    assert only("stale_address", person).address == person.previous_address
    # Police and fire hold no NHS numbers at all, so missing one is no error there.
    assert not ERRORS["missing_nhs_number"][0](person, "police")


def test_diacritics_and_transliteration(people: list[Person]) -> None:
    assert strip_diacritics("Łukasz Zoë Siân Ó Súilleabháin") == "Lukasz Zoe Sian O Suilleabhain"
    for person in applicable("diacritics_dropped", people):
        draft = only("diacritics_dropped", person)
        assert draft.family_name == strip_diacritics(person.family_name)
        assert draft.given_names == [strip_diacritics(g) for g in person.given_names]
    variants = transliteration_variants()
    for person in applicable("transliteration", people):
        draft = only("transliteration", person)
        before = [*person.given_names, person.family_name]
        after = [*draft.given_names, draft.family_name]
        changed = [(a, b) for a, b in zip(before, after, strict=False) if a != b]
        assert len(changed) == 1
        assert changed[0][1] in variants[changed[0][0]]
