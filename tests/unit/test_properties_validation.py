"""Properties of request validation for any request (hypothesis), gRPC or REST: it returns violations and
never raises, names real fields without quoting values, and what it accepts keeps its promises to matching
(the checks of fuzz/request_validation.py); and what it accepts and refuses, field by field."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from fuzz.request_validation import (
    TODAY,
    check_request,
    household_request,
    purposes,
    rest_json,
    validate_check,
    validate_household,
)
from policy.validation import validate_check_request
from protos.lateral.v1 import broker_pb2, common_pb2

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
NAME = st.one_of(st.sampled_from(["Jayden", "O'Brien", "Zoë", "Mary-Ann", "Smith Jones", " ", ""]), TEXT)
DATE = st.one_of(st.dates().map(dt.date.isoformat), st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"), TEXT)
POSTCODE = st.one_of(st.sampled_from(["NT1 4QT", "nt14qt", "B1  1AA", "NT1", "ſw1a 1aa"]), TEXT)
UPRN = st.one_of(st.from_regex(r"\A[0-9]{1,13}\s?\Z"), TEXT)
NHS = st.one_of(st.sampled_from(["943 476 5919", "9434765919", "943 476 5918"]), TEXT)
ADDRESS = st.builds(
    common_pb2.Address,
    lines=st.lists(TEXT, max_size=7),
    town=TEXT,
    postcode=POSTCODE,
    uprn=UPRN,
)
SUBJECT = st.builds(
    common_pb2.Subject,
    given_names=st.lists(NAME, max_size=6),
    family_name=NAME,
    other_names=st.lists(
        st.builds(common_pb2.PersonName, given_names=st.lists(NAME, max_size=2), family_name=NAME), max_size=2
    ),
    date_of_birth=DATE,
    gender=st.integers(-1, 5),
    address=ADDRESS,
    nhs_number=NHS,
)
PURPOSE = st.one_of(st.sampled_from(sorted(purposes())), TEXT)
CASE_REF = st.one_of(st.sampled_from(["MASH-0142", "A/1_2.3:4-5", ""]), TEXT)


@settings(max_examples=150, deadline=None)
@given(
    st.builds(
        broker_pb2.CheckRequest, subject=SUBJECT, purpose=PURPOSE, justification=TEXT, case_ref=CASE_REF
    )
)
def test_any_check_request_is_validated_keeping_every_property(request: broker_pb2.CheckRequest) -> None:
    validate_check(request)


@settings(max_examples=150, deadline=None)
@given(
    st.builds(
        broker_pb2.HouseholdRequest, address=ADDRESS, purpose=PURPOSE, justification=TEXT, case_ref=CASE_REF
    )
)
def test_any_household_request_is_validated_keeping_every_property(
    request: broker_pb2.HouseholdRequest,
) -> None:
    validate_household(request)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_for_the_fuzz_targets_pass(data: bytes) -> None:
    check_request(data)
    household_request(data)


def _valid(**subject: Any) -> broker_pb2.CheckRequest:
    fields: dict[str, Any] = {"given_names": ["Jayden"], "family_name": "Clarke", **subject}
    return broker_pb2.CheckRequest(
        subject=common_pb2.Subject(**fields),
        purpose="child-safeguarding",
        justification="School referral",
        case_ref="MASH-0142",
    )


def _fields(request: broker_pb2.CheckRequest) -> list[str]:
    return [v.field for v in validate_check_request(request, purposes(), TODAY)]


@given(UPRN)
@example("123\n")  # a Python `$` matches before a final newline (review; fixed)
def test_a_uprn_is_accepted_exactly_when_it_is_1_to_12_ascii_digits(uprn: str) -> None:
    refused = "subject.address.uprn" in _fields(_valid(address=common_pb2.Address(uprn=uprn)))
    assert refused == (bool(uprn) and not re.fullmatch(r"[0-9]{1,12}", uprn))


@given(st.dates(dt.date(1900, 1, 1), TODAY))
def test_every_real_date_of_birth_from_1900_to_today_is_accepted(born: dt.date) -> None:
    assert _fields(_valid(date_of_birth=born.isoformat())) == []


@given(st.dates(TODAY + dt.timedelta(days=1)) | st.dates(max_value=dt.date(1899, 12, 31)))
def test_a_date_of_birth_in_the_future_or_before_1900_is_refused(born: dt.date) -> None:
    assert _fields(_valid(date_of_birth=born.isoformat())) == ["subject.date_of_birth"]


LETTERS = st.text(st.characters(categories=["L"]), min_size=1, max_size=20)


@given(LETTERS, st.sampled_from(["", " ", "-", "'"]))
def test_names_of_letters_in_any_script_are_accepted(name: str, joiner: str) -> None:
    assert _fields(_valid(family_name=f"{name}{joiner}{name}")) == []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
SURROGATE_TEXT = st.lists(st.sampled_from(["a", "\ud800", "\udfff", "É"]), max_size=4).map("".join)


@settings(max_examples=150, deadline=None)
@given(
    st.fixed_dictionaries(
        {"subject": st.fixed_dictionaries({}, optional={"given_names": st.lists(SURROGATE_TEXT | JSON)})},
        optional={"purpose": st.sampled_from(["child-safeguarding", ""]) | JSON, "case_ref": JSON},
    )
    | JSON
)
def test_any_rest_body_is_refused_by_the_api_model_or_validated(body: Any) -> None:
    # Python's JSON encoder writes lone surrogates as escapes, which its decoder reads back as they were.
    data = json.dumps(body).encode()
    rest_json(b"\x00" + data)
    rest_json(b"\x01" + data)
