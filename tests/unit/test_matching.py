"""The walking skeleton's exact matcher and what it discloses, on in-memory snapshots."""

import datetime as dt

from adapters.core.disclosure import finding_for
from adapters.core.index import MatchIndex
from adapters.core.matching import match
from adapters.core.source import Contact, SourceAlias, SourceEvent, SourcePerson, SourceSnapshot
from protos.lateral.v1 import common_pb2

D = dt.date
DEFAULT = Contact("Duty Desk", "MASH", "01632 960000", "duty@example.org")
WORKER = Contact("Sam Okafor", "Children's Team", "01632 960411", "sam@example.org")


def index() -> MatchIndex:
    return MatchIndex.build(
        SourceSnapshot(
            people=[
                SourcePerson("1", ("Siobhán",), "O'Brien", D(2012, 3, 14), postcode="nt1 4qt"),
                SourcePerson("2", ("Darren",), "Pike", None, postcode="NT1 4QT"),
                SourcePerson("3", ("Mia",), "Jones", D(2001, 1, 1), nhs_number="943 476 5919"),
                SourcePerson("4", ("Ruth",), "Kerr", D(1970, 5, 5), restricted=True),
                SourcePerson("5", ("Ada",), "Lovelace", D(1990, 1, 1)),
            ],
            aliases=[SourceAlias("3", ("Mia",), "Smith")],
            events=[
                SourceEvent("1", D(2026, 1, 2), "referral"),
                SourceEvent("1", D(2026, 6, 1), "assessment", contact=WORKER),
                SourceEvent("1", D(2025, 3, 3), "referral"),
                SourceEvent("5", D(2026, 2, 2), "violence", restricted=True),
            ],
        )
    )


def subject(**fields: object) -> common_pb2.Subject:
    return common_pb2.Subject(**fields)  # type: ignore[arg-type]


def test_exact_match_ignores_case_accents_and_punctuation() -> None:
    result = match(
        index(), subject(given_names=["siobhan"], family_name="OBRIEN", date_of_birth="2012-03-14")
    )
    assert (result.outcome, result.record_keys) == (common_pb2.OUTCOME_KNOWN, ("1",))


def test_known_releases_categories_latest_date_count_and_the_most_specific_contact() -> None:
    idx = index()
    result = match(idx, subject(given_names=["Siobhán"], family_name="O'Brien", date_of_birth="2012-03-14"))
    finding = finding_for(result, idx, DEFAULT)
    assert finding == common_pb2.Finding(
        outcome=common_pb2.OUTCOME_KNOWN,
        categories=["assessment", "referral"],
        latest_activity_date="2026-06-01",
        activity_count=3,
        contact=common_pb2.Contact(
            name="Sam Okafor", role="Children's Team", phone="01632 960411", email="sam@example.org"
        ),
    )


def test_different_date_of_birth_is_not_a_match() -> None:
    result = match(
        index(), subject(given_names=["Siobhan"], family_name="O'Brien", date_of_birth="2012-03-15")
    )
    assert result.outcome == common_pb2.OUTCOME_NOT_KNOWN


def test_record_without_date_of_birth_is_possible_and_names_what_would_resolve_it() -> None:
    idx = index()
    result = match(idx, subject(given_names=["Darren"], family_name="Pike", date_of_birth="1985-11-30"))
    finding = finding_for(result, idx, DEFAULT)
    assert finding.outcome == common_pb2.OUTCOME_POSSIBLE
    assert list(finding.resolving_attributes) == [common_pb2.ATTRIBUTE_POSTCODE]
    # Nothing else is disclosed, and the contact is the agency's, not a named worker.
    assert (list(finding.categories), finding.latest_activity_date, finding.activity_count) == ([], "", 0)
    assert finding.contact.name == "Duty Desk"


def test_query_without_date_of_birth_asks_for_it() -> None:
    result = match(index(), subject(given_names=["Siobhan"], family_name="O'Brien"))
    assert result.outcome == common_pb2.OUTCOME_POSSIBLE
    assert list(result.resolving_attributes) == [
        common_pb2.ATTRIBUTE_DATE_OF_BIRTH,
        common_pb2.ATTRIBUTE_POSTCODE,
    ]


def test_previous_name_and_nhs_number_match() -> None:
    idx = index()
    by_alias = match(idx, subject(given_names=["Mia"], family_name="Smith", date_of_birth="2001-01-01"))
    assert (by_alias.outcome, by_alias.record_keys) == (common_pb2.OUTCOME_KNOWN, ("3",))
    by_nhs = match(idx, subject(given_names=["M"], family_name="Jones", nhs_number="9434765919"))
    assert (by_nhs.outcome, by_nhs.record_keys) == (common_pb2.OUTCOME_KNOWN, ("3",))
    nhs_only = match(idx, subject(given_names=["Zed"], family_name="Other", nhs_number="9434765919"))
    assert nhs_only.outcome == common_pb2.OUTCOME_POSSIBLE


def test_restricted_person_or_activity_is_withheld_with_only_the_agency_contact() -> None:
    idx = index()
    for given, family, dob in (("Ruth", "Kerr", "1970-05-05"), ("Ada", "Lovelace", "1990-01-01")):
        finding = finding_for(
            match(idx, subject(given_names=[given], family_name=family, date_of_birth=dob)), idx, DEFAULT
        )
        assert finding == common_pb2.Finding(
            outcome=common_pb2.OUTCOME_WITHHELD,
            contact=common_pb2.Contact(
                name="Duty Desk", role="MASH", phone="01632 960000", email="duty@example.org"
            ),
        )


def test_unknown_person() -> None:
    result = match(index(), subject(given_names=["Nobody"], family_name="Here", date_of_birth="2000-01-01"))
    assert result.outcome == common_pb2.OUTCOME_NOT_KNOWN
    assert result.record_keys == ()
