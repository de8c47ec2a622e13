import datetime as dt

import pytest

from lateral.errors import FieldViolation
from policy import Purpose, validate_check_request
from protos.lateral.v1 import broker_pb2, common_pb2

TODAY = dt.date(2026, 11, 21)
PURPOSES = {
    "child-safeguarding": Purpose(id="child-safeguarding", description="s47", lawful_basis=("CA 1989",)),
    "research": Purpose(
        id="research",
        description="r",
        lawful_basis=("consent",),
        requires_case_ref=False,
        requires_justification=False,
    ),
}


def request(**subject: object) -> broker_pb2.CheckRequest:
    fields: dict[str, object] = {
        "given_names": ["Jayden"],
        "family_name": "Clarke",
        "date_of_birth": "2012-03-14",
    }
    fields.update(subject)
    return broker_pb2.CheckRequest(
        subject=common_pb2.Subject(**fields),  # type: ignore[arg-type]
        purpose="child-safeguarding",
        justification="School referral",
        case_ref="MASH-0142",
    )


def violations(req: broker_pb2.CheckRequest) -> list[FieldViolation]:
    return validate_check_request(req, PURPOSES, TODAY)


def test_a_good_request_has_no_violations() -> None:
    assert (
        violations(request(nhs_number="943 476 5919", address=common_pb2.Address(postcode="nt1 4qt"))) == []
    )


@pytest.mark.parametrize(
    ("subject", "field", "description"),
    [
        ({"family_name": ""}, "subject.family_name", "is required"),
        ({"family_name": "   "}, "subject.family_name", "is required"),
        ({"given_names": []}, "subject.given_names", "at least one given name is required"),
        ({"family_name": "x" * 10_000}, "subject.family_name", "must be at most 100 characters"),
        ({"given_names": ["J" * 101]}, "subject.given_names[0]", "must be at most 100 characters"),
        (
            {"family_name": "Cl4rke"},
            "subject.family_name",
            "must contain only letters, spaces, hyphens, apostrophes and full stops",
        ),
        ({"date_of_birth": "2023-02-30"}, "subject.date_of_birth", "is not a real calendar date"),
        ({"date_of_birth": "14/03/2012"}, "subject.date_of_birth", "must be a date in the form YYYY-MM-DD"),
        ({"date_of_birth": "2026-11-22"}, "subject.date_of_birth", "must not be in the future"),
        ({"date_of_birth": "1899-12-31"}, "subject.date_of_birth", "must not be before 1900-01-01"),
        ({"nhs_number": "9434765918"}, "subject.nhs_number", "must be 10 digits with a valid check digit"),
        ({"gender": 99}, "subject.gender", "is not a known gender value"),
        (
            {"address": common_pb2.Address(postcode="NT1")},
            "subject.address.postcode",
            "must be a full UK postcode such as B1 1AA",
        ),
        ({"address": common_pb2.Address(uprn="12a")}, "subject.address.uprn", "must be 1 to 12 digits"),
        (
            {"other_names": [common_pb2.PersonName(given_names=["Liv"], family_name="")]},
            "subject.other_names[0].family_name",
            "is required",
        ),
    ],
)
def test_each_rule_names_its_field(subject: dict[str, object], field: str, description: str) -> None:
    assert violations(request(**subject)) == [FieldViolation(field, description)]


def test_names_of_every_script_and_punctuation_are_accepted() -> None:
    ok = request(given_names=["Siobhán", "Zoë"], family_name="O'Brien-Ní Dhuibhir")
    assert violations(ok) == []
    assert violations(request(given_names=["محمد"], family_name="Ó Súilleabháin")) == []


def test_every_problem_is_reported_at_once() -> None:
    req = request(family_name="", date_of_birth="2099-01-01")
    req.purpose = "gossip"
    fields = [v.field for v in violations(req)]
    assert fields == ["subject.family_name", "subject.date_of_birth", "purpose"]


def test_unknown_purpose_lists_the_known_ones_and_never_echoes_values() -> None:
    req = request(family_name="Zzyzx" * 30)
    req.purpose = "gossip"
    found = violations(req)
    assert (
        FieldViolation(
            "purpose", "is not a purpose of this data-sharing agreement (known: child-safeguarding, research)"
        )
        in found
    )
    assert all("Zzyzx" not in v.description and "gossip" not in v.description for v in found)


def test_purpose_rules_for_case_ref_and_justification() -> None:
    req = request()
    req.justification, req.case_ref = "", ""
    assert violations(req) == [
        FieldViolation("justification", "is required for purpose child-safeguarding"),
        FieldViolation("case_ref", "is required for purpose child-safeguarding"),
    ]
    req.purpose = "research"
    assert violations(req) == []


def test_missing_subject() -> None:
    req = broker_pb2.CheckRequest(purpose="research")
    assert violations(req) == [FieldViolation("subject", "is required")]


def test_oversized_free_text_is_bounded() -> None:
    req = request()
    req.justification = "j" * 2001
    req.case_ref = "R" * 65
    assert violations(req) == [
        FieldViolation("justification", "must be at most 2000 characters"),
        FieldViolation("case_ref", "must be at most 64 characters"),
    ]
