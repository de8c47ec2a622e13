"""The matching engine's decisions on a synthetic agency, and what it discloses."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.core.disclosure import finding_for
from adapters.core.index import MatchIndex
from adapters.core.matching import Matcher, query_fields
from adapters.core.records import SeedEvent, SeedPerson
from adapters.core.source import Contact
from protos.lateral.v1 import common_pb2
from synth import ERROR_TYPES, Person, SynthConfig, SyntheticData, generate
from synth.config import police_knowing
from synth.errors import ERRORS, record_of
from tests.unit.synthetic_index import index_of

TODAY = dt.date(2026, 11, 21)
K, N, P = common_pb2.OUTCOME_KNOWN, common_pb2.OUTCOME_NOT_KNOWN, common_pb2.OUTCOME_POSSIBLE
DESK = Contact("Duty Desk", "MASH", "01632 960000", "duty@example.org")
_GENDER = {
    "female": common_pb2.GENDER_FEMALE,
    "male": common_pb2.GENDER_MALE,
    "other": common_pb2.GENDER_OTHER,
}


@pytest.fixture(scope="module")
def town() -> SyntheticData:
    """A town whose police know three in four people, so twins and namesakes of known people exist."""
    return generate(SynthConfig(people=20_000, seed=17, coverage=police_knowing(0.75)), TODAY)


@pytest.fixture(scope="module")
def police(town: SyntheticData) -> MatchIndex:
    return index_of(town.records["police"].people)


def subject_of(person: Person, *, postcode: bool = True, address: bool = True) -> common_pb2.Subject:
    """What a MASH worker would type about a person."""
    subject = common_pb2.Subject(
        given_names=list(person.given_names),
        family_name=person.family_name,
        date_of_birth=person.date_of_birth.isoformat(),
        gender=_GENDER.get(person.gender, common_pb2.GENDER_UNSPECIFIED),
    )
    if postcode:
        subject.address.postcode = person.address.postcode
    if address:
        subject.address.lines.append(person.address.line)
    return subject


def known(
    town: SyntheticData, agency: str = "police", errors: tuple[str, ...] = ()
) -> list[tuple[Person, list[str]]]:
    """People an agency records once, with exactly these errors on the record, and their record keys."""
    people = {p.person_id: p for p in town.population.people()}
    rows: dict[int, list[tuple[int, tuple[str, ...]]]] = {}
    for row in town.records[agency].truth:
        rows.setdefault(row.person_id, []).append((row.record_id, row.errors))
    return [
        (people[pid], [str(rid) for rid, _ in recs])
        for pid, recs in rows.items()
        if len(recs) == 1 and recs[0][1] == errors
    ]


def test_clean_records_are_known_with_their_key(town: SyntheticData, police: MatchIndex) -> None:
    matcher = Matcher(police)
    cases = known(town)[:300]
    for person, keys in cases:
        result = matcher.match(subject_of(person))
        assert result.outcome == K, result.explanation
        assert list(result.record_keys) == keys
        assert result.score >= 0.999
        assert result.explanation.startswith("KNOWN: ")


def test_single_recording_errors_are_found(town: SyntheticData, police: MatchIndex) -> None:
    matcher = Matcher(police)
    for error in (
        "nickname",
        "typo_keyboard",
        "typo_ocr",
        "typo_phonetic",
        "dob_digit",
        "name_swap",
        "transliteration",
        "diacritics_dropped",
        "hyphen_split_join",
        "missing_gender",
    ):
        cases = known(town, errors=(error,))[:20]
        assert cases, error
        hits = 0
        for person, keys in cases:
            result = matcher.match(subject_of(person))
            hits += result.outcome in (K, P) and keys[0] in result.record_keys
            if result.outcome == K:
                assert list(result.record_keys) == keys, (error, result.explanation)
        assert hits == len(cases), error


def test_stale_address_and_missing_date_of_birth_are_possible_not_known(town: SyntheticData) -> None:
    police = index_of(town.records["police"].people)
    matcher = Matcher(police)
    for error in ("stale_address", "missing_date_of_birth"):
        for person, keys in known(town, errors=(error,))[:15]:
            result = matcher.match(subject_of(person))
            if (
                error == "stale_address"
                and person.previous_address.postcode[:3] == person.address.postcode[:3]
            ):
                continue  # a move within the district is no conflict, and may well be KNOWN
            assert result.outcome == P, (error, result.explanation)
            assert keys[0] in result.record_keys


def test_unknown_people_are_not_known(town: SyntheticData, police: MatchIndex) -> None:
    matcher = Matcher(police)
    known_ids = {row.person_id for row in town.records["police"].truth}
    strangers = [p for p in town.population.people() if p.person_id not in known_ids][:500]
    outcomes = [matcher.match(subject_of(p)).outcome for p in strangers]
    assert outcomes.count(K) == 0


def test_a_twin_or_namesake_is_not_disclosed_as_their_relative(
    town: SyntheticData, police: MatchIndex
) -> None:
    matcher = Matcher(police)
    known_ids = {row.person_id for row in town.records["police"].truth}
    people = {p.person_id: p for p in town.population.people()}
    lookalikes = [
        p
        for p in people.values()
        if p.person_id not in known_ids
        and ((p.twin_of and p.twin_of in known_ids) or (p.namesake_of and p.namesake_of in known_ids))
    ]
    assert lookalikes
    assert all(matcher.match(subject_of(p)).outcome != K for p in lookalikes)


def test_the_same_name_and_birth_date_elsewhere_is_only_possible(
    town: SyntheticData, police: MatchIndex
) -> None:
    matcher = Matcher(police)
    for person, keys in known(town)[:50]:
        elsewhere = subject_of(person)
        elsewhere.address.postcode = "NT6 9ZZ" if not person.address.postcode.startswith("NT6") else "NT1 9ZZ"
        del elsewhere.address.lines[:]
        elsewhere.address.lines.append("1 Nowhere Lane")
        result = matcher.match(elsewhere)
        assert result.outcome == P, result.explanation
        assert keys[0] in result.record_keys


def person(
    record_id: int,
    given: str,
    family: str,
    born: dt.date | None,
    postcode: str,
    events: tuple[SeedEvent, ...] = (),
) -> SeedPerson:
    return SeedPerson(
        record_id, (given,), family, born, "female", "1 High Street", "Northtown", postcode, events=events
    )


def test_duplicate_records_of_one_person_are_known_together() -> None:
    born = dt.date(1990, 5, 1)
    index = index_of(
        [
            person(1, "Aisha", "Rahman", born, "NT1 4QT"),
            person(2, "Aisha", "Rahman", born, "NT1 4QT"),
            *[person(i, f"Zed{i}", f"Other{i}", born, "NT2 1AA") for i in range(3, 60)],
        ]
    )
    result = Matcher(index).match(
        common_pb2.Subject(
            given_names=["Aisha"],
            family_name="Rahman",
            date_of_birth="1990-05-01",
            address=common_pb2.Address(postcode="NT1 4QT", lines=["1 High Street"]),
        )
    )
    assert (result.outcome, result.record_keys) == (K, ("1", "2"))


def test_two_different_people_close_together_is_possible_naming_what_separates_them() -> None:
    born = dt.date(1990, 5, 1)
    index = index_of(
        [
            person(1, "Aisha", "Rahman", born, "NT1 4QT"),
            person(2, "Aisha", "Rahman", born, "NT5 2BB"),
            *[person(i, f"Zed{i}", f"Other{i}", born, "NT2 1AA") for i in range(3, 60)],
        ]
    )
    result = Matcher(index).match(
        common_pb2.Subject(given_names=["Aisha"], family_name="Rahman", date_of_birth="1990-05-01")
    )
    assert result.outcome == P
    assert set(result.record_keys) == {"1", "2"}
    assert common_pb2.ATTRIBUTE_POSTCODE in result.resolving_attributes
    assert result.explanation.startswith("POSSIBLE (another person scores close)")


def test_possible_discloses_only_the_resolving_attributes_and_the_desk(
    town: SyntheticData, police: MatchIndex
) -> None:
    moved = next(
        p
        for p, _ in known(town, errors=("stale_address",))
        if p.address.postcode.split()[0] != p.previous_address.postcode.split()[0]
    )
    result = Matcher(police).match(subject_of(moved))
    assert result.outcome == P
    finding = finding_for(result, police, DESK)
    assert (list(finding.categories), finding.latest_activity_date, finding.activity_count) == ([], "", 0)
    assert finding.contact.name == "Duty Desk"


def test_known_releases_activity_and_withholds_restricted_records() -> None:
    born = dt.date(2011, 2, 3)
    events = (
        SeedEvent(dt.date(2026, 1, 2), "referral"),
        SeedEvent(dt.date(2026, 6, 1), "assessment"),
        SeedEvent(dt.date(2025, 3, 3), "referral"),
    )
    index = index_of(
        [
            person(1, "Siobhán", "O'Brien", born, "NT1 4QT", events=events),
            person(
                2, "Ruth", "Kerr", born, "NT1 4QT", events=(SeedEvent(dt.date(2026, 2, 2), "violence", True),)
            ),
            *[person(i, f"Zed{i}", f"Other{i}", born, "NT2 1AA") for i in range(3, 60)],
        ]
    )
    matcher = Matcher(index)
    siobhan = matcher.match(
        common_pb2.Subject(
            given_names=["Siobhan"],
            family_name="OBRIEN",
            date_of_birth="2011-02-03",
            address=common_pb2.Address(postcode="nt1 4qt"),
        )
    )
    assert finding_for(siobhan, index, DESK) == common_pb2.Finding(
        outcome=K,
        categories=["assessment", "referral"],
        latest_activity_date="2026-06-01",
        activity_count=3,
        contact=common_pb2.Contact(
            name="Duty Desk", role="MASH", phone="01632 960000", email="duty@example.org"
        ),
    )
    ruth = matcher.match(
        common_pb2.Subject(
            given_names=["Ruth"],
            family_name="Kerr",
            date_of_birth="2011-02-03",
            address=common_pb2.Address(postcode="NT1 4QT"),
        )
    )
    assert finding_for(ruth, index, DESK) == common_pb2.Finding(
        outcome=common_pb2.OUTCOME_WITHHELD,
        contact=common_pb2.Contact(
            name="Duty Desk", role="MASH", phone="01632 960000", email="duty@example.org"
        ),
    )


# --- property: any single recording error still retrieves the true record --------------------------------


@pytest.fixture(scope="module")
def people(town: SyntheticData) -> list[Person]:
    return list(town.population.people())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_recording_error_still_retrieves_the_true_record(
    data: st.DataObject, people: list[Person], police: MatchIndex
) -> None:
    error = data.draw(st.sampled_from(ERROR_TYPES))
    agency = "socialcare" if error == "missing_nhs_number" else "police"
    candidates = [p for p in people[:3000] if ERRORS[error][0](p, agency)]
    if not candidates:
        return
    person_ = data.draw(st.sampled_from(candidates))
    seed = data.draw(st.integers(0, 2**32 - 1))
    rates = dict.fromkeys(ERROR_TYPES, 0.0) | {error: 1.0}
    draft = record_of(person_, agency, rates, random.Random(seed), alias_kept=0.0)
    record = SeedPerson(
        99_999_999,
        tuple(draft.given_names),
        draft.family_name,
        draft.date_of_birth,
        draft.gender,
        draft.address.line,
        draft.address.town,
        draft.address.postcode,
        draft.address.uprn,
        draft.nhs_number,
        tuple(draft.aliases),
    )
    # Retrieval depends only on shared blocking keys, so the record alone is index enough.
    index = index_of([record])
    rows = Matcher(index).candidates(query_fields(subject_of(person_)))
    assert list(rows) == [0], (error, draft)


def test_property_covers_every_error_type() -> None:
    assert set(ERRORS) == set(ERROR_TYPES)


NAME_ERRORS = (
    "typo_keyboard",
    "typo_ocr",
    "typo_phonetic",
    "nickname",
    "transliteration",
    "hyphen_split_join",
)
DATE_ERRORS = ("dob_digit", "dob_day_month_swap", "missing_date_of_birth")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_name_and_a_date_of_birth_both_wrong_still_retrieve_the_record_at_its_postcode(
    data: st.DataObject, people: list[Person]
) -> None:
    name_error, date_error = data.draw(st.sampled_from(NAME_ERRORS)), data.draw(st.sampled_from(DATE_ERRORS))
    candidates = [
        p for p in people[:3000] if ERRORS[name_error][0](p, "police") and ERRORS[date_error][0](p, "police")
    ]
    person_ = data.draw(st.sampled_from(candidates))
    rates = dict.fromkeys(ERROR_TYPES, 0.0) | {name_error: 1.0, date_error: 1.0}
    draft = record_of(person_, "police", rates, random.Random(data.draw(st.integers(0, 2**32 - 1))), 0.0)
    record = person(1, draft.given_names[0], draft.family_name, draft.date_of_birth, draft.address.postcode)
    rows = Matcher(index_of([record])).candidates(query_fields(subject_of(person_)))
    assert list(rows) == [0], (name_error, date_error, draft)


def test_a_common_family_name_and_birth_year_gather_no_crowd() -> None:
    """Blocks hold the same handful at any size: 400 Smiths born in 1980 are not candidates for one."""
    rng = random.Random(3)
    crowd = [
        person(i, f"Given{i}", "Smith", dt.date(1980, rng.randint(1, 12), rng.randint(1, 28)), "NT2 1AA")
        for i in range(2, 402)
    ]
    index = index_of([person(1, "Aisha", "Smith", dt.date(1980, 5, 1), "NT1 4QT"), *crowd])
    subject = common_pb2.Subject(
        given_names=["Aisha"],
        family_name="Smith",
        date_of_birth="1980-05-01",
        address=common_pb2.Address(postcode="NT1 4QT"),
    )
    matcher = Matcher(index)
    rows = matcher.candidates(query_fields(subject))
    same_day = [i for i, p in enumerate(crowd, start=1) if p.date_of_birth == dt.date(1980, 5, 1)]
    assert sorted(rows.tolist()) == [0, *same_day]
    assert matcher.match(subject).record_keys == ("1",)


def test_household_members_without_a_date_of_birth_are_not_candidates_for_each_other() -> None:
    index = index_of(
        [
            person(1, "Aisha", "Rahman", None, "NT1 4QT"),
            person(2, "Bilal", "Rahman", None, "NT1 4QT"),
            person(3, "Aysha", "Rahmen", None, "NT1 4QT"),  # both names mistyped, no date: still her
        ]
    )
    subject = common_pb2.Subject(
        given_names=["Aisha"],
        family_name="Rahman",
        date_of_birth="2001-03-04",
        address=common_pb2.Address(postcode="NT1 4QT"),
    )
    assert sorted(Matcher(index).candidates(query_fields(subject)).tolist()) == [0, 2]
